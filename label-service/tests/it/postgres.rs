//! The PostgreSQL unit of work against a real database (a fresh one per test), and the
//! argon2id password hasher.

use label_service::app::ports::{Catalog, Managers, Requests, Users};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use label_service::adapters::passwords::Argon2Hasher;
use label_service::adapters::postgres::{DeferredTopics, PgStore};
use label_service::app::ports::{
    DeferredAction, NewArtist, NewRequest, NewUser, PasswordHasher, RequestChange, RequestOwner,
    RequestQuery, Step, Store, StoreError, Taken, UnitOfWork,
};
use label_service::domain::evaluation::{Entry, Evaluation};
use label_service::domain::request::{RequestType, Status};
use label_service::domain::validation::{NewRelease, NewTrack};
use label_service::domain::{
    Artist, ArtistId, ManagerId, ReleaseId, ReleaseStatus, Request, RequestId, Role, User, UserId,
};
use serde_json::json;
use sqlx::Row;

use crate::db::TestDb;

const SIGN_TOPIC: &str = "test.sign-requests";
const PUBLISH_TOPIC: &str = "test.publish-requests";
/// A well-formed PHC string; the schema only accepts argon2id hashes.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";

fn store(db: &TestDb) -> PgStore {
    PgStore::new(
        db.pool.clone(),
        DeferredTopics {
            sign: SIGN_TOPIC.to_owned(),
            publish: PUBLISH_TOPIC.to_owned(),
        },
    )
    .expect("a store")
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

/// A whole second, so it survives PostgreSQL's microsecond precision unchanged.
fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + seconds, 0).expect("a time")
}

async fn add_user(uow: &mut impl UnitOfWork, name: &str, role: Role) -> User {
    uow.insert_user(&NewUser {
        name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
        password_hash: HASH.to_owned(),
        role,
    })
    .await
    .expect("insert user")
}

async fn add_manager(uow: &mut impl UnitOfWork, name: &str) -> ManagerId {
    let user = add_user(uow, name, Role::Manager).await;
    uow.insert_manager(user.id).await.expect("insert manager")
}

async fn add_artist(uow: &mut impl UnitOfWork, name: &str, manager_id: ManagerId) -> Artist {
    let user = add_user(uow, name, Role::Artist).await;
    uow.insert_artist(&NewArtist {
        user_id: user.id,
        nickname: format!("{name} Band"),
        contract_due: day("2027-06-01"),
        manager_id,
    })
    .await
    .expect("insert artist")
}

fn sign(applicant_id: UserId, nickname: &str, manager_id: Option<ManagerId>) -> NewRequest {
    NewRequest {
        kind: RequestType::Sign,
        applicant_id,
        manager_id,
        nickname: Some(nickname.to_owned()),
        release_id: None,
        expected_date: None,
        created_at: at(0),
    }
}

fn track(title: &str, artist_ids: Vec<ArtistId>) -> NewTrack {
    NewTrack {
        title: title.to_owned(),
        duration_seconds: 215,
        genre: "rock".to_owned(),
        kind: "song".to_owned(),
        artist_ids,
    }
}

fn close() -> RequestChange {
    RequestChange {
        status: Some(Status::Closed),
        description: Some("The request is declined.".to_owned()),
        ..RequestChange::default()
    }
}

