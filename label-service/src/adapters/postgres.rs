//! `PgStore`: the label's data in PostgreSQL (schema `label`), reached through a unit of work
//! that holds one transaction. All of the label-service's SQL lives here, as functions over a
//! `&mut PgConnection`; deferred actions are written to the transactional outbox with the
//! same connection.
//!
//! This module translates and decides nothing: it holds no business rule, never opens a
//! network call other than to PostgreSQL, and never commits unless the use case says so.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use platform::db::{DbError, Tx, TxManager};
use platform::outbox::{self, NewMessage, OutboxTable};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};

use crate::app::ports::{Catalog, Managers, Requests, Users};
use crate::app::ports::{
    Credentials, DeferredAction, NewArtist, NewRequest, NewUser, Page, RequestChange, RequestOwner,
    RequestQuery, Store, StoreError, Taken, UnitOfWork,
};
use crate::domain::evaluation::Entry;
use crate::domain::request::{RequestType, Status};
use crate::domain::validation::NewRelease;
use crate::domain::{
    Artist, ArtistId, Manager, ManagerId, Publication, PublicationId, Release, ReleaseId,
    ReleaseStatus, Request, RequestId, Role, Track, TrackId, User, UserId,
};

/// The outbox table of the label-service.
pub const OUTBOX_TABLE: &str = "label.outbox";

/// The topics deferred actions are published on, by request type.
#[derive(Clone, Debug)]
pub struct DeferredTopics {
    /// Topic of the actions of sign requests (`label.sign-requests` by default).
    pub sign: String,
    /// Topic of the actions of publish requests (`label.publish-requests` by default).
    pub publish: String,
}

impl DeferredTopics {
    fn of(&self, kind: RequestType) -> &str {
        match kind {
            RequestType::Sign => &self.sign,
            RequestType::Publish => &self.publish,
        }
    }
}

/// The PostgreSQL store: hands out units of work, each one transaction.
#[derive(Debug, Clone)]
pub struct PgStore {
    tx: TxManager,
    outbox: OutboxTable,
    topics: DeferredTopics,
}

impl PgStore {
    /// A store over `pool` (whose `search_path` may be anything: every table is qualified)
    /// writing deferred actions to `label.outbox` for `topics`.
    pub fn new(pool: PgPool, topics: DeferredTopics) -> Result<Self, DbError> {
        Ok(Self {
            tx: TxManager::new(pool),
            outbox: OutboxTable::new(OUTBOX_TABLE)?,
            topics,
        })
    }

    /// The pool, for readiness checks and the outbox relay.
    pub fn pool(&self) -> &PgPool {
        self.tx.pool()
    }
}

impl Store for PgStore {
    type Uow = PgUnitOfWork;

    fn begin(&self) -> impl Future<Output = Result<PgUnitOfWork, StoreError>> + Send {
        let tx = self.tx.clone();
        let outbox = self.outbox.clone();
        let topics = self.topics.clone();
        async move {
            let tx = tx.begin().await.map_err(store_error)?;
            Ok(PgUnitOfWork { tx, outbox, topics })
        }
    }
}

/// One open transaction of the label's store. Dropping it without [`UnitOfWork::commit`]
/// rolls everything back.
#[derive(Debug)]
pub struct PgUnitOfWork {
    tx: Tx,
    outbox: OutboxTable,
    topics: DeferredTopics,
}

/// The domain's ids are `BIGINT`s in the schema: encoded and decoded as their number, here,
/// so the domain knows nothing of the database.
macro_rules! bigint_ids {
    ($($id:ty),*) => {$(
        impl sqlx::Type<sqlx::Postgres> for $id {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <i64 as sqlx::Type<sqlx::Postgres>>::type_info()
            }
        }

        impl sqlx::postgres::PgHasArrayType for $id {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <i64 as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Postgres> for $id {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <i64 as sqlx::Encode<'q, sqlx::Postgres>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $id {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                <i64 as sqlx::Decode<'r, sqlx::Postgres>>::decode(value).map(Self)
            }
        }
    )*};
}

bigint_ids!(
    UserId,
    ManagerId,
    ArtistId,
    ReleaseId,
    TrackId,
    PublicationId,
    RequestId
);

