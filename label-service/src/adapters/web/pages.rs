//! The page handlers: each reads the session, calls one or a few use cases and renders a
//! template. Refusals become the error page with the use case's own message. Nothing here
//! decides who may do what; forms are refused without a good CSRF token before any use
//! case runs.

use crate::app::error::ErrorCode;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

use super::WebState;
use super::session::{LoggedIn, SESSION_COOKIE, Session, clear_session, field, set_cookie};
use crate::adapters::http::extract::ClientAddress;
use crate::app::requests::RequestFilter;
use crate::app::{Actor, AppError, PasswordHasher, Store};
use crate::domain::request::{RequestType, Status};
use crate::domain::validation::{NewRelease, NewTrack};
use crate::domain::{
    ArtistId, ManagerId, Release, ReleaseId, ReleaseStatus, Request, RequestId, Role, UserId,
};

type Fields = Vec<(String, String)>;
type FormResult = Result<Form<Fields>, FormRejection>;

fn unreadable_form() -> AppError {
    AppError::bad_input(
        ErrorCode::BadForm,
        "the form could not be read; reload the page and try again",
    )
}

impl<S: Store, P: PasswordHasher> WebState<S, P> {
    /// A signed-in visitor's form post: their session and the fields. An unreadable form,
    /// no session or a bad CSRF token gives the response to send instead.
    async fn posted(
        &self,
        headers: &HeaderMap,
        form: FormResult,
    ) -> Result<(Session, Fields), Response> {
        let Ok(Form(form)) = form else {
            return Err(self.fail(&unreadable_form(), None));
        };
        let session = self.require_form(headers, &form).await?;
        Ok((session, form))
    }

    /// A guest's form post (log in, register): the fields, or the response to send instead
    /// for an unreadable form or a bad CSRF token.
    fn guest_posted(&self, headers: &HeaderMap, form: FormResult) -> Result<Fields, Box<Response>> {
        let Ok(Form(form)) = form else {
            return Err(Box::new(self.fail(&unreadable_form(), None)));
        };
        match self.guest_form_refusal(headers, &form) {
            Some(refused) => Err(Box::new(refused)),
            None => Ok(form),
        }
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn duration(seconds: i32) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, AppError> {
    text.trim()
        .parse()
        .map_err(|_| AppError::bad_input(ErrorCode::BadId, format!("{what} must be a number")))
}

fn see_other(path: String) -> Response {
    Redirect::to(&path).into_response()
}

/// A page's address asked with a method it does not take (a form's address opened as a
/// link, say): the error page, 405, instead of an empty answer.
pub async fn method_not_allowed<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
) -> Response {
    let session = state.session(&headers).await.ok().flatten();
    let err = AppError::bad_input(
        ErrorCode::MethodNotAllowed,
        "this address takes a form sent from its page, not a visit; go back and use the \
         page's button",
    );
    let mut response = state.fail(&err, session.as_ref());
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

// ---- home, log in, register, log out

pub async fn home<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
) -> Response {
    match state.session(&headers).await {
        Ok(Some(_)) => see_other("/profile".into()),
        Ok(None) => see_other("/login".into()),
        Err(err) => state.fail(&err, None),
    }
}

impl<S: Store, P: PasswordHasher> WebState<S, P> {
    /// A guest form page (log in, register) with its token, setting the guest cookie when
    /// the visitor has none.
    fn guest_page(
        &self,
        headers: &HeaderMap,
        status: StatusCode,
        template: &str,
        error: Option<String>,
        fields: Vec<String>,
        values: HashMap<&str, String>,
    ) -> Response {
        let (nonce, set) = self.guest_nonce(headers);
        let csrf = self.csrf_token("guest", &nonce);
        let mut response = self.render(
            status,
            template,
            None,
            minijinja::context! { csrf, error, fields, values },
        );
        if let Some(set) = set {
            response.headers_mut().append(SET_COOKIE, set);
        }
        response
    }

    /// Logs `user` in: the session cookie and a redirect to the profile.
    fn start_session(&self, user: crate::domain::UserId) -> Response {
        match self.tokens.issue(user, Utc::now()) {
            Ok(token) => {
                let mut response = see_other("/profile".into());
                response.headers_mut().append(
                    SET_COOKIE,
                    set_cookie(SESSION_COOKIE, &token, self.tokens.ttl().as_secs()),
                );
                response
            }
            Err(err) => self.fail(&err, None),
        }
    }

