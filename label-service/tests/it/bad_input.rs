//! Bad input through the HTTP API, in-process against a fresh PostgreSQL database: each
//! case an outside tester found answering 5xx or being accepted, with the answer it must
//! get, and odd text sent through every text field, which must never answer 5xx.

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Request, StatusCode};
use label_service::app::ports::Step;
use serde_json::{Value, json};

use crate::api::harness::{Api, PASSWORD, day_in};

/// Text no field was designed around.
fn odd_texts() -> Vec<String> {
    vec![
        "\u{0}".to_owned(),
        "a\u{0}b".to_owned(),
        "\u{200B}\u{200B}".to_owned(),
        "\u{FEFF}".to_owned(),
        "\u{202E}drowssap".to_owned(),
        "\u{1F600}".repeat(40),
        "x".repeat(10_000),
        "' OR 1=1 --".to_owned(),
        "<script>alert(1)</script>".to_owned(),
        "\\\"".to_owned(),
        "\u{7F}".to_owned(),
        "\u{D7FF}\u{E000}".to_owned(),
        String::new(),
        " ".to_owned(),
    ]
}

fn assert_not_5xx(what: &str, status: StatusCode, text: &str) {
    assert!(
        !status.is_server_error(),
        "{what} answered {status}: {text}"
    );
}

#[tokio::test]
async fn a_nul_character_in_the_login_e_mail_is_a_401_not_a_500() {
    let api = Api::new().await;
    api.register("Nina Null").await;
    for email in ["nina.null@example.com\u{0}", "\u{0}", "a\u{0}@b.io"] {
        let reply = api
            .post(
                "/auth/login",
                None,
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{email:?}: {}",
            reply.text
        );
        assert_eq!(reply.code(), "bad_credentials");
    }
}