/// Maps a classified database error to the port's error: transient trouble may pass, a
/// unique violation is a conflict the use case can explain, anything else is refused.
fn store_error(err: DbError) -> StoreError {
    if err.is_transient() {
        return StoreError::Unavailable(err.to_string());
    }
    match err {
        DbError::UniqueViolation { constraint, .. } => {
            StoreError::Conflict(taken(constraint.as_deref().unwrap_or("unknown")))
        }
        DbError::DataException { message, .. } => StoreError::BadValue(message),
        other => StoreError::Rejected(other.to_string()),
    }
}

/// The uniqueness rule a constraint of the schema (migrations/label) stands for.
fn taken(constraint: &str) -> Taken {
    match constraint {
        "users_email_key" => Taken::Email,
        "artists_nickname_key" => Taken::Nickname,
        "managers_user_id_key" => Taken::Manager,
        "requests_one_open_sign" => Taken::OpenSignRequest,
        "requests_open_nickname" => Taken::OpenNickname,
        "requests_one_open_publish" => Taken::OpenPublishRequest,
        "publications_release_id_key" => Taken::Publication,
        other => Taken::Other(other.to_owned()),
    }
}

fn sql_error(err: sqlx::Error) -> StoreError {
    store_error(platform::db::classify(err))
}

fn column<'r, T>(row: &'r PgRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name)
        .map_err(|err| StoreError::Rejected(format!("unreadable column {name}: {err}")))
}

fn unknown(what: &str, text: &str) -> StoreError {
    StoreError::Rejected(format!("unknown {what} {text:?} in the database"))
}

fn missing(what: &str, id: i64) -> StoreError {
    StoreError::Rejected(format!("no {what} with id {id}"))
}

// ---- row mapping

const USER_COLUMNS: &str = "id, name, email, role, created_at";

fn user_row(row: &PgRow) -> Result<User, StoreError> {
    let role: String = column(row, "role")?;
    Ok(User {
        id: column(row, "id")?,
        name: column(row, "name")?,
        email: column(row, "email")?,
        role: Role::parse(&role).ok_or_else(|| unknown("role", &role))?,
        created_at: column(row, "created_at")?,
    })
}

const MANAGER_SELECT: &str = "SELECT m.id, m.user_id, u.name, \
     ARRAY(SELECT a.id FROM label.artists a WHERE a.manager_id = m.id ORDER BY a.id) AS artist_ids \
     FROM label.managers m JOIN label.users u ON u.id = m.user_id";

fn manager_row(row: &PgRow) -> Result<Manager, StoreError> {
    Ok(Manager {
        id: column(row, "id")?,
        user_id: column(row, "user_id")?,
        name: column(row, "name")?,
        artist_ids: column(row, "artist_ids")?,
    })
}

const ARTIST_COLUMNS: &str = "id, user_id, nickname, contract_due, active, manager_id";

fn artist_row(row: &PgRow) -> Result<Artist, StoreError> {
    Ok(Artist {
        id: column(row, "id")?,
        user_id: column(row, "user_id")?,
        nickname: column(row, "nickname")?,
        contract_due: column(row, "contract_due")?,
        active: column(row, "active")?,
        manager_id: column(row, "manager_id")?,
    })
}

const RELEASE_COLUMNS: &str = "id, title, created_on, status, artist_id";

/// A release row without its tracks.
fn release_row(row: &PgRow) -> Result<Release, StoreError> {
    let status: String = column(row, "status")?;
    Ok(Release {
        id: column(row, "id")?,
        title: column(row, "title")?,
        created_on: column(row, "created_on")?,
        status: ReleaseStatus::parse(&status).ok_or_else(|| unknown("release status", &status))?,
        artist_id: column(row, "artist_id")?,
        tracks: Vec::new(),
    })
}

const TRACK_SELECT: &str = "SELECT t.id, t.release_id, t.title, t.duration_seconds, t.genre, \
     t.kind, ARRAY(SELECT ta.artist_id FROM label.track_artists ta \
     WHERE ta.track_id = t.id ORDER BY ta.artist_id) AS artist_ids \
     FROM label.tracks t";

fn track_row(row: &PgRow) -> Result<Track, StoreError> {
    Ok(Track {
        id: column(row, "id")?,
        release_id: column(row, "release_id")?,
        title: column(row, "title")?,
        duration_seconds: column(row, "duration_seconds")?,
        genre: column(row, "genre")?,
        kind: column(row, "kind")?,
        artist_ids: column(row, "artist_ids")?,
    })
}

const PUBLICATION_COLUMNS: &str = "p.id, p.release_id, p.scheduled_on, p.manager_id";

