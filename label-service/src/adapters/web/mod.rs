//! The web UI of the label-service: server-rendered HTML pages for every role (log in,
//! register, profile, requests with Accept/Decline and the evaluation, releases with their
//! tracks and an upload form, the admin's users and managers), served by the service itself
//! next to the JSON API.
//!
//! The session is the API's JWT in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` as
//! `web.cookie_secure` says, see `cookies`); every
//! state-changing form carries a CSRF token (an HMAC of the session, or of a guest nonce)
//! that is checked before anything changes. Templates auto-escape every value. Like the
//! API, it holds no business or authorization rule: the use cases decide, and their errors
//! become readable messages on the page.

mod cookies;
mod pages;
mod session;

pub use self::cookies::{CookieSecure, WebSettings};

use crate::app::error::ErrorCode;
use std::sync::Arc;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::Environment;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use crate::adapters::http::limits::LoginLimits;
use crate::adapters::http::{AuthSettings, Tokens};
use crate::app::{AppError, Label, PasswordHasher, Store};

use self::pages as p;
use self::session::Session;

/// The page policy: no inline script or style, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("templates/label.css");
const SCRIPT: &str = include_str!("templates/label.js");

/// The templates, by name; `.html` names are auto-escaped by minijinja.
const TEMPLATES: [(&str, &str); 12] = [
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("register.html", include_str!("templates/register.html")),
    ("logout.html", include_str!("templates/logout.html")),
    ("profile.html", include_str!("templates/profile.html")),
    ("requests.html", include_str!("templates/requests.html")),
    ("request.html", include_str!("templates/request.html")),
    ("releases.html", include_str!("templates/releases.html")),
    ("release.html", include_str!("templates/release.html")),
    (
        "release_new.html",
        include_str!("templates/release_new.html"),
    ),
    (
        "admin_users.html",
        include_str!("templates/admin_users.html"),
    ),
];
const ADMIN_MANAGERS: (&str, &str) = (
    "admin_managers.html",
    include_str!("templates/admin_managers.html"),
);

/// What every page handler shares.
pub struct WebState<S, P> {
    label: Label<S, P>,
    tokens: Arc<Tokens>,
    /// The key of the CSRF tokens (derived from the JWT secret, never shown).
    csrf_key: Arc<Vec<u8>>,
    limits: Arc<LoginLimits>,
    templates: Arc<Environment<'static>>,
}

impl<S, P> Clone for WebState<S, P> {
    fn clone(&self) -> Self {
        Self {
            label: self.label.clone(),
            tokens: Arc::clone(&self.tokens),
            csrf_key: Arc::clone(&self.csrf_key),
            limits: Arc::clone(&self.limits),
            templates: Arc::clone(&self.templates),
        }
    }
}

impl<S, P> std::fmt::Debug for WebState<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CSRF key is a secret: never printed.
        f.debug_struct("WebState")
            .field("label", &self.label)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES.into_iter().chain([ADMIN_MANAGERS]) {
        env.add_template(name, source)
            .expect("the embedded templates parse");
    }
    env
}

/// The pages: `/`, `/login`, `/register`, `/logout`, `/profile`, `/requests`,
/// `/requests/{id}`, `/releases`, `/releases/new`, `/releases/{id}`, `/admin/users`,
/// `/admin/managers`, and the stylesheet and script under `/assets`.
pub fn router<S: Store, P: PasswordHasher>(
    label: Label<S, P>,
    auth: AuthSettings,
    web: WebSettings,
    limits: Arc<LoginLimits>,
) -> Router {
    let mut csrf_key = b"label-web-csrf|".to_vec();
    csrf_key.extend_from_slice(auth.jwt_secret.expose_secret().as_bytes());
    let state = WebState {
        label,
        tokens: Arc::new(Tokens::new(&auth)),
        csrf_key: Arc::new(csrf_key),
        limits,
        templates: Arc::new(environment()),
    };
    Router::new()
        .route("/", get(p::home::<S, P>))
        .route("/login", get(p::login_form::<S, P>).post(p::login::<S, P>))
        .route(
            "/register",
            get(p::register_form::<S, P>).post(p::register::<S, P>),
        )
        .route(
            "/logout",
            get(p::logout_form::<S, P>).post(p::logout::<S, P>),
        )
        .route("/profile", get(p::profile::<S, P>))
        .route("/requests", get(p::requests::<S, P>))
        .route("/requests/sign", axum::routing::post(p::apply_sign::<S, P>))
        .route(
            "/requests/publish",
            axum::routing::post(p::apply_publish::<S, P>),
        )
        .route("/requests/{id}", get(p::request::<S, P>))
        .route(
            "/requests/{id}/accept",
            axum::routing::post(p::accept::<S, P>),
        )
        .route(
            "/requests/{id}/decline",
            axum::routing::post(p::decline::<S, P>),
        )
        .route("/releases", get(p::releases::<S, P>))
        .route(
            "/releases/new",
            get(p::release_form::<S, P>).post(p::upload_release::<S, P>),
        )
        .route("/releases/{id}", get(p::release::<S, P>))
        .route(
            "/admin/users",
            get(p::admin_users::<S, P>).post(p::appoint::<S, P>),
        )
        .route("/admin/managers", get(p::admin_managers::<S, P>))
        .route("/assets/label.css", get(stylesheet))
        .route("/assets/label.js", get(script))
        // After the routes: it applies to the routes present.
        .method_not_allowed_fallback(p::method_not_allowed::<S, P>)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(web),
            cookies::mark_secure,
        ))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