#[tokio::test]
async fn malformed_e_mail_addresses_are_refused_at_registration() {
    let api = Api::new().await;
    for email in [
        "a@b..io",
        ".a@b.io",
        "a@-b.io",
        "a@b-.io",
        "a..b@c.io",
        "a@b",
        "Ann <a@b.io>",
        "a@[127.0.0.1]",
        "a b@c.io",
    ] {
        let reply = api
            .post(
                "/auth/register",
                None,
                &json!({"name": "Eve Mail", "email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{email:?}: {}",
            reply.text
        );
        assert_eq!(reply.body["errors"][0]["field"], "email", "{}", reply.text);
    }
    // A plain address still works.
    let reply = api
        .post(
            "/auth/register",
            None,
            &json!({"name": "Eve Mail", "email": "eve.mail@example.co.uk", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

#[tokio::test]
async fn names_titles_and_nicknames_of_invisible_characters_are_refused() {
    let api = Api::new().await;
    let invisible = "\u{200B}\u{200B}\u{FEFF}\u{2060}";
    let reply = api
        .post(
            "/auth/register",
            None,
            &json!({"name": invisible, "email": "zw@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert_eq!(reply.body["errors"][0]["field"], "name");

    let applicant = api.register("Zed Wide").await;
    let reply = api
        .post(
            "/requests/sign",
            Some(&applicant.token),
            &json!({"nickname": "\u{200B}"}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );

    let admin = api.admin().await;
    let manager = api.manager(&admin, "Mia Manager").await;
    let artist = api.artist("Art Ist", "Art Ist", &[&manager]).await;
    let reply = api
        .post(
            "/releases",
            Some(&artist.session.token),
            &json!({
                "title": invisible,
                "tracks": [{"title": "\u{200B}", "duration_seconds": 60, "genre": "\u{FEFF}", "type": "song"}]
            }),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["title", "tracks[0].title", "tracks[0].genre"],
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn release_bodies_refuse_odd_dates_unknown_fields_and_huge_sizes() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let manager = api.manager(&admin, "Mo Manager").await;
    let artist = api.artist("Ada Artist", "Ada", &[&manager]).await;
    let track = json!({"title": "One", "duration_seconds": 60, "genre": "rock", "type": "song"});

    // Dates before year 1 (or before the catalogue starts), after year 9999, and not dates.
    for date in [
        "0000-06-01",
        "-0001-01-01",
        "-5000-01-01",
        "1899-12-31",
        "+10000-01-01",
        "2024-02-30",
        "yesterday",
    ] {
        let reply = api
            .post(
                "/releases",
                Some(&artist.session.token),
                &json!({"title": "Dated", "date": date, "tracks": [track.clone()]}),
            )
            .await;
        assert_not_5xx(date, reply.status, &reply.text);
        assert!(
            reply.status == StatusCode::UNPROCESSABLE_ENTITY
                || reply.status == StatusCode::BAD_REQUEST,
            "{date}: {} {}",
            reply.status,
            reply.text
        );
    }

    // Unknown fields, in the release and in a track, as every other body refuses them.
    for body in [
        json!({"title": "T", "tracks": [track.clone()], "artist": 7}),
        json!({"title": "T", "tracks": [{"title": "One", "duration_seconds": 60, "genre": "rock", "type": "song", "bpm": 120}]}),
    ] {
        let reply = api
            .post("/releases", Some(&artist.session.token), &body)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert!(reply.text.contains("unknown field"), "{}", reply.text);
    }

    // 10 MB: too large (413), not malformed.
    let huge = json!({"title": "x".repeat(10 * 1024 * 1024), "tracks": [track]}).to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/releases")
        .header("authorization", format!("Bearer {}", artist.session.token))
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(huge))
        .expect("a request");
    let reply = api.send(request).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    assert_eq!(reply.code(), "body_too_large");
}

#[tokio::test]
async fn a_criterion_whose_query_fails_gives_cant_apply_criteria_and_the_others_still_run() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let manager = api.manager(&admin, "Cri Manager").await;
    let artist = api.artist("Cri Artist", "Cri", &[&manager]).await;
    let release = api.release(&artist.session, "Failing Facts").await;
    let request = api
        .apply_publish(&artist.session, release["id"].as_i64().expect("id"))
        .await;

    // The publications table is away while the request is evaluated: both criteria's
    // queries fail, one after the other, in the step's transaction.
    sqlx::query("ALTER TABLE label.publications RENAME TO publications_away")
        .execute(&api.db.pool)
        .await
        .expect("rename");
    let outcome = api.run(request, Step::Evaluate).await;
    sqlx::query("ALTER TABLE label.publications_away RENAME TO publications")
        .execute(&api.db.pool)
        .await
        .expect("rename back");

    assert!(
        matches!(
            outcome,
            label_service::app::deferred::StepOutcome::Done("evaluated")
        ),
        "{outcome:?}"
    );
    let reply = api
        .get(
            &format!("/requests/{request}"),
            Some(&manager.session.token),
        )
        .await;
    assert_eq!(reply.body["status"], "On approval", "{}", reply.text);
    assert_eq!(reply.body["grade"], 0, "{}", reply.text);
    let evaluation = reply.body["evaluation"].as_array().expect("an evaluation");
    assert_eq!(evaluation.len(), 2, "{}", reply.text);
    for entry in evaluation {
        assert_eq!(entry["diff"], 0, "{entry}");
        assert_eq!(entry["reason"], "Can't apply criteria", "{entry}");
    }
    // The request goes on normally.
    let accepted = api
        .post(
            &format!("/requests/{request}/accept"),
            Some(&manager.session.token),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
}

#[tokio::test]
async fn odd_text_in_any_field_never_answers_5xx() {
    let api = Api::new().await;
    let admin = api.admin().await;
    let manager = api.manager(&admin, "Odd Manager").await;
    let artist = api.artist("Odd Artist", "Odd", &[&manager]).await;
    let member = api.register("Odd Member").await;
    for (i, odd) in odd_texts().into_iter().enumerate() {
        let odd = Value::String(odd);
        let email = Value::String(format!("odd{i}@example.com"));
        let cases: Vec<(&str, Option<&str>, Value)> = vec![
            (
                "/auth/register",
                None,
                json!({"name": odd, "email": email, "password": PASSWORD}),
            ),
            (
                "/auth/register",
                None,
                json!({"name": "Odd", "email": odd, "password": PASSWORD}),
            ),
            (
                "/auth/register",
                None,
                json!({"name": "Odd", "email": format!("p{i}@example.com"), "password": odd}),
            ),
            (
                "/auth/login",
                None,
                json!({"email": odd, "password": PASSWORD}),
            ),
            (
                "/auth/login",
                None,
                json!({"email": "odd.member@example.com", "password": odd}),
            ),
            (
                "/requests/sign",
                Some(&member.token),
                json!({"nickname": odd}),
            ),
            (
                "/releases",
                Some(&artist.session.token),
                json!({"title": odd, "tracks": [{"title": "t", "duration_seconds": 1, "genre": "g", "type": "s"}]}),
            ),
            (
                "/releases",
                Some(&artist.session.token),
                json!({"title": "t", "tracks": [{"title": odd, "duration_seconds": 1, "genre": odd, "type": odd}]}),
            ),
            (
                "/requests/publish",
                Some(&artist.session.token),
                json!({"release_id": odd, "expected_date": day_in(10)}),
            ),
            ("/managers", Some(&admin.token), json!({"user_ids": [odd]})),
        ];
        for (path, token, body) in cases {
            let reply = api.post(path, token, &body).await;
            assert_not_5xx(&format!("{path} {body}"), reply.status, &reply.text);
        }
        let reply = api
            .get(
                &format!(
                    "/requests?status={}",
                    urlencode(odd.as_str().unwrap_or_default())
                ),
                Some(&member.token),
            )
            .await;
        assert_not_5xx("GET /requests?status=", reply.status, &reply.text);
    }
}

/// Percent-encodes everything but unreserved characters.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
