//! The one error type of the use cases. Each variant is a class the HTTP adapter maps to a
//! status; `code` is stable and machine-readable, `message` is for people and never carries
//! internals (those go to the log).

use crate::domain::validation::FieldError;

use super::ports::{HashError, StoreError};

/// The stable, machine-readable code of every refusal (the `code` of the API's problems
/// and of the web pages' errors). Renaming one breaks clients: add, never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    AdminCannotBeManager,
    AdminEmailTaken,
    AlreadyClosed,
    AlreadyManager,
    AlreadySeeded,
    ApplicantNotNonmember,
    ArtistCannotBeManager,
    ArtistNotFound,
    BadCredentials,
    BadDate,
    BadDuration,
    BadForm,
    BadId,
    BadLimit,
    BadStatus,
    BadType,
    BadValue,
    Conflict,
    ContractEndsBefore,
    CookieRefused,
    Csrf,
    DatePassed,
    DateTooSoon,
    EmailTaken,
    ManagerNotFound,
    MethodNotAllowed,
    NicknameTaken,
    NotReady,
    NotReleaseOwner,
    PublishRequestOpen,
    ReleaseNotFound,
    ReleasePublished,
    RequestNotFound,
    RoleNotAllowed,
    SignRequestOpen,
    TooManyAttempts,
    TrackNotFound,
    UnknownArtist,
    UnknownUser,
    UserNotFound,
    ValidationFailed,
}

impl ErrorCode {
    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AdminCannotBeManager => "admin_cannot_be_manager",
            ErrorCode::AdminEmailTaken => "admin_email_taken",
            ErrorCode::AlreadyClosed => "already_closed",
            ErrorCode::AlreadyManager => "already_manager",
            ErrorCode::AlreadySeeded => "already_seeded",
            ErrorCode::ApplicantNotNonmember => "applicant_not_nonmember",
            ErrorCode::ArtistCannotBeManager => "artist_cannot_be_manager",
            ErrorCode::ArtistNotFound => "artist_not_found",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::BadDate => "bad_date",
            ErrorCode::BadDuration => "bad_duration",
            ErrorCode::BadForm => "bad_form",
            ErrorCode::BadId => "bad_id",
            ErrorCode::BadLimit => "bad_limit",
            ErrorCode::BadStatus => "bad_status",
            ErrorCode::BadType => "bad_type",
            ErrorCode::BadValue => "bad_value",
            ErrorCode::Conflict => "conflict",
            ErrorCode::ContractEndsBefore => "contract_ends_before",
            ErrorCode::CookieRefused => "cookie_refused",
            ErrorCode::Csrf => "csrf",
            ErrorCode::DatePassed => "date_passed",
            ErrorCode::DateTooSoon => "date_too_soon",
            ErrorCode::EmailTaken => "email_taken",
            ErrorCode::ManagerNotFound => "manager_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NicknameTaken => "nickname_taken",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::NotReleaseOwner => "not_release_owner",
            ErrorCode::PublishRequestOpen => "publish_request_open",
            ErrorCode::ReleaseNotFound => "release_not_found",
            ErrorCode::ReleasePublished => "release_published",
            ErrorCode::RequestNotFound => "request_not_found",
            ErrorCode::RoleNotAllowed => "role_not_allowed",
            ErrorCode::SignRequestOpen => "sign_request_open",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::TrackNotFound => "track_not_found",
            ErrorCode::UnknownArtist => "unknown_artist",
            ErrorCode::UnknownUser => "unknown_user",
            ErrorCode::UserNotFound => "user_not_found",
            ErrorCode::ValidationFailed => "validation_failed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a use case refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// Malformed or contradictory input (400).
    #[error("{message}")]
    BadInput { code: ErrorCode, message: String },
    /// Values outside their rules (422), one entry per field.
    #[error("{message}")]
    Invalid {
        code: ErrorCode,
        message: String,
        fields: Vec<FieldError>,
    },
    /// Not logged in, or the credentials or token are not good (401).
    #[error("{message}")]
    Unauthenticated { code: ErrorCode, message: String },
    /// Logged in but not allowed (403).
    #[error("{message}")]
    Forbidden { code: ErrorCode, message: String },
    /// Unknown, or not the caller's to know about (404).
    #[error("{message}")]
    NotFound { code: ErrorCode, message: String },
    /// In conflict with the current state (409).
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// The store cannot be reached now; the same call may work shortly (503).
    #[error("the service cannot reach its database; try again shortly")]
    Unavailable(String),
    /// A bug or bad data (500). The detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn bad_input(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::BadInput {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(code: ErrorCode, message: impl Into<String>, fields: Vec<FieldError>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            fields,
        }
    }

    pub fn unauthenticated(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
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
            | AppError::Conflict { code, .. } => code.as_str(),
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
            StoreError::Conflict(taken) => AppError::conflict(
                ErrorCode::Conflict,
                format!("the change conflicts with existing data ({taken:?})"),
            ),
            StoreError::BadValue(problem) => AppError::bad_input(
                ErrorCode::BadValue,
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