fn publication_row(row: &PgRow) -> Result<Publication, StoreError> {
    Ok(Publication {
        id: column(row, "id")?,
        release_id: column(row, "release_id")?,
        scheduled_on: column(row, "scheduled_on")?,
        manager_id: column(row, "manager_id")?,
    })
}

/// The columns of a request and the names of the people on it (scalar subqueries, so the
/// same list serves `SELECT` and `RETURNING`).
const REQUEST_COLUMNS: &str = "id, kind, status, created_at, applicant_id, manager_id, \
     description, nickname, release_id, expected_date, grade, evaluation, attempts, \
     (SELECT u.name FROM label.users u WHERE u.id = applicant_id) AS applicant_name, \
     (SELECT u.name FROM label.managers m JOIN label.users u ON u.id = m.user_id \
      WHERE m.id = manager_id) AS manager_name";

fn request_row(row: &PgRow) -> Result<Request, StoreError> {
    let kind: String = column(row, "kind")?;
    let status: String = column(row, "status")?;
    let evaluation: Option<Json<Vec<Entry>>> = column(row, "evaluation")?;
    Ok(Request {
        id: column(row, "id")?,
        kind: RequestType::parse(&kind).ok_or_else(|| unknown("request type", &kind))?,
        status: Status::parse(&status).ok_or_else(|| unknown("request status", &status))?,
        created_at: column(row, "created_at")?,
        applicant_id: column(row, "applicant_id")?,
        applicant_name: column::<Option<String>>(row, "applicant_name")?.unwrap_or_default(),
        manager_id: column(row, "manager_id")?,
        manager_name: column(row, "manager_name")?,
        description: column(row, "description")?,
        nickname: column(row, "nickname")?,
        release_id: column(row, "release_id")?,
        expected_date: column(row, "expected_date")?,
        grade: column(row, "grade")?,
        evaluation: evaluation.map(|Json(entries)| entries),
        attempts: column(row, "attempts")?,
    })
}

fn lock_clause(lock: bool) -> &'static str {
    if lock { " FOR UPDATE" } else { "" }
}

// ---- users

async fn insert_user(conn: &mut PgConnection, user: &NewUser) -> Result<User, StoreError> {
    let sql = format!(
        "INSERT INTO label.users (name, email, password_hash, role) VALUES ($1, $2, $3, $4) \
         RETURNING {USER_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&user.name)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .fetch_one(conn)
        .await
        .map_err(sql_error)?;
    user_row(&row)
}

async fn user(conn: &mut PgConnection, id: UserId) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM label.users WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(sql_error)?;
    row.as_ref().map(user_row).transpose()
}

async fn credentials(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<Credentials>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, password_hash FROM label.users WHERE lower(email) = lower($1)"
    );
    let row = sqlx::query(&sql)
        .bind(email)
        .fetch_optional(conn)
        .await
        .map_err(sql_error)?;
    row.map(|row| {
        Ok(Credentials {
            user: user_row(&row)?,
            password_hash: column(&row, "password_hash")?,
        })
    })
    .transpose()
}

async fn users(conn: &mut PgConnection) -> Result<Vec<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM label.users ORDER BY created_at, id");
    let rows = sqlx::query(&sql).fetch_all(conn).await.map_err(sql_error)?;
    rows.iter().map(user_row).collect()
}

async fn set_role(conn: &mut PgConnection, id: UserId, role: Role) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE label.users SET role = $2 WHERE id = $1")
        .bind(id)
        .bind(role.as_str())
        .execute(conn)
        .await
        .map_err(sql_error)?;
    if done.rows_affected() == 0 {
        return Err(missing("user", id.get()));
    }
    Ok(())
}

async fn admin_exists(conn: &mut PgConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM label.users WHERE role = 'admin')")
        .fetch_one(conn)
        .await
        .map_err(sql_error)
}

// ---- managers

async fn insert_manager(conn: &mut PgConnection, user_id: UserId) -> Result<ManagerId, StoreError> {
    sqlx::query_scalar("INSERT INTO label.managers (user_id) VALUES ($1) RETURNING id")
        .bind(user_id)
        .fetch_one(conn)
        .await
        .map_err(sql_error)
}

