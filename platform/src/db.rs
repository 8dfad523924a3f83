//! PostgreSQL plumbing: the pool built from settings, the transaction manager, and the one
//! place where database errors are classified.
//!
//! Nothing here knows a table. SQL lives in the services' outbound adapters, as functions
//! taking `&mut PgConnection`; this module only hands them a connection inside a transaction
//! and tells their callers whether a failure is worth retrying.

use std::str::FromStr;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tracing::{Instrument, field};

use crate::http::ReadinessCheck;

/// Connection settings of a service's database.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/database`; a secret, since it may carry a password.
    // Never serialized: the code-defaults layer of the configuration leaves it out, and
    // the struct's default fills it in.
    #[serde(skip_serializing)]
    pub url: SecretString,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long a caller waits for a pooled connection before the attempt counts as a failure.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Server-side limit of one statement, so a stuck query frees its connection.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://postgres@127.0.0.1:5432/postgres"),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

impl DatabaseSettings {
    /// Parses the URL and applies the service's schema (first on the `search_path`) and the
    /// statement timeout as connection options.
    pub fn connect_options(
        &self,
        application_name: &str,
        schema: &str,
    ) -> Result<PgConnectOptions, DbError> {
        if !is_identifier(schema) {
            return Err(DbError::Config(format!(
                "database schema {schema:?} is not a plain lower-case identifier"
            )));
        }
        let options = PgConnectOptions::from_str(self.url.expose_secret())
            // The parser's message may quote the URL, password included: do not pass it on.
            .map_err(|_| DbError::Config("database.url: not a valid PostgreSQL URL".to_owned()))?;
        let statement_timeout = format!("{}ms", self.statement_timeout.as_millis());
        Ok(options.application_name(application_name).options([
            ("search_path", schema),
            ("statement_timeout", statement_timeout.as_str()),
        ]))
    }

