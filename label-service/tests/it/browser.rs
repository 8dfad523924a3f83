//! The web UI in a real headless Chromium against the real service binary, a fresh
//! database and a private broker, as four people in one run, each in a browser session of
//! their own: the admin, a manager they appoint, a non-member who applies with a hostile
//! nickname, is accepted, uploads a release with two tracks on a phone-width screen and
//! applies to publish it, and a fourth person the admin appoints at the end. The deferred
//! steps go through Kafka, so the manager reloads (bounded) until a request is ready. A
//! screenshot of each page goes to `target/screenshots/label-*.png`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use platform::testkit::{Chromedriver, screenshot};
use serde_json::{Value, json};

use crate::stack::{ADMIN_EMAIL, ADMIN_PASSWORD, LabelProcess, LabelStack};

/// A nickname that would add an element to the page if it were not escaped.
const HOSTILE_NICKNAME: &str = "<b id=pwned>Zed</b>";
const PASSWORD: &str = "browser-password-123";
/// How long a page gets to reach a state the test waits for.
const PAGE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a deferred step (through Kafka) gets.
const DEFERRED_TIMEOUT: Duration = Duration::from_secs(90);

/// One person in their own browser session.
struct Person {
    client: Client,
    base: String,
    who: &'static str,
}

impl Person {
    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|err| panic!("{}: open {path}: {err}", self.who));
    }

    async fn shot(&self, name: &str) {
        screenshot(&self.client, &format!("label-{name}")).await;
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{}: no {css}: {err}", self.who));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{}: no {css}: {err}", self.who))
            .click()
            .await
            .unwrap_or_else(|err| panic!("{}: click {css}: {err}", self.who));
    }

    /// The `textContent` of the first element matching `css` ("" when there is none).
    async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element
                .prop("textContent")
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the url");
        url.path().to_owned()
    }

    /// Waits until `script` (a function body returning a boolean) holds.
    async fn wait_until(&self, what: &str, script: &str, args: Vec<Value>) {
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        loop {
            if let Ok(Value::Bool(true)) = self.client.execute(script, args.clone()).await {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                self.shot(&format!("failure-{}", self.who)).await;
                let error = self.text("#error").await;
                panic!(
                    "{}: timed out waiting for {what} (error on the page: {error:?}); see \
                     target/screenshots/label-failure-{}.png",
                    self.who, self.who
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's path starts with `prefix` and it has loaded.
    async fn wait_for_path(&self, prefix: &str) {
        self.wait_until(
            &format!("a page under {prefix}"),
            "return location.pathname.startsWith(arguments[0]) \
             && document.readyState === 'complete';",
            vec![json!(prefix)],
        )
        .await;
    }

    /// Waits until the page is a numbered page under `prefix`, such as `/requests/12`.
    async fn wait_for_numbered(&self, prefix: &str) {
        self.wait_until(
            &format!("a page {prefix}<id>"),
            "return location.pathname.startsWith(arguments[0]) \
             && /^[0-9]+$/.test(location.pathname.slice(arguments[0].length)) \
             && document.readyState === 'complete';",
            vec![json!(prefix)],
        )
        .await;
    }

    /// Reloads `path` (bounded) until the text of `css` is `expected`.
    async fn reload_until(&self, path: &str, css: &str, expected: &str) {
        let deadline = tokio::time::Instant::now() + DEFERRED_TIMEOUT;
        loop {
            self.open(path).await;
            if self.text(css).await.trim() == expected {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                self.shot(&format!("failure-{}", self.who)).await;
                panic!(
                    "{}: {path} did not show {expected:?} in {css} within {DEFERRED_TIMEOUT:?} \
                     (it shows {:?})",
                    self.who,
                    self.text(css).await
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn register(&self, name: &str, email: &str) {
        self.open("/register").await;
        self.fill("#name", name).await;
        self.fill("#email", email).await;
        self.fill("#password", PASSWORD).await;
        self.click("#submit").await;
        self.wait_for_path("/profile").await;
        assert_eq!(self.text("#email").await, email, "{}", self.who);
    }

    async fn log_in(&self, email: &str, password: &str) {
        self.open("/login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("#submit").await;
        self.wait_for_path("/profile").await;
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The admin ticks the row of `email` on the users page and appoints them.
async fn appoint(admin: &Person, email: &str, shot: &str) {
    admin.open("/admin/users").await;
    let checkbox = admin
        .client
        .find(Locator::XPath(&format!(
            "//tr[td[normalize-space()='{email}']]//input[@type='checkbox']"
        )))
        .await
        .unwrap_or_else(|err| panic!("no checkbox for {email}: {err}"));
    checkbox.click().await.expect("tick");
    admin.shot(shot).await;
    admin.click("#appoint-submit").await;
    admin.wait_for_path("/admin/managers").await;
    admin
        .wait_until(
            &format!("{email}'s manager row"),
            "return document.getElementById('managers') !== null;",
            Vec::new(),
        )
        .await;
}

#[tokio::test]
async fn four_people_walk_the_whole_flow_in_a_browser() {
    let stack = LabelStack::new().await;
    let service = LabelProcess::start(&stack, &[]).await;
    let base = format!("http://{}", service.address);
    let driver = Chromedriver::start("label-browser");
    let person = |client, who| Person {
        client,
        base: base.clone(),
        who,
    };
    let admin = person(driver.session("admin", 1280, 1000).await, "admin");
    let manager = person(driver.session("manager", 1280, 1000).await, "manager");
    // The applicant uses a phone-width screen.
    let artist = person(driver.session("artist", 390, 844).await, "artist");
    let newcomer = person(driver.session("newcomer", 1280, 1000).await, "newcomer");

    // A guest sees the log-in page; the admin logs in.
    admin.open("/").await;
    admin.wait_for_path("/login").await;
    admin.shot("01-login").await;
    admin.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(admin.text("#role").await, "admin");
    admin.shot("02-admin-profile").await;

    // Someone registers and the admin appoints them manager.
    manager.register("Mia Manager", "mia@label.test").await;
    manager.shot("03-register-done").await;
    appoint(&admin, "mia@label.test", "04-admin-users").await;
    assert!(admin.text("#managers").await.contains("Mia Manager"));
    admin.shot("05-admin-managers").await;
    manager.open("/profile").await;
    assert_eq!(manager.text("#role").await, "manager");

    // A non-member registers and applies to join with a hostile nickname.
    artist.open("/register").await;
    artist.shot("06-register").await;
    artist.register("Zed Zee", "zed@label.test").await;
    artist.open("/requests").await;
    artist.fill("#nickname", HOSTILE_NICKNAME).await;
    artist.shot("07-apply-to-join").await;
    artist.click("#apply").await;
    artist.wait_for_numbered("/requests/").await;
    let sign_path = artist.path().await;
    assert_eq!(artist.text("#nickname").await, HOSTILE_NICKNAME);
    artist.shot("08-sign-request").await;

    // The manager waits for the assignment (a deferred step through Kafka), then accepts.
    manager
        .reload_until("/requests?type=Sign", "#requests .status", "On approval")
        .await;
    assert!(manager.text("#requests").await.contains(HOSTILE_NICKNAME));
    manager.shot("09-manager-requests").await;
    // People are named, not numbered: the list and the request say who applied and who
    // decides.
    assert!(
        manager
            .text("#requests .applicant")
            .await
            .contains("Zed Zee"),
        "{}",
        manager.text("#requests").await
    );
    assert_eq!(manager.text("#requests .manager").await, "Mia Manager");
    manager.open(&sign_path).await;
    assert_eq!(manager.text("#nickname").await, HOSTILE_NICKNAME);
    assert_eq!(manager.text("#applicant").await, "Zed Zee");
    assert_eq!(manager.text("#manager").await, "Mia Manager");
    manager.shot("10-manager-sign-request").await;
    manager.click("#accept").await;
    manager
        .wait_until(
            "the request closed",
            "return (document.getElementById('status') || {}).textContent === 'Closed';",
            Vec::new(),
        )
        .await;
    assert_eq!(
        manager.text("#description").await,
        "The request is accepted."
    );
    // The decision is confirmed in words.
    let notice = manager.text("#notice").await;
    assert!(
        notice.contains("You accepted this request") && notice.contains("is now an artist"),
        "{notice:?}"
    );
    manager.shot("10b-accept-confirmed").await;
    manager.open("/profile").await;
    assert!(manager.text("#artists").await.contains(HOSTILE_NICKNAME));
    manager.shot("11-manager-profile").await;

    // The new artist sees their profile and uploads a release with two tracks.
    artist.open("/profile").await;
    assert_eq!(artist.text("#role").await, "artist");
    assert_eq!(artist.text("#nickname").await, HOSTILE_NICKNAME);
    assert_eq!(artist.text("#manager").await, "Mia Manager");
    artist.shot("12-artist-profile").await;
    artist.open("/releases/new").await;
    artist.fill("#title", "Night Drive").await;
    let first = "#tracks fieldset.track:nth-of-type(1)";
    artist
        .fill(&format!("{first} input[name=track_title]"), "Engine")
        .await;
    artist
        .fill(&format!("{first} input[name=track_duration]"), "3:25")
        .await;
    artist
        .fill(&format!("{first} input[name=track_genre]"), "synthwave")
        .await;
    artist
        .fill(&format!("{first} input[name=track_type]"), "song")
        .await;
    artist.click("#add-track").await;
    let second = "#tracks fieldset.track:nth-of-type(2)";
    artist
        .fill(&format!("{second} input[name=track_title]"), "Exit")
        .await;
    artist
        .fill(&format!("{second} input[name=track_duration]"), "95")
        .await;
    artist
        .fill(&format!("{second} input[name=track_genre]"), "synthwave")
        .await;
    artist
        .fill(&format!("{second} input[name=track_type]"), "outro")
        .await;
    artist.shot("13-upload").await;
    artist.click("#submit").await;
    artist.wait_for_numbered("/releases/").await;
    assert_eq!(artist.text("#title").await, "Night Drive");
    let tracks = artist.text("#tracks").await;
    assert!(
        tracks.contains("Engine") && tracks.contains("3:25"),
        "{tracks}"
    );
    assert!(
        tracks.contains("Exit") && tracks.contains("1:35"),
        "{tracks}"
    );
    assert_eq!(artist.text("#status").await, "Unpublished");
    let release_path = artist.path().await;
    artist.shot("14-release").await;
    artist.open("/releases").await;
    assert!(artist.text("#releases").await.contains("Night Drive"));
    artist.shot("15-releases").await;

    // ... and applies to publish it.
    artist.open("/requests").await;
    artist.shot("16-apply-to-publish").await;
    artist.click("#publish").await;
    artist.wait_for_numbered("/requests/").await;
    let publish_path = artist.path().await;
    artist.shot("17-publish-request").await;

    // The manager waits for the evaluation, reads it and accepts.
    manager
        .reload_until(&publish_path, "#status", "On approval")
        .await;
    let evaluation = manager.text("#evaluation").await;
    assert!(
        evaluation.contains("No releases from artist more than limit")
            && evaluation.contains("No releases that day"),
        "{evaluation}"
    );
    assert_eq!(manager.text("#grade").await, "0");
    manager.shot("18-evaluation").await;
    manager.click("#accept").await;
    manager
        .wait_until(
            "the publish request closed",
            "return (document.getElementById('status') || {}).textContent === 'Closed';",
            Vec::new(),
        )
        .await;
    assert!(
        manager
            .text("#notice")
            .await
            .contains("will be published on"),
        "{}",
        manager.text("#notice").await
    );
    manager.shot("19-publish-accepted").await;
    artist.open(&release_path).await;
    assert_eq!(artist.text("#status").await, "Published");
    artist.open("/requests").await;
    artist.shot("20-artist-requests").await;

    // The hostile nickname was text everywhere: no element was injected.
    for person in [&artist, &manager] {
        let injected = person
            .client
            .execute(
                "return document.getElementById('pwned') !== null;",
                Vec::new(),
            )
            .await
            .expect("a script runs");
        assert_eq!(injected, Value::Bool(false), "{}", person.who);
    }

    // The fourth person asks for a nickname the label has given already: refused, with
    // the reason above the form and the nickname still in it.
    newcomer.register("Nora Newcomer", "nora@label.test").await;
    newcomer.open("/requests").await;
    newcomer.fill("#nickname", HOSTILE_NICKNAME).await;
    newcomer.click("#apply").await;
    newcomer
        .wait_until(
            "the refusal",
            "return document.getElementById('error') !== null;",
            Vec::new(),
        )
        .await;
    assert!(
        newcomer.text("#error").await.contains("nickname"),
        "{}",
        newcomer.text("#error").await
    );
    let kept = newcomer
        .client
        .execute(
            "return document.getElementById('nickname').value;",
            Vec::new(),
        )
        .await
        .expect("a script runs");
    assert_eq!(kept, json!(HOSTILE_NICKNAME), "the typed nickname was lost");
    newcomer.shot("20b-refused-kept-input").await;

    // The admin sees every request, twenty to a page.
    for i in 0..21 {
        let applicant = service
            .api
            .register(
                &format!("Paging Person {i}"),
                &format!("paging{i}@label.test"),
                PASSWORD,
            )
            .await;
        let (status, body) = service
            .api
            .post(
                "/requests/sign",
                Some(&applicant.token),
                &json!({"nickname": format!("Pager {i}")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    admin.open("/requests").await;
    assert_eq!(admin.text("#page").await, "1");
    let first_page = admin
        .client
        .execute(
            "return document.querySelectorAll('#requests tbody tr').length;",
            Vec::new(),
        )
        .await
        .expect("a script runs");
    assert_eq!(first_page, json!(20));
    admin.shot("20c-admin-requests-page-1").await;
    admin.click("#older").await;
    admin
        .wait_until(
            "page 2",
            "return (document.getElementById('page') || {}).textContent === '2';",
            Vec::new(),
        )
        .await;
    let second_page = admin
        .client
        .execute(
            "return document.querySelectorAll('#requests tbody tr').length;",
            Vec::new(),
        )
        .await
        .expect("a script runs");
    // 21 sign requests, the artist's two, the newcomer's none (refused): 23 in all.
    assert_eq!(second_page, json!(3));
    admin.shot("20d-admin-requests-page-2").await;
    admin.click("#newer").await;
    admin.wait_for_path("/requests").await;

    // The admin appoints a fourth person as manager.
    appoint(&admin, "nora@label.test", "21-admin-users-again").await;
    let managers = admin.text("#managers").await;
    assert!(managers.contains("Nora Newcomer"), "{managers}");
    assert!(managers.contains(HOSTILE_NICKNAME), "{managers}");
    let injected = admin
        .client
        .execute(
            "return document.getElementById('pwned') !== null;",
            Vec::new(),
        )
        .await
        .expect("a script runs");
    assert_eq!(injected, Value::Bool(false));
    admin.shot("22-admin-managers").await;

    // Log out ends the session.
    newcomer.click("#logout").await;
    newcomer.wait_for_path("/login").await;
    newcomer.open("/profile").await;
    newcomer.wait_for_path("/login").await;
    newcomer.shot("23-logged-out").await;

    for person in [admin, manager, artist, newcomer] {
        person.close().await;
    }
    drop(driver);
    drop(service);
}

/// A host name that is not loopback to the browser (so it is not a "potentially
/// trustworthy" origin, where Chromium would accept `Secure` cookies over plain HTTP),
/// mapped to the service's 127.0.0.1 by the browser's resolver.
const PLAIN_HTTP_HOST: &str = "label-office.test";

/// Logs in as the admin at `http://label-office.test:<port>/login`; the page it ends on.
async fn log_in_by_host_name(driver: &Chromedriver, service: &LabelProcess, who: &str) -> Person {
    let rule = format!("--host-resolver-rules=MAP {PLAIN_HTTP_HOST} 127.0.0.1");
    let client = driver.session_with(who, 1024, 768, &[rule.as_str()]).await;
    let person = Person {
        client,
        base: format!("http://{PLAIN_HTTP_HOST}:{}", service.address.port()),
        who: "admin",
    };
    person.open("/login").await;
    person.fill("#email", ADMIN_EMAIL).await;
    person.fill("#password", ADMIN_PASSWORD).await;
    person.click("#submit").await;
    person
        .wait_until(
            "the page after logging in",
            "return document.readyState === 'complete' \
             && (location.pathname !== '/login' || document.getElementById('error') !== null);",
            Vec::new(),
        )
        .await;
    person
}

#[tokio::test]
async fn over_plain_http_at_a_host_name_the_session_works_with_cookie_secure_auto() {
    let stack = LabelStack::new().await;
    let driver = Chromedriver::start("label-host-name");

    // The default, `auto`: a direct plain-HTTP connection gets cookies without `Secure`.
    let service = LabelProcess::start(&stack, &[]).await;
    let admin = log_in_by_host_name(&driver, &service, "auto").await;
    admin.wait_for_path("/profile").await;
    admin.shot("host-name-01-logged-in").await;
    assert_eq!(admin.text("#email").await, ADMIN_EMAIL);
    // The session holds: another page, then a form (the CSRF token of the session).
    admin.open("/admin/users").await;
    admin.wait_for_path("/admin/users").await;
    admin.click("#logout").await;
    admin.wait_for_path("/login").await;
    admin.open("/profile").await;
    admin.wait_for_path("/login").await;
    admin.close().await;
    drop(service);

    // `always` over the same plain HTTP: the browser refuses the cookies, and the page says
    // so instead of calling the form expired.
    let service = LabelProcess::start(&stack, &[("LABEL__WEB__COOKIE_SECURE", "always")]).await;
    let refused = log_in_by_host_name(&driver, &service, "always").await;
    refused.shot("host-name-02-cookie-refused").await;
    let message = refused.text("#error").await;
    assert!(
        message.contains("did not send back the cookie") && message.contains("web.cookie_secure"),
        "{message:?}"
    );
    assert!(!message.contains("expired"), "{message:?}");
    refused.close().await;
}
