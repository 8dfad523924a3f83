//! A fresh PostgreSQL database per test, with the label schema migrated, so that no test
//! relies on what another left behind. Used by the adapter tests; the database is dropped
//! (best effort) when the test ends.

use label_service::adapters::passwords::Argon2Hasher;
use label_service::adapters::postgres::{DeferredTopics, PgStore};
use label_service::app::{Label, Rules};
use platform::db::DatabaseSettings;
use platform::testkit::TestDatabase;
use secrecy::SecretString;
use sqlx::PgPool;

pub use platform::testkit::{server_url, with_database};

/// A database of one test's own.
pub struct TestDb {
    /// A pool on it, as the service builds one (schema `label` first on the search path).
    pub pool: PgPool,
    /// The database's name.
    pub name: String,
    /// Drops the database when the test is done with it.
    _database: TestDatabase,
}

impl TestDb {
    /// Creates a uniquely named database and applies the label migrations to it.
    pub async fn new() -> Self {
        let database = TestDatabase::create("label_pg").await;
        let settings = DatabaseSettings {
            url: SecretString::from(database.url.clone()),
            ..DatabaseSettings::default()
        };
        let pool = settings.lazy_pool("test", "label").expect("a pool");
        migrations::apply(&pool, migrations::Schema::Label)
            .await
            .expect("migrate the label schema");
        Self {
            pool,
            name: database.name.clone(),
            _database: database,
        }
    }

    /// The label use cases over this database, as `main` builds them (topics `test.*`).
    pub fn label(&self) -> Label<PgStore, Argon2Hasher> {
        let store = PgStore::new(
            self.pool.clone(),
            DeferredTopics {
                sign: "test.sign-requests".to_owned(),
                publish: "test.publish-requests".to_owned(),
            },
        )
        .expect("a store");
        Label::new(store, Argon2Hasher::new(), Rules::default())
    }
}