    /// A pool that connects on first use, so a service can start (and report itself not
    /// ready) while the database is down.
    pub fn lazy_pool(&self, application_name: &str, schema: &str) -> Result<PgPool, DbError> {
        let options = self.connect_options(application_name, schema)?;
        Ok(PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(options))
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// What went wrong in the database, classified once so that callers can decide between
/// retrying, answering a conflict, and failing.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the row; `constraint` names it when PostgreSQL said.
    #[error("unique constraint {} violated", constraint.as_deref().unwrap_or("?"))]
    UniqueViolation {
        constraint: Option<String>,
        #[source]
        source: sqlx::Error,
    },
    /// A foreign key refused the row.
    #[error("foreign key {} violated", constraint.as_deref().unwrap_or("?"))]
    ForeignKeyViolation {
        constraint: Option<String>,
        #[source]
        source: sqlx::Error,
    },
    /// A CHECK or NOT NULL constraint refused the row.
    #[error("check constraint {} violated", constraint.as_deref().unwrap_or("?"))]
    CheckViolation {
        constraint: Option<String>,
        #[source]
        source: sqlx::Error,
    },
    /// PostgreSQL refused a value (SQLSTATE class 22: a NUL character in text, a date or
    /// number out of range, text too long for its column, ...). Caused by the input, never
    /// by the database's state: callers answer it as bad input, not as a failure.
    #[error("value refused by the database: {message}")]
    DataException {
        /// PostgreSQL's own message, which names the problem and never the row.
        message: String,
        #[source]
        source: sqlx::Error,
    },
    /// Serializable isolation could not order this transaction; running it again may succeed.
    #[error("serialization failure")]
    SerializationFailure(#[source] sqlx::Error),
    /// PostgreSQL broke a deadlock by aborting this transaction; running it again may succeed.
    #[error("deadlock detected")]
    Deadlock(#[source] sqlx::Error),
    /// The database cannot be reached or the connection was lost; worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A statement ran into the statement timeout or was cancelled.
    #[error("database statement timed out")]
    Timeout(#[source] sqlx::Error),
    /// Settings that cannot work; never retried.
    #[error("database configuration: {0}")]
    Config(String),
    /// Anything else: a bug, a missing table, bad SQL. Not retried.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

/// The class of a [`DbError`], for metrics labels and quick matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    UniqueViolation,
    ForeignKeyViolation,
    CheckViolation,
    DataException,
    SerializationFailure,
    Deadlock,
    Unavailable,
    Timeout,
    Config,
    Other,
}

impl DbError {
    /// The class of this error.
    pub fn kind(&self) -> DbErrorKind {
        match self {
            DbError::UniqueViolation { .. } => DbErrorKind::UniqueViolation,
            DbError::ForeignKeyViolation { .. } => DbErrorKind::ForeignKeyViolation,
            DbError::CheckViolation { .. } => DbErrorKind::CheckViolation,
            DbError::DataException { .. } => DbErrorKind::DataException,
            DbError::SerializationFailure(_) => DbErrorKind::SerializationFailure,
            DbError::Deadlock(_) => DbErrorKind::Deadlock,
            DbError::Unavailable(_) => DbErrorKind::Unavailable,
            DbError::Timeout(_) => DbErrorKind::Timeout,
            DbError::Config(_) => DbErrorKind::Config,
            DbError::Other(_) => DbErrorKind::Other,
        }
    }

    /// Whether the same work may succeed if tried again later: the database was unreachable,
    /// too slow, or aborted the transaction to order it against another.
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }

    /// Whether running the whole transaction again at once is the right answer.
    pub fn is_retryable_conflict(&self) -> bool {
        matches!(
            self.kind(),
            DbErrorKind::SerializationFailure | DbErrorKind::Deadlock
        )
    }

    /// The violated constraint's name, for the three constraint classes.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            DbError::UniqueViolation { constraint, .. }
            | DbError::ForeignKeyViolation { constraint, .. }
            | DbError::CheckViolation { constraint, .. } => constraint.as_deref(),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(source: sqlx::Error) -> Self {
        classify(source)
    }
}

/// Classifies a sqlx error by SQLSTATE and transport failure.
pub fn classify(source: sqlx::Error) -> DbError {
    let (constraint, message) = match &source {
        sqlx::Error::Database(db) => (db.constraint().map(str::to_owned), db.message().to_owned()),
        _ => (None, String::new()),
    };
    match classify_ref(&source) {
        DbErrorKind::DataException => DbError::DataException { message, source },
        DbErrorKind::UniqueViolation => DbError::UniqueViolation { constraint, source },
        DbErrorKind::ForeignKeyViolation => DbError::ForeignKeyViolation { constraint, source },
        DbErrorKind::CheckViolation => DbError::CheckViolation { constraint, source },
        DbErrorKind::SerializationFailure => DbError::SerializationFailure(source),
        DbErrorKind::Deadlock => DbError::Deadlock(source),
        DbErrorKind::Unavailable => DbError::Unavailable(source),
        DbErrorKind::Timeout => DbError::Timeout(source),
        DbErrorKind::Config | DbErrorKind::Other => DbError::Other(source),
    }
}

impl DbErrorKind {
    /// See [`DbError::is_transient`].
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            DbErrorKind::Unavailable
                | DbErrorKind::Timeout
                | DbErrorKind::SerializationFailure
                | DbErrorKind::Deadlock
        )
    }
}

/// The class of a borrowed sqlx error, for callers that do not own it.
pub fn classify_ref(source: &sqlx::Error) -> DbErrorKind {
    let code = match source {
        sqlx::Error::Database(db) => db.code(),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => return DbErrorKind::Unavailable,
        _ => return DbErrorKind::Other,
    };
    code.map_or(DbErrorKind::Other, |code| kind_of_sqlstate(&code))
}

fn kind_of_sqlstate(code: &str) -> DbErrorKind {
    match code {
        "23505" => DbErrorKind::UniqueViolation,
        "23503" => DbErrorKind::ForeignKeyViolation,
        "23514" | "23502" => DbErrorKind::CheckViolation,
        "40001" => DbErrorKind::SerializationFailure,
        "40P01" => DbErrorKind::Deadlock,
        "57014" => DbErrorKind::Timeout,
        // Class 22: data exceptions, a value the database cannot take.
        c if c.starts_with("22") => DbErrorKind::DataException,
        // Class 08: connection exceptions; 57P01..57P03: the server is shutting down or
        // starting; 53300: too many connections; 58000/58030: system and I/O errors.
        c if c.starts_with("08") => DbErrorKind::Unavailable,
        "57P01" | "57P02" | "57P03" | "53300" | "58000" | "58030" => DbErrorKind::Unavailable,
        _ => DbErrorKind::Other,
    }
}

/// Errors that may carry a [`DbError`], so the retrying transaction can tell a
/// serialization failure from a business refusal.
pub trait MaybeDbError {
    /// The database error inside, if any.
    fn db_error(&self) -> Option<&DbError>;
}

impl MaybeDbError for DbError {
    fn db_error(&self) -> Option<&DbError> {
        Some(self)
    }
}

impl MaybeDbError for anyhow::Error {
    fn db_error(&self) -> Option<&DbError> {
        self.downcast_ref::<DbError>()
    }
}

/// Transaction isolation levels PostgreSQL offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    #[default]
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    fn statement(self) -> Option<&'static str> {
        match self {
            Isolation::ReadCommitted => None,
            Isolation::RepeatableRead => Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
            Isolation::Serializable => Some("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::RepeatableRead => "repeatable_read",
            Isolation::Serializable => "serializable",
        }
    }
}

/// How often and how fast [`TxManager::transact_retrying`] runs a transaction again after a
/// serialization failure or deadlock.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: usize,
    /// First delay; it doubles, with jitter, up to `max_delay`.
    pub min_delay: Duration,
    /// Largest delay between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(500),
        }
    }
}

/// Runs closures inside PostgreSQL transactions: begin, run, commit on `Ok`, roll back on
/// `Err` or when the future is dropped. Cheap to clone; holds only the pool.
#[derive(Debug, Clone)]
pub struct TxManager {
    pool: PgPool,
}

impl TxManager {
    /// A manager over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for reads that need no transaction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `work` in a READ COMMITTED transaction.
    pub async fn transact<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<DbError>,
    {
        self.transact_with(Isolation::ReadCommitted, work).await
    }

