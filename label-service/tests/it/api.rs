//! The HTTP API through the in-process router against a fresh PostgreSQL database: an insta
//! snapshot of the body of each endpoint's success and its main refusals, and the OpenAPI
//! document. Deferred steps are run by calling `Label::run_step`, as the Kafka consumer
//! would.
//!
//! The `harness` module is shared by the other HTTP test modules (authz, security,
//! concurrency).

use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use self::harness::{Api, PASSWORD, day_in};

pub(crate) mod harness {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
    use axum::http::{HeaderMap, Method, Request, StatusCode};
    use chrono::{Days, NaiveDate, Utc};
    use http_body_util::BodyExt as _;
    use label_service::adapters::http::{AuthSettings, router};
    use label_service::adapters::passwords::Argon2Hasher;
    use label_service::adapters::postgres::PgStore;
    use label_service::app::Label;
    use label_service::app::deferred::StepOutcome;
    use label_service::app::ports::{DeferredAction, Step};
    use secrecy::SecretString;
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    use crate::db::TestDb;

    /// The JWT secret of the routers under test.
    pub const SECRET: &str = "an-http-test-secret-that-is-long-enough-0123";
    pub const ADMIN_EMAIL: &str = "admin@label.test";
    pub const ADMIN_PASSWORD: &str = "admin-password-for-http-tests";
    /// Everyone else's password.
    pub const PASSWORD: &str = "member-password-for-http-tests";

    /// An answer, with its body as text and as JSON (`Null` when it is not JSON).
    #[derive(Debug)]
    pub struct Reply {
        pub status: StatusCode,
        pub headers: HeaderMap,
        pub text: String,
        pub body: Value,
    }

    impl Reply {
        /// The problem's `code` (empty when there is none).
        pub fn code(&self) -> &str {
            self.body["code"].as_str().unwrap_or_default()
        }

        /// Status and body together, for snapshots.
        pub fn snapshot(&self) -> Value {
            json!({"status": self.status.as_u16(), "body": self.body})
        }
    }

    /// A logged-in user.
    #[derive(Debug, Clone)]
    pub struct Session {
        pub user_id: i64,
        pub token: String,
    }

    /// A manager and their manager id.
    #[derive(Debug, Clone)]
    pub struct Manager {
        pub session: Session,
        pub id: i64,
    }

    /// An artist, their artist id and their manager's id.
    #[derive(Debug, Clone)]
    pub struct Artist {
        pub session: Session,
        pub id: i64,
        pub manager_id: i64,
    }

    /// The router over a fresh database, and the use cases behind it.
    pub struct Api {
        pub label: Label<PgStore, Argon2Hasher>,
        pub db: TestDb,
        router: Router,
    }

    /// Today + `days`.
    pub fn day_in(days: u64) -> NaiveDate {
        Utc::now()
            .date_naive()
            .checked_add_days(Days::new(days))
            .expect("a date")
    }

    /// The settings of the routers under test.
    pub fn auth_settings() -> AuthSettings {
        AuthSettings {
            jwt_secret: SecretString::from(SECRET),
            ..AuthSettings::default()
        }
    }

    impl Api {
        pub async fn new() -> Self {
            Self::with_auth(auth_settings()).await
        }

        pub async fn with_auth(auth: AuthSettings) -> Self {
            let db = TestDb::new().await;
            let label = db.label();
            let limits = label_service::adapters::http::limits::LoginLimits::from_settings(&auth);
            let router = router(label.clone(), auth, limits);
            Self { label, db, router }
        }

        /// Sends a request as it is and checks what every answer must hold: errors are
        /// problem+json with a `code`, 401s challenge for a bearer token, and no answer
        /// carries a password or a hash.
        pub async fn send(&self, request: Request<Body>) -> Reply {
            let what = format!("{} {}", request.method(), request.uri());
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router answers");
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("a body")
                .to_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            for secret in ["$argon2", PASSWORD, ADMIN_PASSWORD] {
                assert!(
                    !text.contains(secret),
                    "{what}: the answer shows {secret}: {text}"
                );
            }
            if status.is_client_error() || status.is_server_error() {
                assert_eq!(
                    headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
                    Some(&b"application/problem+json"[..]),
                    "{what}: {status} {text}"
                );
                assert_eq!(body["status"], status.as_u16(), "{what}: {text}");
                assert!(body["code"].is_string(), "{what}: {text}");
            }
            if status == StatusCode::UNAUTHORIZED {
                let challenge = headers
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
            }
            Reply {
                status,
                headers,
                text,
                body,
            }
        }

