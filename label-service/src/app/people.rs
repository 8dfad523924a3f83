//! Users and managers: the admin's lists and the appointment of managers (a batch, all or
//! nothing), and each user's view of themselves. No type here carries a password hash.

use super::ports::{Managers, Users};
use crate::app::error::ErrorCode;
use crate::domain::validation::FieldError;
use crate::domain::{Manager, ManagerId, Role, User, UserId};

use super::error::{AppError, missing};
use super::ports::{PasswordHasher, Store, UnitOfWork};
use super::{Actor, Label};

/// Most users appointed in one call.
pub const APPOINT_MAX: usize = 100;

impl<S: Store, P: PasswordHasher> Label<S, P> {
    /// The manager of the acting artist, for their profile; `None` for anyone else.
    pub async fn own_manager(&self, actor: &Actor) -> Result<Option<Manager>, AppError> {
        let Some(artist) = &actor.artist else {
            return Ok(None);
        };
        let mut uow = self.store.begin().await?;
        Ok(uow.manager(artist.manager_id).await?)
    }

    /// Every user, for admins.
    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<User>, AppError> {
        actor.require_admin("only admins list users")?;
        let mut uow = self.store.begin().await?;
        Ok(uow.users().await?)
    }

    /// One user, for admins and for the user themselves.
    pub async fn get_user(&self, actor: &Actor, id: UserId) -> Result<User, AppError> {
        if actor.user.id == id {
            return Ok(actor.user.clone());
        }
        if actor.role() != Role::Admin {
            return Err(AppError::not_found(ErrorCode::UserNotFound, "no such user"));
        }
        let mut uow = self.store.begin().await?;
        uow.user(id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::UserNotFound, "no such user"))
    }

    /// Every manager with their artists, for admins.
    pub async fn list_managers(&self, actor: &Actor) -> Result<Vec<Manager>, AppError> {
        actor.require_admin("only admins list managers")?;
        let mut uow = self.store.begin().await?;
        Ok(uow.managers().await?)
    }

    /// One manager with their artists, for that manager and admins.
    pub async fn get_manager(&self, actor: &Actor, id: ManagerId) -> Result<Manager, AppError> {
        let own = actor.manager.as_ref().is_some_and(|m| m.id == id);
        if !own && actor.role() != Role::Admin {
            return Err(AppError::not_found(
                ErrorCode::ManagerNotFound,
                "no such manager",
            ));
        }
        let mut uow = self.store.begin().await?;
        uow.manager(id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::ManagerNotFound, "no such manager"))
    }

    /// Appoints these users managers, all or nothing: 404 for an unknown user, 409 for a
    /// manager already, an artist or an admin.
    pub async fn appoint_managers(
        &self,
        actor: &Actor,
        user_ids: &[UserId],
    ) -> Result<Vec<Manager>, AppError> {
        actor.require_admin("only admins appoint managers")?;
        if user_ids.is_empty() || user_ids.len() > APPOINT_MAX {
            return Err(AppError::invalid(
                ErrorCode::ValidationFailed,
                format!("name 1 to {APPOINT_MAX} users to appoint"),
                vec![FieldError {
                    field: "user_ids".into(),
                    message: format!("must hold 1 to {APPOINT_MAX} ids"),
                }],
            ));
        }
        let mut ids = user_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut uow = self.store.begin().await?;
        let mut appointed = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(user) = uow.user(id).await? else {
                return Err(AppError::not_found(
                    ErrorCode::UserNotFound,
                    format!("no user has id {id}"),
                ));
            };
            match user.role {
                Role::NonMember => {}
                Role::Manager => {
                    return Err(AppError::conflict(
                        ErrorCode::AlreadyManager,
                        format!("user {id} is a manager already"),
                    ));
                }
                Role::Artist => {
                    return Err(AppError::conflict(
                        ErrorCode::ArtistCannotBeManager,
                        format!("user {id} is an artist; an artist cannot be a manager"),
                    ));
                }
                Role::Admin => {
                    return Err(AppError::conflict(
                        ErrorCode::AdminCannotBeManager,
                        format!("user {id} is an admin; an admin cannot be a manager"),
                    ));
                }
            }
            let manager_id = uow.insert_manager(id).await.map_err(|err| match err {
                super::StoreError::Conflict(super::ports::Taken::Manager) => AppError::conflict(
                    ErrorCode::AlreadyManager,
                    format!("user {id} is a manager already"),
                ),
                other => other.into(),
            })?;
            uow.set_role(id, Role::Manager).await?;
            appointed.push(manager_id);
        }
        let mut managers = Vec::with_capacity(appointed.len());
        for id in appointed {
            managers.push(
                uow.manager(id)
                    .await?
                    .ok_or_else(|| missing("a new manager"))?,
            );
        }
        uow.commit().await?;
        tracing::info!(
            count = managers.len(),
            admin = actor.user.id.get(),
            "managers appointed"
        );
        Ok(managers)
    }
}