    fn guest_error(
        &self,
        headers: &HeaderMap,
        template: &str,
        err: &AppError,
        values: HashMap<&str, String>,
    ) -> Response {
        let status = match err {
            AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::BadInput { .. } => StatusCode::BAD_REQUEST,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => return self.fail(err, None),
        };
        let fields = match err {
            AppError::Invalid { fields, .. } => fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect(),
            _ => Vec::new(),
        };
        self.guest_page(
            headers,
            status,
            template,
            Some(err.to_string()),
            fields,
            values,
        )
    }
}

pub async fn login_form<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
) -> Response {
    if let Ok(Some(_)) = state.session(&headers).await {
        return see_other("/profile".into());
    }
    state.guest_page(
        &headers,
        StatusCode::OK,
        "login.html",
        None,
        Vec::new(),
        HashMap::new(),
    )
}

pub async fn login<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let form = match state.guest_posted(&headers, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let email = field(&form, "email").unwrap_or_default().trim().to_owned();
    let password = field(&form, "password").unwrap_or_default();
    let values = HashMap::from([("email", email.clone())]);
    // The same budget as the API's login: per e-mail address and per client address.
    if let Err(wait) = state.limits.check(address, &email) {
        let err = AppError::bad_input(
            ErrorCode::TooManyAttempts,
            format!(
                "too many attempts; try again in {} seconds",
                wait.as_secs().max(1)
            ),
        );
        return state.guest_error(&headers, "login.html", &err, values);
    }
    match state.label.login(&email, password).await {
        Ok(user) => state.start_session(user.id),
        Err(err) => state.guest_error(&headers, "login.html", &err, values),
    }
}

pub async fn register_form<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
) -> Response {
    state.guest_page(
        &headers,
        StatusCode::OK,
        "register.html",
        None,
        Vec::new(),
        HashMap::new(),
    )
}

pub async fn register<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let form = match state.guest_posted(&headers, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let name = field(&form, "name").unwrap_or_default().to_owned();
    let email = field(&form, "email").unwrap_or_default().trim().to_owned();
    let password = field(&form, "password").unwrap_or_default();
    let values = HashMap::from([("name", name.clone()), ("email", email.clone())]);
    match state.label.register(&name, &email, password).await {
        Ok(user) => state.start_session(user.id),
        Err(err) => state.guest_error(&headers, "register.html", &err, values),
    }
}

pub async fn logout_form<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
) -> Response {
    match state.require(&headers).await {
        Ok(session) => state.render(
            StatusCode::OK,
            "logout.html",
            Some(&session),
            minijinja::context! {},
        ),
        Err(response) => response,
    }
}

pub async fn logout<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    match state.posted(&headers, form).await {
        Ok(_) => clear_session(Redirect::to("/login")),
        Err(response) => response,
    }
}

// ---- profile

#[derive(Debug, Serialize)]
struct ArtistView {
    id: ArtistId,
    nickname: String,
    contract_due: NaiveDate,
    active: bool,
}

pub async fn profile<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    LoggedIn(session): LoggedIn,
) -> Response {
    let actor = &session.actor;
    let manager_name = match state.label.own_manager(actor).await {
        Ok(manager) => manager.map(|m| m.name),
        Err(err) => return state.fail(&err, Some(&session)),
    };
    let mut artists = Vec::new();
    if let Some(manager) = &actor.manager {
        for id in &manager.artist_ids {
            match state.label.get_artist(actor, *id).await {
                Ok(artist) => artists.push(ArtistView {
                    id: artist.id,
                    nickname: artist.nickname,
                    contract_due: artist.contract_due,
                    active: artist.active,
                }),
                Err(err) => return state.fail(&err, Some(&session)),
            }
        }
    }
    state.render(
        StatusCode::OK,
        "profile.html",
        Some(&session),
        minijinja::context! {
            user => actor.user,
            created => when(actor.user.created_at),
            artist => actor.artist,
            manager => actor.manager,
            manager_name,
            artists,
        },
    )
}

// ---- requests

#[derive(Debug, Serialize)]
struct RequestRow {
    id: RequestId,
    kind: &'static str,
    status: &'static str,
    created: String,
    subject: String,
    applicant: String,
    manager: String,
    description: String,
}

#[derive(Debug, Serialize)]
struct ReleaseOption {
    id: ReleaseId,
    title: String,
}