        /// A request to `/api/v1{path}`, with a bearer token and a JSON body when given,
        /// from `client` when given.
        pub async fn call_from(
            &self,
            client: Option<SocketAddr>,
            method: Method,
            path: &str,
            token: Option<&str>,
            body: Option<&Value>,
        ) -> Reply {
            let mut request = Request::builder()
                .method(method)
                .uri(format!("/api/v1{path}"));
            if let Some(token) = token {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            let mut request = match body {
                Some(body) => request
                    .header(CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string())),
                None => request.body(Body::empty()),
            }
            .expect("a request");
            if let Some(client) = client {
                request.extensions_mut().insert(ConnectInfo(client));
            }
            self.send(request).await
        }

        pub async fn call(
            &self,
            method: Method,
            path: &str,
            token: Option<&str>,
            body: Option<&Value>,
        ) -> Reply {
            self.call_from(None, method, path, token, body).await
        }

        pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
            self.call(Method::GET, path, token, None).await
        }

        pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
            self.call(Method::POST, path, token, Some(body)).await
        }

        /// A raw request to any path (no prefix), such as `/docs`.
        pub async fn get_raw(&self, path: &str) -> Reply {
            self.send(
                Request::builder()
                    .uri(path)
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await
        }

        /// The configured admin, created as at start-up, logged in.
        pub async fn admin(&self) -> Session {
            self.label
                .ensure_admin("Ada Admin", ADMIN_EMAIL, ADMIN_PASSWORD)
                .await
                .expect("the admin");
            self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
        }

        pub async fn login(&self, email: &str, password: &str) -> Session {
            let reply = self
                .post(
                    "/auth/login",
                    None,
                    &json!({"email": email, "password": password}),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "login {email}: {}",
                reply.text
            );
            session(&reply.body)
        }

        /// The e-mail address of a test user: `Ann Lee` is `ann.lee@example.com`.
        pub fn email(name: &str) -> String {
            format!("{}@example.com", name.to_lowercase().replace(' ', "."))
        }

        /// Registers a non-member.
        pub async fn register(&self, name: &str) -> Session {
            let reply = self
                .post(
                    "/auth/register",
                    None,
                    &json!({"name": name, "email": Self::email(name), "password": PASSWORD}),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "register {name}: {}",
                reply.text
            );
            session(&reply.body)
        }

        /// Registers a user and has the admin appoint them.
        pub async fn manager(&self, admin: &Session, name: &str) -> Manager {
            let session = self.register(name).await;
            let reply = self
                .post(
                    "/managers",
                    Some(&admin.token),
                    &json!({"user_ids": [session.user_id]}),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "appoint {name}: {}",
                reply.text
            );
            Manager {
                session,
                id: reply.body[0]["id"].as_i64().expect("manager id"),
            }
        }

        /// Runs a deferred step now, as the consumer would.
        pub async fn run(&self, request_id: i64, step: Step) -> StepOutcome {
            let now = Utc::now();
            self.label
                .run_step(
                    &DeferredAction {
                        request_id: label_service::domain::RequestId(request_id),
                        step,
                        attempt: 1,
                        enqueued_at: now,
                    },
                    now,
                )
                .await
                .expect("the step runs")
        }

        /// A non-member's sign request, `New`; its id.
        pub async fn apply_sign(&self, applicant: &Session, nickname: &str) -> i64 {
            let reply = self
                .post(
                    "/requests/sign",
                    Some(&applicant.token),
                    &json!({"nickname": nickname}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
            reply.body["id"].as_i64().expect("request id")
        }

        /// A sign request assigned to a manager (`On approval`); the manager's id.
        pub async fn assigned_sign(&self, applicant: &Session, nickname: &str) -> (i64, i64) {
            let id = self.apply_sign(applicant, nickname).await;
            assert!(
                matches!(
                    self.run(id, Step::AssignManager).await,
                    StepOutcome::Done(_)
                ),
                "a manager is assigned"
            );
            let reply = self
                .get(&format!("/requests/{id}"), Some(&applicant.token))
                .await;
            assert_eq!(reply.body["status"], "On approval", "{}", reply.text);
            (id, reply.body["manager_id"].as_i64().expect("a manager"))
        }

        /// Registers a user who asks to join and is accepted by the manager the deferred
        /// step assigns (one of `managers`).
        pub async fn artist(&self, name: &str, nickname: &str, managers: &[&Manager]) -> Artist {
            let session = self.register(name).await;
            let (request, manager_id) = self.assigned_sign(&session, nickname).await;
            let manager = managers
                .iter()
                .find(|m| m.id == manager_id)
                .expect("the assigned manager is one of those given");
            let reply = self
                .post(
                    &format!("/requests/{request}/accept"),
                    Some(&manager.session.token),
                    &json!({}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let me = self.get("/me", Some(&session.token)).await;
            Artist {
                id: me.body["artist"]["id"].as_i64().expect("an artist"),
                session,
                manager_id,
            }
        }

        /// An artist's release with two tracks; its JSON.
        pub async fn release(&self, artist: &Session, title: &str) -> Value {
            let reply = self
                .post(
                    "/releases",
                    Some(&artist.token),
                    &json!({
                        "title": title,
                        "tracks": [
                            {"title": format!("{title} I"), "duration_seconds": 214, "genre": "rock", "type": "song"},
                            {"title": format!("{title} II"), "duration_seconds": 95, "genre": "rock", "type": "intro"}
                        ]
                    }),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
            reply.body
        }

        /// A publish request for `release` in 10 days; its id.
        pub async fn apply_publish(&self, artist: &Session, release: i64) -> i64 {
            let reply = self
                .post(
                    "/requests/publish",
                    Some(&artist.token),
                    &json!({"release_id": release, "expected_date": day_in(10)}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
            reply.body["id"].as_i64().expect("request id")
        }
    }

    fn session(body: &Value) -> Session {
        Session {
            user_id: body["user"]["id"].as_i64().expect("user id"),
            token: body["token"].as_str().expect("token").to_owned(),
        }
    }
}

/// Replaces a value by `label`, but keeps `null`: a date that is absent must stay visibly
/// absent in the snapshot.
fn unless_null(label: &'static str) -> insta::internals::Redaction {
    insta::dynamic_redaction(
        move |value, _| {
            if value.is_nil() { value } else { label.into() }
        },
    )
}

/// Snapshots status and body, with volatile values (tokens, times, dates relative to
/// today) redacted and keys sorted (serde_json's key order depends on the build's
/// features).
macro_rules! snapshot {
    ($name:expr, $reply:expr) => {
        insta::with_settings!({sort_maps => true}, {
            insta::assert_json_snapshot!($name, $reply.snapshot(), {
                ".**.token" => "[token]",
                ".**.created_at" => "[timestamp]",
                ".**.created_on" => unless_null("[date]"),
                ".**.contract_due" => unless_null("[date]"),
                ".**.expected_date" => unless_null("[date]"),
                ".**.scheduled_on" => unless_null("[date]"),
            });
        })
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_login_and_me() {
    let api = Api::new().await;
    let body = json!({"name": "Ann Lee", "email": "ann.lee@example.com", "password": PASSWORD});
    let registered = api.post("/auth/register", None, &body).await;
    assert_eq!(registered.status, StatusCode::CREATED);
    snapshot!("register_201", registered);
    let token = registered.body["token"].as_str().expect("token");

    let me = api.get("/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK);
    snapshot!("me_nonmember_200", me);

    let taken = api
        .post(
            "/auth/register",
            None,
            &json!({"name": "Ann Two", "email": "ANN.Lee@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    snapshot!("register_409_email_taken", taken);

    let invalid = api
        .post(
            "/auth/register",
            None,
            &json!({"name": " ", "email": "not-an-address", "password": "short"}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    snapshot!("register_422_invalid", invalid);

    let login = api
        .post(
            "/auth/login",
            None,
            &json!({"email": "Ann.Lee@Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        login.status,
        StatusCode::OK,
        "the address is case-insensitive"
    );
    snapshot!("login_200", login);

    let wrong_password = api
        .post(
            "/auth/login",
            None,
            &json!({"email": "ann.lee@example.com", "password": "not-her-password"}),
        )
        .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    snapshot!("login_401", wrong_password);
    let unknown = api
        .post(
            "/auth/login",
            None,
            &json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.body, wrong_password.body,
        "a wrong address and a wrong password get the same answer"
    );

    let guest = api.get("/me", None).await;
    assert_eq!(guest.status, StatusCode::UNAUTHORIZED);
    snapshot!("me_401_guest", guest);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_requests() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let maria = api.manager(&admin, "Maria Manager").await;
    let nova = api.artist("Nova Star", "Nova", &[&maria]).await;

    let me = api.get("/me", Some(&nova.session.token)).await;
    snapshot!("me_artist_200", me);
    let me = api.get("/me", Some(&maria.session.token)).await;
    snapshot!("me_manager_200", me);

    let bo = api.register("Bo Diddley").await;
    let applied = api
        .post(
            "/requests/sign",
            Some(&bo.token),
            &json!({"nickname": "Bo"}),
        )
        .await;
    assert_eq!(applied.status, StatusCode::CREATED);
    snapshot!("sign_201", applied);

    let again = api
        .post(
            "/requests/sign",
            Some(&bo.token),
            &json!({"nickname": "Bo Again"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    snapshot!("sign_409_open_request", again);

    let cy = api.register("Cy Twombly").await;
    let artist_has_it = api
        .post(
            "/requests/sign",
            Some(&cy.token),
            &json!({"nickname": "Nova"}),
        )
        .await;
    assert_eq!(artist_has_it.status, StatusCode::CONFLICT);
    snapshot!("sign_409_nickname_taken", artist_has_it);
    let request_has_it = api
        .post(
            "/requests/sign",
            Some(&cy.token),
            &json!({"nickname": "Bo"}),
        )
        .await;
    assert_eq!(request_has_it.status, StatusCode::CONFLICT);
    assert_eq!(
        request_has_it.code(),
        "nickname_taken",
        "{}",
        request_has_it.text
    );

    let too_long = api
        .post(
            "/requests/sign",
            Some(&cy.token),
            &json!({"nickname": "x".repeat(33)}),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    snapshot!("sign_422_nickname", too_long);

    let artist = api
        .post(
            "/requests/sign",
            Some(&nova.session.token),
            &json!({"nickname": "Nova Two"}),
        )
        .await;
    assert_eq!(artist.status, StatusCode::FORBIDDEN);
    snapshot!("sign_403_artist", artist);
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_and_publish_requests() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let maria = api.manager(&admin, "Maria Manager").await;
    let nova = api.artist("Nova Star", "Nova", &[&maria]).await;
    let rex = api.artist("Rex Rival", "Rex", &[&maria]).await;
    let token = Some(nova.session.token.as_str());

    let uploaded = api
        .post(
            "/releases",
            token,
            &json!({
                "title": "Night Drive",
                "tracks": [
                    {"title": "Neon Highway", "duration_seconds": 214, "genre": "rock", "type": "song"},
                    {"title": "Static Hearts", "duration_seconds": 187, "genre": "rock", "type": "remix", "artist_ids": [rex.id]}
                ]
            }),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED);
    snapshot!("releases_upload_201", uploaded);
    let release = uploaded.body["id"].as_i64().expect("id");

    let invalid = api
        .post(
            "/releases",
            token,
            &json!({
                "title": "",
                "tracks": [{"title": "x".repeat(65), "duration_seconds": 0, "genre": "rock", "type": "song"}]
            }),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    snapshot!("releases_upload_422_invalid", invalid);
    let no_tracks = api
        .post("/releases", token, &json!({"title": "Empty", "tracks": []}))
        .await;
    assert_eq!(no_tracks.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown_artist = api
        .post(
            "/releases",
            token,
            &json!({"title": "Feat", "tracks": [{"title": "A", "duration_seconds": 60, "genre": "pop", "type": "song", "artist_ids": [9999]}]}),
        )
        .await;
    assert_eq!(unknown_artist.status, StatusCode::UNPROCESSABLE_ENTITY);
    snapshot!("releases_upload_422_unknown_artist", unknown_artist);
    let listed = api.get("/releases", token).await;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "nothing of the refused uploads was kept: {}",
        listed.text
    );

    let published = api
        .post(
            "/requests/publish",
            token,
            &json!({"release_id": release, "expected_date": day_in(10)}),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED);
    snapshot!("publish_201", published);

    let again = api
        .post(
            "/requests/publish",
            token,
            &json!({"release_id": release, "expected_date": day_in(12)}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    snapshot!("publish_409_open_request", again);

    let unknown = api
        .post(
            "/requests/publish",
            token,
            &json!({"release_id": 9999, "expected_date": day_in(10)}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    snapshot!("publish_404_unknown_release", unknown);

    let rivals = api.release(&rex.session, "Rival Album").await;
    let not_owner = api
        .post(
            "/requests/publish",
            token,
            &json!({"release_id": rivals["id"], "expected_date": day_in(10)}),
        )
        .await;
    assert_eq!(not_owner.status, StatusCode::FORBIDDEN);
    snapshot!("publish_403_not_owner", not_owner);

    let second = api.release(&nova.session, "Second Album").await;
    let too_soon = api
        .post(
            "/requests/publish",
            token,
            &json!({"release_id": second["id"], "expected_date": day_in(3)}),
        )
        .await;
    assert_eq!(too_soon.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_soon.body["errors"][0]["field"], "expected_date");
    insta::with_settings!({sort_maps => true}, {
        insta::assert_json_snapshot!("publish_422_too_soon", too_soon.snapshot(), {
            ".body.detail" => "[names the earliest date]",
            ".body.errors[].message" => "[names the earliest date]",
        });
    });

    let after_contract = api
        .post(
            "/requests/publish",
            token,
            &json!({"release_id": second["id"], "expected_date": day_in(400)}),
        )
        .await;
    assert_eq!(after_contract.status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, {
        insta::assert_json_snapshot!("publish_400_contract_ends_before", after_contract.snapshot(), {
            ".body.detail" => "[names the contract's end]",
        });
    });

    let malformed = api
        .post(
            "/requests/publish",
            token,
            &json!({"release_id": second["id"], "expected_date": "next friday"}),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    snapshot!("publish_400_malformed_date", malformed);

    // Once published, the release cannot be asked for again.
    let request = published.body["id"].as_i64().expect("id");
    api.run(request, label_service::app::ports::Step::Evaluate)
        .await;
    let accepted = api
        .post(
            &format!("/requests/{request}/accept"),
            Some(&maria.session.token),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    let done = api
        .post(
            "/requests/publish",
            token,
            &json!({"release_id": release, "expected_date": day_in(20)}),
        )
        .await;
    assert_eq!(done.status, StatusCode::CONFLICT);
    snapshot!("publish_409_published", done);

    let manager = api
        .post(
            "/releases",
            Some(&maria.session.token),
            &json!({"title": "Mine", "tracks": [{"title": "A", "duration_seconds": 60, "genre": "pop", "type": "song"}]}),
        )
        .await;
    assert_eq!(manager.status, StatusCode::FORBIDDEN);
    snapshot!("releases_upload_403_manager", manager);
}

#[tokio::test(flavor = "multi_thread")]
async fn accepting_and_declining() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let maria = api.manager(&admin, "Maria Manager").await;
    let nova = api.artist("Nova Star", "Nova", &[&maria]).await;
    let manager = Some(maria.session.token.as_str());
    let release = api.release(&nova.session, "Night Drive").await;
    let request = api
        .apply_publish(&nova.session, release["id"].as_i64().expect("id"))
        .await;

    let not_ready = api
        .post(&format!("/requests/{request}/accept"), manager, &json!({}))
        .await;
    assert_eq!(not_ready.status, StatusCode::CONFLICT);
    snapshot!("accept_409_not_ready", not_ready);

    api.run(request, label_service::app::ports::Step::Evaluate)
        .await;
    let evaluated = api.get(&format!("/requests/{request}"), manager).await;
    assert_eq!(evaluated.status, StatusCode::OK);
    snapshot!("request_evaluated_200", evaluated);

    let accepted = api
        .post(&format!("/requests/{request}/accept"), manager, &json!({}))
        .await;
    assert_eq!(accepted.status, StatusCode::OK);
    snapshot!("accept_200_publish", accepted);
    assert_eq!(accepted.body["evaluation"], evaluated.body["evaluation"]);

    let closed = api
        .post(&format!("/requests/{request}/accept"), manager, &json!({}))
        .await;
    assert_eq!(closed.status, StatusCode::CONFLICT);
    snapshot!("accept_409_already_closed", closed);
    let decline_closed = api
        .post(&format!("/requests/{request}/decline"), manager, &json!({}))
        .await;
    assert_eq!(decline_closed.status, StatusCode::CONFLICT);
    assert_eq!(decline_closed.code(), "already_closed");

    let publications = api.get("/publications", Some(&nova.session.token)).await;
    assert_eq!(publications.status, StatusCode::OK);
    snapshot!("publications_200", publications);
    let release = api
        .get(
            &format!("/releases/{}", release["id"]),
            Some(&nova.session.token),
        )
        .await;
    assert_eq!(release.body["status"], "Published");

    // A declined non-member may apply again.
    let bo = api.register("Bo Diddley").await;
    let (sign, _) = api.assigned_sign(&bo, "Bo").await;
    let declined = api
        .post(&format!("/requests/{sign}/decline"), manager, &json!({}))
        .await;
    assert_eq!(declined.status, StatusCode::OK);
    snapshot!("decline_200", declined);
    let reapplied = api
        .post(
            "/requests/sign",
            Some(&bo.token),
            &json!({"nickname": "Bo"}),
        )
        .await;
    assert_eq!(reapplied.status, StatusCode::CREATED, "{}", reapplied.text);
    // Not yet assigned: nobody's to accept but also nobody else's to know about.
    let unassigned = api
        .post(
            &format!("/requests/{}/accept", reapplied.body["id"]),
            manager,
            &json!({}),
        )
        .await;
    assert_eq!(unassigned.status, StatusCode::NOT_FOUND);
    snapshot!("accept_404_not_assigned", unassigned);
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_and_reads() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let maria = api.manager(&admin, "Maria Manager").await;
    let nova = api.artist("Nova Star", "Nova", &[&maria]).await;
    let release = api.release(&nova.session, "Night Drive").await;
    let release_id = release["id"].as_i64().expect("id");
    let publish = api.apply_publish(&nova.session, release_id).await;
    let bo = api.register("Bo Diddley").await;
    api.assigned_sign(&bo, "Bo").await;
    let manager = Some(maria.session.token.as_str());
    let artist = Some(nova.session.token.as_str());

    let inbox = api.get("/requests", manager).await;
    assert_eq!(inbox.status, StatusCode::OK);
    snapshot!("requests_list_manager", inbox);
    let on_approval = api.get("/requests?status=On%20approval", manager).await;
    assert_eq!(on_approval.body["total"], 1, "{}", on_approval.text);
    assert_eq!(on_approval.body["items"][0]["type"], "Sign");
    let publish_only = api.get("/requests?type=Publish", manager).await;
    assert_eq!(publish_only.body["items"][0]["id"], publish);
    let page = api.get("/requests?limit=1&offset=1", manager).await;
    assert_eq!(page.status, StatusCode::OK);
    snapshot!("requests_list_page", page);
    let own = api.get("/requests", artist).await;
    assert_eq!(
        own.body["total"], 2,
        "the artist's old sign request and the publish request: {}",
        own.text
    );
    let bad_status = api.get("/requests?status=Foo", manager).await;
    assert_eq!(bad_status.status, StatusCode::BAD_REQUEST);
    snapshot!("requests_list_400_status", bad_status);
    let bad_limit = api.get("/requests?limit=0", manager).await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
    snapshot!("requests_list_400_limit", bad_limit);
    let not_a_number = api.get("/requests?offset=-1", manager).await;
    assert_eq!(not_a_number.status, StatusCode::BAD_REQUEST);

    let request = api.get(&format!("/requests/{publish}"), artist).await;
    assert_eq!(request.status, StatusCode::OK);
    snapshot!("request_get_applicant", request);

    let releases = api.get("/releases", manager).await;
    assert_eq!(releases.status, StatusCode::OK);
    snapshot!("releases_list_manager", releases);
    let one = api.get(&format!("/releases/{release_id}"), artist).await;
    assert_eq!(one.body, release);
    let track = release["tracks"][0]["id"].as_i64().expect("track id");
    let track = api.get(&format!("/tracks/{track}"), manager).await;
    assert_eq!(track.status, StatusCode::OK);
    snapshot!("track_get", track);
    let missing = api.get("/releases/9999", artist).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    snapshot!("release_get_404", missing);
    let publications = api.get("/publications", manager).await;
    assert_eq!(publications.body, json!([]));

    let users = api.get("/users", Some(&admin.token)).await;
    assert_eq!(users.status, StatusCode::OK);
    snapshot!("users_list_admin", users);
    let user = api
        .get(&format!("/users/{}", bo.user_id), Some(&admin.token))
        .await;
    snapshot!("user_get_admin", user);
    let managers = api.get("/managers", Some(&admin.token)).await;
    assert_eq!(managers.status, StatusCode::OK);
    snapshot!("managers_list_admin", managers);
    let own_manager = api.get(&format!("/managers/{}", maria.id), manager).await;
    assert_eq!(own_manager.status, StatusCode::OK);
    assert_eq!(own_manager.body["artist_ids"], json!([nova.id]));
    let profile = api.get(&format!("/artists/{}", nova.id), manager).await;
    assert_eq!(profile.status, StatusCode::OK);
    snapshot!("artist_get_manager", profile);
}

#[tokio::test(flavor = "multi_thread")]
async fn appointing_managers() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let admin_token = Some(admin.token.as_str());
    let first = api.register("Maria Manager").await;
    let second = api.register("Mo Manager").await;
    let appointed = api
        .post(
            "/managers",
            admin_token,
            &json!({"user_ids": [first.user_id, second.user_id]}),
        )
        .await;
    assert_eq!(appointed.status, StatusCode::CREATED);
    snapshot!("managers_appoint_201", appointed);
    let maria = harness::Manager {
        session: first.clone(),
        id: appointed.body[0]["id"].as_i64().expect("id"),
    };
    let mo = harness::Manager {
        session: second.clone(),
        id: appointed.body[1]["id"].as_i64().expect("id"),
    };

    let newcomer = api.register("Nell Newcomer").await;
    let unknown = api
        .post(
            "/managers",
            admin_token,
            &json!({"user_ids": [newcomer.user_id, 9999]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    snapshot!("managers_appoint_404_unknown_user", unknown);
    let still = api
        .get(&format!("/users/{}", newcomer.user_id), admin_token)
        .await;
    assert_eq!(still.body["role"], "nonmember", "all or nothing");

    let already = api
        .post(
            "/managers",
            admin_token,
            &json!({"user_ids": [newcomer.user_id, first.user_id]}),
        )
        .await;
    assert_eq!(already.status, StatusCode::CONFLICT);
    snapshot!("managers_appoint_409_already_manager", already);

    let nova = api.artist("Nova Star", "Nova", &[&maria, &mo]).await;
    let artist = api
        .post(
            "/managers",
            admin_token,
            &json!({"user_ids": [nova.session.user_id]}),
        )
        .await;
    assert_eq!(artist.status, StatusCode::CONFLICT);
    snapshot!("managers_appoint_409_artist", artist);

    let empty = api
        .post("/managers", admin_token, &json!({"user_ids": []}))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    snapshot!("managers_appoint_422_empty", empty);
    let not_a_list = api
        .post("/managers", admin_token, &json!({"user_ids": "all"}))
        .await;
    assert_eq!(not_a_list.status, StatusCode::BAD_REQUEST);

    let by_manager = api
        .post(
            "/managers",
            Some(&first.token),
            &json!({"user_ids": [newcomer.user_id]}),
        )
        .await;
    assert_eq!(by_manager.status, StatusCode::FORBIDDEN);
    snapshot!("managers_appoint_403_manager", by_manager);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_input_and_unknown_routes() {
    let api = Api::new().await;
    let ann = api.register("Ann Lee").await;
    let token = Some(ann.token.as_str());
    let syntax = api
        .send(
            axum::http::Request::post("/api/v1/requests/sign")
                .header(CONTENT_TYPE, "application/json")
                .header("authorization", format!("Bearer {}", ann.token))
                .body(axum::body::Body::from("{\"nickname\": "))
                .expect("request"),
        )
        .await;
    assert_eq!(syntax.status, StatusCode::BAD_REQUEST);
    snapshot!("malformed_json_400", syntax);

    let wrong_type = api
        .post("/requests/sign", token, &json!({"nickname": 42}))
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    snapshot!("wrong_type_400", wrong_type);
    let missing_field = api.post("/requests/sign", token, &json!({})).await;
    assert_eq!(missing_field.status, StatusCode::BAD_REQUEST);
    let unknown_field = api
        .post(
            "/requests/sign",
            token,
            &json!({"nickname": "Ann", "role": "admin"}),
        )
        .await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);

    let not_json = api
        .send(
            axum::http::Request::post("/api/v1/auth/login")
                .header(CONTENT_TYPE, "text/plain")
                .body(axum::body::Body::from("email=ann"))
                .expect("request"),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    snapshot!("not_json_415", not_json);

    let bad_id = api.get("/users/abc", token).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    snapshot!("bad_path_id_400", bad_id);

    let unknown = api.get("/nothing/here", token).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    snapshot!("unknown_route_404", unknown);
    let method = api.call(Method::DELETE, "/me", token, None).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    snapshot!("method_not_allowed_405", method);
}

/// Every route the router serves, as (method, path template).
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("get", "/api/v1/managers"),
    ("post", "/api/v1/managers"),
    ("get", "/api/v1/managers/{id}"),
    ("get", "/api/v1/artists/{id}"),
    ("get", "/api/v1/releases"),
    ("post", "/api/v1/releases"),
    ("get", "/api/v1/releases/{id}"),
    ("get", "/api/v1/tracks/{id}"),
    ("get", "/api/v1/publications"),
    ("get", "/api/v1/requests"),
    ("get", "/api/v1/requests/{id}"),
    ("post", "/api/v1/requests/sign"),
    ("post", "/api/v1/requests/publish"),
    ("post", "/api/v1/requests/{id}/accept"),
    ("post", "/api/v1/requests/{id}/decline"),
    ("get", "/api-docs/openapi.json"),
    ("get", "/docs"),
    ("get", "/docs/docs.js"),
    // Served by platform::service around the router.
    ("get", "/livez"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_3_1_and_documents_every_route() {
    let api = Api::new().await;
    let served = api.get_raw("/api-docs/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.headers[CONTENT_TYPE], "application/json");
    let spec = oas3::from_json(&served.text).expect("the document parses as OpenAPI 3.1");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let paths = spec.paths.as_ref().expect("paths");
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.methods()
                .into_iter()
                .map(move |(method, _)| (method.as_str().to_lowercase(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);

    // Every API route is served (an unknown route is 404 `route_not_found`, a known path with
    // another method 405), and the protected ones declare the bearer scheme.
    let document: Value = serde_json::from_str(&served.text).expect("json");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (method, path) in ROUTES.iter().filter(|(_, p)| p.starts_with("/api/v1")) {
        let concrete = path.replace("{id}", "1");
        let reply = api
            .send(
                axum::http::Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&concrete)
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await;
        assert!(
            reply.code() != "route_not_found" && reply.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is not served: {}",
            reply.text
        );
        let security = &document["paths"][path][method]["security"];
        let public = path.starts_with("/api/v1/auth/");
        assert_eq!(security.is_null(), public, "{method} {path}: {security}");
        if !public {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }

    let docs = api.get_raw("/docs").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.text.contains("/api-docs/openapi.json"));
    assert!(
        !docs.text.contains("https://"),
        "the viewer loads nothing from the network"
    );
    let script = api.get_raw("/docs/docs.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.text.contains("textContent"));
}
