//! The test stack of the orders-service: a fresh database and a private broker per test,
//! and the real `orders-service` binary started as a child process against them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use platform::kafka::{KafkaProducer, KafkaSettings, OutgoingRecord};
use platform::testkit::{HttpAnswer, TestBroker, TestDatabase, eventually, http_get, unique};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub use platform::testkit::with_database;

pub const ORDERS: &str = "orders";
pub const DLQ: &str = "orders.dlq";
pub const MODEL: &[u8] = include_bytes!("../fixtures/model.json");

/// A broker and a database of one test's own.
pub struct Stack {
    pub broker: TestBroker,
    pub database: String,
    pub database_url: String,
    /// Drops the database when the stack goes.
    _database: TestDatabase,
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
            _database: database,
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
                payload: payload.to_vec(),
                headers: Vec::new(),
            })
            .await
            .expect("publish");
    }

    /// A pool on the test database.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.database_url)
            .await
            .expect("connect to the test database")
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

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// The service binary running against a stack. Killed when dropped.
pub struct ServiceProcess {
    child: Option<Child>,
    pub address: SocketAddr,
    pub log: PathBuf,
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
        let logs = workspace_root().join("target/test-logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        let log = logs.join(format!("{}.log", unique("orders-service")));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_orders-service"));
        command
            .current_dir(workspace_root())
            .env("APP_ENV", "test")
            .env("ORDERS__DATABASE__URL", database_url)
            .env("ORDERS__KAFKA__BROKERS", stack.broker.brokers())
            .env("ORDERS__KAFKA__SESSION_TIMEOUT", "6s")
            .env("ORDERS__KAFKA__HEARTBEAT_INTERVAL", "500ms")
            .env("ORDERS__KAFKA__DELIVERY_TIMEOUT", "10s")
            .env("ORDERS__HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("ORDERS__TELEMETRY__LOG_FORMAT", "json")
            .env("ORDERS__SHUTDOWN__DEADLINE", "10s")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start orders-service");
        Self {
            child: Some(child),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    pub async fn wait_ready(&self) {
        let address = self.address;
        let log = self.log.clone();
        eventually(
            &format!("orders-service ready (log: {})", log.display()),
            Duration::from_secs(60),
            || async move {
                http_get(address, "/readyz", &[])
                    .await
                    .filter(|a| a.status == 200)
            },
        )
        .await;
    }

    pub async fn get(&self, path: &str) -> HttpAnswer {
        http_get(self.address, path, &[])
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

    /// SIGKILL: no shutdown, no final commit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited with success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().map(|status| status.success()).unwrap_or(false)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