#[tokio::test]
async fn users_round_trip_and_emails_are_unique_whatever_their_case() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    assert!(!uow.admin_exists().await.expect("admin_exists"));
    let ann = uow
        .insert_user(&NewUser {
            name: "Ann Lee".to_owned(),
            email: "Ann@Example.com".to_owned(),
            password_hash: HASH.to_owned(),
            role: Role::NonMember,
        })
        .await
        .expect("insert");
    assert_eq!(ann.role, Role::NonMember);
    assert_eq!(ann.email, "Ann@Example.com");
    let bob = add_user(&mut uow, "Bob", Role::Admin).await;
    assert_eq!(uow.user(ann.id).await.expect("user"), Some(ann.clone()));
    assert_eq!(
        uow.user(UserId(bob.id.get() + 100)).await.expect("user"),
        None
    );
    let credentials = uow
        .credentials("ann@EXAMPLE.com")
        .await
        .expect("credentials")
        .expect("found whatever the case");
    assert_eq!(credentials.user, ann);
    assert_eq!(credentials.password_hash, HASH);
    assert_eq!(uow.credentials("nobody@example.com").await, Ok(None));
    uow.set_role(ann.id, Role::Artist).await.expect("set role");
    assert!(uow.admin_exists().await.expect("admin_exists"));
    let ids: Vec<(UserId, Role)> = uow
        .users()
        .await
        .expect("users")
        .iter()
        .map(|u| (u.id, u.role))
        .collect();
    assert_eq!(ids, vec![(ann.id, Role::Artist), (bob.id, Role::Admin)]);
    assert!(matches!(
        uow.set_role(UserId(bob.id.get() + 100), Role::Admin).await,
        Err(StoreError::Rejected(_))
    ));
    drop(uow);

    let mut uow = store.begin().await.expect("begin");
    let ann = add_user(&mut uow, "Ann", Role::NonMember).await;
    uow.commit().await.expect("commit");
    let mut uow = store.begin().await.expect("begin");
    let taken = uow
        .insert_user(&NewUser {
            name: "Another Ann".to_owned(),
            email: ann.email.to_uppercase(),
            password_hash: HASH.to_owned(),
            role: Role::NonMember,
        })
        .await;
    assert_eq!(taken, Err(StoreError::Conflict(Taken::Email)));
}

