//! The authorization matrix of the HTTP API: every endpoint called as a guest, a non-member,
//! the owning artist, another artist, the owner's manager, another manager and an admin,
//! with the status the spec wants in each cell: 401 without a token, 403 for a role that may
//! never call the endpoint, 404 where a resource is not the caller's and its existence would
//! leak. No answer anywhere carries a password or a hash.

use axum::http::Method;
use label_service::app::ports::Step;
use serde_json::{Value, json};

use crate::api::harness::{ADMIN_PASSWORD, Api, PASSWORD, Session, day_in};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Guest,
    NonMember,
    /// The artist who owns the resources.
    Artist,
    OtherArtist,
    /// The owning artist's manager.
    Manager,
    OtherManager,
    Admin,
}

use Caller::{Admin, Artist, Guest, Manager, NonMember, OtherArtist, OtherManager};

/// One endpoint called by every caller: the status each must get.
struct Row {
    method: Method,
    path: String,
    body: Option<Value>,
    cells: [(Caller, u16); 7],
}

struct World {
    sessions: Vec<(Caller, Session)>,
}

impl World {
    fn token(&self, caller: Caller) -> Option<&str> {
        self.sessions
            .iter()
            .find(|(c, _)| *c == caller)
            .map(|(_, s)| s.token.as_str())
    }
}