async fn manager_where(
    conn: &mut PgConnection,
    condition: &str,
    id: i64,
) -> Result<Option<Manager>, StoreError> {
    let sql = format!("{MANAGER_SELECT} WHERE {condition} = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(sql_error)?;
    row.as_ref().map(manager_row).transpose()
}

async fn managers(conn: &mut PgConnection) -> Result<Vec<Manager>, StoreError> {
    let sql = format!("{MANAGER_SELECT} ORDER BY m.created_at, m.id");
    let rows = sqlx::query(&sql).fetch_all(conn).await.map_err(sql_error)?;
    rows.iter().map(manager_row).collect()
}

async fn least_loaded_manager(conn: &mut PgConnection) -> Result<Option<ManagerId>, StoreError> {
    sqlx::query_scalar(
        "SELECT m.id FROM label.managers m \
         LEFT JOIN label.requests r ON r.manager_id = m.id AND r.status <> 'Closed' \
         GROUP BY m.id \
         ORDER BY count(r.id), random() \
         LIMIT 1",
    )
    .fetch_optional(conn)
    .await
    .map_err(sql_error)
}

// ---- artists

async fn insert_artist(conn: &mut PgConnection, artist: &NewArtist) -> Result<Artist, StoreError> {
    let sql = format!(
        "INSERT INTO label.artists (user_id, nickname, contract_due, manager_id) \
         VALUES ($1, $2, $3, $4) RETURNING {ARTIST_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(artist.user_id)
        .bind(&artist.nickname)
        .bind(artist.contract_due)
        .bind(artist.manager_id)
        .fetch_one(conn)
        .await
        .map_err(sql_error)?;
    artist_row(&row)
}

async fn artist_where(
    conn: &mut PgConnection,
    condition: &str,
    id: i64,
) -> Result<Option<Artist>, StoreError> {
    let sql = format!("SELECT {ARTIST_COLUMNS} FROM label.artists WHERE {condition} = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(sql_error)?;
    row.as_ref().map(artist_row).transpose()
}

async fn nickname_taken(conn: &mut PgConnection, nickname: &str) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM label.artists WHERE lower(nickname) = lower($1))",
    )
    .bind(nickname)
    .fetch_one(conn)
    .await
    .map_err(sql_error)
}

async fn existing_artists(
    conn: &mut PgConnection,
    ids: &[ArtistId],
) -> Result<Vec<ArtistId>, StoreError> {
    sqlx::query_scalar("SELECT id FROM label.artists WHERE id = ANY($1) ORDER BY id")
        .bind(ids)
        .fetch_all(conn)
        .await
        .map_err(sql_error)
}

// ---- releases and tracks

async fn insert_release(
    conn: &mut PgConnection,
    owner: ArtistId,
    created_on: NaiveDate,
    release: &NewRelease,
) -> Result<Release, StoreError> {
    let sql = format!(
        "INSERT INTO label.releases (title, created_on, artist_id) VALUES ($1, $2, $3) \
         RETURNING {RELEASE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&release.title)
        .bind(created_on)
        .bind(owner)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql_error)?;
    let mut stored = release_row(&row)?;

    let count = release.tracks.len();
    let mut positions = Vec::with_capacity(count);
    let mut titles = Vec::with_capacity(count);
    let mut durations = Vec::with_capacity(count);
    let mut genres = Vec::with_capacity(count);
    let mut kinds = Vec::with_capacity(count);
    for (index, track) in release.tracks.iter().enumerate() {
        let position = i32::try_from(index + 1)
            .map_err(|_| StoreError::Rejected("too many tracks".to_owned()))?;
        positions.push(position);
        titles.push(track.title.as_str());
        durations.push(track.duration_seconds);
        genres.push(track.genre.as_str());
        kinds.push(track.kind.as_str());
    }
    let rows = sqlx::query(
        "INSERT INTO label.tracks (release_id, position, title, duration_seconds, genre, kind) \
         SELECT $1, t.position, t.title, t.duration_seconds, t.genre, t.kind \
         FROM UNNEST($2::int4[], $3::text[], $4::int4[], $5::text[], $6::text[]) \
              AS t(position, title, duration_seconds, genre, kind) \
         RETURNING id, position",
    )
    .bind(stored.id)
    .bind(&positions)
    .bind(&titles)
    .bind(&durations)
    .bind(&genres)
    .bind(&kinds)
    .fetch_all(&mut *conn)
    .await
    .map_err(sql_error)?;
    let mut ids_by_position = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: TrackId = column(row, "id")?;
        let position: i32 = column(row, "position")?;
        ids_by_position.insert(position, id);
    }

    let mut link_tracks = Vec::new();
    let mut link_artists = Vec::new();
    for (position, track) in positions.iter().zip(&release.tracks) {
        let id = *ids_by_position
            .get(position)
            .ok_or_else(|| StoreError::Rejected(format!("track {position} was not stored")))?;
        let mut artist_ids = track.artist_ids.clone();
        artist_ids.sort_unstable();
        artist_ids.dedup();
        link_tracks.extend(std::iter::repeat_n(id, artist_ids.len()));
        link_artists.extend_from_slice(&artist_ids);
        stored.tracks.push(Track {
            id,
            release_id: stored.id,
            title: track.title.clone(),
            duration_seconds: track.duration_seconds,
            genre: track.genre.clone(),
            kind: track.kind.clone(),
            artist_ids,
        });
    }
    if !link_tracks.is_empty() {
        sqlx::query(
            "INSERT INTO label.track_artists (track_id, artist_id) \
             SELECT * FROM UNNEST($1::int8[], $2::int8[])",
        )
        .bind(&link_tracks)
        .bind(&link_artists)
        .execute(&mut *conn)
        .await
        .map_err(sql_error)?;
    }
    Ok(stored)
}

