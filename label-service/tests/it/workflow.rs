//! The whole request workflow against the real binary, PostgreSQL and a Kafka-protocol
//! broker, driven only over HTTP: deferred actions travel through the outbox and Kafka.

use std::time::Duration;

use chrono::{Days, Utc};
use serde_json::json;

use crate::stack::{LabelProcess, LabelStack};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_user_joins_uploads_and_gets_a_release_published_over_http() {
    let stack = LabelStack::new().await;
    let mut service = LabelProcess::start(&stack, &[]).await;
    let api = service.api.clone();
    let admin = api.admin().await;
    let (manager, manager_id) = api.new_manager(&admin, "Maria").await;

    // A newcomer registers and asks to join.
    let ann = api
        .register("Ann Lee", "ann@example.com", "ann-password")
        .await;
    let (status, request) = api
        .post(
            "/requests/sign",
            Some(&ann.token),
            &json!({"nickname": "Nova Lights"}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["status"], "New");
    assert_eq!(request["manager_id"], serde_json::Value::Null);
    let sign_id = request["id"].as_i64().expect("id");

    // The deferred action assigns the only manager.
    let path = format!("/requests/{sign_id}");
    let on_approval = api
        .wait_for(
            "the sign request on approval",
            &path,
            &ann.token,
            WAIT,
            |r| r["status"] == "On approval",
        )
        .await;
    assert_eq!(on_approval["manager_id"], manager_id);

    // The manager sees it in their list and accepts.
    let (status, inbox) = api
        .get("/requests?status=On%20approval", Some(&manager.token))
        .await;
    assert_eq!(status, 200, "{inbox}");
    assert!(
        inbox["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|r| r["id"] == sign_id),
        "{inbox}"
    );
    let (status, accepted) = api
        .post(
            &format!("/requests/{sign_id}/accept"),
            Some(&manager.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["status"], "Closed");
    assert_eq!(accepted["description"], "The request is accepted.");

    // Ann is an artist at once, with the same token.
    let (status, me) = api.get("/me", Some(&ann.token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["role"], "artist", "{me}");
    assert_eq!(me["artist"]["nickname"], "Nova Lights");
    assert_eq!(me["artist"]["manager_id"], manager_id);

    // She uploads a release with two tracks and asks to publish it.
    let (status, release) = api
        .post(
            "/releases",
            Some(&ann.token),
            &json!({
                "title": "Night Drive",
                "tracks": [
                    {"title": "Neon Highway", "duration_seconds": 214, "genre": "rock", "type": "song"},
                    {"title": "Static Hearts", "duration_seconds": 187, "genre": "rock", "type": "song"}
                ]
            }),
        )
        .await;
    assert_eq!(status, 201, "{release}");
    assert_eq!(release["status"], "Unpublished");
    assert_eq!(release["tracks"].as_array().map(Vec::len), Some(2));
    let release_id = release["id"].as_i64().expect("release id");
    let expected = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(10))
        .expect("date");
    let (status, publish) = api
        .post(
            "/requests/publish",
            Some(&ann.token),
            &json!({"release_id": release_id, "expected_date": expected}),
        )
        .await;
    assert_eq!(status, 201, "{publish}");
    assert_eq!(
        publish["manager_id"], manager_id,
        "the artist's manager at once"
    );
    let publish_id = publish["id"].as_i64().expect("id");

    // The evaluation appears, with a grade and a reason per criterion.
    let evaluated = api
        .wait_for(
            "the publish request evaluated",
            &format!("/requests/{publish_id}"),
            &manager.token,
            WAIT,
            |r| r["status"] == "On approval",
        )
        .await;
    assert_eq!(evaluated["grade"], 0, "{evaluated}");
    let entries = evaluated["evaluation"].as_array().expect("evaluation");
    let names: Vec<_> = entries.iter().map(|e| e["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            Some("No releases from artist more than limit"),
            Some("No releases that day")
        ]
    );
    assert!(
        entries
            .iter()
            .all(|e| e["diff"] == 0 && e["reason"] == "OK")
    );

    // The manager accepts: a publication exists and the release is published.
    let (status, accepted) = api
        .post(
            &format!("/requests/{publish_id}/accept"),
            Some(&manager.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["status"], "Closed");
    assert_eq!(
        accepted["evaluation"], evaluated["evaluation"],
        "the evaluation is kept"
    );
    let (status, publications) = api.get("/publications", Some(&ann.token)).await;
    assert_eq!(status, 200, "{publications}");
    let publications = publications.as_array().expect("list");
    assert_eq!(publications.len(), 1);
    assert_eq!(publications[0]["release_id"], release_id);
    assert_eq!(publications[0]["manager_id"], manager_id);
    assert_eq!(publications[0]["scheduled_on"], json!(expected));
    let (status, release) = api
        .get(&format!("/releases/{release_id}"), Some(&ann.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(release["status"], "Published");
    assert!(
        service.terminate(),
        "SIGTERM stops the service with success"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_manager_a_sign_request_is_retried_with_growing_delays_until_one_is_appointed() {
    let stack = LabelStack::new().await;
    let service =
        LabelProcess::start(&stack, &[("LABEL__REQUESTS__RETRY_MIN_DELAY", "250ms")]).await;
    let api = &service.api;
    let admin = api.admin().await;
    let bo = api.register("Bo", "bo@example.com", "bo-password").await;
    let (status, request) = api
        .post(
            "/requests/sign",
            Some(&bo.token),
            &json!({"nickname": "Bo Diddly"}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let id = request["id"].as_i64().expect("id");

    // 250 ms, 500 ms, 1 s, 2 s: four retries within about 4 s, the delays doubling.
    let delays = platform::testkit::eventually(
        "four retries in the log",
        Duration::from_secs(60),
        || async {
            let delays = retry_delays(&service.log_text());
            (delays.len() >= 4).then_some(delays)
        },
    )
    .await;
    assert_eq!(&delays[..4], &[250, 500, 1000, 2000], "{delays:?}");
    let retries = service
        .metric("label_deferred_retries_total", &["step=\"assign_manager\""])
        .await;
    assert!(
        (4.0..=6.0).contains(&retries),
        "a bounded number of retries, never a tight loop: {retries}"
    );
    let (_, still) = api.get(&format!("/requests/{id}"), Some(&bo.token)).await;
    assert_eq!(still["status"], "New");
    assert!(
        still["attempts"].as_i64().expect("attempts") >= 4,
        "{still}"
    );

    // A manager is appointed: the next retry assigns them.
    let (_, manager_id) = api.new_manager(&admin, "Kofi").await;
    let assigned = api
        .wait_for(
            "the request assigned after the appointment",
            &format!("/requests/{id}"),
            &bo.token,
            WAIT,
            |r| r["status"] == "On approval",
        )
        .await;
    assert_eq!(assigned["manager_id"], manager_id);
}

/// The `delay_ms` of every "retrying later" line of the JSON log, in order.
fn retry_delays(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| {
            entry["fields"]["message"]
                .as_str()
                .or(entry["message"].as_str())
                .is_some_and(|m| m.contains("retrying later"))
        })
        .filter_map(|entry| {
            entry["fields"]["delay_ms"]
                .as_u64()
                .or(entry["delay_ms"].as_u64())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_older_than_the_ttl_is_closed_as_no_longer_relevant() {
    let stack = LabelStack::new().await;
    // No manager: the request stays New until it expires.
    let service = LabelProcess::start(&stack, &[("LABEL__REQUESTS__TTL", "3s")]).await;
    let api = &service.api;
    let cy = api.register("Cy", "cy@example.com", "cy-password").await;
    let (status, request) = api
        .post(
            "/requests/sign",
            Some(&cy.token),
            &json!({"nickname": "Cy Twombly"}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let id = request["id"].as_i64().expect("id");
    let closed = api
        .wait_for(
            "the request expired",
            &format!("/requests/{id}"),
            &cy.token,
            WAIT,
            |r| r["status"] == "Closed",
        )
        .await;
    assert_eq!(
        closed["description"],
        "The request is declined: the request is no longer relevant"
    );
    let created =
        chrono::DateTime::parse_from_rfc3339(closed["created_at"].as_str().expect("created_at"))
            .expect("timestamp");
    let age = Utc::now().signed_duration_since(created);
    assert!(
        age >= chrono::Duration::seconds(3),
        "closed only after the TTL: {age}"
    );

    // The closed request does not block a new application.
    let (status, again) = api
        .post(
            "/requests/sign",
            Some(&cy.token),
            &json!({"nickname": "Cy Twombly"}),
        )
        .await;
    assert_eq!(status, 201, "{again}");
}
