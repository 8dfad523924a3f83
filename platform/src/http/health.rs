//! Liveness and readiness endpoints: `/livez` says the process serves HTTP, `/readyz` runs
//! the registered readiness checks concurrently and says whether traffic should come here.
//! A check is either required (the service cannot serve without it: 503) or degradable
//! (a part is down but requests are still answered: 200 with status `degraded`, so load
//! balancers keep the instance while the detail and the `readiness_check` gauge show it).
//!
//! It must not decide what "ready" means for a service (the service registers its checks)
//! and must not let a hanging check hang the probe: each check gets a short timeout.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One condition for readiness, such as "the database answers" or "warm-up is done".
///
/// Closures returning a future implement it too:
///
/// ```
/// # use platform::http::Health;
/// let health = Health::new();
/// health.register("database", || async { Ok::<(), String>(()) });
/// ```
pub trait ReadinessCheck: Send + Sync + 'static {
    /// `Ok` when ready, otherwise a short reason that is shown on `/readyz`, so it must not
    /// carry secrets such as connection strings.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

impl<F, Fut> ReadinessCheck for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self())
    }
}

/// A readiness condition that some component sets, such as "warm-up done" or "consumer
/// running". Clones share the flag. Starts unset.
#[derive(Clone, Debug, Default)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets or clears the flag.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl ReadinessCheck for ReadyFlag {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let ready = self.is_set();
        Box::pin(async move {
            if ready {
                Ok(())
            } else {
                Err("not ready".to_owned())
            }
        })
    }
}

/// Whether a failing check takes the instance out of rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criticality {
    /// Without it no request can be answered: `/readyz` answers 503.
    Required,
    /// Without it a part of the work waits (a consumer, a relay), but requests are still
    /// answered: `/readyz` answers 200 with status `degraded`.
    Degradable,
}

type Checks = Vec<(&'static str, Criticality, Arc<dyn ReadinessCheck>)>;

/// The readiness checks of a process and whether it is shutting down. Clones share them, so
/// components can register checks after the router is built.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    checks: RwLock<Checks>,
    shutting_down: AtomicBool,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.checks().iter().map(|(name, _, _)| *name).collect();
        f.debug_struct("Health")
            .field("checks", &names)
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl Health {
    /// No checks and not shutting down: `/readyz` answers 200 until something is
    /// registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a required readiness check under `name`, replacing a check of the same name.
    pub fn register(&self, name: &'static str, check: impl ReadinessCheck) {
        self.register_as(name, Criticality::Required, check);
    }

    /// Adds a degradable readiness check: while it fails, `/readyz` still answers 200, with
    /// status `degraded` and the reason.
    pub fn register_degradable(&self, name: &'static str, check: impl ReadinessCheck) {
        self.register_as(name, Criticality::Degradable, check);
    }

    fn register_as(
        &self,
        name: &'static str,
        criticality: Criticality,
        check: impl ReadinessCheck,
    ) {
        let mut checks = self
            .inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        checks.retain(|(existing, _, _)| *existing != name);
        checks.push((name, criticality, Arc::new(check)));
        metrics::gauge!("readiness_check", "check" => name).set(0.0);
    }

    /// Makes `/readyz` answer 503 from now on, so load balancers stop sending traffic while
    /// in-flight work drains.
    pub fn set_shutting_down(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
    }

    /// Whether [`Health::set_shutting_down`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Runs every check concurrently, each bounded by [`CHECK_TIMEOUT`], and returns each
    /// check's name with `Ok` or its reason, in registration order.
    pub async fn run_checks(&self) -> Vec<(&'static str, Criticality, Result<(), String>)> {
        let checks = self.checks();
        join_all(checks.iter().map(|(name, criticality, check)| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("timed out after {}s", CHECK_TIMEOUT.as_secs())),
            };
            metrics::gauge!("readiness_check", "check" => *name).set(if outcome.is_ok() {
                1.0
            } else {
                0.0
            });
            (*name, *criticality, outcome)
        }))
        .await
    }

    /// A snapshot, so that no lock is held while checks run.
    fn checks(&self) -> Checks {
        self.inner
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// `GET /livez` answering 200 `{"status":"ok"}`, and `GET /readyz` answering 200
/// `{"status":"ready","checks":{...}}` when every check passes, 200
/// `{"status":"degraded",...}` when only degradable checks fail, otherwise 503
/// `{"status":"not_ready","checks":{...}}`, with each check's `"ok"` or reason.
pub fn health_router(health: Health) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn livez() -> Response {
    no_store((StatusCode::OK, Json(json!({ "status": "ok" }))).into_response())
}

async fn readyz(State(health): State<Health>) -> Response {
    let mut checks = Map::new();
    let mut ready = true;
    let mut degraded = false;
    if health.is_shutting_down() {
        ready = false;
        checks.insert("shutdown".to_owned(), json!("shutting down"));
    } else {
        for (name, criticality, outcome) in health.run_checks().await {
            let shown = match outcome {
                Ok(()) => "ok".to_owned(),
                Err(reason) => {
                    match criticality {
                        Criticality::Required => ready = false,
                        Criticality::Degradable => degraded = true,
                    }
                    tracing::debug!(check = name, %reason, "readiness check failed");
                    reason
                }
            };
            checks.insert(name.to_owned(), Value::String(shown));
        }
    }
    let (status, word) = match (ready, degraded) {
        (true, false) => (StatusCode::OK, "ready"),
        (true, true) => (StatusCode::OK, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
    };
    no_store((status, Json(json!({ "status": word, "checks": checks }))).into_response())
}

/// Probes must see the current state, never a cached one.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
