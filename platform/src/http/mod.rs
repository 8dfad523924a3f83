//! HTTP plumbing shared by the services' APIs: settings, the problem+json error body,
//! health and metrics endpoints, the OpenAPI document with its viewer, the standard
//! middleware, and serving with graceful shutdown.
//!
//! It must not know any route of a service nor any domain error: services build their
//! routers and map their errors to [`Problem`] themselves.
//!
//! ```no_run
//! # async fn example(shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
//! use axum::Router;
//! use platform::http::{self, Health, HttpSettings};
//! use platform::telemetry::Metrics;
//!
//! let settings = HttpSettings::default();
//! let health = Health::new();
//! let router = Router::new()
//!     .merge(http::health_router(health.clone()))
//!     .merge(http::metrics_router(Metrics::install()?));
//! let router = http::with_standard_layers(router, &settings);
//! let listener = tokio::net::TcpListener::bind(settings.bind).await?;
//! http::serve(listener, router, shutdown).await
//! # }
//! ```

mod docs;
mod health;
mod layers;
mod problem;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::telemetry::Metrics;

pub use self::docs::{DOCS_CSP, api_docs_router};
pub use self::health::{
    CHECK_TIMEOUT, Criticality, Health, ReadinessCheck, ReadyFlag, health_router,
};
pub use self::layers::{REQUEST_ID, UNMATCHED, with_standard_layers};
pub use self::problem::{ABOUT_BLANK, PROBLEM_JSON, Problem};

/// The media type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// HTTP server settings, usually the `http` section of a service's configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// The address to listen on, such as `0.0.0.0:8080` in a container.
    pub bind: SocketAddr,
    /// How long one request may take before it is answered 503, such as `10s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// `GET /metrics` answering `metrics.render()` as `text/plain; version=0.0.4`.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
}

async fn render_metrics(State(metrics): State<Metrics>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROMETHEUS_TEXT),
        )],
        metrics.render(),
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting
/// connections and waits for the requests in flight to finish (bounding that wait is the
/// caller's deadline, see [`crate::shutdown::Shutdown::run_until_stopped`]). Handlers can
/// extract the client's `ConnectInfo<SocketAddr>`.
///
/// # Errors
///
/// When the listener's address cannot be read or the server fails.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener
        .local_addr()
        .context("cannot read the listener's address")?;
    tracing::info!(%address, "HTTP server listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
    .context("HTTP server failed")?;
    tracing::info!(%address, "HTTP server stopped");
    Ok(())
}
