//! The process-wide Prometheus recorder behind the `metrics` facade, and the names and
//! descriptions of the metrics this crate records itself.
//!
//! It must not install a second recorder (one per process, whoever asks first) nor serve
//! HTTP: `/metrics` is served by [`crate::http::metrics_router`] from the handle kept here.

use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter of HTTP requests answered, labelled `method`, `route` and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// Histogram of HTTP request durations in seconds, labelled `method`, `route` and `status`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";

/// Bucket bounds, in seconds, of every histogram whose name ends in `_seconds`: from half a
/// millisecond (a cache hit) to 30 s (beyond the shutdown deadline), roughly ×2.5 apart.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histogram samples are folded into buckets when nobody scrapes, which bounds
/// the memory they take.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The handle of the one installed recorder; a mutex rather than a `OnceLock` because
/// installing can fail and must then be retried by the next caller.
static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// The installed Prometheus recorder: record with the `metrics` macros anywhere, render here.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the global `metrics` recorder the first time it is called in the process,
    /// with histogram buckets for names ending in `_seconds`; later calls return the same
    /// recorder's handle.
    ///
    /// # Errors
    ///
    /// When another `metrics` recorder was installed by other code.
    pub fn install() -> anyhow::Result<Self> {
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = installed.as_ref() {
            return Ok(Self {
                handle: handle.clone(),
            });
        }
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .context("invalid histogram buckets")?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|error| anyhow::anyhow!("cannot install the metrics recorder: {error}"))?;
        *installed = Some(handle.clone());
        describe_http_metrics();
        // Without the exporter's own HTTP listener nothing else runs upkeep; a plain
        // thread works whether or not the caller is inside a Tokio runtime. Scrapes also
        // fold samples in, so a missing thread only costs memory between scrapes.
        let upkeep = handle.clone();
        let spawned = thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the metrics upkeep thread");
        }
        Ok(Self { handle })
    }

    /// All metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// The underlying exporter handle, for callers that need more than [`Metrics::render`].
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }
}

/// Describes the HTTP metrics that [`crate::http::with_standard_layers`] records, so they
/// render with help text and a unit. [`Metrics::install`] calls it; calling it again is
/// harmless.
pub fn describe_http_metrics() {
    metrics::describe_counter!(
        HTTP_REQUESTS_TOTAL,
        Unit::Count,
        "HTTP requests answered, by method, route template and status."
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route template and status."
    );
}
