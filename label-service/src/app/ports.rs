//! The ports: what the use cases need from the outside world, by capability. The store is
//! reached only through a unit of work (`begin`, operations, `commit`; dropping it rolls
//! back), so a use case decides what happens together and never sees a connection.
//! Implementations live in `adapters`; use-case tests mock these traits with mockall.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::evaluation::Evaluation;
use crate::domain::request::{RequestType, Status};
use crate::domain::validation::NewRelease;
use crate::domain::{
    Artist, ArtistId, Manager, ManagerId, Publication, Release, ReleaseId, ReleaseStatus, Request,
    RequestId, Role, Track, TrackId, User, UserId,
};

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Down, unreachable, too slow, a serialization failure: the same call may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule refused the write: someone else won a race, or the use case did not
    /// check first. The adapter says which rule in the use cases' words.
    #[error("conflict with existing data ({0:?})")]
    Conflict(Taken),
    /// The database refused a value of the input (a NUL character, a date or number out of
    /// its range): bad input, not a failure. The text names the problem, not the row.
    #[error("value not accepted: {0}")]
    BadValue(String),
    /// Anything else the database refused (a CHECK or foreign key, an unreadable row): a bug
    /// or bad data, not worth retrying.
    #[error("store refused: {0}")]
    Rejected(String),
}

/// Which uniqueness rule a write broke. The schema's constraints behind each are the
/// adapter's business; use cases match on these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Another user has this e-mail address (whatever its case).
    Email,
    /// An artist of the label has this nickname.
    Nickname,
    /// The user is a manager already.
    Manager,
    /// The user has an open sign request already.
    OpenSignRequest,
    /// Another open sign request asks for this nickname.
    OpenNickname,
    /// The release has an open publish request already.
    OpenPublishRequest,
    /// The release is published already.
    Publication,
    /// A rule no use case names; the adapter's description, for the log.
    Other(String),
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub role: Role,
}

/// What login needs: the user and the stored hash. Only the auth use case sees this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// An artist to create when a sign request is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArtist {
    pub user_id: UserId,
    pub nickname: String,
    pub contract_due: NaiveDate,
    pub manager_id: ManagerId,
}

/// A request to create, status `New`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub kind: RequestType,
    pub applicant_id: UserId,
    pub manager_id: Option<ManagerId>,
    pub nickname: Option<String>,
    pub release_id: Option<ReleaseId>,
    pub expected_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

/// A change to a request, applied only when the request is still in the expected status
/// (conditional update). `None` fields are left alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestChange {
    pub status: Option<Status>,
    pub manager_id: Option<ManagerId>,
    pub description: Option<String>,
    pub evaluation: Option<Evaluation>,
}

/// Whose requests a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOwner {
    /// The requests this user applied with.
    Applicant(UserId),
    /// The requests assigned to this manager.
    Manager(ManagerId),
    /// Every request (the admin's view).
    Everyone,
}

/// A page of requests, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestQuery {
    pub owner: RequestOwner,
    pub status: Option<Status>,
    pub kind: Option<RequestType>,
    /// 1..=100.
    pub limit: u32,
    pub offset: u32,
}

/// One page and the total across pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// The deferred steps of the workflow (spec section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Sign: choose the least-loaded manager.
    AssignManager,
    /// Publish: run the criteria.
    Evaluate,
    /// Any: close the request if it outlived the time to live.
    Expire,
}

impl Step {
    /// The name used in messages, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::AssignManager => "assign_manager",
            Step::Evaluate => "evaluate",
            Step::Expire => "expire",
        }
    }
}

/// A deferred action as carried by Kafka: a pointer to the request, not a snapshot. The
/// JSON value is `{request_id, type, attempt, enqueued_at}`; `type` names the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferredAction {
    pub request_id: RequestId,
    #[serde(rename = "type")]
    pub step: Step,
    /// 1 for the first try, then 2, 3...
    pub attempt: u32,
    pub enqueued_at: DateTime<Utc>,
}

/// Where the label's data lives. Cheap to share; every use case begins a unit of work.
#[cfg_attr(test, mockall::automock(type Uow = MockUnitOfWork;))]
pub trait Store: Send + Sync + 'static {
    /// The unit of work this store hands out.
    type Uow: UnitOfWork;

    /// Begins a unit of work (a database transaction).
    fn begin(&self) -> impl Future<Output = Result<Self::Uow, StoreError>> + Send;
}