/// What the navigation bar needs to know about the visitor.
#[derive(Debug, Clone, Serialize)]
struct Nav {
    name: String,
    role: &'static str,
    csrf: String,
}

impl<S: Store, P: PasswordHasher> WebState<S, P> {
    /// Renders `template` with `context`, the visitor's navigation and `status`.
    fn render(
        &self,
        status: StatusCode,
        template: &str,
        session: Option<&Session>,
        context: minijinja::Value,
    ) -> Response {
        let nav = session.map(|s| Nav {
            name: s.actor.user.name.clone(),
            role: s.actor.user.role.as_str(),
            csrf: s.csrf.clone(),
        });
        let base = minijinja::context! { nav => nav };
        let rendered = self
            .templates
            .get_template(template)
            .and_then(|t| t.render(minijinja::context! { ..context, ..base }));
        match rendered {
            Ok(html) => page(status, html),
            Err(err) => {
                tracing::error!(template, error = %err, "rendering a page failed");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>Error</title><p>Something went wrong on our side; \
                     the error was logged. <a href=\"/\">Start again</a></p>"
                        .to_owned(),
                )
            }
        }
    }

    /// The error page for a refusal or failure of a use case: its human message, never its
    /// internals.
    fn fail(&self, err: &AppError, session: Option<&Session>) -> Response {
        let (status, title) = match err {
            AppError::BadInput { .. } => (StatusCode::BAD_REQUEST, "That did not work"),
            AppError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Please check"),
            AppError::Unauthenticated { .. } => (StatusCode::UNAUTHORIZED, "Please log in"),
            AppError::Forbidden { .. } => (StatusCode::FORBIDDEN, "Not allowed"),
            AppError::NotFound { .. } => (StatusCode::NOT_FOUND, "Not found"),
            AppError::Conflict { .. } => (StatusCode::CONFLICT, "That did not work"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Try again shortly"),
            AppError::Internal(detail) => {
                tracing::error!(detail = %detail, "a page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
            }
        };
        let message = match err {
            AppError::Internal(_) => {
                "something went wrong on our side; the error was logged".to_owned()
            }
            other => other.to_string(),
        };
        let fields: Vec<String> = match err {
            AppError::Invalid { fields, .. } => fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect(),
            _ => Vec::new(),
        };
        self.render(
            status,
            "error.html",
            session,
            minijinja::context! { title, message, fields, code => err.code() },
        )
    }

    /// The 403 page of a guest form whose browser sent no cookie at all: the cookie set
    /// with the form was refused (cookies blocked, or a `Secure` cookie over plain HTTP),
    /// and reloading would not help, so the page says what would.
    fn cookie_refused(&self) -> Response {
        self.fail(
            &AppError::forbidden(
                ErrorCode::CookieRefused,
                "your browser did not send back the cookie this site set, so the form cannot \
                 be checked. Allow cookies for this site. If you reached it over plain HTTP \
                 at a host name other than localhost, the service must not mark its cookies \
                 Secure: its operator sets web.cookie_secure to auto (the default) or never, \
                 or puts it behind HTTPS",
            ),
            None,
        )
    }

    /// The 403 page of a form without a good CSRF token.
    fn csrf_refused(&self, session: Option<&Session>) -> Response {
        self.fail(
            &AppError::forbidden(
                ErrorCode::Csrf,
                "this form has expired or did not come from this site; reload the page and \
                 try again",
            ),
            session,
        )
    }
}

fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes() {
        let env = environment();
        for (name, _) in TEMPLATES.into_iter().chain([ADMIN_MANAGERS]) {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
        let html = env
            .get_template("error.html")
            .and_then(|t| {
                t.render(minijinja::context! {
                    title => "t", message => "<script>x</script>", fields => Vec::<String>::new()
                })
            })
            .expect("renders");
        assert!(html.contains("&lt;script&gt;x"), "{html}");
        assert!(!html.contains("<script>x"), "{html}");
    }
}
