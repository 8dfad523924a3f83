//! The one HTTP error type of the label-service: every refusal or failure leaves as
//! `application/problem+json` with a stable `code`. Use-case errors, rejected tokens, the
//! login rate limit and axum's own rejections (bad JSON, a bad path or query) all become a
//! [`Problem`] here.
//!
//! It must not put internals in a 5xx body: the cause is logged, the client reads only that
//! something failed on our side.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::http::Problem;

use crate::app::AppError;

/// What the service could not do, as it is answered: a problem and the headers that go
/// with it (`WWW-Authenticate` on 401, `Retry-After` on 429).
#[derive(Debug)]
pub struct ApiError {
    // Boxed: handlers return `Result<_, ApiError>`, and the Ok path stays small.
    problem: Box<Problem>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// The problem as it will be sent.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 401 `unauthenticated`: no token, or one that is not good (bad signature, expired,
    /// not HS256, not ours).
    pub fn unauthenticated(detail: &str, invalid_token: bool) -> Self {
        let challenge = if invalid_token {
            HeaderValue::from_static("Bearer error=\"invalid_token\"")
        } else {
            HeaderValue::from_static("Bearer")
        };
        ApiError::from(
            Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthorized")
                .with_detail(detail),
        )
        .with_header(WWW_AUTHENTICATE, challenge)
    }

    /// 429 `rate_limited`, saying after how many whole seconds to try again.
    pub fn rate_limited(retry_after: Duration) -> Self {
        // Round up: trying again a fraction of a second early would be refused again.
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        ApiError::from(
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too Many Requests",
            )
            .with_detail(format!("too many login attempts; try again in {seconds} s")),
        )
        .with_header(RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// 404 `route_not_found` for a path under the API that names no route.
    pub fn route_not_found(path: &str) -> Self {
        Problem::route_not_found(path).into()
    }

    /// 405 `method_not_allowed` for a known path with another method.
    pub fn method_not_allowed() -> Self {
        Problem::method_not_allowed().into()
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self {
            problem: Box::new(problem),
            headers: Vec::new(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        let code = err.code();
        match err {
            AppError::BadInput { message, .. } => Problem::bad_request(code, message).into(),
            AppError::Invalid {
                message, fields, ..
            } => Problem::unprocessable(code, message)
                .with_extension(
                    "errors",
                    serde_json::to_value(fields).unwrap_or(serde_json::Value::Null),
                )
                .into(),
            AppError::Unauthenticated { message, .. } => ApiError::from(
                Problem::new(StatusCode::UNAUTHORIZED, code, "Unauthorized").with_detail(message),
            )
            .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
            AppError::Forbidden { message, .. } => {
                Problem::new(StatusCode::FORBIDDEN, code, "Forbidden")
                    .with_detail(message)
                    .into()
            }
            AppError::NotFound { message, .. } => Problem::not_found(code, message).into(),
            AppError::Conflict { message, .. } => Problem::conflict(code, message).into(),
            AppError::Unavailable(detail) => {
                // The detail may name hosts or carry driver text: it goes to the log only.
                tracing::warn!(error = %detail, "the store is unavailable");
                ApiError::from(Problem::unavailable(
                    "the service cannot reach its database; try again shortly",
                ))
                .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
            }
            AppError::Internal(detail) => Problem::internal(&detail).into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported Media Type",
            )
            .with_detail("send the body as JSON with Content-Type: application/json")
            .into(),
            // A body over the limit (axum's default of 2 MB): too large, not malformed.
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "Content Too Large",
            )
            .with_detail("the request body is larger than the 2 MB this API accepts")
            .into(),
            // Syntax errors, wrong types and missing fields all mean the body is malformed:
            // 400, with serde's explanation (it names the field and the position, nothing
            // of ours).
            other => Problem::bad_request("bad_request", other.body_text()).into(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Problem::bad_request("bad_request", rejection.body_text()).into()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Problem::bad_request("bad_request", rejection.body_text()).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (*self.problem).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ErrorCode;
    use crate::domain::validation::FieldError;

    #[test]
    fn invalid_values_carry_their_field_errors() {
        let err = ApiError::from(AppError::invalid(
            ErrorCode::ValidationFailed,
            "some fields are not valid",
            vec![FieldError {
                field: "email".into(),
                message: "must be an e-mail address".into(),
            }],
        ));
        let body = err.problem().to_json();
        assert_eq!(body["status"], 422);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["errors"][0]["field"], "email");
    }

    #[test]
    fn server_errors_do_not_show_their_cause() {
        for err in [
            AppError::Internal("relation \"label.users\" does not exist".into()),
            AppError::Unavailable("connection refused: db.internal:5432".into()),
        ] {
            let body = ApiError::from(err).problem().to_json().to_string();
            assert!(!body.contains("label.users"), "{body}");
            assert!(!body.contains("db.internal"), "{body}");
        }
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let response = ApiError::rate_limited(Duration::from_millis(11_200)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "12");
        let response = ApiError::rate_limited(Duration::ZERO).into_response();
        assert_eq!(response.headers()[RETRY_AFTER], "1");
    }
}