impl<S: Store, P: PasswordHasher> WebState<S, P> {
    /// What a request is about, in words: the nickname asked for, or the release's title.
    async fn subject(&self, actor: &Actor, request: &Request) -> String {
        match (request.kind, &request.nickname, request.release_id) {
            (RequestType::Sign, Some(nickname), _) => nickname.clone(),
            (_, _, Some(release)) => match self.label.get_release(actor, release).await {
                Ok(found) => found.title,
                Err(_) => format!("release #{release}"),
            },
            _ => String::new(),
        }
    }

    /// An artist's nickname when the actor may see it, else their id.
    async fn nickname(&self, actor: &Actor, id: ArtistId) -> String {
        match self.label.get_artist(actor, id).await {
            Ok(artist) => artist.nickname,
            Err(_) => format!("artist #{id}"),
        }
    }
}

/// Rows per page of the requests list.
pub const REQUESTS_PER_PAGE: u32 = 20;

pub async fn requests<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    LoggedIn(session): LoggedIn,
    Query(query): Query<Fields>,
) -> Response {
    state
        .requests_page(&session, &query, None, HashMap::new())
        .await
}

impl<S: Store, P: PasswordHasher> WebState<S, P> {
    /// The requests page: the list (filtered by `status` and `type`, page `page` of
    /// [`REQUESTS_PER_PAGE`]), and the forms to apply. After a refused form, `refused` is
    /// shown above it and `values` keep what was typed.
    async fn requests_page(
        &self,
        session: &Session,
        query: &[(String, String)],
        refused: Option<&AppError>,
        values: HashMap<&str, String>,
    ) -> Response {
        let actor = &session.actor;
        let status_text = field(query, "status").unwrap_or_default().to_owned();
        let kind_text = field(query, "type").unwrap_or_default().to_owned();
        let status = match optional(&status_text, Status::parse, ErrorCode::BadStatus, "status") {
            Ok(status) => status,
            Err(err) => return self.fail(&err, Some(session)),
        };
        let kind = match optional(
            &kind_text,
            RequestType::parse,
            ErrorCode::BadType,
            "request type",
        ) {
            Ok(kind) => kind,
            Err(err) => return self.fail(&err, Some(session)),
        };
        let page_number = match field(query, "page").unwrap_or("1").trim().parse::<u32>() {
            Ok(number) if number >= 1 => number,
            _ => {
                let err =
                    AppError::bad_input(ErrorCode::BadLimit, "page must be a number from 1 up");
                return self.fail(&err, Some(session));
            }
        };
        let filter = RequestFilter {
            status,
            kind,
            limit: Some(REQUESTS_PER_PAGE),
            offset: Some((page_number - 1).saturating_mul(REQUESTS_PER_PAGE)),
        };
        let page = match self.label.list_requests(actor, filter).await {
            Ok(page) => page,
            Err(err) => return self.fail(&err, Some(session)),
        };
        let mut rows = Vec::with_capacity(page.items.len());
        for request in &page.items {
            rows.push(RequestRow {
                id: request.id,
                kind: request.kind.as_str(),
                status: request.status.as_str(),
                created: when(request.created_at),
                subject: self.subject(actor, request).await,
                applicant: request.applicant_name.clone(),
                manager: request.manager_name.clone().unwrap_or_default(),
                description: request.description.clone(),
            });
        }
        let pages = u32::try_from(page.total)
            .unwrap_or(u32::MAX)
            .div_ceil(REQUESTS_PER_PAGE)
            .max(1);
        let link = |number: u32| {
            let mut link = format!("/requests?page={number}");
            if !status_text.is_empty() {
                link.push_str(&format!("&status={}", status_text.replace(' ', "+")));
            }
            if !kind_text.is_empty() {
                link.push_str(&format!("&type={kind_text}"));
            }
            link
        };
        let newer = (page_number > 1).then(|| link(page_number - 1));
        let older = (page_number < pages).then(|| link(page_number + 1));
        let mut unpublished = Vec::new();
        if actor.role() == Role::Artist {
            match self.label.list_releases(actor).await {
                Ok(releases) => unpublished.extend(
                    releases
                        .into_iter()
                        .filter(|r| r.status == ReleaseStatus::Unpublished)
                        .map(|r| ReleaseOption {
                            id: r.id,
                            title: r.title,
                        }),
                ),
                Err(err) => return self.fail(&err, Some(session)),
            }
        }
        let today = Utc::now().date_naive();
        let publish_default = today.checked_add_days(Days::new(14)).unwrap_or(today);
        let publish_min = today.checked_add_days(Days::new(8)).unwrap_or(today);
        let (http_status, error, fields) = match refused {
            Some(err) => (error_status(err), Some(err.to_string()), field_lines(err)),
            None => (StatusCode::OK, None, Vec::new()),
        };
        self.render(
            http_status,
            "requests.html",
            Some(session),
            minijinja::context! {
                rows,
                total => page.total,
                page => page_number,
                pages,
                newer,
                older,
                status => status_text,
                kind => kind_text,
                statuses => ["New", "Processing", "On approval", "Closed"],
                kinds => ["Sign", "Publish"],
                role => actor.role().as_str(),
                unpublished,
                publish_default => values
                    .get("expected_date")
                    .cloned()
                    .unwrap_or_else(|| publish_default.to_string()),
                publish_min => publish_min.to_string(),
                error,
                fields,
                values,
            },
        )
    }
}