#[tokio::test]
async fn a_password_that_is_not_an_argon2id_hash_is_refused_by_the_schema() {
    let db = TestDb::new().await;
    let mut uow = store(&db).begin().await.expect("begin");
    let refused = uow
        .insert_user(&NewUser {
            name: "Plain".to_owned(),
            email: "plain@example.com".to_owned(),
            password_hash: "hunter2hunter2".to_owned(),
            role: Role::NonMember,
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rejected(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn managers_come_with_their_artists() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    let maria = add_manager(&mut uow, "Maria").await;
    let ines = add_manager(&mut uow, "Ines").await;
    let nova = add_artist(&mut uow, "Nova", maria).await;
    let echo = add_artist(&mut uow, "Echo", maria).await;

    let manager = uow.manager(maria).await.expect("manager").expect("found");
    assert_eq!(manager.name, "Maria");
    assert_eq!(manager.artist_ids, vec![nova.id, echo.id]);
    let by_user = uow
        .manager_of_user(manager.user_id)
        .await
        .expect("manager_of_user");
    assert_eq!(by_user, Some(manager.clone()));
    assert_eq!(uow.manager_of_user(nova.user_id).await, Ok(None));
    assert_eq!(uow.manager(ManagerId(ines.get() + 100)).await, Ok(None));
    let all = uow.managers().await.expect("managers");
    let summary: Vec<(ManagerId, Vec<ArtistId>)> =
        all.into_iter().map(|m| (m.id, m.artist_ids)).collect();
    assert_eq!(
        summary,
        vec![(maria, vec![nova.id, echo.id]), (ines, Vec::new())]
    );

    assert_eq!(uow.artist(nova.id).await, Ok(Some(nova.clone())));
    assert_eq!(
        uow.artist_of_user(echo.user_id).await,
        Ok(Some(echo.clone()))
    );
    assert_eq!(uow.artist_of_user(manager.user_id).await, Ok(None));
    assert_eq!(uow.nickname_taken("NOVA band").await, Ok(true));
    assert_eq!(uow.nickname_taken("Nova").await, Ok(false));
    assert_eq!(
        uow.existing_artists(&[echo.id, ArtistId(9_999), nova.id])
            .await,
        Ok(vec![nova.id, echo.id])
    );
    uow.commit().await.expect("commit");

    let mut uow = store.begin().await.expect("begin");
    assert_eq!(
        uow.insert_manager(manager.user_id).await,
        Err(StoreError::Conflict(Taken::Manager))
    );
    drop(uow);
    let mut uow = store.begin().await.expect("begin");
    let fan = add_user(&mut uow, "Fan", Role::NonMember).await;
    let twin = uow
        .insert_artist(&NewArtist {
            user_id: fan.id,
            nickname: "nova BAND".to_owned(),
            contract_due: day("2027-01-01"),
            manager_id: ines,
        })
        .await;
    assert_eq!(twin, Err(StoreError::Conflict(Taken::Nickname)));
}

#[tokio::test]
async fn the_least_loaded_manager_has_the_fewest_open_requests() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    assert_eq!(uow.least_loaded_manager().await, Ok(None), "no manager");

    let busy = add_manager(&mut uow, "Busy").await;
    let calm = add_manager(&mut uow, "Calm").await;
    // Busy has two open requests; Calm has one open and three closed ones.
    let mut n = 0;
    for (manager, open, closed) in [(busy, 2, 0), (calm, 1, 3)] {
        for index in 0..open + closed {
            n += 1;
            let user = add_user(&mut uow, &format!("Fan {n}"), Role::NonMember).await;
            let request = uow
                .insert_request(&sign(user.id, &format!("Fan Band {n}"), Some(manager)))
                .await
                .expect("insert request");
            if index >= open {
                uow.update_request(request.id, Status::New, &close())
                    .await
                    .expect("close")
                    .expect("closed");
            }
        }
    }
    assert_eq!(uow.least_loaded_manager().await, Ok(Some(calm)));
    uow.commit().await.expect("commit");

    // With equal loads, both are chosen sooner or later.
    let mut uow = store.begin().await.expect("begin");
    let user = add_user(&mut uow, "Last Fan", Role::NonMember).await;
    uow.insert_request(&sign(user.id, "Last Band", Some(calm)))
        .await
        .expect("insert request");
    let mut chosen = std::collections::HashSet::new();
    for _ in 0..64 {
        chosen.insert(
            uow.least_loaded_manager()
                .await
                .expect("least loaded")
                .expect("some"),
        );
    }
    assert_eq!(chosen, [busy, calm].into_iter().collect());
}

#[tokio::test]
async fn a_release_round_trips_with_its_tracks_and_their_artists() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    let maria = add_manager(&mut uow, "Maria").await;
    let nova = add_artist(&mut uow, "Nova", maria).await;
    let echo = add_artist(&mut uow, "Echo", maria).await;
    let upload = NewRelease {
        title: "First Light".to_owned(),
        date: None,
        tracks: vec![
            track("Dawn", vec![nova.id, echo.id, nova.id]),
            track("Dusk", vec![nova.id]),
        ],
    };
    let release = uow
        .insert_release(nova.id, day("2026-05-01"), &upload)
        .await
        .expect("insert release");
    assert_eq!(release.status, ReleaseStatus::Unpublished);
    assert_eq!(release.artist_id, nova.id);
    assert_eq!(release.created_on, day("2026-05-01"));
    let titles: Vec<&str> = release.tracks.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, vec!["Dawn", "Dusk"]);
    assert_eq!(release.tracks[0].artist_ids, vec![nova.id, echo.id]);
    assert_eq!(release.tracks[1].artist_ids, vec![nova.id]);
    uow.commit().await.expect("commit");

    let mut uow = store.begin().await.expect("begin");
    assert_eq!(
        uow.release(release.id, false).await,
        Ok(Some(release.clone()))
    );
    assert_eq!(
        uow.release(release.id, true).await,
        Ok(Some(release.clone()))
    );
    assert_eq!(
        uow.release(ReleaseId(release.id.get() + 100), false).await,
        Ok(None)
    );
    assert_eq!(
        uow.track(release.tracks[0].id).await,
        Ok(Some(release.tracks[0].clone()))
    );
    let older = uow
        .insert_release(
            echo.id,
            day("2026-01-01"),
            &NewRelease {
                title: "Echoes".to_owned(),
                date: None,
                tracks: vec![track("One", vec![echo.id])],
            },
        )
        .await
        .expect("insert release");
    assert_eq!(
        uow.releases_of(&[nova.id, echo.id]).await,
        Ok(vec![release.clone(), older.clone()]),
        "newest first, with tracks"
    );
    assert_eq!(uow.releases_of(&[echo.id]).await, Ok(vec![older]));
    assert_eq!(uow.releases_of(&[]).await, Ok(Vec::new()));
    uow.set_release_status(release.id, ReleaseStatus::Published)
        .await
        .expect("set status");
    let published = uow
        .release(release.id, false)
        .await
        .expect("release")
        .expect("found");
    assert_eq!(published.status, ReleaseStatus::Published);
    drop(uow);

    // A track artist that does not exist is refused, and nothing of the release stays.
    let mut uow = store.begin().await.expect("begin");
    let refused = uow
        .insert_release(
            nova.id,
            day("2026-05-02"),
            &NewRelease {
                title: "Ghosts".to_owned(),
                date: None,
                tracks: vec![track("Boo", vec![nova.id, ArtistId(9_999)])],
            },
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rejected(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn one_open_sign_request_per_user_and_per_nickname() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    let ann = add_user(&mut uow, "Ann", Role::NonMember).await;
    let bob = add_user(&mut uow, "Bob", Role::NonMember).await;
    assert_eq!(uow.has_open_sign_request(ann.id).await, Ok(false));
    let first = uow
        .insert_request(&sign(ann.id, "Nova Lights", None))
        .await
        .expect("insert request");
    assert_eq!(first.status, Status::New);
    assert_eq!(first.kind, RequestType::Sign);
    assert_eq!(first.created_at, at(0));
    assert_eq!(first.nickname.as_deref(), Some("Nova Lights"));
    assert_eq!(first.manager_id, None);
    assert_eq!(first.description, "");
    assert_eq!(first.evaluation, None);
    assert_eq!(first.attempts, 0);
    assert_eq!(uow.has_open_sign_request(ann.id).await, Ok(true));
    uow.commit().await.expect("commit");

    let conflict = |taken: Taken| Err::<Request, _>(StoreError::Conflict(taken));
    let mut uow = store.begin().await.expect("begin");
    assert_eq!(
        uow.insert_request(&sign(ann.id, "Other Name", None)).await,
        conflict(Taken::OpenSignRequest)
    );
    drop(uow);
    let mut uow = store.begin().await.expect("begin");
    assert_eq!(
        uow.insert_request(&sign(bob.id, "NOVA lights", None)).await,
        conflict(Taken::OpenNickname)
    );
    drop(uow);

    // Once declined, the user may apply again, and the nickname is free again.
    let mut uow = store.begin().await.expect("begin");
    uow.update_request(first.id, Status::New, &close())
        .await
        .expect("close")
        .expect("closed");
    assert_eq!(uow.has_open_sign_request(ann.id).await, Ok(false));
    let again = uow
        .insert_request(&sign(ann.id, "Nova Lights", None))
        .await
        .expect("a new request after the closed one");
    assert_ne!(again.id, first.id);
    uow.commit().await.expect("commit");
}

#[tokio::test]
async fn update_request_moves_only_from_the_expected_status() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    let maria = add_manager(&mut uow, "Maria").await;
    let nova = add_artist(&mut uow, "Nova", maria).await;
    let release = uow
        .insert_release(
            nova.id,
            day("2026-05-01"),
            &NewRelease {
                title: "First Light".to_owned(),
                date: None,
                tracks: vec![track("Dawn", vec![nova.id])],
            },
        )
        .await
        .expect("insert release");
    let request = uow
        .insert_request(&NewRequest {
            kind: RequestType::Publish,
            applicant_id: nova.user_id,
            manager_id: Some(maria),
            nickname: None,
            release_id: Some(release.id),
            expected_date: Some(day("2026-07-01")),
            created_at: at(0),
        })
        .await
        .expect("insert request");
    assert_eq!(uow.has_open_publish_request(release.id).await, Ok(true));
    uow.commit().await.expect("commit");

    let mut uow = store.begin().await.expect("begin");
    let moved_on = uow
        .update_request(request.id, Status::Processing, &close())
        .await;
    assert_eq!(moved_on, Ok(None), "the request is New, not Processing");
    assert_eq!(
        uow.request(request.id, false).await,
        Ok(Some(request.clone()))
    );

    let processing = uow
        .update_request(
            request.id,
            Status::New,
            &RequestChange {
                status: Some(Status::Processing),
                ..RequestChange::default()
            },
        )
        .await
        .expect("update")
        .expect("moved");
    assert_eq!(processing.status, Status::Processing);
    assert_eq!(processing.description, "", "left alone");
    assert_eq!(processing.manager_id, Some(maria), "left alone");
    let entries = vec![
        Entry {
            name: "No releases from artist more than limit".to_owned(),
            diff: 0,
            reason: "OK".to_owned(),
        },
        Entry {
            name: "No releases that day".to_owned(),
            diff: -1,
            reason: "More than one release per day".to_owned(),
        },
    ];
    let evaluated = uow
        .update_request(
            request.id,
            Status::Processing,
            &RequestChange {
                status: Some(Status::OnApproval),
                evaluation: Some(Evaluation {
                    entries: entries.clone(),
                    grade: -1,
                }),
                description: Some("Evaluated.".to_owned()),
                ..RequestChange::default()
            },
        )
        .await
        .expect("update")
        .expect("moved");
    assert_eq!(evaluated.status, Status::OnApproval);
    assert_eq!(evaluated.grade, Some(-1));
    assert_eq!(evaluated.evaluation.as_ref(), Some(&entries));
    assert_eq!(evaluated.description, "Evaluated.");
    assert_eq!(uow.count_attempt(request.id).await, Ok(1));
    assert_eq!(uow.count_attempt(request.id).await, Ok(2));
    assert!(matches!(
        uow.count_attempt(RequestId(request.id.get() + 100)).await,
        Err(StoreError::Rejected(_))
    ));
    drop(uow);

    let mut uow = store.begin().await.expect("begin");
    let kept = uow
        .request(request.id, false)
        .await
        .expect("request")
        .expect("found");
    assert_eq!(kept, request, "the dropped unit of work wrote nothing");
}

#[tokio::test]
async fn requests_are_listed_newest_first_with_filters_and_a_total() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    let maria = add_manager(&mut uow, "Maria").await;
    let ines = add_manager(&mut uow, "Ines").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let user = add_user(&mut uow, &format!("Fan {n}"), Role::NonMember).await;
        let mut new = sign(user.id, &format!("Band {n}"), Some(maria));
        new.created_at = at(n);
        ids.push((user.id, uow.insert_request(&new).await.expect("insert").id));
    }
    let other = add_user(&mut uow, "Other", Role::NonMember).await;
    uow.insert_request(&sign(other.id, "Other Band", Some(ines)))
        .await
        .expect("insert");
    uow.update_request(ids[1].1, Status::New, &close())
        .await
        .expect("close")
        .expect("closed");

    let query = |owner, status, limit, offset| RequestQuery {
        owner,
        status,
        kind: None,
        limit,
        offset,
    };
    let listed = |page: &label_service::app::ports::Page<Request>| -> Vec<RequestId> {
        page.items.iter().map(|r| r.id).collect()
    };
    let page = uow
        .requests(&query(RequestOwner::Manager(maria), None, 2, 0))
        .await
        .expect("requests");
    assert_eq!(page.total, 5);
    assert_eq!(listed(&page), vec![ids[4].1, ids[3].1]);
    let page = uow
        .requests(&query(RequestOwner::Manager(maria), None, 2, 4))
        .await
        .expect("requests");
    assert_eq!((listed(&page), page.total), (vec![ids[0].1], 5));
    let page = uow
        .requests(&query(RequestOwner::Manager(maria), None, 2, 10))
        .await
        .expect("requests");
    assert_eq!((listed(&page), page.total), (Vec::new(), 5));
    let page = uow
        .requests(&query(
            RequestOwner::Manager(maria),
            Some(Status::Closed),
            10,
            0,
        ))
        .await
        .expect("requests");
    assert_eq!((listed(&page), page.total), (vec![ids[1].1], 1));
    let page = uow
        .requests(&query(RequestOwner::Applicant(ids[2].0), None, 10, 0))
        .await
        .expect("requests");
    assert_eq!((listed(&page), page.total), (vec![ids[2].1], 1));
    let page = uow
        .requests(&RequestQuery {
            kind: Some(RequestType::Publish),
            ..query(RequestOwner::Manager(maria), None, 10, 0)
        })
        .await
        .expect("requests");
    assert_eq!((listed(&page), page.total), (Vec::new(), 0));
}

