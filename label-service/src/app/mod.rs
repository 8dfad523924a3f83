//! The use cases of the label and the ports they need. A use case takes the acting user
//! (`Actor`, read from the store on every request) and plain values, decides, and works
//! through one unit of work; it never sees a connection, a transaction, HTTP or Kafka.
//! The current time is always handed in, so tests choose the day.

pub mod auth;
pub mod catalog;
pub mod deferred;
pub mod error;
pub mod people;
pub mod ports;
pub mod requests;
pub mod seed;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::evaluation::{Criterion, standard_criteria};
use crate::domain::{Artist, Manager, Role, User};

pub use error::{AppError, ErrorCode};
pub use ports::{PasswordHasher, Store, StoreError, UnitOfWork};

/// Tunable rules of the workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// An open request older than this is closed by the expiry step.
    pub request_ttl: Duration,
    /// First retry delay of a deferred step that could not proceed (1 s).
    pub retry_min: Duration,
    /// Longest retry delay (10 min).
    pub retry_max: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            request_ttl: Duration::from_secs(90 * 24 * 3600),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
        }
    }
}

/// The label's use cases over a store and a password hasher. Cheap to clone.
pub struct Label<S, P> {
    store: Arc<S>,
    passwords: Arc<P>,
    rules: Rules,
    criteria: Arc<Vec<Box<dyn Criterion>>>,
}

impl<S, P> Clone for Label<S, P> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            passwords: Arc::clone(&self.passwords),
            rules: self.rules.clone(),
            criteria: Arc::clone(&self.criteria),
        }
    }
}

impl<S, P> std::fmt::Debug for Label<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Label").field("rules", &self.rules).finish()
    }
}

impl<S: Store, P: PasswordHasher> Label<S, P> {
    /// The use cases with the standard evaluation criteria.
    pub fn new(store: S, passwords: P, rules: Rules) -> Self {
        Self::with_criteria(store, passwords, rules, standard_criteria())
    }

    /// The use cases with a chosen list of criteria, in the order they run.
    pub fn with_criteria(
        store: S,
        passwords: P,
        rules: Rules,
        criteria: Vec<Box<dyn Criterion>>,
    ) -> Self {
        Self {
            store: Arc::new(store),
            passwords: Arc::new(passwords),
            rules,
            criteria: Arc::new(criteria),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }
}

/// The user acting, as the store knows them now, with their artist or manager record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: User,
    pub artist: Option<Artist>,
    pub manager: Option<Manager>,
}

impl Actor {
    /// The role.
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The artist record, or 403 with `message`.
    pub fn as_artist(&self, message: &str) -> Result<&Artist, AppError> {
        match (&self.user.role, &self.artist) {
            (Role::Artist, Some(artist)) => Ok(artist),
            _ => Err(AppError::forbidden(ErrorCode::RoleNotAllowed, message)),
        }
    }

    /// The manager record, or 403 with `message`.
    pub fn as_manager(&self, message: &str) -> Result<&Manager, AppError> {
        match (&self.user.role, &self.manager) {
            (Role::Manager, Some(manager)) => Ok(manager),
            _ => Err(AppError::forbidden(ErrorCode::RoleNotAllowed, message)),
        }
    }

    /// Ok for an admin, or 403 with `message`.
    pub fn require_admin(&self, message: &str) -> Result<(), AppError> {
        if self.user.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::forbidden(ErrorCode::RoleNotAllowed, message))
        }
    }

    /// Whether this actor manages the artist.
    pub fn manages(&self, artist: crate::domain::ArtistId) -> bool {
        self.user.role == Role::Manager
            && self
                .manager
                .as_ref()
                .is_some_and(|m| m.artist_ids.contains(&artist))
    }

    /// Whether this actor is the artist.
    pub fn is_artist(&self, artist: crate::domain::ArtistId) -> bool {
        self.user.role == Role::Artist && self.artist.as_ref().is_some_and(|a| a.id == artist)
    }
}
