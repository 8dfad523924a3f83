//! The handlers of `/api/v1`: each reads the caller (a bearer token, see `auth`), parses
//! the input, calls one use case with the current time and answers JSON. Who may do what is
//! decided by the use cases; these only translate, and describe themselves for OpenAPI.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::CurrentActor;
use super::errors::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, ClientAddress};
use super::openapi::{MalformedJson, NoGoodToken, NotAnId, ProblemDetails};
use crate::app::requests::{PAGE_DEFAULT, RequestFilter};
use crate::app::{PasswordHasher, Store};
use crate::domain::request::{RequestType, Status};
use crate::domain::validation::NewRelease;
use crate::domain::{
    Artist, ArtistId, Manager, ManagerId, Publication, Release, ReleaseId, Request, RequestId,
    Track, TrackId, User, UserId,
};

type Answer<T> = Result<Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

// ---- bodies and answers

/// A registration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// 1–128 characters.
    pub name: String,
    /// Unique, case-insensitively.
    pub email: String,
    /// 8 characters or more.
    pub password: String,
}

impl std::fmt::Debug for RegisterBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterBody")
            .field("name", &self.name)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBody")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A token and the user it stands for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub user: User,
}

/// The caller: their user (with the role) and their artist or manager record.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    /// Present for artists.
    pub artist: Option<Artist>,
    /// Present for managers.
    pub manager: Option<Manager>,
}

/// The users to appoint managers, all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointBody {
    /// 1 to 100 user ids.
    pub user_ids: Vec<UserId>,
}

/// A request to join the label.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// The artist name wanted: 1–32 characters, not taken.
    pub nickname: String,
}

/// A request to publish a release.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    pub release_id: ReleaseId,
    /// At least 8 days from today, and not after the contract's end.
    pub expected_date: NaiveDate,
}

/// Filters and page of the request list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestListQuery {
    /// Only requests in this status.
    pub status: Option<Status>,
    /// Only requests of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<RequestType>,
    /// Page length, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// Requests to skip (default 0).
    pub offset: Option<u32>,
}

/// A page of requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    pub items: Vec<Request>,
    /// Requests matching the filters, across pages.
    pub total: i64,
    pub limit: u32,
    pub offset: u32,
}

// ---- authentication

/// Registers a non-member and logs them in.
#[utoipa::path(
    post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered; a token", body = Session),
        MalformedJson,
        (status = 409, description = "The e-mail address is taken (`email_taken`)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, with `errors`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn register<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Created<Session> {
    let user = state
        .label
        .register(&body.name, &body.email, &body.password)
        .await?;
    let token = state.tokens.issue(user.id, Utc::now())?;
    Ok((StatusCode::CREATED, Json(Session { token, user })))
}

/// Logs in. A wrong e-mail address and a wrong password get the same answer.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A token", body = Session),
        MalformedJson,
        (status = 401, description = "Wrong e-mail address or password (`bad_credentials`)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts for this address or e-mail (`rate_limited`, with `Retry-After`)", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn login<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    ClientAddress(address): ClientAddress,
    ApiJson(body): ApiJson<LoginBody>,
) -> Answer<Session> {
    // Counted before the password is checked: a refused attempt costs no hashing.
    state.limits.check(address, &body.email).map_err(|wait| {
        tracing::warn!(client = ?address, "login rate limit reached");
        ApiError::rate_limited(wait)
    })?;
    let user = state.label.login(&body.email, &body.password).await?;
    let token = state.tokens.issue(user.id, Utc::now())?;
    Ok(Json(Session { token, user }))
}