/// A filter value of the query string: none when empty, else what `parse` makes of it.
fn optional<T>(
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
    code: ErrorCode,
    what: &str,
) -> Result<Option<T>, AppError> {
    if text.is_empty() {
        return Ok(None);
    }
    parse(text)
        .map(Some)
        .ok_or_else(|| AppError::bad_input(code, format!("no {what} is called {text:?}")))
}

/// The status of the page that shows a refusal next to the form it refused.
fn error_status(err: &AppError) -> StatusCode {
    match err {
        AppError::BadInput { .. } => StatusCode::BAD_REQUEST,
        AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `field: message` for each field of an invalid value.
fn field_lines(err: &AppError) -> Vec<String> {
    match err {
        AppError::Invalid { fields, .. } => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect(),
        _ => Vec::new(),
    }
}

pub async fn request<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    Query(query): Query<Fields>,
) -> Response {
    let actor = &session.actor;
    let found = match parse_id(&id, "a request id") {
        Ok(id) => state.label.get_request(actor, id).await,
        Err(err) => Err(err),
    };
    let request = match found {
        Ok(request) => request,
        Err(err) => return state.fail(&err, Some(&session)),
    };
    let assigned = actor.role() == Role::Manager
        && request.manager_id.is_some()
        && actor.manager.as_ref().map(|m| m.id) == request.manager_id;
    let subject = state.subject(actor, &request).await;
    // The confirmation after Accept or Decline, in words that say what happened.
    let done = match (field(&query, "done"), request.kind) {
        (Some("accepted"), RequestType::Sign) => Some(format!(
            "You accepted this request: {} is now an artist of the label, with you as \
             their manager.",
            request.nickname.as_deref().unwrap_or("the applicant")
        )),
        (Some("accepted"), RequestType::Publish) => Some(format!(
            "You accepted this request: {subject} will be published on {}.",
            request
                .expected_date
                .map_or_else(|| "its expected date".to_owned(), |d| d.to_string())
        )),
        (Some("declined"), _) => Some(format!(
            "You declined this request; {} has been told.",
            request.applicant_name
        )),
        _ => None,
    };
    state.render(
        StatusCode::OK,
        "request.html",
        Some(&session),
        minijinja::context! {
            done,
            request,
            kind => request.kind.as_str(),
            status => request.status.as_str(),
            created => when(request.created_at),
            subject,
            assigned,
            open => request.status.is_open(),
            ready => request.status == Status::OnApproval,
        },
    )
}

pub async fn apply_sign<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (session, form) = match state.posted(&headers, form).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let nickname = field(&form, "nickname").unwrap_or_default();
    match state
        .label
        .apply_sign(&session.actor, nickname, Utc::now())
        .await
    {
        Ok(request) => see_other(format!("/requests/{}", request.id)),
        // The list again, the reason above the form, the nickname as typed.
        Err(err) => {
            let values = HashMap::from([("nickname", nickname.to_owned())]);
            state.requests_page(&session, &[], Some(&err), values).await
        }
    }
}

