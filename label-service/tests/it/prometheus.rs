//! A real Prometheus (`/usr/bin/prometheus`, the Debian package `prometheus`) scrapes both
//! services: the label-service from this package and the orders-service binary the
//! workspace build puts next to this test binary. The test waits until the scrapes have
//! landed and asks Prometheus' HTTP API for `up` and for a metric of each service, so the
//! `/metrics` endpoints are proved to be in a format Prometheus actually ingests.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use platform::testkit::{ServiceProcess, eventually, free_port, http_get, sibling_binary};
use serde_json::Value;

use crate::stack::{LabelProcess, LabelStack};

const PROMETHEUS: &str = "/usr/bin/prometheus";
/// The bound on every wait for Prometheus: start, first scrapes, a value arriving.
const SCRAPE_WAIT: Duration = Duration::from_secs(60);

/// Starts the orders-service binary of the same build as this test binary against the label
/// stack's broker and database (its tables live in their own `orders` schema) and waits until
/// `/readyz` answers 200. The services do not depend on each other, so Cargo does not build
/// it for this package's tests; a workspace build (`cargo xtask test`, `cargo build --bins`)
/// does.
async fn start_orders(stack: &LabelStack) -> ServiceProcess {
    stack
        .broker
        .create_topics(&[("orders", 3), ("orders.dlq", 1)])
        .await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let brokers = stack.broker.brokers();
    let orders = ServiceProcess::spawn(
        &sibling_binary("orders-service"),
        "orders-service",
        [
            ("APP_ENV", "test"),
            ("ORDERS__DATABASE__URL", stack.database_url.as_str()),
            ("ORDERS__KAFKA__BROKERS", brokers.as_str()),
            ("ORDERS__KAFKA__SESSION_TIMEOUT", "6s"),
            ("ORDERS__KAFKA__HEARTBEAT_INTERVAL", "500ms"),
            ("ORDERS__KAFKA__DELIVERY_TIMEOUT", "10s"),
            ("ORDERS__HTTP__BIND", bind.as_str()),
            ("ORDERS__TELEMETRY__LOG_FORMAT", "json"),
            ("ORDERS__SHUTDOWN__DEADLINE", "10s"),
        ],
        port,
    );
    orders.wait_ready(Duration::from_secs(90)).await;
    orders
}

/// A Prometheus of the test's own, scraping both services every second.
struct Prometheus {
    process: ServiceProcess,
    /// Holds the configuration and the TSDB; removed when the test ends.
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(orders: SocketAddr, label: SocketAddr) -> Self {
        assert!(
            Path::new(PROMETHEUS).is_file(),
            "{PROMETHEUS} is missing: install Prometheus with `apt-get install -y prometheus` \
             (.ci/run installs it)"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  \
                 evaluation_interval: 1s\n\
                 scrape_configs:\n\
                 \x20 - job_name: orders-service\n    static_configs:\n      \
                 - targets: ['{orders}']\n\
                 \x20 - job_name: label-service\n    static_configs:\n      \
                 - targets: ['{label}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let mut command = Command::new(PROMETHEUS);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let process = ServiceProcess::spawn_command(command, "prometheus", port);
        process.wait_ready_at("/-/ready", SCRAPE_WAIT).await;
        Self { process, _dir: dir }
    }

    /// The samples of an instant query: each one's labels and value.
    async fn query(&self, promql: &str) -> Vec<(Value, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let Some(answer) = http_get(self.process.address, &path, &[]).await else {
            return Vec::new();
        };
        assert_eq!(answer.status, 200, "{promql}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        assert_eq!(body["data"]["resultType"], "vector", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .expect("a result array")
            .iter()
            .map(|sample| {
                let value = sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .expect("a sample value");
                (sample["metric"].clone(), value)
            })
            .collect()
    }

    /// Waits (at most [`SCRAPE_WAIT`]) until `promql` has a sample whose value satisfies
    /// `check`; returns that value.
    async fn wait_for(&self, promql: &str, check: impl Fn(f64) -> bool) -> f64 {
        let check = &check;
        eventually(
            &format!(
                "Prometheus to answer {promql} (log: {})",
                self.process.log.display()
            ),
            SCRAPE_WAIT,
            || async move {
                self.query(promql)
                    .await
                    .into_iter()
                    .map(|(_, value)| value)
                    .find(|value| check(*value))
            },
        )
        .await
    }
}

/// Percent-encodes a query-string value.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The value of one unlabelled-or-labelled sample on a service's own `/metrics`, summed over
/// the label sets of that name.
async fn exposed(address: SocketAddr, name: &str) -> Option<f64> {
    let text = http_get(address, "/metrics", &[]).await?.text();
    let values: Vec<f64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_both_services_and_answers_queries_on_their_metrics() {
    let started = Instant::now();
    let stack = LabelStack::new().await;
    let label = LabelProcess::start(&stack, &[]).await;
    let orders_process = start_orders(&stack).await;
    let orders = orders_process.address;

    // Traffic on the label-service that its request counter must show: an admin login.
    label.api.admin().await;

    // What each service exposes itself, before Prometheus is asked.
    let orders_pool_max = exposed(orders, "db_pool_connections_max")
        .await
        .expect("orders-service exposes db_pool_connections_max");
    let orders_cache_entries = exposed(orders, "orders_cache_entries")
        .await
        .expect("orders-service exposes orders_cache_entries");
    let label_pool_max = exposed(label.address, "db_pool_connections_max")
        .await
        .expect("label-service exposes db_pool_connections_max");
    let label_requests = exposed(label.address, "http_requests_total")
        .await
        .expect("label-service exposes http_requests_total");
    assert!(label_requests >= 1.0, "the label-service counted the login");

    let prometheus = Prometheus::start(orders, label.address).await;

    // Both targets are scraped successfully.
    let up_orders = prometheus
        .wait_for(r#"up{job="orders-service"}"#, |v| v == 1.0)
        .await;
    let up_label = prometheus
        .wait_for(r#"up{job="label-service"}"#, |v| v == 1.0)
        .await;

    // A metric of each service arrives, with the value the service exposes.
    let orders_cache = prometheus
        .wait_for(r#"sum(orders_cache_entries{job="orders-service"})"#, |v| {
            v == orders_cache_entries
        })
        .await;
    let orders_pool = prometheus
        .wait_for(
            r#"sum(db_pool_connections_max{job="orders-service"})"#,
            |v| v == orders_pool_max,
        )
        .await;
    let label_pool = prometheus
        .wait_for(
            r#"sum(db_pool_connections_max{job="label-service"})"#,
            |v| v == label_pool_max,
        )
        .await;
    let label_http = prometheus
        .wait_for(r#"sum(http_requests_total{job="label-service"})"#, |v| {
            v >= label_requests
        })
        .await;

    // The samples carry the target's address as `instance`.
    let instances = prometheus.query(r#"up"#).await;
    for (job, address) in [("orders-service", orders), ("label-service", label.address)] {
        assert!(
            instances.iter().any(|(labels, value)| {
                labels["job"] == job && labels["instance"] == address.to_string() && *value == 1.0
            }),
            "up for {job} at {address}: {instances:?}"
        );
    }

    eprintln!(
        "prometheus saw: up{{orders-service}}={up_orders} up{{label-service}}={up_label} \
         orders_cache_entries={orders_cache} db_pool_connections_max{{orders}}={orders_pool} \
         db_pool_connections_max{{label}}={label_pool} http_requests_total{{label}}={label_http} \
         after {:?}",
        started.elapsed()
    );
}
