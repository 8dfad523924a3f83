//! The error body of every HTTP API: RFC 9457 problem details (`application/problem+json`)
//! with a stable snake_case `code` that clients can branch on.
//!
//! It must not carry internals in a 5xx answer: [`Problem::internal`] logs the cause and
//! answers only "internal error".

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `type` of problems that need no more explanation than their status and code.
pub const ABOUT_BLANK: &str = "about:blank";

/// Members that RFC 9457 or this crate define; extensions may not replace them.
const RESERVED: &[&str] = &["type", "title", "status", "detail", "instance", "code"];

/// An RFC 9457 problem: `type`, `title`, `status`, `detail`, `instance` (optional), a stable
/// `code`, and extension members such as validation errors.
///
/// ```
/// use axum::http::StatusCode;
/// use platform::http::Problem;
///
/// let problem = Problem::not_found("order_not_found", "no order b563feb7b2b84b6")
///     .with_extension("order_uid", serde_json::json!("b563feb7b2b84b6"));
/// assert_eq!(problem.status(), StatusCode::NOT_FOUND);
/// ```
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    title: String,
    type_uri: String,
    detail: Option<String>,
    instance: Option<String>,
    extensions: Map<String, Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_uri: &'a str,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    code: &'a str,
    #[serde(flatten)]
    extensions: &'a Map<String, Value>,
}

impl Problem {
    /// A problem with `status`, a stable snake_case `code` and a short human `title`; its
    /// `type` is `about:blank` until [`Problem::with_type`] says otherwise.
    pub fn new(status: StatusCode, code: &'static str, title: impl Into<String>) -> Self {
        Self {
            status,
            code,
            title: title.into(),
            type_uri: ABOUT_BLANK.to_owned(),
            detail: None,
            instance: None,
            extensions: Map::new(),
        }
    }

    /// A problem titled with the status's standard reason phrase, as `about:blank` wants.
    fn standard(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(status, code, status.canonical_reason().unwrap_or("Error")).with_detail(detail)
    }

    /// 400: the request is malformed (a bad path parameter, unparsable JSON).
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::standard(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 404: the resource does not exist.
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::standard(StatusCode::NOT_FOUND, code, detail)
    }

    /// 404 with code `route_not_found`: no route answers `path`.
    pub fn route_not_found(path: &str) -> Self {
        Self::not_found("route_not_found", format!("no route for {path}"))
    }

    /// 405 with code `method_not_allowed`: the path exists, the method does not (the
    /// router adds the `Allow` header).
    pub fn method_not_allowed() -> Self {
        Self::standard(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this path does not answer this method; the Allow header lists those it does",
        )
    }

    /// 409: the request conflicts with the resource's current state.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::standard(StatusCode::CONFLICT, code, detail)
    }

    /// 422: the request is well-formed but its content is invalid.
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::standard(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 401 with code `unauthorized`: no valid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::standard(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403 with code `forbidden`: valid credentials without the permission.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::standard(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 503 with code `unavailable`: a dependency is down; retrying later may work. The
    /// detail is sent to the client, so it must not name hosts or carry error text.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::standard(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// 500 with code `internal`. Logs `err` at error level (inside the request's span) and
    /// answers only "internal error", because a 5xx body must not carry internals.
    pub fn internal(err: &dyn fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::standard(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// Sets the human explanation of this occurrence.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the `type` URI identifying the problem type (default `about:blank`).
    #[must_use]
    pub fn with_type(mut self, type_uri: impl Into<String>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Sets the `instance` URI identifying this occurrence, such as the request path.
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Adds an extension member, such as `errors` with validation failures. A key naming a
    /// standard member (`type`, `title`, `status`, `detail`, `instance`, `code`) is ignored,
    /// so an extension can never contradict them.
    #[must_use]
    pub fn with_extension(mut self, key: &str, value: Value) -> Self {
        if !RESERVED.contains(&key) {
            self.extensions.insert(key.to_owned(), value);
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The short human summary.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The explanation of this occurrence, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The body as a JSON value, as it is sent.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.body()).unwrap_or(Value::Null)
    }

    fn body(&self) -> Body<'_> {
        Body {
            type_uri: &self.type_uri,
            title: &self.title,
            status: self.status.as_u16(),
            detail: self.detail.as_deref(),
            instance: self.instance.as_deref(),
            code: self.code,
            extensions: &self.extensions,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.body()) {
            Ok(body) => (
                self.status,
                [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
                body,
            )
                .into_response(),
            // Serializing strings and JSON values into a buffer cannot fail; this arm only
            // keeps a bug from becoming a panic.
            Err(error) => {
                tracing::error!(%error, "cannot serialize a problem");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
