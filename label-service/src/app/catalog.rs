//! Releases, tracks, publications and artist profiles: uploads by artists, reads by the
//! artist and by their manager. Whoever may not see a record gets 404, as if it did not
//! exist.

use super::ports::{Catalog, Managers};
use crate::app::error::ErrorCode;
use chrono::NaiveDate;

use crate::domain::validation::{self, FieldError, NewRelease};
use crate::domain::{Artist, ArtistId, Publication, Release, ReleaseId, Role, Track, TrackId};

use super::error::AppError;
use super::ports::{PasswordHasher, Store, UnitOfWork};
use super::{Actor, Label};

impl<S: Store, P: PasswordHasher> Label<S, P> {
    /// An artist uploads a release with its tracks, all or nothing. Each track's artists are
    /// the ones named plus the owner.
    pub async fn upload_release(
        &self,
        actor: &Actor,
        mut release: NewRelease,
        today: NaiveDate,
    ) -> Result<Release, AppError> {
        let owner = actor.as_artist("only artists upload releases")?.id;
        validation::release(&release).map_err(|fields| {
            AppError::invalid(
                ErrorCode::ValidationFailed,
                "some fields are not valid",
                fields,
            )
        })?;
        let mut named: Vec<ArtistId> = release
            .tracks
            .iter()
            .flat_map(|t| t.artist_ids.iter().copied())
            .filter(|id| *id != owner)
            .collect();
        named.sort_unstable();
        named.dedup();
        let mut uow = self.store.begin().await?;
        if !named.is_empty() {
            let known = uow.existing_artists(&named).await?;
            let fields: Vec<FieldError> = release
                .tracks
                .iter()
                .enumerate()
                .flat_map(|(index, track)| {
                    track
                        .artist_ids
                        .iter()
                        .filter(|id| **id != owner && !known.contains(id))
                        .map(move |id| FieldError {
                            field: format!("tracks[{index}].artist_ids"),
                            message: format!("no artist has id {id}"),
                        })
                })
                .collect();
            if !fields.is_empty() {
                return Err(AppError::invalid(
                    ErrorCode::UnknownArtist,
                    "some tracks name artists who are not in the label",
                    fields,
                ));
            }
        }
        for track in &mut release.tracks {
            let others: Vec<ArtistId> = track
                .artist_ids
                .iter()
                .copied()
                .filter(|id| *id != owner)
                .collect();
            track.artist_ids = std::iter::once(owner).chain(others).collect();
            track.artist_ids.dedup();
        }
        let created_on = release.date.unwrap_or(today);
        let stored = uow.insert_release(owner, created_on, &release).await?;
        uow.commit().await?;
        tracing::info!(
            release_id = stored.id.get(),
            artist_id = owner.get(),
            tracks = stored.tracks.len(),
            "release uploaded"
        );
        Ok(stored)
    }

    fn visible_artists(&self, actor: &Actor, what: &str) -> Result<Vec<ArtistId>, AppError> {
        match actor.role() {
            Role::Artist => Ok(vec![actor.as_artist(what)?.id]),
            Role::Manager => Ok(actor.as_manager(what)?.artist_ids.clone()),
            Role::NonMember | Role::Admin => {
                Err(AppError::forbidden(ErrorCode::RoleNotAllowed, what))
            }
        }
    }

    /// An artist's own releases, or a manager's artists' releases, newest first.
    pub async fn list_releases(&self, actor: &Actor) -> Result<Vec<Release>, AppError> {
        let artists =
            self.visible_artists(actor, "releases are seen by their artists and managers")?;
        if artists.is_empty() {
            return Ok(Vec::new());
        }
        let mut uow = self.store.begin().await?;
        Ok(uow.releases_of(&artists).await?)
    }

    /// One release with its tracks, for its owner and the owner's manager.
    pub async fn get_release(&self, actor: &Actor, id: ReleaseId) -> Result<Release, AppError> {
        let mut uow = self.store.begin().await?;
        match uow.release(id, false).await? {
            Some(release)
                if actor.is_artist(release.artist_id) || actor.manages(release.artist_id) =>
            {
                Ok(release)
            }
            _ => Err(AppError::not_found(
                ErrorCode::ReleaseNotFound,
                "no such release",
            )),
        }
    }

    /// One track, for its participating artists and their managers.
    pub async fn get_track(&self, actor: &Actor, id: TrackId) -> Result<Track, AppError> {
        let mut uow = self.store.begin().await?;
        match uow.track(id).await? {
            Some(track)
                if track
                    .artist_ids
                    .iter()
                    .any(|a| actor.is_artist(*a) || actor.manages(*a)) =>
            {
                Ok(track)
            }
            _ => Err(AppError::not_found(
                ErrorCode::TrackNotFound,
                "no such track",
            )),
        }
    }

    /// An artist's own publications, or a manager's artists' publications.
    pub async fn list_publications(&self, actor: &Actor) -> Result<Vec<Publication>, AppError> {
        let artists =
            self.visible_artists(actor, "publications are seen by their artists and managers")?;
        if artists.is_empty() {
            return Ok(Vec::new());
        }
        let mut uow = self.store.begin().await?;
        Ok(uow.publications_of(&artists).await?)
    }

    /// An artist's profile, for the artist, their manager and admins.
    pub async fn get_artist(&self, actor: &Actor, id: ArtistId) -> Result<Artist, AppError> {
        let mut uow = self.store.begin().await?;
        match uow.artist(id).await? {
            Some(artist)
                if actor.is_artist(id) || actor.manages(id) || actor.role() == Role::Admin =>
            {
                Ok(artist)
            }
            _ => Err(AppError::not_found(
                ErrorCode::ArtistNotFound,
                "no such artist",
            )),
        }
    }
}
