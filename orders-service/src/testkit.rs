//! The test stack of the orders-service (feature `testkit`, tests only): a fresh database
//! and a private broker per test, and the real `orders-service` binary started as a child
//! process against them. Used by this crate's tests and orders-tools'.
#![allow(clippy::missing_panics_doc)]

use std::time::Duration;

use platform::kafka::{KafkaProducer, KafkaSettings, OutgoingRecord};
use platform::testkit::{
    HttpAnswer, ServiceProcess as Process, TestBroker, TestDatabase, eventually, free_port,
    http_get, http_request, sibling_binary,
};
use sqlx::PgPool;

pub use platform::testkit::with_database;

pub const ORDERS: &str = "orders";
pub const DLQ: &str = "orders.dlq";
/// The canonical order of the contract (`model.json`).
pub const MODEL: &[u8] = include_bytes!("../tests/fixtures/model.json");

/// A broker and a database of one test's own.
#[derive(Debug)]
pub struct Stack {
    pub broker: TestBroker,
    pub database: String,
    pub database_url: String,
    /// Drops the database when the stack goes.
    test_database: TestDatabase,
}

impl Stack {
    pub async fn new() -> Self {
        let broker = TestBroker::start().await;
        broker.create_topics(&[(ORDERS, 3), (DLQ, 1)]).await;
        let database = TestDatabase::create("orders_test").await;
        Self {
            broker,
            database: database.name.clone(),
            database_url: database.url.clone(),
            test_database: database,
        }
    }

    pub fn kafka(&self) -> KafkaSettings {
        self.broker.settings()
    }

    /// Publishes one record to the orders topic.
    pub async fn publish(&self, key: Option<&str>, payload: &[u8]) {
        let producer = KafkaProducer::new(&self.kafka(), "test").expect("producer");
        producer
            .send(&OutgoingRecord {
                topic: ORDERS.to_owned(),
                key: key.map(|k| k.as_bytes().to_vec()),
                payload: Some(payload.to_vec()),
                headers: Vec::new(),
            })
            .await
            .expect("publish");
    }

    /// A pool on the test database.
    pub async fn pool(&self) -> PgPool {
        self.test_database.pool().await
    }

    /// Orders stored so far (0 while the schema does not exist yet).
    pub async fn stored_count(&self) -> i64 {
        let pool = self.pool().await;
        let count = sqlx::query_scalar("SELECT count(*) FROM orders.orders")
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        pool.close().await;
        count
    }
}

/// The service binary running against a stack: the testkit's process with the orders
/// environment, and the requests the tests make. Killed when dropped.
#[derive(Debug)]
pub struct ServiceProcess(Process);

impl std::ops::Deref for ServiceProcess {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.0
    }
}

impl std::ops::DerefMut for ServiceProcess {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.0
    }
}

impl ServiceProcess {
    /// Starts the service and waits until `/readyz` answers 200.
    pub async fn start(stack: &Stack, extra_env: &[(&str, &str)]) -> Self {
        let process = Self::spawn(stack, extra_env);
        process.wait_ready().await;
        process
    }

    /// Starts the service without waiting for readiness.
    pub fn spawn(stack: &Stack, extra_env: &[(&str, &str)]) -> Self {
        Self::spawn_with_url(stack, &stack.database_url, extra_env)
    }

    /// Starts the service with another database URL (another role, say).
    pub fn spawn_with_url(stack: &Stack, database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let brokers = stack.broker.brokers();
        let env = [
            ("APP_ENV", "test"),
            ("ORDERS__DATABASE__URL", database_url),
            ("ORDERS__KAFKA__BROKERS", brokers.as_str()),
            ("ORDERS__KAFKA__SESSION_TIMEOUT", "6s"),
            ("ORDERS__KAFKA__HEARTBEAT_INTERVAL", "500ms"),
            ("ORDERS__KAFKA__DELIVERY_TIMEOUT", "10s"),
            ("ORDERS__HTTP__BIND", bind.as_str()),
            ("ORDERS__TELEMETRY__LOG_FORMAT", "json"),
            ("ORDERS__SHUTDOWN__DEADLINE", "10s"),
        ];
        Self(Process::spawn(
            &sibling_binary("orders-service"),
            "orders-service",
            env.iter().chain(extra_env).copied(),
            port,
        ))
    }

    pub async fn wait_ready(&self) {
        self.0.wait_ready(Duration::from_secs(60)).await;
    }

    pub async fn get(&self, path: &str) -> HttpAnswer {
        http_get(self.address, path, &[])
            .await
            .expect("the service answers")
    }

    /// A request without a body, with any method.
    pub async fn request(&self, method: &str, path: &str) -> HttpAnswer {
        http_request(self.address, method, path, &[])
            .await
            .expect("the service answers")
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
        http_get(self.address, path, headers)
            .await
            .expect("the service answers")
    }

    /// Waits until `GET path` answers `status`.
    pub async fn wait_status(&self, path: &str, status: u16, timeout: Duration) -> HttpAnswer {
        let address = self.address;
        eventually(
            &format!("{path} answering {status}"),
            timeout,
            || async move {
                http_get(address, path, &[])
                    .await
                    .filter(|a| a.status == status)
            },
        )
        .await
    }
}
