//! Serving a service's OpenAPI document at `/api-docs/openapi.json` and a viewer of it at
//! `/docs` (a page and its script at `/docs/docs.js`) that loads nothing from the network:
//! the script fetches the document from the same origin and renders it with DOM text APIs,
//! under a content security policy that allows nothing else.
//!
//! It must not build or know the document: each service generates its own (with utoipa)
//! and hands it over as text.

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;

/// The viewer's page; `{title}` stands for the escaped title.
const DOCS_HTML: &str = include_str!("docs/docs.html");
/// The viewer's script.
const DOCS_JS: &str = include_str!("docs/docs.js");

/// The policy of the viewer's page and script: scripts only from this origin, the document
/// fetched from this origin, the page's own inline style, nothing else (no images, fonts,
/// frames, forms or plugins).
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
                            connect-src 'self'; base-uri 'none'; form-action 'none'; \
                            frame-ancestors 'none'";

/// `GET /api-docs/openapi.json` answering `document` as `application/json`, `GET /docs`
/// answering the viewer's page titled `title`, and `GET /docs/docs.js` its script.
///
/// ```
/// let document = r#"{"openapi":"3.1.0","paths":{}}"#;
/// let router: axum::Router = platform::http::api_docs_router("my-service API", document);
/// ```
pub fn api_docs_router(title: &str, document: &'static str) -> Router {
    let page = Bytes::from(DOCS_HTML.replace("{title}", &escape_html(title)));
    Router::new()
        .route(
            "/api-docs/openapi.json",
            get(move || async move {
                (
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    document,
                )
            }),
        )
        .route(
            "/docs",
            get(move || async move { with_csp("text/html; charset=utf-8", page) }),
        )
        .route(
            "/docs/docs.js",
            get(|| async {
                with_csp(
                    "text/javascript; charset=utf-8",
                    Bytes::from_static(DOCS_JS.as_bytes()),
                )
            }),
        )
}

fn with_csp(content_type: &'static str, body: Bytes) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP)),
        ],
        body,
    )
}

/// The title is text in an element and in `<title>`: markup characters become references.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    // A failed unwrap is a failed test, with the value in the message.
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    const DOCUMENT: &str = r#"{"openapi":"3.1.0","paths":{}}"#;

    /// GETs `path` from the router for `title`, checks that it answers 200 with
    /// `content_type` and the policy `csp` (or none), and returns the body.
    async fn served(title: &str, path: &str, content_type: &str, csp: Option<&str>) -> String {
        let response = api_docs_router(title, DOCUMENT)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap())
        };
        assert_eq!(header(CONTENT_TYPE), Some(content_type), "{path}");
        assert_eq!(header(CONTENT_SECURITY_POLICY), csp, "{path}");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_document_is_served_as_json_as_given() {
        let document = served("x", "/api-docs/openapi.json", "application/json", None).await;
        assert_eq!(document, DOCUMENT);
    }

    #[tokio::test]
    async fn the_page_carries_the_title_and_the_policy() {
        let page = served(
            "orders-service API",
            "/docs",
            "text/html; charset=utf-8",
            Some(DOCS_CSP),
        )
        .await;
        assert!(page.contains("<title>orders-service API</title>"), "{page}");
        assert!(page.contains("<h1>orders-service API</h1>"), "{page}");
        assert!(page.contains(r#"<script src="/docs/docs.js"></script>"#));
        assert!(!page.contains("{title}"));
        assert!(
            !page.contains("https://"),
            "the viewer loads nothing from the network"
        );
    }

    #[tokio::test]
    async fn markup_in_the_title_stays_text() {
        let page = served(
            "<b>A & B</b>",
            "/docs",
            "text/html; charset=utf-8",
            Some(DOCS_CSP),
        )
        .await;
        assert!(
            page.contains("<h1>&lt;b&gt;A &amp; B&lt;/b&gt;</h1>"),
            "{page}"
        );
        assert!(!page.contains("<b>"));
    }

    #[tokio::test]
    async fn the_script_is_served_under_the_policy() {
        let script = served(
            "x",
            "/docs/docs.js",
            "text/javascript; charset=utf-8",
            Some(DOCS_CSP),
        )
        .await;
        assert!(script.contains("textContent"));
        assert!(
            !script.contains("innerHTML"),
            "text only, never HTML parsing"
        );
    }
}
