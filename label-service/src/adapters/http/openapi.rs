//! The OpenAPI 3.1 document of the label-service, generated with utoipa from the handlers'
//! `#[utoipa::path]` attributes and the domain's schemas, served at `/api-docs/openapi.json`,
//! and a viewer at `/docs` that loads nothing from the network (its script renders the
//! document with DOM text APIs under a strict content security policy).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Router;
use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use super::handlers;
use crate::domain::validation::FieldError;

/// One problem response, its body a reference to [`ProblemDetails`].
fn problem_response(
    status: &str,
    description: &str,
) -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ProblemDetails")))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", content)
        .build();
    BTreeMap::from([(status.to_owned(), RefOr::T(response))])
}

/// The 401 of every route behind a token (`responses(NoGoodToken, ...)`).
#[derive(Debug)]
pub struct NoGoodToken;

impl IntoResponses for NoGoodToken {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        problem_response("401", "No good token")
    }
}

/// The 400 of a route whose path holds an id.
#[derive(Debug)]
pub struct NotAnId;

impl IntoResponses for NotAnId {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        problem_response("400", "Not an id")
    }
}

/// The 400 of a route that reads a JSON body.
#[derive(Debug)]
pub struct MalformedJson;

impl IntoResponses for MalformedJson {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        problem_response("400", "Malformed JSON")
    }
}

/// RFC 9457 problem details, as every error is answered (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDetails {
    /// A URI for the problem type; `about:blank` for plain HTTP statuses.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// The status's reason phrase.
    pub title: String,
    pub status: u16,
    /// What happened, for people.
    pub detail: Option<String>,
    /// Stable machine code, snake_case: `unauthenticated`, `validation_failed`,
    /// `release_not_found`, `already_closed`...
    pub code: String,
    /// 422 only: one entry per invalid field.
    pub errors: Option<Vec<FieldError>>,
}

struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        scheme.description = Some(
            "A token from `POST /api/v1/auth/register` or `POST /api/v1/auth/login` (HS256)"
                .to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "label-service",
        description = "A music label's request system: people register and ask to join, \
                       artists upload releases and ask to publish them, managers accept or \
                       decline what deferred actions assigned and evaluated for them, an \
                       admin appoints managers. Errors are `application/problem+json` with \
                       a stable `code`."
    ),
    paths(
        handlers::register,
        handlers::login,
        handlers::me,
        handlers::list_users,
        handlers::get_user,
        handlers::list_managers,
        handlers::appoint_managers,
        handlers::get_manager,
        handlers::get_artist,
        handlers::list_releases,
        handlers::upload_release,
        handlers::get_release,
        handlers::get_track,
        handlers::list_publications,
        handlers::list_requests,
        handlers::get_request,
        handlers::apply_sign,
        handlers::apply_publish,
        handlers::accept,
        handlers::decline,
    ),
    components(schemas(ProblemDetails, FieldError)),
    modifiers(&BearerSecurity),
    tags(
        (name = "auth", description = "Registration and login"),
        (name = "people", description = "The caller, users and managers"),
        (name = "catalog", description = "Artists, releases, tracks and publications"),
        (name = "requests", description = "Sign and publish requests"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// Routes served outside `/api/v1`: those of `platform::service` and of this module.
const PLAIN_ROUTES: [(&str, &str, &str, &str); 6] = [
    (
        "/livez",
        "livez",
        "Liveness: the process answers",
        "application/json",
    ),
    (
        "/readyz",
        "readyz",
        "Readiness: 200 when every check passes, 503 naming those that fail",
        "application/json",
    ),
    ("/metrics", "metrics", "Prometheus metrics", "text/plain"),
    (
        "/api-docs/openapi.json",
        "openapi",
        "This document (OpenAPI 3.1)",
        "application/json",
    ),
    ("/docs", "docs", "A viewer of this document", "text/html"),
    (
        "/docs/docs.js",
        "docsScript",
        "The viewer's script",
        "text/javascript",
    ),
];

/// The document as a value.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = ApiDoc::openapi();
    for (path, id, summary, content_type) in PLAIN_ROUTES {
        api.paths.add_path_operation(
            path,
            vec![HttpMethod::Get],
            OperationBuilder::new()
                .operation_id(Some(id))
                .summary(Some(summary))
                .tag("operations")
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description(summary)
                        .content(content_type, ContentBuilder::new().build())
                        .build(),
                )
                .build(),
        );
    }
    api
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    // The document is built from constants; failing to serialize it would be a bug, and an
    // empty answer makes it visible at once.
    openapi().to_pretty_json().unwrap_or_default()
});

/// The document as served.
pub fn document() -> &'static str {
    &DOCUMENT
}

/// The document and its viewer, served by [`platform::http::api_docs_router`].
pub(super) fn router() -> Router {
    platform::http::api_docs_router("label-service API", document())
}