#[tokio::test]
async fn a_dropped_unit_of_work_writes_nothing() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    let ann = add_user(&mut uow, "Ann", Role::NonMember).await;
    uow.insert_request(&sign(ann.id, "Nova", None))
        .await
        .expect("insert request");
    drop(uow);

    let mut uow = store.begin().await.expect("begin");
    assert_eq!(uow.user(ann.id).await, Ok(None));
    assert_eq!(uow.users().await, Ok(Vec::new()));
    let requests: i64 = sqlx::query_scalar("SELECT count(*) FROM label.requests")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(requests, 0);
}

#[tokio::test]
async fn schedule_writes_the_action_to_the_outbox_on_commit() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    let ann = add_user(&mut uow, "Ann", Role::NonMember).await;
    let request = uow
        .insert_request(&sign(ann.id, "Nova", None))
        .await
        .expect("insert request");
    let action = DeferredAction {
        request_id: request.id,
        step: Step::AssignManager,
        attempt: 1,
        enqueued_at: Utc::now(),
    };
    uow.schedule(RequestType::Sign, &action, at(60))
        .await
        .expect("schedule");
    let expire = DeferredAction {
        step: Step::Expire,
        ..action.clone()
    };
    uow.schedule(RequestType::Publish, &expire, at(120))
        .await
        .expect("schedule");
    let outbox = "SELECT topic, message_key, payload, not_before, sent_at IS NULL AS unsent \
                  FROM label.outbox ORDER BY id";
    let before = sqlx::query(outbox)
        .fetch_all(&db.pool)
        .await
        .expect("outbox");
    assert!(before.is_empty(), "nothing is visible before the commit");
    uow.commit().await.expect("commit");

    let rows = sqlx::query(outbox)
        .fetch_all(&db.pool)
        .await
        .expect("outbox");
    assert_eq!(rows.len(), 2);
    let row = &rows[0];
    assert_eq!(row.get::<String, _>("topic"), SIGN_TOPIC);
    assert_eq!(
        row.get::<Option<Vec<u8>>, _>("message_key"),
        Some(request.id.to_string().into_bytes())
    );
    let payload: serde_json::Value =
        serde_json::from_slice(&row.get::<Vec<u8>, _>("payload")).expect("JSON payload");
    assert_eq!(
        payload,
        json!({
            "request_id": request.id,
            "type": "assign_manager",
            "attempt": 1,
            "enqueued_at": action.enqueued_at,
        })
    );
    let decoded: DeferredAction = serde_json::from_value(payload).expect("decodes back");
    assert_eq!(decoded, action);
    assert_eq!(row.get::<DateTime<Utc>, _>("not_before"), at(60));
    assert!(row.get::<bool, _>("unsent"));
    assert_eq!(rows[1].get::<String, _>("topic"), PUBLISH_TOPIC);
    assert_eq!(rows[1].get::<DateTime<Utc>, _>("not_before"), at(120));
}

