//! The one error type of the use cases. Each variant is a class the HTTP adapter maps to a
//! status; `code` is stable and machine-readable, `message` is for people and never carries
//! internals (those go to the log).

use crate::domain::validation::FieldError;

use super::ports::{HashError, StoreError};

/// Why a use case refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// Malformed or contradictory input (400).
    #[error("{message}")]
    BadInput { code: &'static str, message: String },
    /// Values outside their rules (422), one entry per field.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        fields: Vec<FieldError>,
    },
    /// Not logged in, or the credentials or token are not good (401).
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// Logged in but not allowed (403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// Unknown, or not the caller's to know about (404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// In conflict with the current state (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The store cannot be reached now; the same call may work shortly (503).
    #[error("the service cannot reach its database; try again shortly")]
    Unavailable(String),
    /// A bug or bad data (500). The detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(
        code: &'static str,
        message: impl Into<String>,
        fields: Vec<FieldError>,
    ) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            fields,
        }
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadInput { code, .. }
            | AppError::Invalid { code, .. }
            | AppError::Unauthenticated { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::NotFound { code, .. }
            | AppError::Conflict { code, .. } => code,
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AppError::Unavailable(_))
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(detail) => AppError::Unavailable(detail),
            // A unique violation the use case did not expect: someone else won a race.
            StoreError::Conflict { constraint } => AppError::conflict(
                "conflict",
                format!("the change conflicts with existing data ({constraint})"),
            ),
            StoreError::BadValue(problem) => AppError::bad_input(
                "bad_value",
                format!("a value of the request is not accepted: {problem}"),
            ),
            StoreError::Rejected(detail) => AppError::Internal(detail),
        }
    }
}

impl From<HashError> for AppError {
    fn from(err: HashError) -> Self {
        AppError::Internal(err.to_string())
    }
}

/// A record the store should have had but did not: the data changed under us.
pub(crate) fn missing(what: &str) -> AppError {
    AppError::Internal(format!("{what} vanished during the unit of work"))
}
