//! The SQL migrations of both services, embedded at build time.
//!
//! Each service owns one PostgreSQL schema (`orders`, `label`). Its migrator's bookkeeping
//! table (`_sqlx_migrations`) lives in that schema too, so the two services never share
//! migration history. This crate only applies migrations; it runs no other SQL.

use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};

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
/// Safe to run from several instances at once: sqlx takes an advisory lock for the run.
pub async fn apply(pool: &PgPool, schema: Schema) -> Result<(), Error> {
    let name = schema.name();
    let prepare = |source| Error::Prepare {
        schema: name,
        source,
    };
    let mut conn = pool.acquire().await.map_err(prepare)?;
    // The schema name is one of two constants, never input.
    sqlx::raw_sql(sqlx_statement(name).as_str())
        .execute(&mut *conn)
        .await
        .map_err(prepare)?;
    let result = schema.migrator().run(&mut *conn).await;
    // Put the connection back the way the pool configured it, whatever the outcome.
    sqlx::raw_sql("RESET search_path")
        .execute(&mut *conn)
        .await
        .map_err(prepare)?;
    result.map_err(|source| Error::Migrate {
        schema: name,
        source,
    })?;
    tracing::info!(schema = name, "migrations applied");
    Ok(())
}

fn sqlx_statement(name: &str) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {name}; SET search_path TO {name}")
}
