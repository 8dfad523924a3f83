//! A fresh PostgreSQL database per test, with the label schema migrated, so that no test
//! relies on what another left behind. Used by the adapter tests; the database is dropped
//! (best effort) when the test ends.

use platform::db::DatabaseSettings;
use platform::testkit::unique;
use secrecy::SecretString;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

/// The server to create test databases on: `$DATABASE_URL` or the local default.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Replaces the database name of a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{database}")
}

/// A database of one test's own.
pub struct TestDb {
    /// A pool on it, as the service builds one (schema `label` first on the search path).
    pub pool: PgPool,
    /// The database's name.
    pub name: String,
}

impl TestDb {
    /// Creates a uniquely named database and applies the label migrations to it.
    pub async fn new() -> Self {
        let name = unique("label_pg").replace('-', "_");
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server_url())
            .await
            .expect("the test PostgreSQL answers at DATABASE_URL");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        admin.close().await;
        let settings = DatabaseSettings {
            url: SecretString::from(with_database(&server_url(), &name)),
            ..DatabaseSettings::default()
        };
        let pool = settings.lazy_pool("test", "label").expect("a pool");
        migrations::apply(&pool, migrations::Schema::Label)
            .await
            .expect("migrate the label schema");
        Self { pool, name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: a leftover database only costs disk, and its name is unique.
        let name = self.name.clone();
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&server_url())
                    .await
                    .ok()?;
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
                admin.close().await;
                Some(())
            })
        });
        let _ = dropping.join();
    }
}