pub async fn apply_publish<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (session, form) = match state.posted(&headers, form).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let values = HashMap::from([
        (
            "release_id",
            field(&form, "release_id").unwrap_or_default().to_owned(),
        ),
        (
            "expected_date",
            field(&form, "expected_date").unwrap_or_default().to_owned(),
        ),
    ]);
    let release = parse_id(
        field(&form, "release_id").unwrap_or_default(),
        "the release",
    );
    let date = field(&form, "expected_date")
        .unwrap_or_default()
        .trim()
        .parse::<NaiveDate>()
        .map_err(|_| {
            AppError::bad_input(
                ErrorCode::BadDate,
                "the expected date must be a day such as 2030-01-31",
            )
        });
    let applied = match (release, date) {
        (Ok(release), Ok(date)) => {
            state
                .label
                .apply_publish(&session.actor, release, date, Utc::now())
                .await
        }
        (Err(err), _) | (_, Err(err)) => Err(err),
    };
    match applied {
        Ok(request) => see_other(format!("/requests/{}", request.id)),
        Err(err) => state.requests_page(&session, &[], Some(&err), values).await,
    }
}

async fn decide<S: Store, P: PasswordHasher>(
    state: WebState<S, P>,
    headers: HeaderMap,
    id: String,
    form: FormResult,
    accept: bool,
) -> Response {
    let (session, _) = match state.posted(&headers, form).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let id = match parse_id(&id, "a request id") {
        Ok(id) => id,
        Err(err) => return state.fail(&err, Some(&session)),
    };
    let decided = if accept {
        state.label.accept(&session.actor, id, Utc::now()).await
    } else {
        state.label.decline(&session.actor, id, Utc::now()).await
    };
    match decided {
        Ok(request) => see_other(format!(
            "/requests/{}?done={}",
            request.id,
            if accept { "accepted" } else { "declined" }
        )),
        Err(err) => state.fail(&err, Some(&session)),
    }
}

pub async fn accept<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: FormResult,
) -> Response {
    decide(state, headers, id, form, true).await
}

pub async fn decline<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: FormResult,
) -> Response {
    decide(state, headers, id, form, false).await
}

// ---- releases

#[derive(Debug, Serialize)]
struct ReleaseRow {
    id: ReleaseId,
    title: String,
    created_on: NaiveDate,
    status: &'static str,
    artist: String,
    tracks: usize,
}

#[derive(Debug, Serialize)]
struct TrackRow {
    title: String,
    duration: String,
    genre: String,
    kind: String,
    artists: Vec<String>,
}

pub async fn releases<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    LoggedIn(session): LoggedIn,
) -> Response {
    let actor = &session.actor;
    let releases = match state.label.list_releases(actor).await {
        Ok(releases) => releases,
        Err(err) => return state.fail(&err, Some(&session)),
    };
    let mut names: HashMap<ArtistId, String> = HashMap::new();
    let mut rows = Vec::with_capacity(releases.len());
    for release in releases {
        if let Entry::Vacant(slot) = names.entry(release.artist_id) {
            slot.insert(state.nickname(actor, release.artist_id).await);
        }
        rows.push(ReleaseRow {
            id: release.id,
            title: release.title,
            created_on: release.created_on,
            status: release.status.as_str(),
            artist: names[&release.artist_id].clone(),
            tracks: release.tracks.len(),
        });
    }
    state.render(
        StatusCode::OK,
        "releases.html",
        Some(&session),
        minijinja::context! { rows, artist => actor.role() == Role::Artist },
    )
}

pub async fn release<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
) -> Response {
    let actor = &session.actor;
    let found = match parse_id(&id, "a release id") {
        Ok(id) => state.label.get_release(actor, id).await,
        Err(err) => Err(err),
    };
    let release: Release = match found {
        Ok(release) => release,
        Err(err) => return state.fail(&err, Some(&session)),
    };
    let mut names: HashMap<ArtistId, String> = HashMap::new();
    let mut tracks = Vec::with_capacity(release.tracks.len());
    for track in &release.tracks {
        let mut artists = Vec::new();
        for artist in &track.artist_ids {
            if let Entry::Vacant(slot) = names.entry(*artist) {
                slot.insert(state.nickname(actor, *artist).await);
            }
            artists.push(names[artist].clone());
        }
        tracks.push(TrackRow {
            title: track.title.clone(),
            duration: duration(track.duration_seconds),
            genre: track.genre.clone(),
            kind: track.kind.clone(),
            artists,
        });
    }
    let owner = state.nickname(actor, release.artist_id).await;
    state.render(
        StatusCode::OK,
        "release.html",
        Some(&session),
        minijinja::context! {
            release,
            status => release.status.as_str(),
            owner,
            tracks,
            can_publish => actor.is_artist(release.artist_id)
                && release.status == ReleaseStatus::Unpublished,
        },
    )
}

