//! The HTTP inbound adapter of the label-service: the JSON API under `/api/v1` (spec
//! section 5), its OpenAPI 3.1 document at `/api-docs/openapi.json` and a viewer at
//! `/docs`. Health, readiness and metrics are added by `platform::service`.
//!
//! It translates HTTP to the use cases and their errors to `application/problem+json`; it
//! holds no business rule and no authorization rule beyond "who is calling" (the use cases
//! decide what the caller may do).

pub mod auth;
pub mod errors;
pub mod extract;
pub mod handlers;
pub mod limits;
pub mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::extract::OriginalUri;
use axum::routing::{get, post};

use crate::app::{Label, PasswordHasher, Store};

pub use self::auth::{AuthSettings, CurrentActor, DEFAULT_JWT_SECRET, Tokens};
pub use self::errors::ApiError;
use self::handlers as h;
use self::limits::LoginLimits;

/// The prefix of every API route.
pub const API_PREFIX: &str = "/api/v1";

/// What every handler shares: the use cases, the token keys and the login limits.
pub struct ApiState<S, P> {
    label: Label<S, P>,
    tokens: Arc<Tokens>,
    limits: Arc<LoginLimits>,
}

impl<S, P> Clone for ApiState<S, P> {
    fn clone(&self) -> Self {
        Self {
            label: self.label.clone(),
            tokens: Arc::clone(&self.tokens),
            limits: Arc::clone(&self.limits),
        }
    }
}

impl<S, P> std::fmt::Debug for ApiState<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("label", &self.label)
            .field("tokens", &self.tokens)
            .field("limits", &self.limits)
            .finish()
    }
}

/// The service's routes: the API under `/api/v1` (with problem+json answers for unknown
/// paths and methods there), the OpenAPI document and its viewer.
/// `limits` is shared with the web pages: one budget of login attempts per address and per
/// e-mail address, whichever door they come through.
pub fn router<S: Store, P: PasswordHasher>(
    label: Label<S, P>,
    auth: AuthSettings,
    limits: Arc<LoginLimits>,
) -> Router {
    let state = ApiState {
        label,
        tokens: Arc::new(Tokens::new(&auth)),
        limits,
    };
    let api = Router::new()
        .route("/auth/register", post(h::register::<S, P>))
        .route("/auth/login", post(h::login::<S, P>))
        .route("/me", get(h::me::<S, P>))
        .route("/users", get(h::list_users::<S, P>))
        .route("/users/{id}", get(h::get_user::<S, P>))
        .route(
            "/managers",
            get(h::list_managers::<S, P>).post(h::appoint_managers::<S, P>),
        )
        .route("/managers/{id}", get(h::get_manager::<S, P>))
        .route("/artists/{id}", get(h::get_artist::<S, P>))
        .route(
            "/releases",
            get(h::list_releases::<S, P>).post(h::upload_release::<S, P>),
        )
        .route("/releases/{id}", get(h::get_release::<S, P>))
        .route("/tracks/{id}", get(h::get_track::<S, P>))
        .route("/publications", get(h::list_publications::<S, P>))
        .route("/requests", get(h::list_requests::<S, P>))
        .route("/requests/sign", post(h::apply_sign::<S, P>))
        .route("/requests/publish", post(h::apply_publish::<S, P>))
        .route("/requests/{id}", get(h::get_request::<S, P>))
        .route("/requests/{id}/accept", post(h::accept::<S, P>))
        .route("/requests/{id}/decline", post(h::decline::<S, P>))
        // After the routes: it applies to the routes present.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(route_not_found)
        .with_state(state);
    Router::new().nest(API_PREFIX, api).merge(openapi::router())
}

async fn route_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::route_not_found(uri.path())
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