/// Loads the tracks of `releases` (in position order) into them.
async fn attach_tracks(
    conn: &mut PgConnection,
    releases: &mut [Release],
) -> Result<(), StoreError> {
    if releases.is_empty() {
        return Ok(());
    }
    let ids: Vec<ReleaseId> = releases.iter().map(|r| r.id).collect();
    let sql =
        format!("{TRACK_SELECT} WHERE t.release_id = ANY($1) ORDER BY t.release_id, t.position");
    let rows = sqlx::query(&sql)
        .bind(&ids)
        .fetch_all(conn)
        .await
        .map_err(sql_error)?;
    let index: HashMap<ReleaseId, usize> = releases
        .iter()
        .enumerate()
        .map(|(at, release)| (release.id, at))
        .collect();
    for row in &rows {
        let track = track_row(row)?;
        if let Some(&at) = index.get(&track.release_id) {
            releases[at].tracks.push(track);
        }
    }
    Ok(())
}

async fn release(
    conn: &mut PgConnection,
    id: ReleaseId,
    lock: bool,
) -> Result<Option<Release>, StoreError> {
    let sql = format!(
        "SELECT {RELEASE_COLUMNS} FROM label.releases WHERE id = $1{}",
        lock_clause(lock)
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(sql_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut releases = [release_row(&row)?];
    attach_tracks(conn, &mut releases).await?;
    let [release] = releases;
    Ok(Some(release))
}

async fn releases_of(
    conn: &mut PgConnection,
    artists: &[ArtistId],
) -> Result<Vec<Release>, StoreError> {
    let sql = format!(
        "SELECT {RELEASE_COLUMNS} FROM label.releases WHERE artist_id = ANY($1) \
         ORDER BY created_on DESC, id DESC"
    );
    let rows = sqlx::query(&sql)
        .bind(artists)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql_error)?;
    let mut releases = rows
        .iter()
        .map(release_row)
        .collect::<Result<Vec<_>, _>>()?;
    attach_tracks(conn, &mut releases).await?;
    Ok(releases)
}

async fn set_release_status(
    conn: &mut PgConnection,
    id: ReleaseId,
    status: ReleaseStatus,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE label.releases SET status = $2 WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .execute(conn)
        .await
        .map_err(sql_error)?;
    if done.rows_affected() == 0 {
        return Err(missing("release", id.get()));
    }
    Ok(())
}

async fn track(conn: &mut PgConnection, id: TrackId) -> Result<Option<Track>, StoreError> {
    let sql = format!("{TRACK_SELECT} WHERE t.id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(sql_error)?;
    row.as_ref().map(track_row).transpose()
}

// ---- publications

async fn insert_publication(
    conn: &mut PgConnection,
    release_id: ReleaseId,
    scheduled_on: NaiveDate,
    manager_id: ManagerId,
) -> Result<Publication, StoreError> {
    let sql = format!(
        "INSERT INTO label.publications AS p (release_id, scheduled_on, manager_id) \
         VALUES ($1, $2, $3) RETURNING {PUBLICATION_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(release_id)
        .bind(scheduled_on)
        .bind(manager_id)
        .fetch_one(conn)
        .await
        .map_err(sql_error)?;
    publication_row(&row)
}

async fn publications_of(
    conn: &mut PgConnection,
    artists: &[ArtistId],
) -> Result<Vec<Publication>, StoreError> {
    let sql = format!(
        "SELECT {PUBLICATION_COLUMNS} FROM label.publications p \
         JOIN label.releases r ON r.id = p.release_id \
         WHERE r.artist_id = ANY($1) ORDER BY p.scheduled_on DESC, p.id DESC"
    );
    let rows = sqlx::query(&sql)
        .bind(artists)
        .fetch_all(conn)
        .await
        .map_err(sql_error)?;
    rows.iter().map(publication_row).collect()
}

async fn publication_dates(
    conn: &mut PgConnection,
    artist: ArtistId,
) -> Result<Vec<NaiveDate>, StoreError> {
    sqlx::query_scalar(
        "SELECT p.scheduled_on FROM label.publications p \
         JOIN label.releases r ON r.id = p.release_id \
         WHERE r.artist_id = $1 ORDER BY p.scheduled_on",
    )
    .bind(artist)
    .fetch_all(conn)
    .await
    .map_err(sql_error)
}

async fn publications_on(conn: &mut PgConnection, day: NaiveDate) -> Result<u32, StoreError> {
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM label.publications WHERE scheduled_on = $1")
            .bind(day)
            .fetch_one(conn)
            .await
            .map_err(sql_error)?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Opens a savepoint: a statement that fails after it spoils only what follows it, up to
/// [`settle`], not the whole transaction (PostgreSQL refuses every statement of a
/// transaction after a failed one).
async fn savepoint(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SAVEPOINT isolated_read")
        .execute(conn)
        .await
        .map_err(sql_error)?;
    Ok(())
}

/// Ends the savepoint of [`savepoint`]: released after success, rolled back to after a
/// failure, so the transaction goes on either way. Returns `result`.
async fn settle<T>(
    conn: &mut PgConnection,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    let end = if result.is_ok() {
        "RELEASE SAVEPOINT isolated_read"
    } else {
        "ROLLBACK TO SAVEPOINT isolated_read"
    };
    sqlx::query(end).execute(conn).await.map_err(sql_error)?;
    result
}

// ---- requests

async fn insert_request(
    conn: &mut PgConnection,
    request: &NewRequest,
) -> Result<Request, StoreError> {
    let sql = format!(
        "INSERT INTO label.requests \
         (kind, applicant_id, manager_id, nickname, release_id, expected_date, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {REQUEST_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(request.kind.as_str())
        .bind(request.applicant_id)
        .bind(request.manager_id)
        .bind(request.nickname.as_deref())
        .bind(request.release_id)
        .bind(request.expected_date)
        .bind(request.created_at)
        .fetch_one(conn)
        .await
        .map_err(sql_error)?;
    request_row(&row)
}

async fn request(
    conn: &mut PgConnection,
    id: RequestId,
    lock: bool,
) -> Result<Option<Request>, StoreError> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM label.requests WHERE id = $1{}",
        lock_clause(lock)
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(sql_error)?;
    row.as_ref().map(request_row).transpose()
}

async fn requests(
    conn: &mut PgConnection,
    query: &RequestQuery,
) -> Result<Page<Request>, StoreError> {
    // The owner column is one of fixed names (or none, for everyone's), so each owner kind
    // gets its own plan.
    let (owner_condition, owner): (&str, Option<i64>) = match query.owner {
        RequestOwner::Applicant(id) => ("applicant_id = $1", Some(id.get())),
        RequestOwner::Manager(id) => ("manager_id = $1", Some(id.get())),
        RequestOwner::Everyone => ("$1::bigint IS NULL", None),
    };
    let filter = format!(
        "FROM label.requests WHERE {owner_condition} \
         AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR kind = $3)"
    );
    let status = query.status.map(Status::as_str);
    let kind = query.kind.map(RequestType::as_str);
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} {filter} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
    );
    let rows = sqlx::query(&sql)
        .bind(owner)
        .bind(status)
        .bind(kind)
        .bind(i64::from(query.limit))
        .bind(i64::from(query.offset))
        .fetch_all(&mut *conn)
        .await
        .map_err(sql_error)?;
    let items = rows
        .iter()
        .map(request_row)
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {filter}"))
        .bind(owner)
        .bind(status)
        .bind(kind)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql_error)?;
    Ok(Page { items, total })
}

async fn has_open_request(
    conn: &mut PgConnection,
    kind: RequestType,
    column: &str,
    id: i64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM label.requests \
         WHERE {column} = $1 AND kind = $2 AND status <> 'Closed')"
    );
    sqlx::query_scalar(&sql)
        .bind(id)
        .bind(kind.as_str())
        .fetch_one(conn)
        .await
        .map_err(sql_error)
}

