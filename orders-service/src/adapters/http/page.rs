//! The support web page: one HTML document, one script and one stylesheet, embedded in the
//! binary and served with a strict Content-Security-Policy; it must not serve anything but
//! these fixed files, and it never puts order data into them (the script fetches the JSON
//! API and renders it with DOM text APIs).

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy of every page response: nothing inline, nothing from elsewhere, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("static/index.html");
const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const JAVASCRIPT: HeaderValue = HeaderValue::from_static("text/javascript; charset=utf-8");
const CSS: HeaderValue = HeaderValue::from_static("text/css; charset=utf-8");
// The document is revalidated every time so that a new release shows at once; the assets
// it names may be a few minutes old.
const DOCUMENT_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const ASSET_CACHE: HeaderValue = HeaderValue::from_static("public, max-age=300");

/// `GET /`, `GET /static/app.js` and `GET /static/app.css`.
pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, HTML, DOCUMENT_CACHE) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset(APP_JS, JAVASCRIPT, ASSET_CACHE) }),
        )
        .route(
            "/static/app.css",
            get(|| async { asset(APP_CSS, CSS, ASSET_CACHE) }),
        )
}

fn asset(body: &'static str, content_type: HeaderValue, cache: HeaderValue) -> Response {
    let headers: [(HeaderName, HeaderValue); 5] = [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, cache),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let request = Request::get(path).body(Body::empty()).expect("request");
        let response = router().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            headers,
            String::from_utf8(body.to_vec()).expect("utf-8"),
        )
    }

    fn header(headers: &axum::http::HeaderMap, name: HeaderName) -> &str {
        headers
            .get(&name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    fn assert_hardened(headers: &axum::http::HeaderMap) {
        assert_eq!(header(headers, CONTENT_SECURITY_POLICY), CSP);
        assert_eq!(header(headers, X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(headers, REFERRER_POLICY), "no-referrer");
    }

    #[tokio::test]
    async fn index_is_html_with_the_strict_policy() {
        let (status, headers, body) = get("/?id=b563feb7b2b84b6test").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, CONTENT_TYPE), "text/html; charset=utf-8");
        assert_hardened(&headers);
        assert!(body.contains(r#"<script src="/static/app.js" defer></script>"#));
        assert!(body.contains(r#"<link rel="stylesheet" href="/static/app.css">"#));
    }

    #[tokio::test]
    async fn assets_have_their_types_and_a_short_cache() {
        for (path, content_type, text) in [
            ("/static/app.js", "text/javascript; charset=utf-8", APP_JS),
            ("/static/app.css", "text/css; charset=utf-8", APP_CSS),
        ] {
            let (status, headers, body) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(header(&headers, CONTENT_TYPE), content_type, "{path}");
            assert_eq!(header(&headers, CACHE_CONTROL), "public, max-age=300");
            assert_hardened(&headers);
            assert_eq!(body, text);
        }
    }

    #[test]
    fn the_policy_is_the_strict_one() {
        let directives: Vec<&str> = CSP.split("; ").collect();
        assert_eq!(
            directives,
            [
                "default-src 'none'",
                "script-src 'self'",
                "style-src 'self'",
                "connect-src 'self'",
                "img-src 'self' data:",
                "base-uri 'none'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        );
    }

    #[test]
    fn the_script_never_parses_strings_as_html() {
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(
                !APP_JS.contains(forbidden),
                "app.js must render with DOM text APIs only, but it contains {forbidden}"
            );
        }
    }

    #[test]
    fn the_document_has_nothing_inline_that_the_policy_would_block() {
        for forbidden in [
            "<script>",
            "<style",
            " style=",
            " onclick=",
            " onload=",
            "javascript:",
        ] {
            assert!(
                !INDEX_HTML.contains(forbidden),
                "index.html must not hold {forbidden:?}: the policy forbids inline code"
            );
        }
    }
}