pub async fn release_form<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    LoggedIn(session): LoggedIn,
) -> Response {
    if let Err(err) = session.actor.as_artist("only artists upload releases") {
        return state.fail(&err, Some(&session));
    }
    state.release_form_page(&session, None, &[])
}

/// Seconds from `205` or `3:25`.
fn parse_duration(text: &str) -> Option<i32> {
    let text = text.trim();
    match text.split_once(':') {
        Some((minutes, seconds)) => {
            let minutes: i32 = minutes.trim().parse().ok()?;
            let seconds: i32 = seconds.trim().parse().ok()?;
            if !(0..60).contains(&seconds) || minutes < 0 {
                return None;
            }
            minutes.checked_mul(60)?.checked_add(seconds)
        }
        None => text.parse().ok(),
    }
}

/// The release of the upload form: the n-th value of each track field makes the n-th
/// track; rows left wholly empty are skipped.
fn release_from_form(form: &[(String, String)]) -> Result<NewRelease, AppError> {
    let mut tracks = Vec::new();
    for (index, row) in track_rows(form).into_iter().enumerate() {
        if [
            &row.title,
            &row.duration,
            &row.genre,
            &row.kind,
            &row.artists,
        ]
        .iter()
        .all(|v| v.trim().is_empty())
        {
            continue;
        }
        let number = index + 1;
        let duration_seconds = parse_duration(&row.duration).ok_or_else(|| {
            AppError::bad_input(
                ErrorCode::BadDuration,
                format!(
                    "track {number}: the duration must be seconds or minutes:seconds, such as 3:25"
                ),
            )
        })?;
        let artist_ids = row
            .artists
            .split([',', ' '])
            .filter(|id| !id.trim().is_empty())
            .map(|id| parse_id(id, &format!("track {number}: an artist id")))
            .collect::<Result<Vec<_>, _>>()?;
        tracks.push(NewTrack {
            title: row.title,
            duration_seconds,
            genre: row.genre,
            kind: row.kind,
            artist_ids,
        });
    }
    let date = match field(form, "date").unwrap_or_default().trim() {
        "" => None,
        text => Some(text.parse::<NaiveDate>().map_err(|_| {
            AppError::bad_input(
                ErrorCode::BadDate,
                "the date must be a day such as 2030-01-31",
            )
        })?),
    };
    Ok(NewRelease {
        title: field(form, "title").unwrap_or_default().to_owned(),
        date,
        tracks,
    })
}

pub async fn upload_release<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (session, form) = match state.posted(&headers, form).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let uploaded = match release_from_form(&form) {
        Ok(release) => {
            state
                .label
                .upload_release(&session.actor, release, Utc::now().date_naive())
                .await
        }
        Err(err) => Err(err),
    };
    match uploaded {
        Ok(release) => see_other(format!("/releases/{}", release.id)),
        // The form again, the reason above it, every field as typed.
        Err(err) => state.release_form_page(&session, Some(&err), &form),
    }
}

/// One track row of the upload form, as typed.
#[derive(Debug, Default, Serialize)]
struct TrackInput {
    title: String,
    duration: String,
    genre: String,
    kind: String,
    artists: String,
}

/// The track rows of the upload form: the n-th value of each track field makes the n-th
/// row (a row has as many as there are titles; a missing cell is empty).
fn track_rows(form: &[(String, String)]) -> Vec<TrackInput> {
    let column = |name: &str| -> Vec<&str> {
        form.iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    };
    let (durations, genres, kinds, artists) = (
        column("track_duration"),
        column("track_genre"),
        column("track_type"),
        column("track_artists"),
    );
    let cell =
        |values: &[&str], index: usize| values.get(index).copied().unwrap_or_default().to_owned();
    column("track_title")
        .into_iter()
        .enumerate()
        .map(|(index, title)| TrackInput {
            title: title.to_owned(),
            duration: cell(&durations, index),
            genre: cell(&genres, index),
            kind: cell(&kinds, index),
            artists: cell(&artists, index),
        })
        .collect()
}