fn keys_named_like_secrets(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let lower = key.to_lowercase();
                if lower.contains("password") || lower.contains("hash") {
                    found.push(key.clone());
                }
                keys_named_like_secrets(value, found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| keys_named_like_secrets(item, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_answers_each_role_as_the_spec_says() {
    let api = Api::new().await;
    let admin = api.admin().await;
    // Built so that the deferred assignment is deterministic: the other manager keeps an open
    // request, so the owner's manager (appointed later, with none) gets the owner.
    let other_manager = api.manager(&admin, "Mo Other").await;
    let newcomer = api.register("Nell Newcomer").await;
    let (newcomer_request, assigned) = api.assigned_sign(&newcomer, "Nell").await;
    assert_eq!(assigned, other_manager.id);
    let other_artist = api.artist("Rex Rival", "Rex", &[&other_manager]).await;
    let manager = api.manager(&admin, "Maria Manager").await;
    let artist = api
        .artist("Nova Star", "Nova", &[&manager, &other_manager])
        .await;
    assert_eq!(artist.manager_id, manager.id, "the least-loaded manager");

    let release = api.release(&artist.session, "Night Drive").await;
    let release_id = release["id"].as_i64().expect("id");
    let track_id = release["tracks"][0]["id"].as_i64().expect("id");
    let publish_request = api.apply_publish(&artist.session, release_id).await;
    api.run(publish_request, Step::Evaluate).await;
    let second_release = api.release(&artist.session, "Second Album").await;
    let extra = api.register("Xena Extra").await;

    let world = World {
        sessions: vec![
            (NonMember, newcomer.clone()),
            (Artist, artist.session.clone()),
            (OtherArtist, other_artist.session.clone()),
            (Manager, manager.session.clone()),
            (OtherManager, other_manager.session.clone()),
            (Admin, admin.clone()),
        ],
    };

    let upload = json!({"title": "Demo", "tracks": [{"title": "Take 1", "duration_seconds": 60, "genre": "rock", "type": "song"}]});
    let publish = json!({"release_id": second_release["id"], "expected_date": day_in(10)});
    // Each row: method, path, body, and the cells in the order they are called (a caller
    // who changes something comes last, so the others see the state the row is about).
    let get = |path: String, cells| Row {
        method: Method::GET,
        path,
        body: None,
        cells,
    };
    let post = |path: String, body: Value, cells| Row {
        method: Method::POST,
        path,
        body: Some(body),
        cells,
    };
    #[rustfmt::skip]
    let rows = [
        get("/me".into(),
            [(Guest, 401), (NonMember, 200), (Artist, 200), (OtherArtist, 200), (Manager, 200), (OtherManager, 200), (Admin, 200)]),
        get("/users".into(),
            [(Guest, 401), (NonMember, 403), (Artist, 403), (OtherArtist, 403), (Manager, 403), (OtherManager, 403), (Admin, 200)]),
        get(format!("/users/{}", newcomer.user_id),
            [(Guest, 401), (NonMember, 200), (Artist, 404), (OtherArtist, 404), (Manager, 404), (OtherManager, 404), (Admin, 200)]),
        get("/managers".into(),
            [(Guest, 401), (NonMember, 403), (Artist, 403), (OtherArtist, 403), (Manager, 403), (OtherManager, 403), (Admin, 200)]),
        get(format!("/managers/{}", manager.id),
            [(Guest, 401), (NonMember, 404), (Artist, 404), (OtherArtist, 404), (Manager, 200), (OtherManager, 404), (Admin, 200)]),
        get(format!("/artists/{}", artist.id),
            [(Guest, 401), (NonMember, 404), (Artist, 200), (OtherArtist, 404), (Manager, 200), (OtherManager, 404), (Admin, 200)]),
        get("/releases".into(),
            [(Guest, 401), (NonMember, 403), (Artist, 200), (OtherArtist, 200), (Manager, 200), (OtherManager, 200), (Admin, 403)]),
        get(format!("/releases/{release_id}"),
            [(Guest, 401), (NonMember, 404), (Artist, 200), (OtherArtist, 404), (Manager, 200), (OtherManager, 404), (Admin, 404)]),
        get(format!("/tracks/{track_id}"),
            [(Guest, 401), (NonMember, 404), (Artist, 200), (OtherArtist, 404), (Manager, 200), (OtherManager, 404), (Admin, 404)]),
        get("/publications".into(),
            [(Guest, 401), (NonMember, 403), (Artist, 200), (OtherArtist, 200), (Manager, 200), (OtherManager, 200), (Admin, 403)]),
        // The admin oversees the workflow: every request, read only (accept and decline
        // stay the assigned manager's).
        get("/requests".into(),
            [(Guest, 401), (NonMember, 200), (Artist, 200), (OtherArtist, 200), (Manager, 200), (OtherManager, 200), (Admin, 200)]),
        get(format!("/requests/{publish_request}"),
            [(Guest, 401), (NonMember, 404), (Artist, 200), (OtherArtist, 404), (Manager, 200), (OtherManager, 404), (Admin, 200)]),
        get(format!("/requests/{newcomer_request}"),
            [(Guest, 401), (NonMember, 200), (Artist, 404), (OtherArtist, 404), (Manager, 404), (OtherManager, 200), (Admin, 200)]),
        post("/releases".into(), upload,
            [(Guest, 401), (NonMember, 403), (Manager, 403), (OtherManager, 403), (Admin, 403), (Artist, 201), (OtherArtist, 201)]),
        // The non-member may apply: refused only because their request is open.
        post("/requests/sign".into(), json!({"nickname": "Fresh Face"}),
            [(Guest, 401), (Artist, 403), (OtherArtist, 403), (Manager, 403), (OtherManager, 403), (Admin, 403), (NonMember, 409)]),
        // Another artist's release is 403, as the spec says for the owner check.
        post("/requests/publish".into(), publish,
            [(Guest, 401), (NonMember, 403), (OtherArtist, 403), (Manager, 403), (OtherManager, 403), (Admin, 403), (Artist, 201)]),
        post(format!("/requests/{publish_request}/accept"), json!({}),
            [(Guest, 401), (NonMember, 403), (Artist, 403), (OtherArtist, 403), (Admin, 403), (OtherManager, 404), (Manager, 200)]),
        post(format!("/requests/{newcomer_request}/decline"), json!({}),
            [(Guest, 401), (NonMember, 403), (Artist, 403), (OtherArtist, 403), (Admin, 403), (Manager, 404), (OtherManager, 200)]),
        post("/managers".into(), json!({"user_ids": [extra.user_id]}),
            [(Guest, 401), (NonMember, 403), (Artist, 403), (OtherArtist, 403), (Manager, 403), (OtherManager, 403), (Admin, 201)]),
    ];

    let mut wrong = Vec::new();
    let mut texts = Vec::new();
    for Row {
        method,
        path,
        body,
        cells,
    } in &rows
    {
        for (caller, expected) in cells {
            let token = match caller {
                Guest => None,
                other => world.token(*other),
            };
            let reply = api.call(method.clone(), path, token, body.as_ref()).await;
            if reply.status.as_u16() != *expected {
                wrong.push(format!(
                    "{method} {path} as {caller:?}: {} (expected {expected}): {}",
                    reply.status, reply.text
                ));
            }
            let mut secrets = Vec::new();
            keys_named_like_secrets(&reply.body, &mut secrets);
            assert!(secrets.is_empty(), "{method} {path}: {secrets:?}");
            texts.push(reply.text);
        }
    }
    assert!(wrong.is_empty(), "cells that differ:\n{}", wrong.join("\n"));
    for text in &texts {
        for secret in ["$argon2", PASSWORD, ADMIN_PASSWORD] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
