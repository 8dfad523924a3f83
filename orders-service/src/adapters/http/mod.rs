//! The HTTP inbound adapter: order lookups, the recent-orders list, the OpenAPI document
//! and its viewer, and the support page. It translates HTTP to the query use cases and
//! their errors to `application/problem+json`; it holds no business rule.
//!
//! The hit path of `GET /order/{id}` serializes nothing: it sends the cached bytes.

mod openapi;
pub mod page;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use platform::http::Problem;
use serde::{Deserialize, Serialize};

use crate::app::query::RecentPage;
use crate::app::{GetOrderError, Lookup, OrderCache, OrderJson, OrderStore, Queries};
use crate::domain::OrderSummary;

/// `X-Cache`: `hit` when the answer came from memory, `miss` when from the database.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// An order never changes, so the browser may keep it for good; it holds personal data
/// (name, phone, address), so no shared cache (proxy, CDN) may keep it.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("private, max-age=31536000, immutable");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The service's routes (health and metrics are added by `platform::service`).
pub fn router<S: OrderStore, C: OrderCache>(queries: Queries<S, C>) -> Router {
    Router::new()
        .route("/order/{order_uid}", get(get_order::<S, C>))
        .route("/api/v1/orders/{order_uid}", get(get_order::<S, C>))
        .route("/api/v1/orders", get(list_orders::<S, C>))
        .with_state(queries)
        .merge(openapi::router())
        .merge(page::router())
}

async fn get_order<S: OrderStore, C: OrderCache>(
    State(queries): State<Queries<S, C>>,
    Path(order_uid): Path<String>,
    headers: HeaderMap,
) -> Response {
    match queries.get_order(&order_uid).await {
        Ok(Lookup::Hit(order)) => order_response(order, "hit", &headers),
        Ok(Lookup::Miss(order)) => order_response(order, "miss", &headers),
        Err(err @ GetOrderError::BadId(_)) => {
            Problem::bad_request("bad_order_uid", err.to_string()).into_response()
        }
        Err(err @ GetOrderError::NotFound(_)) => {
            Problem::not_found("order_not_found", err.to_string()).into_response()
        }
        Err(GetOrderError::Unavailable) => Problem::unavailable(
            "the order is not in the cache and the database cannot be reached; try again shortly",
        )
        .into_response(),
    }
}

fn order_response(order: OrderJson, source: &'static str, request: &HeaderMap) -> Response {
    // The tag was validated as a header value when it was made; a failure here would be a bug,
    // and the answer is then simply sent without it.
    let etag = HeaderValue::from_maybe_shared(order.etag.clone()).ok();
    let not_modified = etag.as_ref().is_some_and(|etag| {
        request
            .get_all(IF_NONE_MATCH)
            .iter()
            .any(|value| matches_etag(value.as_bytes(), etag.as_bytes()))
    });
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = order.json.into_response();
        response.headers_mut().insert(CONTENT_TYPE, JSON);
        response
    };
    let headers = response.headers_mut();
    if let Some(etag) = etag {
        headers.insert(ETAG, etag);
    }
    headers.insert(CACHE_CONTROL, IMMUTABLE);
    headers.insert(X_CACHE, HeaderValue::from_static(source));
    response
}

/// `If-None-Match` against a strong tag: `*`, or any listed tag, weak or strong (RFC 9110
/// uses the weak comparison for `If-None-Match`).
fn matches_etag(header: &[u8], etag: &[u8]) -> bool {
    header.split(|b| *b == b',').any(|candidate| {
        let candidate = candidate.trim_ascii();
        candidate == b"*" || candidate.strip_prefix(b"W/").unwrap_or(candidate) == etag
    })
}

#[derive(Debug, Deserialize)]
struct ListParams {
    /// Read as text, so that `-1` or `abc` get the same answer as `0`.
    limit: Option<String>,
    before: Option<String>,
}

/// A page of the most recent orders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderList {
    pub orders: Vec<OrderSummary>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next: Option<String>,
}

async fn list_orders<S: OrderStore, C: OrderCache>(
    State(queries): State<Queries<S, C>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return Problem::bad_request(
            "bad_query",
            "the query string cannot be read; it takes limit and before",
        )
        .into_response();
    };
    let before = match params.before.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(cursor)) => Some(cursor),
        Some(None) => {
            return Problem::bad_request("bad_cursor", "before must be a cursor returned as next")
                .into_response();
        }
    };
    let limit = match params.limit.as_deref().map(str::parse::<u32>) {
        None => 20,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => {
            return Problem::bad_request("bad_limit", "limit must be between 1 and 100")
                .into_response();
        }
    };
    match queries.recent(limit, before).await {
        Ok(RecentPage { orders, next }) => Json(OrderList {
            orders,
            next: next.map(|(date, uid)| format_cursor(date, &uid)),
        })
        .into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "listing orders failed");
            Problem::unavailable("the database cannot be reached; try again shortly")
                .into_response()
        }
    }
}

/// A cursor is `<microseconds since the epoch>.<order_uid>`; order ids never hold a dot.
fn format_cursor(date: DateTime<Utc>, order_uid: &str) -> String {
    format!("{}.{order_uid}", date.timestamp_micros())
}

fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, String)> {
    let (micros, uid) = cursor.split_once('.')?;
    let date = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    crate::domain::validation::valid_order_uid(uid).then(|| (date, uid.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = b"\"abc\"";
        assert!(matches_etag(b"\"abc\"", etag));
        assert!(matches_etag(b"\"x\", W/\"abc\"", etag));
        assert!(matches_etag(b"*", etag));
        assert!(!matches_etag(b"\"abd\"", etag));
        assert!(!matches_etag(b"abc", etag));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let date = DateTime::from_timestamp_micros(1_637_907_727_123_456).expect("date");
        let cursor = format_cursor(date, "b563feb7b2b84b6test");
        assert_eq!(
            parse_cursor(&cursor),
            Some((date, "b563feb7b2b84b6test".to_owned()))
        );
        for bad in ["", "x.y", "12", "12.bad id", "99999999999999999999.a"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }
}
