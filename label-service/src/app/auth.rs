//! Registration, login, the acting user and the first admin. Passwords are hashed by the
//! `PasswordHasher` port (argon2id) and never leave this module in any form: no returned
//! type carries the password or its hash.

use super::ports::{Managers, Users};
use crate::app::error::ErrorCode;
use crate::domain::validation;
use crate::domain::{Role, User, UserId};

use super::error::AppError;
use super::ports::{NewUser, PasswordHasher, Store, StoreError, Taken, UnitOfWork};
use super::{Actor, Label};

/// The one answer for a wrong e-mail address and a wrong password.
pub const BAD_CREDENTIALS: &str = "wrong e-mail address or password";

impl<S: Store, P: PasswordHasher> Label<S, P> {
    /// Registers a non-member. 422 for bad values, 409 when the e-mail address is taken.
    pub async fn register(
        &self,
        name: &str,
        email: &str,
        password: &str,
    ) -> Result<User, AppError> {
        validation::registration(name, email, password).map_err(|fields| {
            AppError::invalid(
                ErrorCode::ValidationFailed,
                "some fields are not valid",
                fields,
            )
        })?;
        self.create_user(name, email, password, Role::NonMember)
            .await
    }

    pub(crate) async fn create_user(
        &self,
        name: &str,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AppError> {
        let password_hash = self.passwords.hash(password.to_owned()).await?;
        let mut uow = self.store.begin().await?;
        let user = uow
            .insert_user(&NewUser {
                name: name.to_owned(),
                email: email.to_owned(),
                password_hash,
                role,
            })
            .await
            .map_err(|err| match err {
                StoreError::Conflict(Taken::Email) => AppError::conflict(
                    ErrorCode::EmailTaken,
                    "this e-mail address is registered already",
                ),
                other => other.into(),
            })?;
        uow.commit().await?;
        Ok(user)
    }

    /// Checks an e-mail address and password. A wrong address and a wrong password get the
    /// same 401, after the same work.
    pub async fn login(&self, email: &str, password: &str) -> Result<User, AppError> {
        let email = email.trim();
        // No account can have an address that is not one (and text such as a NUL character
        // is not even worth sending to the database): the same 401, after the same work.
        let found = if validation::is_email(email) {
            let mut uow = self.store.begin().await?;
            uow.credentials(email).await?
        } else {
            None
        };
        let (user, hash) = match found {
            Some(credentials) => (Some(credentials.user), Some(credentials.password_hash)),
            None => (None, None),
        };
        let matches = self.passwords.verify(password.to_owned(), hash).await;
        match user {
            Some(user) if matches => Ok(user),
            _ => Err(AppError::unauthenticated(
                ErrorCode::BadCredentials,
                BAD_CREDENTIALS,
            )),
        }
    }

    /// The user behind a token, read now: a role change takes effect at once. 401 when the
    /// user no longer exists.
    pub async fn actor(&self, user_id: UserId) -> Result<Actor, AppError> {
        let mut uow = self.store.begin().await?;
        let Some(user) = uow.user(user_id).await? else {
            return Err(AppError::unauthenticated(
                ErrorCode::UnknownUser,
                "the account of this token no longer exists; log in again",
            ));
        };
        let artist = match user.role {
            Role::Artist => uow.artist_of_user(user.id).await?,
            _ => None,
        };
        let manager = match user.role {
            Role::Manager => uow.manager_of_user(user.id).await?,
            _ => None,
        };
        Ok(Actor {
            user,
            artist,
            manager,
        })
    }

    /// Creates the first admin from configuration when no admin exists; returns it when it
    /// was created.
    pub async fn ensure_admin(
        &self,
        name: &str,
        email: &str,
        password: &str,
    ) -> Result<Option<User>, AppError> {
        let mut uow = self.store.begin().await?;
        if uow.admin_exists().await? {
            return Ok(None);
        }
        if uow.credentials(email).await?.is_some() {
            return Err(AppError::conflict(
                ErrorCode::AdminEmailTaken,
                format!("admin.email {email} belongs to a user who is not an admin"),
            ));
        }
        drop(uow);
        validation::registration(name, email, password).map_err(|fields| {
            AppError::invalid(
                ErrorCode::ValidationFailed,
                "admin settings are not valid",
                fields,
            )
        })?;
        self.create_user(name, email, password, Role::Admin)
            .await
            .map(Some)
    }
}
