//! The web UI through the in-process router against a fresh PostgreSQL database: forms
//! without a good CSRF token are refused and change nothing; a hostile nickname, user name
//! and release title show as escaped text on every page that shows them; use-case errors
//! become readable pages; insta snapshots of a release page and an error page. Deferred
//! steps are run by calling `Label::run_step`, as the Kafka consumer would.

use axum::Router;
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::{Days, Utc};
use http_body_util::BodyExt as _;
use label_service::adapters::http::AuthSettings;
use label_service::adapters::passwords::Argon2Hasher;
use label_service::adapters::postgres::PgStore;
use label_service::adapters::web;
use label_service::app::ports::{DeferredAction, Step};
use label_service::app::requests::RequestFilter;
use label_service::app::{Actor, Label};
use label_service::domain::Role;
use label_service::domain::validation::{NewRelease, NewTrack};
use secrecy::SecretString;
use tower::ServiceExt as _;

use crate::db::TestDb;

const SECRET: &str = "a-web-test-secret-that-is-long-enough-01234";
const PASSWORD: &str = "member-password-for-web-tests";
const ADMIN_EMAIL: &str = "admin@label.test";
const HOSTILE: &str = "<script>alert(1)</script>";
/// What minijinja makes of `<script>alert(1)`: enough to prove the markup became text.
const ESCAPED: &str = "&lt;script&gt;alert(1)";
/// A hostile user name, told apart from the nickname.
const HOSTILE_NAME: &str = "<b>Bold</b> Bob";

/// An answer as text.
#[derive(Debug)]
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.text.find(marker).expect("a csrf field") + marker.len();
        self.text[start..start + 64].to_owned()
    }

    /// The value of cookie `name` set by this answer.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
    }
}

struct Web {
    label: Label<PgStore, Argon2Hasher>,
    router: Router,
    _db: TestDb,
}

impl Web {
    async fn new() -> Self {
        Self::with(web::WebSettings::default()).await
    }

    async fn with(settings: web::WebSettings) -> Self {
        let db = TestDb::new().await;
        let label = db.label();
        let auth = AuthSettings {
            jwt_secret: SecretString::from(SECRET),
            ..AuthSettings::default()
        };
        let limits = label_service::adapters::http::limits::LoginLimits::from_settings(&auth);
        let router = web::router(label.clone(), auth, settings, limits);
        Self {
            label,
            router,
            _db: db,
        }
    }