/// The caller, their role and their artist or manager record.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "people", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        NoGoodToken,
    )
)]
pub async fn me<S: Store, P: PasswordHasher>(
    State(_state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
) -> Answer<Me> {
    Ok(Json(Me {
        user: actor.user,
        artist: actor.artist,
        manager: actor.manager,
    }))
}

// ---- users and managers

/// Every user (admins only). No password hashes.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "people", security(("bearer" = [])),
    responses(
        (status = 200, description = "The users, oldest first", body = Vec<User>),
        NoGoodToken,
        (status = 403, description = "Not an admin", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn list_users<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
) -> Answer<Vec<User>> {
    Ok(Json(state.label.list_users(&actor).await?))
}

/// One user, for admins and for the user themselves.
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "people", security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        NotAnId,
        NoGoodToken,
        (status = 404, description = "No such user, or not the caller's to see", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn get_user<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiPath(id): ApiPath<UserId>,
) -> Answer<User> {
    Ok(Json(state.label.get_user(&actor, id).await?))
}

/// Every manager with their artists (admins only).
#[utoipa::path(
    get, path = "/api/v1/managers", tag = "people", security(("bearer" = [])),
    responses(
        (status = 200, description = "The managers", body = Vec<Manager>),
        NoGoodToken,
        (status = 403, description = "Not an admin", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn list_managers<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
) -> Answer<Vec<Manager>> {
    Ok(Json(state.label.list_managers(&actor).await?))
}

/// Appoints non-members managers, all or nothing (admins only).
#[utoipa::path(
    post, path = "/api/v1/managers", tag = "people", security(("bearer" = [])),
    request_body = AppointBody,
    responses(
        (status = 201, description = "The new managers", body = Vec<Manager>),
        MalformedJson,
        NoGoodToken,
        (status = 403, description = "Not an admin", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "An unknown user (`user_not_found`); nobody is appointed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "A manager already, an artist or an admin; nobody is appointed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "No ids, or too many", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn appoint_managers<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiJson(body): ApiJson<AppointBody>,
) -> Created<Vec<Manager>> {
    let managers = state.label.appoint_managers(&actor, &body.user_ids).await?;
    Ok((StatusCode::CREATED, Json(managers)))
}

/// One manager with their artist ids, for that manager and admins.
#[utoipa::path(
    get, path = "/api/v1/managers/{id}", tag = "people", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Manager id")),
    responses(
        (status = 200, description = "The manager", body = Manager),
        NotAnId,
        NoGoodToken,
        (status = 404, description = "No such manager, or not the caller's to see", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn get_manager<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiPath(id): ApiPath<ManagerId>,
) -> Answer<Manager> {
    Ok(Json(state.label.get_manager(&actor, id).await?))
}

/// An artist's profile, for the artist, their manager and admins.
#[utoipa::path(
    get, path = "/api/v1/artists/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Artist id")),
    responses(
        (status = 200, description = "The artist", body = Artist),
        NotAnId,
        NoGoodToken,
        (status = 404, description = "No such artist, or not the caller's to see", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn get_artist<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiPath(id): ApiPath<ArtistId>,
) -> Answer<Artist> {
    Ok(Json(state.label.get_artist(&actor, id).await?))
}

// ---- catalog

/// The caller's releases (artist) or their artists' releases (manager), newest first.
#[utoipa::path(
    get, path = "/api/v1/releases", tag = "catalog", security(("bearer" = [])),
    responses(
        (status = 200, description = "The releases with their tracks", body = Vec<Release>),
        NoGoodToken,
        (status = 403, description = "Neither an artist nor a manager", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn list_releases<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
) -> Answer<Vec<Release>> {
    Ok(Json(state.label.list_releases(&actor).await?))
}

/// Uploads a release with its tracks, all or nothing (artists only).
#[utoipa::path(
    post, path = "/api/v1/releases", tag = "catalog", security(("bearer" = [])),
    request_body = NewRelease,
    responses(
        (status = 201, description = "The release, `Unpublished`", body = Release),
        MalformedJson,
        NoGoodToken,
        (status = 403, description = "Not an artist", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values or unknown artists, with `errors`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn upload_release<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiJson(body): ApiJson<NewRelease>,
) -> Created<Release> {
    let today = Utc::now().date_naive();
    let release = state.label.upload_release(&actor, body, today).await?;
    Ok((StatusCode::CREATED, Json(release)))
}

/// One release with its tracks, for its owner and the owner's manager.
#[utoipa::path(
    get, path = "/api/v1/releases/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Release id")),
    responses(
        (status = 200, description = "The release", body = Release),
        NotAnId,
        NoGoodToken,
        (status = 404, description = "No such release, or not the caller's to see", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn get_release<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiPath(id): ApiPath<ReleaseId>,
) -> Answer<Release> {
    Ok(Json(state.label.get_release(&actor, id).await?))
}

/// One track, for its participating artists and their managers.
#[utoipa::path(
    get, path = "/api/v1/tracks/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Track id")),
    responses(
        (status = 200, description = "The track", body = Track),
        NotAnId,
        NoGoodToken,
        (status = 404, description = "No such track, or not the caller's to see", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn get_track<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiPath(id): ApiPath<TrackId>,
) -> Answer<Track> {
    Ok(Json(state.label.get_track(&actor, id).await?))
}

/// The caller's publications (artist) or their artists' publications (manager).
#[utoipa::path(
    get, path = "/api/v1/publications", tag = "catalog", security(("bearer" = [])),
    responses(
        (status = 200, description = "The publications", body = Vec<Publication>),
        NoGoodToken,
        (status = 403, description = "Neither an artist nor a manager", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn list_publications<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
) -> Answer<Vec<Publication>> {
    Ok(Json(state.label.list_publications(&actor).await?))
}

// ---- requests

/// The caller's requests (non-member, artist) or those assigned to them (manager), newest
/// first.
#[utoipa::path(
    get, path = "/api/v1/requests", tag = "requests", security(("bearer" = [])),
    params(RequestListQuery),
    responses(
        (status = 200, description = "A page of requests", body = RequestPage),
        (status = 400, description = "An unknown status or type, or a bad limit", body = ProblemDetails, content_type = "application/problem+json"),
        NoGoodToken,
        (status = 403, description = "An admin (requests are seen by applicants and managers)", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn list_requests<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(query): ApiQuery<RequestListQuery>,
) -> Answer<RequestPage> {
    let filter = RequestFilter {
        status: query.status,
        kind: query.kind,
        limit: query.limit,
        offset: query.offset,
    };
    let page = state.label.list_requests(&actor, filter).await?;
    Ok(Json(RequestPage {
        items: page.items,
        total: page.total,
        limit: query.limit.unwrap_or(PAGE_DEFAULT),
        offset: query.offset.unwrap_or(0),
    }))
}

/// One request with its evaluation, for its applicant and its assigned manager.
#[utoipa::path(
    get, path = "/api/v1/requests/{id}", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = Request),
        NotAnId,
        NoGoodToken,
        (status = 404, description = "No such request, or not the caller's to see", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn get_request<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiPath(id): ApiPath<RequestId>,
) -> Answer<Request> {
    Ok(Json(state.label.get_request(&actor, id).await?))
}

/// Asks to join the label (non-members only). A manager is assigned later.
#[utoipa::path(
    post, path = "/api/v1/requests/sign", tag = "requests", security(("bearer" = [])),
    request_body = SignBody,
    responses(
        (status = 201, description = "The request, `New`", body = Request),
        MalformedJson,
        NoGoodToken,
        (status = 403, description = "Not a non-member", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The nickname is taken, or a sign request is open", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "An invalid nickname", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn apply_sign<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiJson(body): ApiJson<SignBody>,
) -> Created<Request> {
    let request = state
        .label
        .apply_sign(&actor, &body.nickname, Utc::now())
        .await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// Asks to publish one of the caller's releases (artists only). The artist's manager is
/// assigned at once; the evaluation follows.
#[utoipa::path(
    post, path = "/api/v1/requests/publish", tag = "requests", security(("bearer" = [])),
    request_body = PublishBody,
    responses(
        (status = 201, description = "The request, `New`", body = Request),
        (status = 400, description = "Malformed JSON, or the contract ends before the date (`contract_ends_before`)", body = ProblemDetails, content_type = "application/problem+json"),
        NoGoodToken,
        (status = 403, description = "Not an artist, or not the release's owner", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such release", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Published already, or a publish request is open", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "The date is sooner than today + 8 days (`date_too_soon`)", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn apply_publish<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiJson(body): ApiJson<PublishBody>,
) -> Created<Request> {
    let request = state
        .label
        .apply_publish(&actor, body.release_id, body.expected_date, Utc::now())
        .await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// Accepts a request `On approval` (its assigned manager only).
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/accept", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request, `Closed`", body = Request),
        NotAnId,
        NoGoodToken,
        (status = 403, description = "Not a manager", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such request, or not assigned to the caller", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`Not ready` (not yet on approval), `Already closed`, or the date has passed", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn accept<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiPath(id): ApiPath<RequestId>,
) -> Answer<Request> {
    Ok(Json(state.label.accept(&actor, id, Utc::now()).await?))
}

/// Declines an open request (its assigned manager only).
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/decline", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request, `Closed`", body = Request),
        NotAnId,
        NoGoodToken,
        (status = 403, description = "Not a manager", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such request, or not assigned to the caller", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`Already closed`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub async fn decline<S: Store, P: PasswordHasher>(
    State(state): State<ApiState<S, P>>,
    CurrentActor(actor): CurrentActor,
    ApiPath(id): ApiPath<RequestId>,
) -> Answer<Request> {
    Ok(Json(state.label.decline(&actor, id, Utc::now()).await?))
}