    /// Runs `work` in a transaction of the given isolation level.
    pub async fn transact_with<T, E, F>(&self, isolation: Isolation, work: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<DbError>,
    {
        let span = tracing::info_span!(
            "db.transaction",
            db.system = "postgresql",
            db.isolation = isolation.as_str(),
            outcome = field::Empty,
        );
        let fut = async {
            let mut tx = self.begin_with(isolation).await?;
            match work(tx.conn()).await {
                Ok(value) => {
                    tx.commit().await?;
                    tracing::Span::current().record("outcome", "commit");
                    Ok(value)
                }
                Err(err) => {
                    // An explicit rollback returns the connection clean at once; if even the
                    // rollback fails the connection is discarded by sqlx, which is fine.
                    if let Err(rollback) = tx.rollback().await {
                        tracing::debug!(error = %rollback, "rollback failed");
                    }
                    tracing::Span::current().record("outcome", "rollback");
                    Err(err)
                }
            }
        };
        fut.instrument(span).await
    }

    /// Runs `work` in a transaction and runs it again, after a short jittered backoff, when
    /// it fails with a serialization failure or a deadlock. Any other error is returned at
    /// once. `work` must therefore be safe to run more than once: it sees a fresh
    /// transaction each time.
    pub async fn transact_retrying<T, E, F>(
        &self,
        isolation: Isolation,
        policy: RetryPolicy,
        mut work: F,
    ) -> Result<T, E>
    where
        F: AsyncFnMut(&mut PgConnection) -> Result<T, E>,
        E: From<DbError> + MaybeDbError,
    {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter()
            .build();
        let mut attempt = 0_u32;
        loop {
            attempt += 1;
            let result = self
                .transact_with(isolation, async |conn: &mut PgConnection| work(conn).await)
                .await;
            match result {
                Err(err) if err.db_error().is_some_and(DbError::is_retryable_conflict) => {
                    let Some(delay) = delays.next() else {
                        tracing::warn!(attempt, "transaction conflict, retries exhausted");
                        return Err(err);
                    };
                    metrics::counter!("db_transaction_retries_total").increment(1);
                    tracing::debug!(attempt, ?delay, "transaction conflict, running it again");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    /// Begins a READ COMMITTED transaction held by the caller: the building block of a
    /// service's unit of work. Dropping the returned [`Tx`] rolls it back.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        self.begin_with(Isolation::ReadCommitted).await
    }

    /// Begins a transaction of the given isolation level.
    pub async fn begin_with(&self, isolation: Isolation) -> Result<Tx, DbError> {
        let mut inner = self.pool.begin().await?;
        if let Some(statement) = isolation.statement() {
            sqlx::query(statement).execute(&mut *inner).await?;
        }
        Ok(Tx { inner })
    }
}

/// An open transaction. Commit it explicitly; dropping it rolls it back.
#[derive(Debug)]
pub struct Tx {
    inner: Transaction<'static, Postgres>,
}

impl Tx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.inner
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), DbError> {
        self.inner.commit().await.map_err(DbError::from)
    }

    /// Rolls the transaction back now rather than on drop.
    pub async fn rollback(self) -> Result<(), DbError> {
        self.inner.rollback().await.map_err(DbError::from)
    }
}

/// Readiness check: the database answers `SELECT 1` within the pool's acquire timeout.
#[derive(Debug, Clone)]
pub struct DatabaseReady {
    pool: PgPool,
}

impl DatabaseReady {
    /// A check against `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl ReadinessCheck for DatabaseReady {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(|err| classify(err).to_string())
        })
    }
}

/// Exports the pool's size and idle connections as gauges `db_pool_connections{state}`
/// every `period` until `stop` is cancelled.
pub async fn report_pool_metrics(
    pool: PgPool,
    period: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    crate::shutdown::every(period, stop, || {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(idle));
        metrics::gauge!("db_pool_connections", "state" => "in_use")
            .set(f64::from(size.saturating_sub(idle)));
        metrics::gauge!("db_pool_connections_max")
            .set(f64::from(pool.options().get_max_connections()));
        std::future::ready(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_must_be_an_identifier() {
        let err = DatabaseSettings::default()
            .connect_options("t", "orders; DROP TABLE x")
            .expect_err("must refuse");
        assert!(err.to_string().contains("schema"), "{err}");
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let settings = DatabaseSettings {
            url: SecretString::from("postgres://user:hunter2@[broken"),
            ..DatabaseSettings::default()
        };
        let err = settings
            .connect_options("t", "public")
            .expect_err("must refuse");
        assert!(err.to_string().contains("database.url"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_url() {
        let settings = DatabaseSettings {
            url: SecretString::from("postgres://user:hunter2@host/db"),
            ..DatabaseSettings::default()
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn transport_failures_are_transient() {
        assert!(classify(sqlx::Error::PoolTimedOut).is_transient());
        assert!(classify(sqlx::Error::PoolClosed).is_transient());
        assert!(!classify(sqlx::Error::RowNotFound).is_transient());
    }
}
