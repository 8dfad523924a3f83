//! The process-level test stack of the label-service (feature `testkit`, tests only): a
//! fresh database and a private broker per test, the real `label-service` binary started
//! against them, and a small JSON client of its API. Used by this crate's tests that need
//! the whole service and by label-cli's.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use platform::testkit::{
    ServiceProcess, TestBroker, TestDatabase, eventually, free_port, http_get, sibling_binary,
    unique, workspace_root,
};
use serde_json::{Value, json};
use sqlx::PgPool;

pub const SIGN: &str = "label.sign-requests";
pub const PUBLISH: &str = "label.publish-requests";
pub const DEAD_LETTER: &str = "label.dead-letter";
pub const ADMIN_EMAIL: &str = "admin@label.test";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const JWT_SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

/// A broker and a database of one test's own.
#[derive(Debug)]
pub struct LabelStack {
    pub broker: TestBroker,
    pub database_url: String,
    /// Drops the database when the stack goes.
    database: TestDatabase,
}

impl LabelStack {
    pub async fn new() -> Self {
        let broker = TestBroker::start().await;
        create_topics(&broker).await;
        let database = TestDatabase::create("label_test").await;
        Self {
            broker,
            database_url: database.url.clone(),
            database,
        }
    }

    /// A pool on the test database.
    pub async fn pool(&self) -> PgPool {
        self.database.pool().await
    }

    /// Runs a scalar query on the test database.
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        let pool = self.pool().await;
        let value = sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&pool)
            .await
            .expect("query");
        pool.close().await;
        value
    }
}

/// The topics the service expects, with the partitions it expects.
pub async fn create_topics(broker: &TestBroker) {
    broker
        .create_topics(&[(SIGN, 3), (PUBLISH, 3), (DEAD_LETTER, 1)])
        .await;
}

/// The environment every test run of the binary gets.
fn base_env(stack: &LabelStack, port: u16) -> Vec<(String, String)> {
    [
        ("APP_ENV", "test".to_owned()),
        ("LABEL__DATABASE__URL", stack.database_url.clone()),
        ("LABEL__KAFKA__BROKERS", stack.broker.brokers()),
        ("LABEL__KAFKA__SESSION_TIMEOUT", "6s".to_owned()),
        ("LABEL__KAFKA__HEARTBEAT_INTERVAL", "500ms".to_owned()),
        ("LABEL__KAFKA__DELIVERY_TIMEOUT", "10s".to_owned()),
        ("LABEL__HTTP__BIND", format!("127.0.0.1:{port}")),
        ("LABEL__TELEMETRY__LOG_FORMAT", "json".to_owned()),
        ("LABEL__SHUTDOWN__DEADLINE", "10s".to_owned()),
        ("LABEL__OUTBOX__POLL_INTERVAL", "100ms".to_owned()),
        ("LABEL__AUTH__JWT_SECRET", JWT_SECRET.to_owned()),
        ("LABEL__ADMIN__EMAIL", ADMIN_EMAIL.to_owned()),
        ("LABEL__ADMIN__PASSWORD", ADMIN_PASSWORD.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The label-service binary running against a stack: the testkit's process (address, log,
/// `terminate`; killed when dropped) and a client of its API.
#[derive(Debug)]
pub struct LabelProcess {
    process: ServiceProcess,
    pub api: Api,
}

impl std::ops::Deref for LabelProcess {
    type Target = ServiceProcess;

    fn deref(&self) -> &ServiceProcess {
        &self.process
    }
}

impl std::ops::DerefMut for LabelProcess {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.process
    }
}

impl LabelProcess {
    /// Starts the service and waits until `/readyz` answers 200.
    pub async fn start(stack: &LabelStack, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let env = base_env(stack, port).into_iter().chain(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let process =
            ServiceProcess::spawn(&sibling_binary("label-service"), "label-service", env, port);
        process.wait_ready(Duration::from_secs(90)).await;
        let api = Api::new(process.address);
        Self { process, api }
    }

    /// The value of a counter (summed over its label sets that contain `labels`) on
    /// `/metrics`; 0 when absent.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let answer = http_get(self.address, "/metrics", &[])
            .await
            .expect("metrics answer");
        answer
            .text()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| {
                line.split(['{', ' '])
                    .next()
                    .is_some_and(|metric| metric == name)
            })
            .filter(|line| labels.iter().all(|label| line.contains(label)))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Runs the binary with these variables only (plus PATH) until it exits; its status and
/// output. For the start-up checks, which fail before anything is contacted.
pub fn run_binary(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut command = Command::new(sibling_binary("label-service"));
    command
        .current_dir(workspace_root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run label-service")
}

/// A JSON client of the service's API.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

/// A user as the tests know them: id and token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: i64,
    pub token: String,
}

impl Api {
    pub fn new(address: SocketAddr) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            base: format!("http://{address}/api/v1"),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(self.client.get(format!("{}{path}", self.base)), token)
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(
            self.client.post(format!("{}{path}", self.base)).json(body),
            token,
        )
        .await
    }

    /// Registers a user and returns their session.
    pub async fn register(&self, name: &str, email: &str, password: &str) -> Session {
        let (status, body) = self
            .post(
                "/auth/register",
                None,
                &json!({"name": name, "email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 201, "register {email}: {body}");
        session(&body)
    }

    /// Logs in and returns the session.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let (status, body) = self
            .post(
                "/auth/login",
                None,
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        session(&body)
    }

    /// Logs in as the configured admin.
    pub async fn admin(&self) -> Session {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Registers a user and has the admin appoint them manager; their session and manager id.
    pub async fn new_manager(&self, admin: &Session, name: &str) -> (Session, i64) {
        let email = format!("{}@label.test", unique(name));
        let user = self.register(name, &email, "manager-password").await;
        let (status, body) = self
            .post(
                "/managers",
                Some(&admin.token),
                &json!({"user_ids": [user.user_id]}),
            )
            .await;
        assert_eq!(status, 201, "appoint {name}: {body}");
        let manager_id = body[0]["id"].as_i64().expect("manager id");
        (user, manager_id)
    }

    /// Waits until `GET path` (as `token`) satisfies `check`; returns the body.
    pub async fn wait_for(
        &self,
        what: &str,
        path: &str,
        token: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let check = &check;
        eventually(what, timeout, || async move {
            let (status, body) = self.get(path, Some(token)).await;
            (status == 200 && check(&body)).then_some(body)
        })
        .await
    }
}

fn session(body: &Value) -> Session {
    Session {
        user_id: body["user"]["id"].as_i64().expect("user id in the answer"),
        token: body["token"]
            .as_str()
            .expect("token in the answer")
            .to_owned(),
    }
}
