//! Test support, behind the `testkit` feature: a private Kafka-protocol broker per test
//! (Tansu, installed as `nisshi`), a fresh PostgreSQL database per test, unique names, a
//! reader that drains a topic, a binary run as a child process ([`ServiceProcess`]) and a
//! headless Chromium ([`Browser`]).
//!
//! Only for tests: it panics with a clear message when its tools are missing.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use sqlx::Executor as _;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::kafka::{Header, KafkaSettings, TopicSpec, ensure_topics, headers_to_vec};

mod browser;
mod process;

pub use browser::{Browser, CHROMIUM, Chromedriver, screenshot, screenshot_dir};
pub use process::{ServiceProcess, log_file, sibling_binary};

/// The broker version the project is built and tested against.
pub const BROKER_VERSION: &str = "0.7.0-pre.2";

/// Finds the broker binary: `$NISSHI_BIN`, then `nisshi` on `PATH`, then
/// `$NISSHI_ROOT/bin/nisshi`, then `~/.local/opt/nisshi/bin/nisshi`.
pub fn broker_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NISSHI_BIN") {
        return PathBuf::from(path);
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("nisshi"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(root) = std::env::var_os("NISSHI_ROOT") {
        candidates.push(PathBuf::from(root).join("bin/nisshi"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".local/opt/nisshi/bin/nisshi"));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the test broker `nisshi` {BROKER_VERSION} is not installed; run `cargo xtask install-broker` \
                 (or set NISSHI_BIN to its path)"
            )
        })
}

/// A port on 127.0.0.1 that was free a moment ago (the OS picked it; a race is possible
/// but rare).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// The workspace's root directory (where `target/` is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the platform crate lives in the workspace")
        .to_path_buf()
}

/// A private broker on 127.0.0.1 with in-memory storage, killed when dropped.
#[derive(Debug)]
pub struct TestBroker {
    child: Option<Child>,
    port: u16,
}

impl TestBroker {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub async fn start() -> Self {
        let mut broker = Self {
            child: None,
            port: free_port(),
        };
        broker.spawn().await;
        broker
    }

    async fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(broker_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the test broker");
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the test broker did not listen on {addr} within 10 s");
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Settings for clients of this broker, with the short group timeouts tests need.
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers(),
            session_timeout: Duration::from_secs(6),
            heartbeat_interval: Duration::from_millis(500),
            delivery_timeout: Duration::from_secs(10),
            ..KafkaSettings::default()
        }
    }

    /// Creates topics with explicit partition counts.
    pub async fn create_topics(&self, topics: &[(&str, i32)]) {
        let specs: Vec<TopicSpec> = topics
            .iter()
            .map(|(name, partitions)| TopicSpec::new(*name, *partitions))
            .collect();
        ensure_topics(&self.settings(), &specs)
            .await
            .expect("create topics");
    }

    /// Stops the broker process (SIGSTOP) without killing it: it keeps its topics, offsets
    /// and producer state, and every connection to it hangs, as when a real broker becomes
    /// unreachable. [`resume`](Self::resume) lets it go on.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused broker go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the broker is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} the test broker");
    }

    /// Kills the broker (its in-memory data is lost).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port, empty.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A name no other test uses: `prefix-<uuid>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The PostgreSQL server tests create their databases on: `$DATABASE_URL`, or
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{database}")
}

/// A database of one test's own on [`server_url`], dropped (best effort, with `FORCE`, so
/// open connections do not keep it) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// The database's name: the prefix, `_` and a UUID, an identifier needing no quotes.
    pub name: String,
    /// A URL of the database: [`server_url`] with the name in place of its database.
    pub url: String,
}