impl<S: Store, P: PasswordHasher> WebState<S, P> {
    /// The upload form: empty, or after a refusal with what was typed and why.
    fn release_form_page(
        &self,
        session: &Session,
        refused: Option<&AppError>,
        form: &[(String, String)],
    ) -> Response {
        let mut tracks = track_rows(form);
        if tracks.is_empty() {
            tracks.push(TrackInput::default());
        }
        let (status, error, fields) = match refused {
            Some(err) => (error_status(err), Some(err.to_string()), field_lines(err)),
            None => (StatusCode::OK, None, Vec::new()),
        };
        let today = Utc::now().date_naive().to_string();
        self.render(
            status,
            "release_new.html",
            Some(session),
            minijinja::context! {
                title => field(form, "title").unwrap_or_default(),
                date => field(form, "date").map_or(today, str::to_owned),
                tracks,
                error,
                fields,
            },
        )
    }
}

// ---- admin

#[derive(Debug, Serialize)]
struct UserRow {
    id: UserId,
    name: String,
    email: String,
    role: &'static str,
    created: String,
    appointable: bool,
}

#[derive(Debug, Serialize)]
struct ManagerRow {
    id: ManagerId,
    user_id: UserId,
    name: String,
    artists: Vec<ArtistView>,
}

pub async fn admin_users<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    LoggedIn(session): LoggedIn,
) -> Response {
    let users = match state.label.list_users(&session.actor).await {
        Ok(users) => users,
        Err(err) => return state.fail(&err, Some(&session)),
    };
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|u| UserRow {
            id: u.id,
            appointable: u.role == Role::NonMember,
            name: u.name,
            email: u.email,
            role: u.role.as_str(),
            created: when(u.created_at),
        })
        .collect();
    state.render(
        StatusCode::OK,
        "admin_users.html",
        Some(&session),
        minijinja::context! { rows },
    )
}

pub async fn appoint<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (session, form) = match state.posted(&headers, form).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let ids = form
        .iter()
        .filter(|(key, _)| key == "user_id")
        .map(|(_, value)| parse_id(value, "a user id"))
        .collect::<Result<Vec<_>, _>>();
    let appointed = match ids {
        Ok(ids) => state.label.appoint_managers(&session.actor, &ids).await,
        Err(err) => Err(err),
    };
    match appointed {
        Ok(_) => see_other("/admin/managers".into()),
        Err(err) => state.fail(&err, Some(&session)),
    }
}

pub async fn admin_managers<S: Store, P: PasswordHasher>(
    State(state): State<WebState<S, P>>,
    LoggedIn(session): LoggedIn,
) -> Response {
    let actor = &session.actor;
    let managers = match state.label.list_managers(actor).await {
        Ok(managers) => managers,
        Err(err) => return state.fail(&err, Some(&session)),
    };
    let mut rows = Vec::with_capacity(managers.len());
    for manager in managers {
        let mut artists = Vec::with_capacity(manager.artist_ids.len());
        for id in &manager.artist_ids {
            match state.label.get_artist(actor, *id).await {
                Ok(artist) => artists.push(ArtistView {
                    id: artist.id,
                    nickname: artist.nickname,
                    contract_due: artist.contract_due,
                    active: artist.active,
                }),
                Err(err) => return state.fail(&err, Some(&session)),
            }
        }
        rows.push(ManagerRow {
            id: manager.id,
            user_id: manager.user_id,
            name: manager.name,
            artists,
        });
    }
    state.render(
        StatusCode::OK,
        "admin_managers.html",
        Some(&session),
        minijinja::context! { rows },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_seconds_or_minutes_and_seconds() {
        assert_eq!(parse_duration("205"), Some(205));
        assert_eq!(parse_duration(" 3:25 "), Some(205));
        assert_eq!(parse_duration("3:75"), None);
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(duration(205), "3:25");
    }

    #[test]
    fn track_rows_are_read_in_order_and_empty_rows_skipped() {
        let form: Fields = [
            ("title", "An album"),
            ("track_title", "One"),
            ("track_duration", "1:00"),
            ("track_genre", "rock"),
            ("track_type", "song"),
            ("track_artists", ""),
            ("track_title", ""),
            ("track_duration", ""),
            ("track_genre", ""),
            ("track_type", ""),
            ("track_artists", ""),
            ("track_title", "Two"),
            ("track_duration", "90"),
            ("track_genre", "pop"),
            ("track_type", "intro"),
            ("track_artists", "7, 9"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let release = release_from_form(&form).expect("a release");
        assert_eq!(release.title, "An album");
        assert_eq!(release.tracks.len(), 2);
        assert_eq!(release.tracks[0].duration_seconds, 60);
        assert_eq!(release.tracks[1].artist_ids, vec![ArtistId(7), ArtistId(9)]);
    }
}
