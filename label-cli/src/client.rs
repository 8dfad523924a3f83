//! The HTTP side of `label-cli`: one call to the API under `/api/v1`, its answer as JSON,
//! and the sorting of failures into "the API refused" (a problem+json answer), "the service
//! is unreachable" and "this answer is unusable".
//!
//! It must not interpret successful answers beyond decoding them: the commands and the
//! output module do that.

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::CliError;

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A client of one label-service.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    /// The service's base URL, as given.
    base: Url,
}

impl ApiClient {
    /// A client of the service at `base` (e.g. `http://127.0.0.1:8081`); a URL that is not
    /// http(s) is a usage error.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, CliError> {
        let base =
            Url::parse(base).map_err(|error| CliError::Usage(format!("--url {base}: {error}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(CliError::Usage(format!(
                "--url {base}: an http:// or https:// address is needed"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .user_agent(concat!("label-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| CliError::Usage(format!("cannot build the HTTP client: {error}")))?;
        Ok(Self { http, base })
    }

    /// The URL of an API path such as `/requests/3`, with a query.
    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}/api/v1{path}"));
        url.set_query(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    /// Calls the API; the answer's JSON on success (`null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Value, CliError> {
        let url = self.url(path, query);
        let mut request = match method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.unreachable(&error))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|error| CliError::Unexpected(format!("not JSON: {error}")));
        }
        Err(refusal(status.as_u16(), &bytes))
    }

    fn unreachable(&self, error: &reqwest::Error) -> CliError {
        CliError::Unreachable {
            url: self.base.to_string(),
            reason: error_chain(error),
        }
    }
}

/// An error answer as a refusal: the problem's `detail` and `code` when it is
/// problem+json, else the status and the start of the body.
pub fn refusal(status: u16, body: &[u8]) -> CliError {
    let problem: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        problem
            .as_ref()
            .and_then(|problem| problem.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("code").unwrap_or_else(|| format!("http_{status}"));
    let detail = field("detail")
        .or_else(|| field("title"))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                text.chars().take(200).collect()
            }
        });
    let errors = problem
        .as_ref()
        .and_then(|problem| problem.get("errors"))
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    let field = error.get("field").and_then(Value::as_str).unwrap_or("?");
                    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
                    format!("{field}: {message}")
                })
                .collect()
        })
        .unwrap_or_default();
    CliError::Refused {
        status,
        code,
        detail,
        errors,
    }
}

/// The error with its causes, which is where reqwest says "connection refused".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_base_path_and_encode_the_query() {
        let client =
            ApiClient::new("http://127.0.0.1:8081/label/", Duration::from_secs(1)).expect("client");
        let url = client.url("/requests", &[("status", "On approval".to_owned())]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8081/label/api/v1/requests?status=On+approval"
        );
    }

    #[test]
    fn a_url_that_is_not_http_is_a_usage_error() {
        for url in ["127.0.0.1:8081", "ftp://host", "not a url"] {
            assert!(
                matches!(
                    ApiClient::new(url, Duration::from_secs(1)),
                    Err(CliError::Usage(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn a_problem_becomes_a_refusal_with_detail_code_and_field_errors() {
        let body = br#"{"type":"about:blank","title":"Unprocessable Entity","status":422,
            "detail":"some fields are not valid","code":"validation_failed",
            "errors":[{"field":"name","message":"must not be empty"}]}"#;
        let CliError::Refused {
            status,
            code,
            detail,
            errors,
        } = refusal(422, body)
        else {
            panic!("not a refusal");
        };
        assert_eq!(status, 422);
        assert_eq!(code, "validation_failed");
        assert_eq!(detail, "some fields are not valid");
        assert_eq!(errors, vec!["name: must not be empty".to_owned()]);
    }

    #[test]
    fn a_plain_error_answer_is_still_a_refusal() {
        let CliError::Refused { code, detail, .. } = refusal(502, b"Bad Gateway") else {
            panic!("not a refusal");
        };
        assert_eq!(code, "http_502");
        assert_eq!(detail, "Bad Gateway");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let client = ApiClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5))
            .expect("client");
        let error = client
            .call(Method::Get, "/me", &[], None, None)
            .await
            .expect_err("nobody listens");
        assert_eq!(error.exit_code(), 3, "{error}");
    }
}
