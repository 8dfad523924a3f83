//! The process skeleton every service shares: telemetry first, then metrics, signals,
//! readiness, the HTTP server with the health and metrics routes, and the orderly stop.
//!
//! It wires platform parts together and nothing else: it never knows a route, a table or a
//! topic of a service.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio_util::sync::CancellationToken;

use sqlx::PgPool;

use crate::db::{DatabaseReady, report_pool_metrics};
use crate::http::{
    Health, HttpSettings, Problem, health_router, metrics_router, serve, with_standard_layers,
};
use crate::kafka::{KafkaProducer, KafkaReady};
use crate::shutdown::{Gate, Shutdown};
use crate::telemetry::{self, Metrics, TelemetryGuard, TelemetrySettings};

/// A running service process. Drop order matters: the telemetry guard goes last, so the
/// final spans of the shutdown are exported too.
#[derive(Debug)]
pub struct Service {
    name: &'static str,
    shutdown: Shutdown,
    health: Health,
    metrics: Metrics,
    telemetry: Option<TelemetryGuard>,
}

impl Service {
    /// Initialises telemetry and metrics and starts listening for SIGINT/SIGTERM.
    pub fn start(name: &'static str, telemetry: &TelemetrySettings) -> anyhow::Result<Self> {
        let guard = telemetry::init(name, telemetry).context("telemetry")?;
        let metrics = Metrics::install().context("metrics")?;
        let shutdown = Shutdown::new();
        shutdown.listen_for_signals();
        tracing::info!(
            service = name,
            version = env!("CARGO_PKG_VERSION"),
            "starting"
        );
        Ok(Self {
            name,
            shutdown,
            health: Health::new(),
            metrics,
            telemetry: Some(guard),
        })
    }

    /// Readiness checks behind `/readyz`; register with [`Health::register`].
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The Prometheus handle behind `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A token cancelled when the service begins to stop.
    pub fn stop_token(&self) -> CancellationToken {
        self.shutdown.token()
    }

    /// Begins the stop, as SIGTERM would.
    pub fn stop(&self) {
        self.shutdown.trigger();
    }

    /// Runs a long-lived task (consumer, relay, ...) until the service stops. Its ending
    /// early is fatal: the process stops and exits with failure.
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.shutdown.spawn(name, task);
    }

    /// Like [`Service::spawn`], but `task` starts only once `gate` opens; when the service
    /// stops first, it never starts.
    pub fn spawn_after<F>(&self, name: &'static str, gate: &Gate, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let gate = gate.clone();
        let stop = self.stop_token();
        self.spawn(name, async move {
            if gate.opened(&stop).await {
                task.await
            } else {
                Ok(())
            }
        });
    }

    /// Makes `/readyz` depend on the database answering, and exports the pool's gauges.
    pub fn watch_database(&self, pool: &PgPool) {
        self.health
            .register("database", DatabaseReady::new(pool.clone()));
        self.spawn(
            "db-pool-metrics",
            report_pool_metrics(pool.clone(), Duration::from_secs(5), self.stop_token()),
        );
    }

    /// Shows on `/readyz` whether a broker answers through `producer`'s connection. A
    /// degradable check: with the broker down the HTTP API still answers (deferred work
    /// waits), so the instance stays in rotation with status `degraded`.
    pub fn watch_kafka(&self, producer: &KafkaProducer) {
        self.health.register_degradable(
            "kafka",
            KafkaReady::new(producer.clone(), Duration::from_secs(2)),
        );
    }

    /// Binds the HTTP listener and serves `routes` plus `/livez`, `/readyz` and `/metrics`,
    /// with the standard layers. Returns the bound address (useful with port 0).
    pub async fn serve_http(
        &self,
        settings: &HttpSettings,
        routes: Router,
    ) -> anyhow::Result<SocketAddr> {
        let router = routes
            .merge(health_router(self.health.clone()))
            .merge(metrics_router(self.metrics.clone()))
            // Where a router set none of its own: problem+json for a known path asked with
            // another method, and for a path no route answers.
            .method_not_allowed_fallback(method_not_allowed)
            .fallback(route_not_found);
        let router = with_standard_layers(router, settings);
        let listener = tokio::net::TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("binding http.bind = {}", settings.bind))?;
        let addr = listener.local_addr()?;
        tracing::info!(service = self.name, %addr, "http listening");
        let stop = self.shutdown.token();
        self.shutdown.spawn("http", serve(listener, router, stop));
        Ok(addr)
    }

    /// Waits for a signal or a fatal task, turns readiness off, lets every task finish
    /// within `deadline`, runs `on_stop` (flush producers, close pools), and flushes
    /// telemetry last.
    pub async fn run_until_stopped<F>(
        mut self,
        deadline: Duration,
        on_stop: F,
    ) -> anyhow::Result<()>
    where
        F: Future<Output = ()>,
    {
        let stop = self.shutdown.token();
        let health = self.health.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            health.set_shutting_down();
        });
        let result = self.shutdown.clone().run_until_stopped(deadline).await;
        on_stop.await;
        match &result {
            Ok(()) => tracing::info!(service = self.name, "stopped"),
            Err(err) => tracing::error!(service = self.name, error = %err, "stopped with failure"),
        }
        drop(self.telemetry.take());
        result.map_err(anyhow::Error::from)
    }
}

/// Unknown paths answer like every other error: `application/problem+json`.
async fn route_not_found(uri: axum::http::Uri) -> Problem {
    Problem::route_not_found(uri.path())
}

async fn method_not_allowed() -> Problem {
    Problem::method_not_allowed()
}

/// The usual stop hook: deliver what the producer still holds (5 s at most), then close
/// the pool so PostgreSQL sees the connections end cleanly.
pub async fn release(producer: KafkaProducer, pool: PgPool) {
    if let Err(err) = producer.flush(Duration::from_secs(5)) {
        tracing::warn!(error = %err, "producer flush failed");
    }
    pool.close().await;
}