#[tokio::test]
async fn a_publication_needs_the_manager_of_the_releases_owner() {
    let db = TestDb::new().await;
    let store = store(&db);
    let mut uow = store.begin().await.expect("begin");
    let maria = add_manager(&mut uow, "Maria").await;
    let ines = add_manager(&mut uow, "Ines").await;
    let nova = add_artist(&mut uow, "Nova", maria).await;
    let mut releases = Vec::new();
    for title in ["One", "Two"] {
        let release = uow
            .insert_release(
                nova.id,
                day("2026-05-01"),
                &NewRelease {
                    title: title.to_owned(),
                    date: None,
                    tracks: vec![track(title, vec![nova.id])],
                },
            )
            .await
            .expect("insert release");
        releases.push(release.id);
    }
    uow.commit().await.expect("commit");

    let mut uow = store.begin().await.expect("begin");
    let refused = uow
        .insert_publication(releases[0], day("2026-07-01"), ines)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rejected(_))),
        "{refused:?}"
    );
    drop(uow);

    let mut uow = store.begin().await.expect("begin");
    let first = uow
        .insert_publication(releases[0], day("2026-07-01"), maria)
        .await
        .expect("the owner's manager publishes");
    assert_eq!(
        (first.release_id, first.scheduled_on, first.manager_id),
        (releases[0], day("2026-07-01"), maria)
    );
    let second = uow
        .insert_publication(releases[1], day("2026-08-01"), maria)
        .await
        .expect("publish");
    assert_eq!(
        uow.publications_of(&[nova.id]).await,
        Ok(vec![second.clone(), first.clone()]),
        "latest scheduled first"
    );
    assert_eq!(
        uow.publication_dates(nova.id).await,
        Ok(vec![day("2026-07-01"), day("2026-08-01")])
    );
    assert_eq!(uow.publications_on(day("2026-07-01")).await, Ok(1));
    assert_eq!(uow.publications_on(day("2026-07-02")).await, Ok(0));
    uow.commit().await.expect("commit");

    let mut uow = store.begin().await.expect("begin");
    assert_eq!(
        uow.insert_publication(releases[0], day("2026-09-01"), maria)
            .await,
        Err(StoreError::Conflict(Taken::Publication))
    );
}

