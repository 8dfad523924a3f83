//! The label's entities (spec section 2) as plain data: what use cases read and return and
//! what the API shows. No password hash lives in any of these types, so none can leak.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::evaluation::Entry;
use super::request::{RequestType, Status};

/// An id of one kind of record: a number on the wire and in the database, but a type of its
/// own in the code, so a manager's id cannot be passed where a user's is expected (they are
/// easy to mix up: a manager has both).
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The number, for the database and the wire.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }
    )*};
}

ids! {
    /// A user's id.
    UserId;
    /// A manager's id (not their user's).
    ManagerId;
    /// An artist's id (not their user's).
    ArtistId;
    /// A release's id.
    ReleaseId;
    /// A track's id.
    TrackId;
    /// A publication's id.
    PublicationId;
    /// A request's id.
    RequestId;
}

/// What a user may do (spec section 1). Read from the database on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[serde(rename = "nonmember")]
    NonMember,
    Artist,
    Manager,
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::NonMember => "nonmember",
            Role::Artist => "artist",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "nonmember" => Some(Role::NonMember),
            "artist" => Some(Role::Artist),
            "manager" => Some(Role::Manager),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A registered person. Never carries the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A label employee who handles requests, with the artists they manage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Manager {
    pub id: ManagerId,
    pub user_id: UserId,
    /// The manager's user name, for lists.
    pub name: String,
    pub artist_ids: Vec<ArtistId>,
}

/// An accepted member of the label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Artist {
    pub id: ArtistId,
    pub user_id: UserId,
    pub nickname: String,
    /// The contract ends on this day (acceptance day + 1 year).
    pub contract_due: NaiveDate,
    pub active: bool,
    pub manager_id: ManagerId,
}

/// Whether a release is out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ReleaseStatus {
    Unpublished,
    Published,
}

impl ReleaseStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Unpublished => "Unpublished",
            ReleaseStatus::Published => "Published",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Unpublished" => Some(ReleaseStatus::Unpublished),
            "Published" => Some(ReleaseStatus::Published),
            _ => None,
        }
    }
}

/// A release (album, single, EP) with its tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Release {
    pub id: ReleaseId,
    pub title: String,
    /// The release's creation date.
    pub created_on: NaiveDate,
    pub status: ReleaseStatus,
    /// The owner.
    pub artist_id: ArtistId,
    pub tracks: Vec<Track>,
}

/// One track of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Track {
    pub id: TrackId,
    pub release_id: ReleaseId,
    pub title: String,
    pub duration_seconds: i32,
    pub genre: String,
    /// Free text: song, intro, remix...
    #[serde(rename = "type")]
    pub kind: String,
    /// The participating artists; the release's owner is always one of them.
    pub artist_ids: Vec<ArtistId>,
}

/// A release scheduled for publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Publication {
    pub id: PublicationId,
    pub release_id: ReleaseId,
    pub scheduled_on: NaiveDate,
    pub manager_id: ManagerId,
}

/// A sign or publish request, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Request {
    pub id: RequestId,
    #[serde(rename = "type")]
    pub kind: RequestType,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub applicant_id: UserId,
    /// The applicant's name, for people reading the request.
    #[serde(default)]
    pub applicant_name: String,
    pub manager_id: Option<ManagerId>,
    /// The assigned manager's name.
    #[serde(default)]
    pub manager_name: Option<String>,
    /// Text shown to the people involved.
    pub description: String,
    /// Sign: the desired nickname.
    pub nickname: Option<String>,
    /// Publish: the release.
    pub release_id: Option<ReleaseId>,
    /// Publish: the day the artist wants it out.
    pub expected_date: Option<NaiveDate>,
    /// Publish: the sum of the evaluation's diffs, once evaluated.
    pub grade: Option<i32>,
    /// Publish: one entry per criterion, once evaluated.
    pub evaluation: Option<Vec<Entry>>,
    /// Deferred-step attempts that had to be retried.
    pub attempts: i32,
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn an_id_is_a_plain_number_on_the_wire_and_a_type_of_its_own_in_the_code() {
        assert_eq!(serde_json::to_string(&UserId(5)).expect("json"), "5");
        assert_eq!(
            serde_json::from_str::<ManagerId>("7").expect("json"),
            ManagerId(7)
        );
        assert!(serde_json::from_str::<ManagerId>("\"7\"").is_err());
        assert_eq!("12".parse::<RequestId>(), Ok(RequestId(12)));
        assert!("twelve".parse::<RequestId>().is_err());
        assert_eq!(ArtistId(3).to_string(), "3");
        assert_eq!(ReleaseId(9).get(), 9);
    }
}