impl TestDatabase {
    /// Creates a uniquely named, empty database. `prefix` is lower-case letters, digits
    /// and `_`, at most 30 characters, such as `orders_test`.
    ///
    /// Panics when the server does not answer or refuses to create the database.
    pub async fn create(prefix: &str) -> Self {
        // The name goes into SQL unquoted, and PostgreSQL cuts identifiers at 63 bytes.
        assert!(
            prefix.len() <= 30
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "a test database prefix is at most 30 of a-z, 0-9 and _: {prefix:?}"
        );
        let name = unique(prefix).replace('-', "_");
        let server = server_url();
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server)
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "the test PostgreSQL does not answer at DATABASE_URL (default \
                     postgres://postgres@127.0.0.1:5432/postgres): {err}"
                )
            });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|err| panic!("cannot create the test database {name}: {err}"));
        admin.close().await;
        let url = with_database(&server, &name);
        Self { name, url }
    }

    /// A small pool (two connections) on this database.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .unwrap_or_else(|err| {
                panic!("cannot connect to the test database {}: {err}", self.name)
            })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort: a leftover database only costs disk, and its name is unique. The
        // drop runs on a thread of its own because this may be called inside a runtime,
        // where blocking on another is not allowed; joining it means the database is gone
        // when the value is.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
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
        })
        .join();
    }
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value (empty for a tombstone; see `tombstone`).
    pub payload: Vec<u8>,
    /// Whether the record had no value at all (not an empty one).
    pub tombstone: bool,
    /// Headers.
    pub headers: Vec<Header>,
}

/// Reads `topic` from the beginning with a fresh group until `count` records arrived or
/// `timeout` passed, whichever comes first; then keeps reading for `settle` more to catch
/// records beyond `count` (duplicates).
pub async fn read_topic(
    settings: &KafkaSettings,
    topic: &str,
    count: usize,
    timeout: Duration,
    settle: Duration,
) -> Vec<ReadRecord> {
    let mut config = settings.client_config("testkit-reader");
    config
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    let consumer: StreamConsumer = config.create().expect("reader consumer");
    consumer.subscribe(&[topic]).expect("subscribe reader");
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut settle_deadline = None;
    loop {
        let until = settle_deadline.unwrap_or(deadline);
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(err)) => panic!("reading {topic}: {err}"),
            Ok(Ok(message)) => {
                records.push(ReadRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    tombstone: message.payload().is_none(),
                    headers: headers_to_vec(message.headers()),
                });
                if records.len() >= count && settle_deadline.is_none() {
                    settle_deadline = Some(tokio::time::Instant::now() + settle);
                }
            }
        }
    }
    records
}

/// An HTTP answer as a test sees it.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The first header of that name (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A GET over a fresh connection, HTTP/1.0 so that the body is never chunked. `None` when
/// nothing answers (connection refused, or no answer within 10 s).
pub async fn http_get(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<HttpAnswer> {
    http_request(address, "GET", path, headers).await
}

/// A request without a body (`method` such as `GET`, `POST`, `DELETE`), as [`http_get`].
pub async fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<HttpAnswer> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nhost: 127.0.0.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(HttpAnswer {
        status,
        headers,
        body,
    })
}

/// Polls `probe` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exists(name: &str) -> bool {
        let admin = sqlx::PgPool::connect(&server_url())
            .await
            .expect("the test PostgreSQL answers");
        let found: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&admin)
                .await
                .expect("query pg_database");
        admin.close().await;
        found
    }

    #[test]
    fn with_database_replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@host:5432/postgres", "t_1"),
            "postgres://u:p@host:5432/t_1"
        );
    }

    #[tokio::test]
    async fn a_test_database_exists_until_dropped_even_with_connections_open() {
        let database = TestDatabase::create("testkit_db").await;
        assert!(
            database.name.starts_with("testkit_db_"),
            "{}",
            database.name
        );
        assert!(database.url.ends_with(&format!("/{}", database.name)));
        assert!(exists(&database.name).await);
        let pool = sqlx::PgPool::connect(&database.url)
            .await
            .expect("connect to the test database");
        let current: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&pool)
            .await
            .expect("current_database");
        assert_eq!(current, database.name);
        let name = database.name.clone();
        // Dropped inside a runtime and while a connection is open: FORCE ends it.
        drop(database);
        assert!(!exists(&name).await, "{name} is dropped");
        pool.close().await;
    }

    #[tokio::test]
    #[should_panic(expected = "a test database prefix")]
    async fn a_prefix_that_needs_quoting_is_refused() {
        TestDatabase::create("Bad-Prefix").await;
    }
}
