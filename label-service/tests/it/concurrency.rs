//! Races through the HTTP API: many clicks on Accept for one request, many sign requests by
//! one user at once. The database decides (a locked row, a unique index): exactly one wins,
//! every other call is a 409, and the data shows one outcome.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use crate::api::harness::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_accepts_of_one_request_make_one_artist() {
    let api = Arc::new(Api::new().await);
    let admin = api.admin().await;
    let maria = api.manager(&admin, "Maria Manager").await;
    let ann = api.register("Ann Lee").await;
    let (request, _) = api.assigned_sign(&ann, "Nova").await;

    let calls: Vec<_> = (0..20)
        .map(|_| {
            let api = Arc::clone(&api);
            let token = maria.session.token.clone();
            tokio::spawn(async move {
                api.post(
                    &format!("/requests/{request}/accept"),
                    Some(&token),
                    &json!({}),
                )
                .await
            })
        })
        .collect();
    let mut accepted = 0;
    let mut conflicts = Vec::new();
    for call in calls {
        let reply = call.await.expect("the call finishes");
        match reply.status {
            StatusCode::OK => accepted += 1,
            StatusCode::CONFLICT => conflicts.push(reply.code().to_owned()),
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(conflicts.len(), 19);
    assert!(
        conflicts.iter().all(|code| code == "already_closed"),
        "{conflicts:?}"
    );

    let me = api.get("/me", Some(&ann.token)).await;
    assert_eq!(me.body["user"]["role"], "artist");
    let manager = api
        .get(
            &format!("/managers/{}", maria.id),
            Some(&maria.session.token),
        )
        .await;
    assert_eq!(manager.body["artist_ids"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_requests_of_one_user_open_one_request() {
    let api = Arc::new(Api::new().await);
    let ann = api.register("Ann Lee").await;
    let calls: Vec<_> = (0..10)
        .map(|n| {
            let api = Arc::clone(&api);
            let token = ann.token.clone();
            tokio::spawn(async move {
                api.post(
                    "/requests/sign",
                    Some(&token),
                    &json!({"nickname": format!("Nova {n}")}),
                )
                .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.expect("the call finishes").status);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let mine = api.get("/requests", Some(&ann.token)).await;
    assert_eq!(mine.body["total"], 1, "{}", mine.text);
}
