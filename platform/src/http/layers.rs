//! The middleware every HTTP API gets: request ids, a span per request continuing the
//! caller's trace, a per-request timeout and request metrics.
//!
//! It must not log at info level per request (the hot path stays quiet; the span and the
//! metrics carry the facts) and must not label metrics with raw paths, whose number is
//! unbounded: the route label is the matched path template.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics::Label;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing::field::Empty;

use super::{HttpSettings, Problem};
use crate::telemetry::metrics::{HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL};
use crate::telemetry::propagation::{self, TRACEPARENT, TRACESTATE};

/// The header carrying the request id, generated when the client sends none.
pub const REQUEST_ID: &str = "x-request-id";

/// The route label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Wraps every route of `router` (and its fallback) in the standard layers, outermost
/// first:
///
/// - `x-request-id`: a UUID is generated when the request has none, and the id is echoed
///   on the response;
/// - an `http.request` span per request with `method`, `route`, `status`, `latency_ms` and
///   `request_id`, whose parent is the W3C `traceparent` of the request when valid;
/// - counter `http_requests_total` and histogram `http_request_duration_seconds`, labelled
///   `method`, `route` and `status`;
/// - a timeout of `settings.request_timeout`, answering 503 problem+json with code
///   `timeout`.
///
/// Apply it to the whole router, after all routes are added: routes added later are not
/// wrapped.
pub fn with_standard_layers(router: Router, settings: &HttpSettings) -> Router {
    router
        .layer(middleware::from_fn_with_state(
            settings.request_timeout,
            enforce_timeout,
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_response(on_response)
                // 5xx answers are already logged where they are made (`Problem::internal`)
                // and counted by status; logging them again here would double every entry.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The matched route template, such as `/order/{id}`, or [`UNMATCHED`].
fn route(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
}

/// The method as a label value; methods outside the standard set share one value so a
/// client cannot create label values at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn make_span(request: &Request<Body>) -> Span {
    let method = method_label(request.method());
    let route = route(request);
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http.request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        method,
        route,
        status = Empty,
        latency_ms = Empty,
        request_id,
        // The OpenTelemetry semantic-convention names, for Jaeger and other OTLP backends.
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
    );
    let headers = request.headers();
    let context = [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(|name| Some((name, headers.get(name)?.to_str().ok()?)));
    propagation::set_parent_from(&span, context);
    span
}

fn on_response(response: &Response, latency: Duration, span: &Span) {
    let status = response.status();
    span.record("status", status.as_u16());
    span.record("http.response.status_code", status.as_u16());
    span.record(
        "latency_ms",
        u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
    );
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    tracing::debug!(status = status.as_u16(), "request finished");
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route(&request).to_owned();
    let response = next.run(request).await;
    let labels = vec![
        Label::new("method", method),
        Label::new("route", route),
        Label::new("status", response.status().as_str().to_owned()),
    ];
    metrics::counter!(HTTP_REQUESTS_TOTAL, labels.clone()).increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, labels).record(started.elapsed());
    response
}

async fn enforce_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?limit, "request timed out");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "Service Unavailable",
            )
            .with_detail(format!("the request did not complete within {limit:?}"))
            .into_response()
        }
    }
}
