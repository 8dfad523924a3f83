//! The middleware every HTTP API gets: request ids, a span per request continuing the
//! caller's trace, a per-request timeout and request metrics.
//!
//! It must not log at info level per request (the hot path stays quiet; the span and the
//! metrics carry the facts) and must not label metrics with raw paths, whose number is
//! unbounded: the route label is the matched path template.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram, Label};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
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
        .layer(middleware::from_fn_with_state(
            RequestMetrics::default(),
            record_metrics,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_response(on_response)
                // 5xx answers are already logged where they are made (`Problem::internal`)
                // and counted by status; logging them again here would double every entry.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(NewRequestId))
}

/// Makes a request id: a random (v4) UUID from a thread-local generator, written without a
/// temporary string (the default generator asks the kernel for randomness on every request).
#[derive(Debug, Clone, Copy, Default)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let mut text = [0_u8; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(id).ok().map(RequestId::new)
    }
}

/// A value per (method, route) pair, made once: route templates are few and fixed, so the
/// hot path finds what it needs with a read lock and no allocation.
#[derive(Debug)]
struct PerRoute<T>(RwLock<HashMap<&'static str, HashMap<Box<str>, T>>>);

impl<T> Default for PerRoute<T> {
    fn default() -> Self {
        Self(RwLock::new(HashMap::new()))
    }
}

impl<T: Clone> PerRoute<T> {
    fn get_or_make(&self, method: &'static str, route: &str, make: impl FnOnce() -> T) -> T {
        if let Some(value) = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(method)
            .and_then(|routes| routes.get(route))
        {
            return value.clone();
        }
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(method)
            .or_default()
            .entry(route.into())
            .or_insert_with(make)
            .clone()
    }
}

/// The OpenTelemetry span names (`GET /order/{order_uid}`), made once per route.
fn span_name(method: &'static str, route: &str) -> Arc<str> {
    static NAMES: std::sync::LazyLock<PerRoute<Arc<str>>> =
        std::sync::LazyLock::new(PerRoute::default);
    NAMES.get_or_make(method, route, || format!("{method} {route}").into())
}

/// The request counter and latency histogram of each (method, route, status), registered
/// once and then updated through their handles.
#[derive(Debug, Clone, Default)]
struct RequestMetrics(Arc<PerRoute<StatusHandles>>);

/// The handles of one route, per response status.
type StatusHandles = Arc<RwLock<HashMap<u16, (Counter, Histogram)>>>;

impl RequestMetrics {
    fn record(&self, method: &'static str, route: &str, status: StatusCode, elapsed: Duration) {
        let statuses = self.0.get_or_make(method, route, Arc::default);
        let code = status.as_u16();
        let known = statuses
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&code)
            .cloned();
        let (counter, histogram) = known.unwrap_or_else(|| {
            let labels = vec![
                Label::new("method", method),
                Label::new("route", route.to_owned()),
                Label::new("status", status.as_str().to_owned()),
            ];
            let handles = (
                metrics::counter!(HTTP_REQUESTS_TOTAL, labels.clone()),
                metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, labels),
            );
            statuses
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(code, handles.clone());
            handles
        });
        counter.increment(1);
        histogram.record(elapsed);
    }
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
    let name = span_name(method, route);
    let span = tracing::info_span!(
        "http.request",
        otel.name = &*name,
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

async fn record_metrics(
    State(metrics): State<RequestMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // A clone of the matched path is a reference count, not a copy of the text.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.record(
        method,
        route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
        response.status(),
        started.elapsed(),
    );
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