    async fn send(&self, request: Request<Body>) -> Page {
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
        assert!(!text.contains("$argon2"), "a page shows a hash: {text}");
        assert!(!text.contains(PASSWORD), "a page shows a password: {text}");
        Page {
            status,
            headers,
            text,
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Page {
        let mut request = Request::builder().method(Method::GET).uri(path);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        self.send(request.body(Body::empty()).expect("a request"))
            .await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
        self.post_from(path, cookie, None, form).await
    }

    async fn post_from(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", "label.test")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(request.body(Body::from(body)).expect("a request"))
            .await
    }

    /// Registers through the register page and returns the session cookie.
    async fn register(&self, name: &str, email: &str) -> String {
        let form = self.get("/register", None).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text);
        let guest = format!(
            "label_guest={}",
            form.set_cookie("label_guest").expect("a guest cookie")
        );
        let done = self
            .post(
                "/register",
                Some(&guest),
                &[
                    ("csrf", &form.csrf()),
                    ("name", name),
                    ("email", email),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
        assert_eq!(done.location(), "/profile");
        let session = done.set_cookie("label_session").expect("a session cookie");
        let raw = done
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("label_session="))
            .expect("the session cookie")
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(raw.contains(attribute), "{raw}");
        }
        // `web.cookie_secure: auto` and a direct plain-HTTP request: no `Secure`, or a
        // browser would drop the cookie at any host name but localhost.
        assert!(!raw.contains("Secure"), "{raw}");
        format!("label_session={session}")
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let form = self.get("/login", None).await;
        let guest = format!(
            "label_guest={}",
            form.set_cookie("label_guest").expect("a guest cookie")
        );
        let done = self
            .post(
                "/login",
                Some(&guest),
                &[
                    ("csrf", &form.csrf()),
                    ("email", email),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
        format!(
            "label_session={}",
            done.set_cookie("label_session").expect("a session")
        )
    }

    async fn actor_of(&self, email: &str) -> Actor {
        let user = self.label.login(email, PASSWORD).await.expect("login");
        self.label.actor(user.id).await.expect("actor")
    }

    async fn run(&self, request_id: i64, step: Step) {
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
            .expect("the step runs");
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A page with the hostile text must show it escaped and never as markup.
fn assert_escaped(page: &Page, what: &str) {
    assert_eq!(page.status, StatusCode::OK, "{what}: {}", page.text);
    assert!(
        page.text.contains(ESCAPED),
        "{what} does not show the text: {}",
        page.text
    );
    assert!(
        !page.text.contains("<script>alert"),
        "{what} shows markup: {}",
        page.text
    );
}

#[tokio::test]
async fn forms_without_a_good_csrf_token_are_refused_and_change_nothing() {
    let web = Web::new().await;
    let cookie = web.register("Nina Nonmember", "nina@example.com").await;
    let requests = web.get("/requests", Some(&cookie)).await;
    assert_eq!(requests.status, StatusCode::OK, "{}", requests.text);
    let good = requests.csrf();
    let mut wrong = good.clone();
    wrong.replace_range(
        0..4,
        if good.starts_with("0000") {
            "1111"
        } else {
            "0000"
        },
    );

    for token in [None, Some(wrong.as_str()), Some("not-hex"), Some("")] {
        let mut form = vec![("nickname", "nina")];
        if let Some(token) = token {
            form.push(("csrf", token));
        }
        let refused = web.post("/requests/sign", Some(&cookie), &form).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{token:?}: {}",
            refused.text
        );
        assert!(refused.text.contains("reload the page"), "{}", refused.text);
    }
    // The right token from another site's page is refused too.
    let cross = web
        .post_from(
            "/requests/sign",
            Some(&cookie),
            Some("https://evil.example"),
            &[("csrf", &good), ("nickname", "nina")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN, "{}", cross.text);
    // Another session's token does not fit this session.
    let other = web.register("Oscar Other", "oscar@example.com").await;
    let others_token = web.get("/requests", Some(&other)).await.csrf();
    let borrowed = web
        .post(
            "/requests/sign",
            Some(&cookie),
            &[("csrf", &others_token), ("nickname", "nina")],
        )
        .await;
    assert_eq!(borrowed.status, StatusCode::FORBIDDEN, "{}", borrowed.text);

    let nina = web.actor_of("nina@example.com").await;
    let page = web
        .label
        .list_requests(&nina, RequestFilter::default())
        .await
        .expect("list");
    assert_eq!(page.total, 0, "a refused form changed something");

    // The same form with its token goes through: the refusals above were about the token.
    let applied = web
        .post(
            "/requests/sign",
            Some(&cookie),
            &[("csrf", &good), ("nickname", "nina")],
        )
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.text);
    assert!(applied.location().starts_with("/requests/"));
    let page = web
        .label
        .list_requests(&nina, RequestFilter::default())
        .await
        .expect("list");
    assert_eq!(page.total, 1);

    // The admin's appointment form: refused without its token, the user stays a non-member.
    web.label
        .ensure_admin("Ada Admin", ADMIN_EMAIL, PASSWORD)
        .await
        .expect("admin");
    let admin = web.login(ADMIN_EMAIL, PASSWORD).await;
    let oscar = web.actor_of("oscar@example.com").await;
    let id = oscar.user.id.to_string();
    let refused = web
        .post("/admin/users", Some(&admin), &[("user_id", &id)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(
        web.actor_of("oscar@example.com").await.role(),
        Role::NonMember
    );

    // Log out needs the token as well.
    let refused = web.post("/logout", Some(&admin), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.set_cookie("label_session").is_none());

    // A guest form without its nonce cookie and token: no session is started.
    let login = web
        .post(
            "/login",
            None,
            &[("email", ADMIN_EMAIL), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN, "{}", login.text);
    assert!(login.set_cookie("label_session").is_none());
    let form = web.get("/login", None).await;
    let login = web
        .post(
            "/login",
            None,
            &[
                ("csrf", &form.csrf()),
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN, "{}", login.text);
}

/// The `Set-Cookie` values of `GET /login` sent by `peer`, with `X-Forwarded-Proto: https`
/// when `forwarded_https`.
async fn login_cookies(web: &Web, peer: &str, forwarded_https: bool) -> Vec<String> {
    let peer: std::net::SocketAddr = peer.parse().expect("an address");
    let mut request = Request::builder().method(Method::GET).uri("/login");
    if forwarded_https {
        request = request.header("x-forwarded-proto", "https");
    }
    let mut request = request.body(Body::empty()).expect("a request");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    web.send(request)
        .await
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn cookies_are_secure_as_web_cookie_secure_says() {
    let secure = |cookies: &[String]| {
        assert!(!cookies.is_empty(), "a guest cookie is set");
        cookies.iter().all(|c| c.ends_with("; Secure"))
    };
    let auto = Web::with(web::WebSettings {
        trusted_proxies: vec!["10.0.0.0/8".parse().expect("a network")],
        ..web::WebSettings::default()
    })
    .await;
    assert!(!secure(
        &login_cookies(&auto, "192.0.2.7:40000", false).await
    ));
    // Anyone can send the header: only a trusted proxy is believed.
    assert!(!secure(
        &login_cookies(&auto, "192.0.2.7:40000", true).await
    ));
    assert!(!secure(
        &login_cookies(&auto, "10.0.0.2:40000", false).await
    ));
    assert!(secure(&login_cookies(&auto, "10.0.0.2:40000", true).await));

    let always = Web::with(web::WebSettings {
        cookie_secure: web::CookieSecure::Always,
        ..web::WebSettings::default()
    })
    .await;
    assert!(secure(
        &login_cookies(&always, "192.0.2.7:40000", false).await
    ));
    let never = Web::with(web::WebSettings {
        cookie_secure: web::CookieSecure::Never,
        trusted_proxies: vec!["10.0.0.0/8".parse().expect("a network")],
    })
    .await;
    assert!(!secure(
        &login_cookies(&never, "10.0.0.2:40000", true).await
    ));

    // A browser that kept no cookie at all is told why, not that the form expired.
    let form = always.get("/login", None).await;
    let refused = always
        .post(
            "/login",
            None,
            &[
                ("csrf", &form.csrf()),
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert!(
        refused.text.contains("did not send back the cookie"),
        "{}",
        refused.text
    );
    assert!(!refused.text.contains("expired"), "{}", refused.text);
}

#[tokio::test]
async fn hostile_text_is_escaped_on_every_page_that_shows_it() {
    let web = Web::new().await;
    web.label
        .ensure_admin("Ada Admin", ADMIN_EMAIL, PASSWORD)
        .await
        .expect("admin");
    let admin = web.login(ADMIN_EMAIL, PASSWORD).await;
    let admin_actor = web.actor_of(ADMIN_EMAIL).await;

    let manager_cookie = web.register("Mo Manager", "mo@example.com").await;
    let mo = web.actor_of("mo@example.com").await;
    web.label
        .appoint_managers(&admin_actor, &[mo.user.id])
        .await
        .expect("appoint");

    // A hostile user name, nickname and release title.
    let artist_cookie = web.register(HOSTILE_NAME, "hostile@example.com").await;
    let applicant = web.actor_of("hostile@example.com").await;
    let sign = web
        .label
        .apply_sign(&applicant, HOSTILE, Utc::now())
        .await
        .expect("apply");

    assert_escaped(
        &web.get("/requests", Some(&artist_cookie)).await,
        "applicant's requests",
    );
    assert_escaped(
        &web.get(&format!("/requests/{}", sign.id), Some(&artist_cookie))
            .await,
        "applicant's request",
    );
    let users = web.get("/admin/users", Some(&admin)).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text);
    assert!(users.text.contains("&lt;b&gt;Bold"), "{}", users.text);
    assert!(!users.text.contains("<b>Bold"), "{}", users.text);

    web.run(sign.id.get(), Step::AssignManager).await;
    assert_escaped(
        &web.get("/requests", Some(&manager_cookie)).await,
        "manager's requests",
    );
    let detail = web
        .get(&format!("/requests/{}", sign.id), Some(&manager_cookie))
        .await;
    assert_escaped(&detail, "manager's request");
    let accepted = web
        .post(
            &format!("/requests/{}/accept", sign.id),
            Some(&manager_cookie),
            &[("csrf", &detail.csrf())],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.text);
    assert!(
        accepted.location().ends_with("?done=accepted"),
        "{}",
        accepted.location()
    );

    // A refused upload shows the form again, the reason above it and every field as typed.
    let form = web.get("/releases/new", Some(&artist_cookie)).await;
    let refused = web
        .post(
            "/releases/new",
            Some(&artist_cookie),
            &[
                ("csrf", &form.csrf()),
                ("title", "Kept Title"),
                ("date", "2026-05-01"),
                ("track_title", "Kept Track"),
                ("track_duration", "three minutes"),
                ("track_genre", "pop"),
                ("track_type", "song"),
                ("track_artists", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    for kept in [
        "value=\"Kept Title\"",
        "value=\"2026-05-01\"",
        "value=\"Kept Track\"",
        "value=\"three minutes\"",
        "value=\"pop\"",
        "minutes:seconds",
    ] {
        assert!(refused.text.contains(kept), "{kept}: {}", refused.text);
    }

    assert_escaped(
        &web.get("/profile", Some(&artist_cookie)).await,
        "artist's profile",
    );
    assert_escaped(
        &web.get("/profile", Some(&manager_cookie)).await,
        "manager's profile",
    );
    assert_escaped(
        &web.get("/admin/managers", Some(&admin)).await,
        "admin managers",
    );

    // The artist uploads through the form; the title is hostile.
    let form = web.get("/releases/new", Some(&artist_cookie)).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    let uploaded = web
        .post(
            "/releases/new",
            Some(&artist_cookie),
            &[
                ("csrf", &form.csrf()),
                ("title", HOSTILE),
                ("date", "2026-01-02"),
                ("track_title", HOSTILE),
                ("track_duration", "3:25"),
                ("track_genre", "rock"),
                ("track_type", "song"),
                ("track_artists", ""),
                ("track_title", "Second"),
                ("track_duration", "61"),
                ("track_genre", "rock"),
                ("track_type", "intro"),
                ("track_artists", ""),
            ],
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.text);
    let release_path = uploaded.location().to_owned();
    for cookie in [&artist_cookie, &manager_cookie] {
        assert_escaped(&web.get("/releases", Some(cookie)).await, "releases");
        let page = web.get(&release_path, Some(cookie)).await;
        assert_escaped(&page, "release");
        assert!(
            page.text.contains("3:25") && page.text.contains("1:01"),
            "{}",
            page.text
        );
    }
    // The publish form lists the hostile title as an option, escaped.
    let requests = web.get("/requests", Some(&artist_cookie)).await;
    assert_escaped(&requests, "artist's requests with the publish form");
    let release_id = release_path.trim_start_matches("/releases/").to_owned();
    let date = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(20))
        .expect("a date")
        .to_string();
    let applied = web
        .post(
            "/requests/publish",
            Some(&artist_cookie),
            &[
                ("csrf", &requests.csrf()),
                ("release_id", &release_id),
                ("expected_date", &date),
            ],
        )
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.text);
    let publish_id: i64 = applied
        .location()
        .trim_start_matches("/requests/")
        .parse()
        .expect("an id");
    web.run(publish_id, Step::Evaluate).await;
    let detail = web
        .get(&format!("/requests/{publish_id}"), Some(&manager_cookie))
        .await;
    assert_escaped(&detail, "publish request");
    assert!(
        detail.text.contains("No releases that day"),
        "{}",
        detail.text
    );
    assert!(detail.text.contains("id=\"accept\""), "{}", detail.text);
}

#[tokio::test]
async fn errors_become_readable_pages() {
    let web = Web::new().await;
    // No session: the log-in page.
    let profile = web.get("/profile", None).await;
    assert_eq!(profile.status, StatusCode::SEE_OTHER);
    assert_eq!(profile.location(), "/login");
    let forged = web.get("/profile", Some("label_session=not.a.jwt")).await;
    assert_eq!(forged.location(), "/login");

    let cookie = web.register("Nina Nonmember", "nina@example.com").await;
    let cases = [
        ("/requests/999999", StatusCode::NOT_FOUND, "no such request"),
        ("/requests/abc", StatusCode::BAD_REQUEST, "must be a number"),
        (
            "/requests?status=Bogus",
            StatusCode::BAD_REQUEST,
            "no status is called",
        ),
        ("/releases", StatusCode::FORBIDDEN, "releases are seen by"),
        (
            "/releases/new",
            StatusCode::FORBIDDEN,
            "only artists upload releases",
        ),
        (
            "/admin/users",
            StatusCode::FORBIDDEN,
            "only admins list users",
        ),
        (
            "/admin/managers",
            StatusCode::FORBIDDEN,
            "only admins list managers",
        ),
        // A form's address opened as a link: a page saying so, not an empty 405.
        (
            "/requests/1/accept",
            StatusCode::METHOD_NOT_ALLOWED,
            "takes a form sent from its page",
        ),
        (
            "/requests/sign",
            StatusCode::METHOD_NOT_ALLOWED,
            "takes a form sent from its page",
        ),
    ];
    for (path, status, message) in cases {
        let page = web.get(path, Some(&cookie)).await;
        assert_eq!(page.status, status, "{path}: {}", page.text);
        assert!(page.text.contains(message), "{path}: {}", page.text);
        assert!(
            page.text.contains("role=\"alert\""),
            "{path}: {}",
            page.text
        );
    }
    // A use-case refusal after a form: the validation message, not a blank page.
    let requests = web.get("/requests", Some(&cookie)).await;
    let refused = web
        .post(
            "/requests/sign",
            Some(&cookie),
            &[("csrf", &requests.csrf()), ("nickname", "")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("the nickname is not valid"),
        "{}",
        refused.text
    );
    // A wrong password: the log-in page again, with the message.
    let form = web.get("/login", None).await;
    let guest = format!(
        "label_guest={}",
        form.set_cookie("label_guest").expect("guest")
    );
    let wrong = web
        .post(
            "/login",
            Some(&guest),
            &[
                ("csrf", &form.csrf()),
                ("email", "nina@example.com"),
                ("password", "not-the-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.text.contains("wrong e-mail address or password"),
        "{}",
        wrong.text
    );
    // Pages carry the viewport and a policy with no inline script.
    assert!(wrong.text.contains("name=\"viewport\""));
    let policy = wrong
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(policy.contains("script-src 'self'"), "{policy}");

    let snapshot = web.get("/requests/999999", Some(&cookie)).await;
    insta::assert_snapshot!("web_error_404", normalize(&snapshot));
}

#[tokio::test]
async fn a_release_page_snapshot() {
    let web = Web::new().await;
    web.label
        .ensure_admin("Ada Admin", ADMIN_EMAIL, PASSWORD)
        .await
        .expect("admin");
    let admin_actor = web.actor_of(ADMIN_EMAIL).await;
    web.register("Mo Manager", "mo@example.com").await;
    let mo = web.actor_of("mo@example.com").await;
    web.label
        .appoint_managers(&admin_actor, &[mo.user.id])
        .await
        .expect("appoint");
    let mo = web.actor_of("mo@example.com").await;
    let cookie = web.register("Ann Artist", "ann@example.com").await;
    let ann = web.actor_of("ann@example.com").await;
    let sign = web
        .label
        .apply_sign(&ann, "Ann & the <Band>", Utc::now())
        .await
        .expect("apply");
    web.run(sign.id.get(), Step::AssignManager).await;
    web.label
        .accept(&mo, sign.id, Utc::now())
        .await
        .expect("accept");
    let ann = web.actor_of("ann@example.com").await;
    let release = web
        .label
        .upload_release(
            &ann,
            NewRelease {
                title: "First \"light\"".to_owned(),
                date: Some("2026-01-02".parse().expect("a date")),
                tracks: vec![
                    NewTrack {
                        title: "Dawn".to_owned(),
                        duration_seconds: 205,
                        genre: "rock".to_owned(),
                        kind: "song".to_owned(),
                        artist_ids: Vec::new(),
                    },
                    NewTrack {
                        title: "Dusk".to_owned(),
                        duration_seconds: 61,
                        genre: "rock".to_owned(),
                        kind: "outro".to_owned(),
                        artist_ids: Vec::new(),
                    },
                ],
            },
            Utc::now().date_naive(),
        )
        .await
        .expect("upload");
    let page = web
        .get(&format!("/releases/{}", release.id), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    insta::assert_snapshot!("web_release_page", normalize(&page));
}

/// The page with its CSRF token and ids made stable.
fn normalize(page: &Page) -> String {
    let mut text = page.text.clone();
    while let Some(start) = text.find("name=\"csrf\" value=\"") {
        let from = start + "name=\"csrf\" value=\"".len();
        text.replace_range(start..from + 64, "name=\"csrf\" data-token=\"[csrf]");
    }
    let release_link = regex_free_ids(&text);
    format!("status: {}\n{release_link}", page.status.as_u16())
}

/// Numbers after `/releases/` and `#` vary between runs: replaced.
fn regex_free_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("/releases/") {
        let (head, tail) = rest.split_at(pos + "/releases/".len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("[id]");
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// The API and the web pages of one service, sharing their login limits, as `main` builds
/// them.
async fn both_doors() -> (Router, Label<PgStore, Argon2Hasher>, TestDb) {
    let db = TestDb::new().await;
    let label = db.label();
    let auth = AuthSettings {
        jwt_secret: SecretString::from(SECRET),
        login_per_minute_per_email: 4,
        login_per_minute_per_address: 6,
        ..AuthSettings::default()
    };
    let limits = label_service::adapters::http::limits::LoginLimits::from_settings(&auth);
    let router = label_service::adapters::http::router(
        label.clone(),
        auth.clone(),
        std::sync::Arc::clone(&limits),
    )
    .merge(web::router(
        label.clone(),
        auth,
        web::WebSettings::default(),
        limits,
    ));
    (router, label, db)
}

/// A login through the web form from `peer`: the status, and whether the page says "too
/// many attempts".
async fn web_login(router: &Router, peer: &str, email: &str) -> (StatusCode, bool) {
    let peer: std::net::SocketAddr = peer.parse().expect("an address");
    let send = |request: Request<Body>| {
        let mut request = request;
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        router.clone().oneshot(request)
    };
    let form = send(Request::get("/login").body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    let cookie = form
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("label_guest="))
        .and_then(|v| v.split(';').next())
        .expect("a guest cookie")
        .to_owned();
    let html = String::from_utf8_lossy(&form.into_body().collect().await.expect("body").to_bytes())
        .into_owned();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    let csrf = &html[start..start + 64];
    let body = format!(
        "csrf={csrf}&email={}&password=wrong-password-123",
        encode(email)
    );
    let answer = send(
        Request::post("/login")
            .header("host", "label.test")
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request"),
    )
    .await
    .expect("answer");
    let status = answer.status();
    let text =
        String::from_utf8_lossy(&answer.into_body().collect().await.expect("body").to_bytes())
            .into_owned();
    (status, text.contains("too many attempts"))
}

async fn api_login(router: &Router, peer: &str, email: &str) -> StatusCode {
    let peer: std::net::SocketAddr = peer.parse().expect("an address");
    let mut request = Request::post("/api/v1/auth/login")
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::json!({"email": email, "password": "wrong-password-123"}).to_string(),
        ))
        .expect("request");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    router
        .clone()
        .oneshot(request)
        .await
        .expect("answer")
        .status()
}

#[tokio::test]
async fn the_api_and_the_web_form_share_one_login_budget() {
    let (router, label, _db) = both_doors().await;
    label
        .register("Rita Rate", "rita@example.com", PASSWORD)
        .await
        .expect("registered");
    // Per e-mail address (4 a minute): two wrong tries through the API, two through the
    // web form, and the fifth is refused at either door.
    for _ in 0..2 {
        assert_eq!(
            api_login(&router, "10.0.0.1:1000", "rita@example.com").await,
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..2 {
        let (status, limited) = web_login(&router, "10.0.0.2:1000", "rita@example.com").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!limited);
    }
    let (_, limited) = web_login(&router, "10.0.0.3:1000", "rita@example.com").await;
    assert!(limited, "the web form did not count the API's attempts");
    assert_eq!(
        api_login(&router, "10.0.0.4:1000", "rita@example.com").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Per client address (6 a minute), whatever the e-mail address: the web form counts it.
    for i in 0..6 {
        let (_, limited) =
            web_login(&router, "10.9.9.9:1000", &format!("nobody{i}@example.com")).await;
        assert!(!limited, "attempt {i}");
    }
    let (_, limited) = web_login(&router, "10.9.9.9:1000", "nobody-else@example.com").await;
    assert!(limited, "the web form skipped the per-address limit");
}