async fn update_request(
    conn: &mut PgConnection,
    id: RequestId,
    expected: Status,
    change: &RequestChange,
) -> Result<Option<Request>, StoreError> {
    let sql = format!(
        "UPDATE label.requests SET \
             status = COALESCE($3, status), \
             manager_id = COALESCE($4, manager_id), \
             description = COALESCE($5, description), \
             evaluation = COALESCE($6, evaluation), \
             grade = COALESCE($7, grade), \
             updated_at = now() \
         WHERE id = $1 AND status = $2 \
         RETURNING {REQUEST_COLUMNS}"
    );
    let evaluation = change.evaluation.as_ref();
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(expected.as_str())
        .bind(change.status.map(Status::as_str))
        .bind(change.manager_id)
        .bind(change.description.as_deref())
        .bind(evaluation.map(|e| Json(&e.entries)))
        .bind(evaluation.map(|e| e.grade))
        .fetch_optional(conn)
        .await
        .map_err(sql_error)?;
    row.as_ref().map(request_row).transpose()
}

async fn count_attempt(conn: &mut PgConnection, id: RequestId) -> Result<i32, StoreError> {
    let attempts: Option<i32> = sqlx::query_scalar(
        "UPDATE label.requests SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(sql_error)?;
    attempts.ok_or_else(|| missing("request", id.get()))
}

// ---- deferred actions

async fn schedule(
    conn: &mut PgConnection,
    table: &OutboxTable,
    topic: &str,
    action: &DeferredAction,
    not_before: DateTime<Utc>,
) -> Result<(), StoreError> {
    let payload = serde_json::to_vec(action)
        .map_err(|err| StoreError::Rejected(format!("deferred action as JSON: {err}")))?;
    let message = NewMessage {
        topic: topic.to_owned(),
        key: Some(action.request_id.to_string().into_bytes()),
        payload,
        headers: Vec::new(),
        not_before: Some(not_before),
    };
    outbox::enqueue(conn, table, &message)
        .await
        .map_err(store_error)?;
    Ok(())
}

// Each method hands the transaction's connection to the matching SQL function above.
impl Users for PgUnitOfWork {
    async fn insert_user(&mut self, user: &NewUser) -> Result<User, StoreError> {
        insert_user(self.tx.conn(), user).await
    }

    async fn user(&mut self, id: UserId) -> Result<Option<User>, StoreError> {
        user(self.tx.conn(), id).await
    }

    async fn credentials(&mut self, email: &str) -> Result<Option<Credentials>, StoreError> {
        credentials(self.tx.conn(), email).await
    }

    async fn users(&mut self) -> Result<Vec<User>, StoreError> {
        users(self.tx.conn()).await
    }

    async fn set_role(&mut self, id: UserId, role: Role) -> Result<(), StoreError> {
        set_role(self.tx.conn(), id, role).await
    }

    async fn admin_exists(&mut self) -> Result<bool, StoreError> {
        admin_exists(self.tx.conn()).await
    }
}

impl Managers for PgUnitOfWork {
    async fn insert_manager(&mut self, user_id: UserId) -> Result<ManagerId, StoreError> {
        insert_manager(self.tx.conn(), user_id).await
    }

    async fn manager(&mut self, id: ManagerId) -> Result<Option<Manager>, StoreError> {
        manager_where(self.tx.conn(), "m.id", id.get()).await
    }

    async fn manager_of_user(&mut self, user_id: UserId) -> Result<Option<Manager>, StoreError> {
        manager_where(self.tx.conn(), "m.user_id", user_id.get()).await
    }

    async fn managers(&mut self) -> Result<Vec<Manager>, StoreError> {
        managers(self.tx.conn()).await
    }

    async fn least_loaded_manager(&mut self) -> Result<Option<ManagerId>, StoreError> {
        least_loaded_manager(self.tx.conn()).await
    }

    async fn insert_artist(&mut self, artist: &NewArtist) -> Result<Artist, StoreError> {
        insert_artist(self.tx.conn(), artist).await
    }

    async fn artist(&mut self, id: ArtistId) -> Result<Option<Artist>, StoreError> {
        artist_where(self.tx.conn(), "id", id.get()).await
    }

    async fn artist_of_user(&mut self, user_id: UserId) -> Result<Option<Artist>, StoreError> {
        artist_where(self.tx.conn(), "user_id", user_id.get()).await
    }

    async fn nickname_taken(&mut self, nickname: &str) -> Result<bool, StoreError> {
        nickname_taken(self.tx.conn(), nickname).await
    }

    async fn existing_artists(&mut self, ids: &[ArtistId]) -> Result<Vec<ArtistId>, StoreError> {
        existing_artists(self.tx.conn(), ids).await
    }
}

impl Catalog for PgUnitOfWork {
    async fn insert_release(
        &mut self,
        owner: ArtistId,
        created_on: NaiveDate,
        release: &NewRelease,
    ) -> Result<Release, StoreError> {
        insert_release(self.tx.conn(), owner, created_on, release).await
    }

    async fn release(&mut self, id: ReleaseId, lock: bool) -> Result<Option<Release>, StoreError> {
        release(self.tx.conn(), id, lock).await
    }

    async fn releases_of(&mut self, artists: &[ArtistId]) -> Result<Vec<Release>, StoreError> {
        releases_of(self.tx.conn(), artists).await
    }

    async fn set_release_status(
        &mut self,
        id: ReleaseId,
        status: ReleaseStatus,
    ) -> Result<(), StoreError> {
        set_release_status(self.tx.conn(), id, status).await
    }

    async fn track(&mut self, id: TrackId) -> Result<Option<Track>, StoreError> {
        track(self.tx.conn(), id).await
    }

    async fn insert_publication(
        &mut self,
        release_id: ReleaseId,
        scheduled_on: NaiveDate,
        manager_id: ManagerId,
    ) -> Result<Publication, StoreError> {
        insert_publication(self.tx.conn(), release_id, scheduled_on, manager_id).await
    }

    async fn publications_of(
        &mut self,
        artists: &[ArtistId],
    ) -> Result<Vec<Publication>, StoreError> {
        publications_of(self.tx.conn(), artists).await
    }

    async fn publication_dates(&mut self, artist: ArtistId) -> Result<Vec<NaiveDate>, StoreError> {
        let conn = self.tx.conn();
        savepoint(conn).await?;
        let result = publication_dates(conn, artist).await;
        settle(conn, result).await
    }

    async fn publications_on(&mut self, day: NaiveDate) -> Result<u32, StoreError> {
        let conn = self.tx.conn();
        savepoint(conn).await?;
        let result = publications_on(conn, day).await;
        settle(conn, result).await
    }
}

impl Requests for PgUnitOfWork {
    async fn insert_request(&mut self, request: &NewRequest) -> Result<Request, StoreError> {
        insert_request(self.tx.conn(), request).await
    }

    async fn request(&mut self, id: RequestId, lock: bool) -> Result<Option<Request>, StoreError> {
        request(self.tx.conn(), id, lock).await
    }

    async fn requests(&mut self, query: &RequestQuery) -> Result<Page<Request>, StoreError> {
        requests(self.tx.conn(), query).await
    }

    async fn has_open_sign_request(&mut self, applicant: UserId) -> Result<bool, StoreError> {
        has_open_request(
            self.tx.conn(),
            RequestType::Sign,
            "applicant_id",
            applicant.get(),
        )
        .await
    }

    async fn has_open_publish_request(&mut self, release: ReleaseId) -> Result<bool, StoreError> {
        has_open_request(
            self.tx.conn(),
            RequestType::Publish,
            "release_id",
            release.get(),
        )
        .await
    }

    async fn update_request(
        &mut self,
        id: RequestId,
        expected: Status,
        change: &RequestChange,
    ) -> Result<Option<Request>, StoreError> {
        update_request(self.tx.conn(), id, expected, change).await
    }

    async fn count_attempt(&mut self, id: RequestId) -> Result<i32, StoreError> {
        count_attempt(self.tx.conn(), id).await
    }

    async fn schedule(
        &mut self,
        kind: RequestType,
        action: &DeferredAction,
        not_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        schedule(
            self.tx.conn(),
            &self.outbox,
            self.topics.of(kind),
            action,
            not_before,
        )
        .await
    }
}

impl UnitOfWork for PgUnitOfWork {
    async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(store_error)
    }
}
