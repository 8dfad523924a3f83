//! The demo cast (spec section 7): four managers, two artists with one manager, one
//! unpublished release with two rock tracks, two non-members and an admin. Only a fresh
//! database is seeded; passwords come from the caller, who prints them once.

use super::ports::{Catalog, Managers, Users};
use crate::app::error::ErrorCode;
use chrono::NaiveDate;

use crate::domain::validation::{self, NewRelease, NewTrack};
use crate::domain::{ReleaseId, Role, User};

use super::Label;
use super::error::{AppError, missing};
use super::ports::{NewArtist, PasswordHasher, Store, UnitOfWork};

/// One person of the cast as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub user: User,
    /// The password, to print once.
    pub password: String,
    /// The artist's nickname, for artists.
    pub nickname: Option<String>,
}

/// What the seed created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub people: Vec<Seeded>,
    pub release_id: ReleaseId,
}

const MANAGERS: [(&str, &str); 4] = [
    ("Maria Keller", "maria@label.example"),
    ("Tom Berg", "tom@label.example"),
    ("Ines Duarte", "ines@label.example"),
    ("Kofi Mensah", "kofi@label.example"),
];
const ARTISTS: [(&str, &str, &str); 2] = [
    ("Lena Vogt", "lena@label.example", "Nova Lights"),
    ("Sam Okafor", "sam@label.example", "Echo Harbor"),
];
const NON_MEMBERS: [(&str, &str); 2] = [
    ("Alex Rivera", "alex@example.com"),
    ("Jo Tanaka", "jo@example.com"),
];
const ADMIN: (&str, &str) = ("Label Admin", "admin@label.example");

impl<S: Store, P: PasswordHasher> Label<S, P> {
    /// Seeds the demo cast into a database holding no user yet but, perhaps, the configured
    /// admin (409 `already_seeded` otherwise). `password` makes each person's password.
    pub async fn seed_demo(
        &self,
        today: NaiveDate,
        mut password: impl FnMut() -> String + Send,
    ) -> Result<SeedReport, AppError> {
        let mut uow = self.store.begin().await?;
        let existing = uow.users().await?;
        drop(uow);
        if existing.iter().any(|u| u.role != Role::Admin) {
            return Err(AppError::conflict(
                ErrorCode::AlreadySeeded,
                "the database holds users already; the demo cast is seeded only once",
            ));
        }
        let mut people = Vec::new();
        if existing.is_empty() {
            let secret = password();
            let user = self
                .create_user(ADMIN.0, ADMIN.1, &secret, Role::Admin)
                .await?;
            people.push(Seeded {
                user,
                password: secret,
                nickname: None,
            });
        }
        let mut manager_ids = Vec::new();
        for (name, email) in MANAGERS {
            let secret = password();
            let user = self
                .create_user(name, email, &secret, Role::NonMember)
                .await?;
            let mut uow = self.store.begin().await?;
            manager_ids.push(uow.insert_manager(user.id).await?);
            uow.set_role(user.id, Role::Manager).await?;
            uow.commit().await?;
            people.push(Seeded {
                user: User {
                    role: Role::Manager,
                    ..user
                },
                password: secret,
                nickname: None,
            });
        }
        let first_manager = *manager_ids.first().ok_or_else(|| missing("a manager"))?;
        let mut artist_ids = Vec::new();
        for (name, email, nickname) in ARTISTS {
            let secret = password();
            let user = self
                .create_user(name, email, &secret, Role::NonMember)
                .await?;
            let mut uow = self.store.begin().await?;
            let artist = uow
                .insert_artist(&NewArtist {
                    user_id: user.id,
                    nickname: nickname.to_owned(),
                    contract_due: validation::contract_due(today),
                    manager_id: first_manager,
                })
                .await?;
            uow.set_role(user.id, Role::Artist).await?;
            uow.commit().await?;
            artist_ids.push(artist.id);
            people.push(Seeded {
                user: User {
                    role: Role::Artist,
                    ..user
                },
                password: secret,
                nickname: Some(nickname.to_owned()),
            });
        }
        for (name, email) in NON_MEMBERS {
            let secret = password();
            let user = self
                .create_user(name, email, &secret, Role::NonMember)
                .await?;
            people.push(Seeded {
                user,
                password: secret,
                nickname: None,
            });
        }
        let owner = *artist_ids.first().ok_or_else(|| missing("an artist"))?;
        let track = |title: &str, seconds| NewTrack {
            title: title.to_owned(),
            duration_seconds: seconds,
            genre: "rock".to_owned(),
            kind: "song".to_owned(),
            artist_ids: vec![owner],
        };
        let release = NewRelease {
            title: "Night Drive".to_owned(),
            date: Some(today),
            tracks: vec![track("Neon Highway", 214), track("Static Hearts", 187)],
        };
        let mut uow = self.store.begin().await?;
        let stored = uow.insert_release(owner, today, &release).await?;
        uow.commit().await?;
        Ok(SeedReport {
            people,
            release_id: stored.id,
        })
    }
}