/// Reads a request under a row lock through any store, in a spawned task: this also checks
/// that the unit of work's futures are `Send` when used from generic code.
async fn read_locked<S: Store>(store: S, id: RequestId) -> Result<Option<Request>, StoreError> {
    let mut uow = store.begin().await?;
    let request = uow.request(id, true).await?;
    uow.commit().await?;
    Ok(request)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_request_waits_for_the_first_transaction_to_commit() {
    let db = TestDb::new().await;
    let store = store(&db);
    let setup = store.clone();
    let id = tokio::spawn(async move {
        let mut uow = setup.begin().await.expect("begin");
        let ann = add_user(&mut uow, "Ann", Role::NonMember).await;
        let maria = add_manager(&mut uow, "Maria").await;
        let request = uow
            .insert_request(&sign(ann.id, "Nova", Some(maria)))
            .await
            .expect("insert request");
        uow.commit().await.expect("commit");
        request.id
    })
    .await
    .expect("setup task");

    let mut first = store.begin().await.expect("begin");
    let locked = first
        .request(id, true)
        .await
        .expect("request")
        .expect("found");
    assert_eq!(locked.status, Status::New);

    let mut second = tokio::spawn(read_locked(store.clone(), id));
    let waited = tokio::time::timeout(Duration::from_millis(500), &mut second).await;
    assert!(waited.is_err(), "the second reader waits for the lock");

    first
        .update_request(
            id,
            Status::New,
            &RequestChange {
                status: Some(Status::OnApproval),
                ..RequestChange::default()
            },
        )
        .await
        .expect("update")
        .expect("moved");
    first.commit().await.expect("commit");
    let seen = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second reader goes on once the first committed")
        .expect("task")
        .expect("read")
        .expect("found");
    assert_eq!(
        seen.status,
        Status::OnApproval,
        "it sees the committed change"
    );
}

#[tokio::test]
async fn argon2id_hashes_verify_and_an_unknown_user_never_does() {
    let hasher = Argon2Hasher::new();
    let hash = hasher
        .hash("correct horse battery".to_owned())
        .await
        .expect("hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
    let again = hasher
        .hash("correct horse battery".to_owned())
        .await
        .expect("hash");
    assert_ne!(hash, again, "a fresh salt each time");
    assert!(
        hasher
            .verify("correct horse battery".to_owned(), Some(hash.clone()))
            .await
    );
    assert!(
        !hasher
            .verify("wrong horse battery".to_owned(), Some(hash))
            .await
    );
    assert!(
        !hasher
            .verify("correct horse battery".to_owned(), None)
            .await
    );
    assert!(
        !hasher
            .verify("anything".to_owned(), Some("not a hash".to_owned()))
            .await
    );
}