/// The unit of work's the users: accounts, credentials, roles.
pub trait Users: Send {
    /// Creates a user. `Conflict(Taken::Email)` when the e-mail address
    /// is taken (case-insensitively).
    fn insert_user(
        &mut self,
        user: &NewUser,
    ) -> impl Future<Output = Result<User, StoreError>> + Send;

    /// The user with this id.
    fn user(&mut self, id: UserId)
    -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// The user with this e-mail address (case-insensitive) and their hash.
    fn credentials(
        &mut self,
        email: &str,
    ) -> impl Future<Output = Result<Option<Credentials>, StoreError>> + Send;

    /// Every user, oldest first.
    fn users(&mut self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;

    /// Changes a user's role.
    fn set_role(
        &mut self,
        id: UserId,
        role: Role,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether any admin exists.
    fn admin_exists(&mut self) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The unit of work's the label's people: managers and their artists.
pub trait Managers: Send {
    /// Makes a user a manager (the role is set separately). `Conflict(Taken::Manager)` when
    /// they are one already.
    fn insert_manager(
        &mut self,
        user_id: UserId,
    ) -> impl Future<Output = Result<ManagerId, StoreError>> + Send;

    /// The manager with this id, with their artists.
    fn manager(
        &mut self,
        id: ManagerId,
    ) -> impl Future<Output = Result<Option<Manager>, StoreError>> + Send;

    /// The manager record of this user.
    fn manager_of_user(
        &mut self,
        user_id: UserId,
    ) -> impl Future<Output = Result<Option<Manager>, StoreError>> + Send;

    /// Every manager with their artists, oldest first.
    fn managers(&mut self) -> impl Future<Output = Result<Vec<Manager>, StoreError>> + Send;

    /// The manager with the fewest open requests, ties broken at random; `None` when there
    /// is no manager.
    fn least_loaded_manager(
        &mut self,
    ) -> impl Future<Output = Result<Option<ManagerId>, StoreError>> + Send;

    /// Creates an artist. `Conflict(Taken::Nickname)` when the
    /// nickname is taken (case-insensitively).
    fn insert_artist(
        &mut self,
        artist: &NewArtist,
    ) -> impl Future<Output = Result<Artist, StoreError>> + Send;

    /// The artist with this id.
    fn artist(
        &mut self,
        id: ArtistId,
    ) -> impl Future<Output = Result<Option<Artist>, StoreError>> + Send;

    /// The artist record of this user.
    fn artist_of_user(
        &mut self,
        user_id: UserId,
    ) -> impl Future<Output = Result<Option<Artist>, StoreError>> + Send;

    /// Whether an artist has this nickname (case-insensitive).
    fn nickname_taken(
        &mut self,
        nickname: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Which of these artist ids exist.
    fn existing_artists(
        &mut self,
        ids: &[ArtistId],
    ) -> impl Future<Output = Result<Vec<ArtistId>, StoreError>> + Send;
}

/// The unit of work's releases, their tracks and publications, and the facts the evaluation reads.
pub trait Catalog: Send {
    /// Creates a release, `Unpublished`, with its tracks in order. Each track's artists are
    /// taken as given (the use case adds the owner).
    fn insert_release(
        &mut self,
        owner: ArtistId,
        created_on: NaiveDate,
        release: &NewRelease,
    ) -> impl Future<Output = Result<Release, StoreError>> + Send;

    /// The release with its tracks. `lock` takes a row lock (FOR UPDATE) until commit.
    fn release(
        &mut self,
        id: ReleaseId,
        lock: bool,
    ) -> impl Future<Output = Result<Option<Release>, StoreError>> + Send;

    /// The releases of these artists with their tracks, newest first.
    fn releases_of(
        &mut self,
        artists: &[ArtistId],
    ) -> impl Future<Output = Result<Vec<Release>, StoreError>> + Send;

    /// Sets a release's status.
    fn set_release_status(
        &mut self,
        id: ReleaseId,
        status: ReleaseStatus,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The track with this id, with its artists.
    fn track(
        &mut self,
        id: TrackId,
    ) -> impl Future<Output = Result<Option<Track>, StoreError>> + Send;

    /// Creates a publication. `Conflict(Taken::Publication)` when
    /// the release is published already.
    fn insert_publication(
        &mut self,
        release_id: ReleaseId,
        scheduled_on: NaiveDate,
        manager_id: ManagerId,
    ) -> impl Future<Output = Result<Publication, StoreError>> + Send;

    /// The publications of these artists' releases, latest scheduled first.
    fn publications_of(
        &mut self,
        artists: &[ArtistId],
    ) -> impl Future<Output = Result<Vec<Publication>, StoreError>> + Send;

    /// Scheduled dates of every publication of this artist's releases. A failure (other
    /// than `Unavailable`) leaves the unit of work usable: it is a fact of the evaluation,
    /// whose criterion then cannot be applied.
    fn publication_dates(
        &mut self,
        artist: ArtistId,
    ) -> impl Future<Output = Result<Vec<NaiveDate>, StoreError>> + Send;

    /// How many publications (of anyone) are scheduled on this day. A failure leaves the
    /// unit of work usable, as for `publication_dates`.
    fn publications_on(
        &mut self,
        day: NaiveDate,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
}

/// The unit of work's requests and the deferred actions written with them.
pub trait Requests: Send {
    /// Creates a request in status `New`. `Conflict` with `Taken::OpenSignRequest`,
    /// `Taken::OpenPublishRequest` or `Taken::OpenNickname` when one is open already.
    fn insert_request(
        &mut self,
        request: &NewRequest,
    ) -> impl Future<Output = Result<Request, StoreError>> + Send;

    /// The request with this id. `lock` takes a row lock (FOR UPDATE) until commit, so two
    /// transactions deciding on one request run one after the other.
    fn request(
        &mut self,
        id: RequestId,
        lock: bool,
    ) -> impl Future<Output = Result<Option<Request>, StoreError>> + Send;

    /// A page of requests, newest first, and the total.
    fn requests(
        &mut self,
        query: &RequestQuery,
    ) -> impl Future<Output = Result<Page<Request>, StoreError>> + Send;

    /// Whether this user has an open sign request.
    fn has_open_sign_request(
        &mut self,
        applicant: UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether this release has an open publish request.
    fn has_open_publish_request(
        &mut self,
        release: ReleaseId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Applies `change` if the request is still in status `expected`; the changed request,
    /// or `None` when it had moved on (then nothing is written).
    fn update_request(
        &mut self,
        id: RequestId,
        expected: Status,
        change: &RequestChange,
    ) -> impl Future<Output = Result<Option<Request>, StoreError>> + Send;

    /// Counts one more retried attempt of a deferred step; returns the new count.
    fn count_attempt(
        &mut self,
        id: RequestId,
    ) -> impl Future<Output = Result<i32, StoreError>> + Send;

    /// Writes a deferred action to the outbox, to be published (on the topic of requests of
    /// `kind`, keyed by request id) once this unit of work commits and `not_before` has come.
    fn schedule(
        &mut self,
        kind: RequestType,
        action: &DeferredAction,
        not_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One transaction's worth of reads and writes, by capability ([`Users`], [`Managers`],
/// [`Catalog`], [`Requests`]). Nothing is kept unless [`commit`] is called; dropping the unit
/// of work rolls it back.
///
/// [`commit`]: UnitOfWork::commit
pub trait UnitOfWork: Users + Managers + Catalog + Requests + Send + 'static {
    /// Makes every write of this unit of work durable.
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

// The mock of a unit of work, for the use-case tests: one type with every capability, as
// the PostgreSQL adapter has.
#[cfg(test)]
mockall::mock! {
    pub UnitOfWork {}
    impl Users for UnitOfWork {
        fn insert_user(
            &mut self,
            user: &NewUser,
        ) -> impl Future<Output = Result<User, StoreError>> + Send;
        fn user(&mut self, id: UserId)
        -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
        fn credentials(
            &mut self,
            email: &str,
        ) -> impl Future<Output = Result<Option<Credentials>, StoreError>> + Send;
        fn users(&mut self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;
        fn set_role(
            &mut self,
            id: UserId,
            role: Role,
        ) -> impl Future<Output = Result<(), StoreError>> + Send;
        fn admin_exists(&mut self) -> impl Future<Output = Result<bool, StoreError>> + Send;
    }
    impl Managers for UnitOfWork {
        fn insert_manager(
            &mut self,
            user_id: UserId,
        ) -> impl Future<Output = Result<ManagerId, StoreError>> + Send;
        fn manager(
            &mut self,
            id: ManagerId,
        ) -> impl Future<Output = Result<Option<Manager>, StoreError>> + Send;
        fn manager_of_user(
            &mut self,
            user_id: UserId,
        ) -> impl Future<Output = Result<Option<Manager>, StoreError>> + Send;
        fn managers(&mut self) -> impl Future<Output = Result<Vec<Manager>, StoreError>> + Send;
        fn least_loaded_manager(
            &mut self,
        ) -> impl Future<Output = Result<Option<ManagerId>, StoreError>> + Send;
        fn insert_artist(
            &mut self,
            artist: &NewArtist,
        ) -> impl Future<Output = Result<Artist, StoreError>> + Send;
        fn artist(
            &mut self,
            id: ArtistId,
        ) -> impl Future<Output = Result<Option<Artist>, StoreError>> + Send;
        fn artist_of_user(
            &mut self,
            user_id: UserId,
        ) -> impl Future<Output = Result<Option<Artist>, StoreError>> + Send;
        fn nickname_taken(
            &mut self,
            nickname: &str,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send;
        fn existing_artists(
            &mut self,
            ids: &[ArtistId],
        ) -> impl Future<Output = Result<Vec<ArtistId>, StoreError>> + Send;
    }
    impl Catalog for UnitOfWork {
        fn insert_release(
            &mut self,
            owner: ArtistId,
            created_on: NaiveDate,
            release: &NewRelease,
        ) -> impl Future<Output = Result<Release, StoreError>> + Send;
        fn release(
            &mut self,
            id: ReleaseId,
            lock: bool,
        ) -> impl Future<Output = Result<Option<Release>, StoreError>> + Send;
        fn releases_of(
            &mut self,
            artists: &[ArtistId],
        ) -> impl Future<Output = Result<Vec<Release>, StoreError>> + Send;
        fn set_release_status(
            &mut self,
            id: ReleaseId,
            status: ReleaseStatus,
        ) -> impl Future<Output = Result<(), StoreError>> + Send;
        fn track(
            &mut self,
            id: TrackId,
        ) -> impl Future<Output = Result<Option<Track>, StoreError>> + Send;
        fn insert_publication(
            &mut self,
            release_id: ReleaseId,
            scheduled_on: NaiveDate,
            manager_id: ManagerId,
        ) -> impl Future<Output = Result<Publication, StoreError>> + Send;
        fn publications_of(
            &mut self,
            artists: &[ArtistId],
        ) -> impl Future<Output = Result<Vec<Publication>, StoreError>> + Send;
        fn publication_dates(
            &mut self,
            artist: ArtistId,
        ) -> impl Future<Output = Result<Vec<NaiveDate>, StoreError>> + Send;
        fn publications_on(
            &mut self,
            day: NaiveDate,
        ) -> impl Future<Output = Result<u32, StoreError>> + Send;
    }
    impl Requests for UnitOfWork {
        fn insert_request(
            &mut self,
            request: &NewRequest,
        ) -> impl Future<Output = Result<Request, StoreError>> + Send;
        fn request(
            &mut self,
            id: RequestId,
            lock: bool,
        ) -> impl Future<Output = Result<Option<Request>, StoreError>> + Send;
        fn requests(
            &mut self,
            query: &RequestQuery,
        ) -> impl Future<Output = Result<Page<Request>, StoreError>> + Send;
        fn has_open_sign_request(
            &mut self,
            applicant: UserId,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send;
        fn has_open_publish_request(
            &mut self,
            release: ReleaseId,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send;
        fn update_request(
            &mut self,
            id: RequestId,
            expected: Status,
            change: &RequestChange,
        ) -> impl Future<Output = Result<Option<Request>, StoreError>> + Send;
        fn count_attempt(
            &mut self,
            id: RequestId,
        ) -> impl Future<Output = Result<i32, StoreError>> + Send;
        fn schedule(
            &mut self,
            kind: RequestType,
            action: &DeferredAction,
            not_before: DateTime<Utc>,
        ) -> impl Future<Output = Result<(), StoreError>> + Send;
    }
    impl UnitOfWork for UnitOfWork {
        fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
    }
}

/// Hashing a password failed (the hasher's own error, never the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub String);

/// Hashes and checks passwords (argon2id). Slow on purpose: implementations run it off the
/// async threads.
#[cfg_attr(test, mockall::automock)]
pub trait PasswordHasher: Send + Sync + 'static {
    /// The PHC string of `password` with a fresh salt.
    fn hash(&self, password: String) -> impl Future<Output = Result<String, HashError>> + Send;

    /// Whether `password` matches `hash`. With `None` it still spends the time of a check,
    /// so an unknown e-mail address cannot be told from a wrong password by timing.
    fn verify(&self, password: String, hash: Option<String>) -> impl Future<Output = bool> + Send;
}
