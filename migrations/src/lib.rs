//! The SQL migrations of both services, embedded at build time.
//!
//! Each service owns one PostgreSQL schema (`orders`, `label`). Its migrator's bookkeeping
//! table (`_sqlx_migrations`) lives in that schema too, so the two services never share
//! migration history. This crate only applies migrations; it runs no other SQL.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

/// Migrations of the orders-service, in schema `orders`.
pub static ORDERS: Migrator = sqlx::migrate!("./orders");

/// Migrations of the label-service, in schema `label`.
pub static LABEL: Migrator = sqlx::migrate!("./label");

/// Which service's schema to migrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Orders,
    Label,
}

impl Schema {
    /// The PostgreSQL schema name.
    pub fn name(self) -> &'static str {
        match self {
            Schema::Orders => "orders",
            Schema::Label => "label",
        }
    }

    fn create_statement(self) -> &'static str {
        match self {
            Schema::Orders => "CREATE SCHEMA IF NOT EXISTS orders",
            Schema::Label => "CREATE SCHEMA IF NOT EXISTS label",
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Schema::Orders => &ORDERS,
            Schema::Label => &LABEL,
        }
    }
}

/// Error while applying migrations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not prepare schema {schema}: {source}")]
    Prepare {
        schema: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating schema {schema} failed: {source}")]
    Migrate {
        schema: &'static str,
        #[source]
        source: MigrateError,
    },
}

/// Creates the schema when missing and applies every pending migration of `schema`.
///
/// It runs on a one-connection pool of its own whose `search_path` is the schema, so the
/// migrator's bookkeeping table lands there whatever `pool`'s settings are. Safe to run from
/// several instances at once: sqlx takes an advisory lock for the run.
pub async fn apply(pool: &PgPool, schema: Schema) -> Result<(), Error> {
    let name = schema.name();
    let prepare = |source| Error::Prepare {
        schema: name,
        source,
    };
    let options = (*pool.connect_options())
        .clone()
        .options([("search_path", name)]);
    let migration_pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(prepare)?;
    let result = async {
        sqlx::raw_sql(schema.create_statement())
            .execute(&migration_pool)
            .await
            .map_err(prepare)?;
        schema
            .migrator()
            .run(&migration_pool)
            .await
            .map_err(|source| Error::Migrate {
                schema: name,
                source,
            })
    }
    .await;
    migration_pool.close().await;
    result?;
    tracing::info!(schema = name, "migrations applied");
    Ok(())
}

impl Error {
    /// Whether the database was merely unreachable, so that trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        let source = match self {
            Error::Prepare { source, .. } => source,
            Error::Migrate {
                source: MigrateError::Execute(source),
                ..
            } => source,
            Error::Migrate { .. } => return false,
        };
        platform::db::classify_ref(source).is_transient()
    }
}

/// Applies the migrations of `schema` as soon as the database answers: transient failures
/// (database down, connection lost) are retried with backoff until `stop` is cancelled;
/// any other failure is returned. Returns `Ok(false)` when stopped before it could apply.
pub async fn apply_with_retry(
    pool: &PgPool,
    schema: Schema,
    stop: &CancellationToken,
) -> Result<bool, Error> {
    let what = format!("migrating schema {}", schema.name());
    match platform::shutdown::retry_until_stopped(&what, stop, Error::is_transient, || {
        apply(pool, schema)
    })
    .await
    {
        None => Ok(false),
        Some(result) => result.map(|()| true),
    }
}
