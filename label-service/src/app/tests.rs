//! Use-case tests with mockall mocks of the ports.
//!
//! Each test prepares the units of work a use case will begin, in order, with the calls it
//! expects on each; a call nobody expected panics, `times` and `never` are checked when the
//! mocks drop. "Nothing written" reads as `expect_commit().never()`: a unit of work that is
//! not committed is rolled back.

use crate::app::error::ErrorCode;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use mockall::Sequence;
use mockall::predicate::eq;

use crate::domain::evaluation::{Entry, Evaluation};
use crate::domain::request::{RequestType, Status};
use crate::domain::{
    Artist, ArtistId, Manager, ManagerId, Publication, PublicationId, Release, ReleaseId,
    ReleaseStatus, Request, RequestId, Role, User, UserId,
};

use super::auth::BAD_CREDENTIALS;
use super::deferred::{StepOutcome, retry_delay};
use super::ports::{
    Credentials, DeferredAction, MockPasswordHasher, MockStore, MockUnitOfWork, NewArtist,
    NewRequest, NewUser, RequestChange, Step, StoreError, Taken,
};
use super::{Actor, AppError, Label, Rules};

// ---------------------------------------------------------------- the cast and the clock

const ADMIN_USER: UserId = UserId(1);
const NON_MEMBER: UserId = UserId(5);
const ARTIST_USER: UserId = UserId(20);
const MANAGER_USER: UserId = UserId(30);
const ARTIST: ArtistId = ArtistId(3);
const MANAGER: ManagerId = ManagerId(7);
const OTHER_MANAGER: ManagerId = ManagerId(8);
const RELEASE: ReleaseId = ReleaseId(11);
const SIGN_REQUEST: RequestId = RequestId(42);
const PUBLISH_REQUEST: RequestId = RequestId(43);
const NICKNAME: &str = "Nova Lights";
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

/// The request time to live of `Rules::default()`: 90 days (spec: 3 months).
fn ttl() -> chrono::Duration {
    chrono::Duration::days(90)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0)
        .single()
        .expect("a valid instant")
}

fn today() -> NaiveDate {
    now().date_naive()
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a valid date")
}

fn days_from_today(days: u64) -> NaiveDate {
    today()
        .checked_add_days(Days::new(days))
        .expect("a day in range")
}

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - chrono::Duration::days(days)
}

fn user(id: UserId, role: Role) -> User {
    User {
        id,
        name: format!("User {id}"),
        email: format!("user{id}@example.com"),
        role,
        created_at: days_ago(30),
    }
}

fn artist_record(contract_due: NaiveDate) -> Artist {
    Artist {
        id: ARTIST,
        user_id: ARTIST_USER,
        nickname: "Echo Harbor".into(),
        contract_due,
        active: true,
        manager_id: MANAGER,
    }
}

fn manager_record(id: ManagerId, user_id: UserId) -> Manager {
    Manager {
        id,
        user_id,
        name: format!("User {user_id}"),
        artist_ids: vec![],
    }
}

fn non_member() -> Actor {
    Actor {
        user: user(NON_MEMBER, Role::NonMember),
        artist: None,
        manager: None,
    }
}

fn artist_with_contract_until(contract_due: NaiveDate) -> Actor {
    Actor {
        user: user(ARTIST_USER, Role::Artist),
        artist: Some(artist_record(contract_due)),
        manager: None,
    }
}

fn artist() -> Actor {
    artist_with_contract_until(days_from_today(365))
}

fn manager() -> Actor {
    Actor {
        user: user(MANAGER_USER, Role::Manager),
        artist: None,
        manager: Some(Manager {
            artist_ids: vec![ARTIST],
            ..manager_record(MANAGER, MANAGER_USER)
        }),
    }
}

fn admin() -> Actor {
    Actor {
        user: user(ADMIN_USER, Role::Admin),
        artist: None,
        manager: None,
    }
}

fn sign_request(status: Status) -> Request {
    Request {
        id: SIGN_REQUEST,
        kind: RequestType::Sign,
        status,
        created_at: days_ago(2),
        applicant_id: NON_MEMBER,
        applicant_name: "Applicant".to_owned(),
        manager_id: Some(MANAGER),
        manager_name: None,
        description: String::new(),
        nickname: Some(NICKNAME.into()),
        release_id: None,
        expected_date: None,
        grade: None,
        evaluation: None,
        attempts: 0,
    }
}

fn publish_request(status: Status) -> Request {
    Request {
        id: PUBLISH_REQUEST,
        kind: RequestType::Publish,
        status,
        created_at: days_ago(2),
        applicant_id: ARTIST_USER,
        applicant_name: "Applicant".to_owned(),
        manager_id: Some(MANAGER),
        manager_name: None,
        description: String::new(),
        nickname: None,
        release_id: Some(RELEASE),
        expected_date: Some(days_from_today(30)),
        grade: Some(-1),
        evaluation: Some(vec![Entry {
            name: "No releases that day".into(),
            diff: -1,
            reason: "More than one release per day".into(),
        }]),
        attempts: 0,
    }
}

fn release(owner: ArtistId, status: ReleaseStatus) -> Release {
    Release {
        id: RELEASE,
        title: "Night Drive".into(),
        created_on: day("2026-01-15"),
        status,
        artist_id: owner,
        tracks: vec![],
    }
}

/// The request as the store would return it after `insert_request`.
fn stored(new: &NewRequest, id: RequestId) -> Request {
    Request {
        id,
        kind: new.kind,
        status: Status::New,
        created_at: new.created_at,
        applicant_id: new.applicant_id,
        applicant_name: "Applicant".to_owned(),
        manager_id: new.manager_id,
        manager_name: None,
        description: String::new(),
        nickname: new.nickname.clone(),
        release_id: new.release_id,
        expected_date: new.expected_date,
        grade: None,
        evaluation: None,
        attempts: 0,
    }
}

/// The request as the store would return it after `update_request` applied `change`.
fn applied(request: &Request, change: &RequestChange) -> Request {
    let mut out = request.clone();
    if let Some(status) = change.status {
        out.status = status;
    }
    if let Some(manager) = change.manager_id {
        out.manager_id = Some(manager);
    }
    if let Some(description) = &change.description {
        out.description.clone_from(description);
    }
    if let Some(evaluation) = &change.evaluation {
        out.grade = Some(evaluation.grade);
        out.evaluation = Some(evaluation.entries.clone());
    }
    out
}

fn closing(description: &str) -> RequestChange {
    RequestChange {
        status: Some(Status::Closed),
        description: Some(description.into()),
        ..RequestChange::default()
    }
}

fn action(request_id: RequestId, step: Step, attempt: u32) -> DeferredAction {
    DeferredAction {
        request_id,
        step,
        attempt,
        enqueued_at: now() - chrono::Duration::minutes(1),
    }
}

// ---------------------------------------------------------------- mock plumbing

type Fut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A future that is ready at once, as a mock returns it.
fn ready<T: Send + 'static>(value: T) -> Fut<T> {
    Box::pin(std::future::ready(value))
}

fn unavailable<T>() -> Result<T, StoreError> {
    Err(StoreError::Unavailable("connection refused".into()))
}

/// A store handing out these units of work, one per `begin`, in order; exactly as many
/// `begin`s as there are units of work.
fn store_with(uows: Vec<MockUnitOfWork>) -> MockStore {
    let count = uows.len();
    let queue = Mutex::new(VecDeque::from(uows));
    let mut store = MockStore::new();
    store.expect_begin().times(count).returning(move || {
        let uow = queue
            .lock()
            .expect("the queue of units of work is not poisoned")
            .pop_front()
            .expect("a prepared unit of work for each begin");
        Box::pin(async move { Ok(uow) })
    });
    store
}

/// A store the use case must not even open.
fn untouched_store() -> MockStore {
    let mut store = MockStore::new();
    store.expect_begin().never();
    store
}

fn label(store: MockStore) -> Label<MockStore, MockPasswordHasher> {
    Label::new(store, MockPasswordHasher::new(), Rules::default())
}

fn label_with_hasher(
    store: MockStore,
    hasher: MockPasswordHasher,
) -> Label<MockStore, MockPasswordHasher> {
    Label::new(store, hasher, Rules::default())
}

/// What a mock saw, for assertions after the call.
type Recorder<T> = Arc<Mutex<Vec<T>>>;

fn recorder<T>() -> Recorder<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn record<T>(recorder: &Recorder<T>, value: T) {
    recorder
        .lock()
        .expect("the recorder is not poisoned")
        .push(value);
}

fn seen<T: Clone>(recorder: &Recorder<T>) -> Vec<T> {
    recorder
        .lock()
        .expect("the recorder is not poisoned")
        .clone()
}

/// The HTTP status each error class maps to (app/error.rs), to read assertions at a glance.
fn http_status(err: &AppError) -> u16 {
    match err {
        AppError::BadInput { .. } => 400,
        AppError::Unauthenticated { .. } => 401,
        AppError::Forbidden { .. } => 403,
        AppError::NotFound { .. } => 404,
        AppError::Conflict { .. } => 409,
        AppError::Invalid { .. } => 422,
        AppError::Internal(_) => 500,
        AppError::Unavailable(_) => 503,
    }
}

fn status_and_code(err: &AppError) -> (u16, &'static str) {
    (http_status(err), err.code())
}

// ---------------------------------------------------------------- apply: sign

/// A unit of work where the nickname is free and no sign request is open.
fn sign_checks_pass(uow: &mut MockUnitOfWork) {
    uow.expect_nickname_taken()
        .withf(|nickname| nickname == NICKNAME)
        .times(1)
        .returning(|_| ready(Ok(false)));
    uow.expect_has_open_sign_request()
        .with(eq(NON_MEMBER))
        .times(1)
        .returning(|_| ready(Ok(false)));
}

#[tokio::test]
async fn applying_to_sign_writes_the_request_and_both_deferred_actions_in_one_unit_of_work() {
    let mut seq = Sequence::new();
    let mut uow = MockUnitOfWork::new();
    sign_checks_pass(&mut uow);
    let inserted = recorder::<NewRequest>();
    let sink = Arc::clone(&inserted);
    uow.expect_insert_request()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |new| {
            record(&sink, new.clone());
            ready(Ok(stored(new, SIGN_REQUEST)))
        });
    let scheduled = recorder::<(RequestType, DeferredAction, DateTime<Utc>)>();
    let sink = Arc::clone(&scheduled);
    uow.expect_schedule()
        .times(2)
        .in_sequence(&mut seq)
        .returning(move |kind, action, not_before| {
            record(&sink, (kind, action.clone(), not_before));
            ready(Ok(()))
        });
    uow.expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label(store_with(vec![uow]));

    let request = label
        .apply_sign(&non_member(), NICKNAME, now())
        .await
        .expect("the request is applied");

    assert_eq!(request.id, SIGN_REQUEST);
    assert_eq!(request.status, Status::New);
    assert_eq!(
        seen(&inserted),
        vec![NewRequest {
            kind: RequestType::Sign,
            applicant_id: NON_MEMBER,
            manager_id: None,
            nickname: Some(NICKNAME.into()),
            release_id: None,
            expected_date: None,
            created_at: now(),
        }],
        "a sign request starts without a manager"
    );
    let first = |step| DeferredAction {
        request_id: SIGN_REQUEST,
        step,
        attempt: 1,
        enqueued_at: now(),
    };
    assert_eq!(
        seen(&scheduled),
        vec![
            (RequestType::Sign, first(Step::AssignManager), now()),
            (RequestType::Sign, first(Step::Expire), now() + ttl()),
        ],
        "assign a manager now, expire when the time to live is over"
    );
}

#[tokio::test]
async fn applying_to_sign_with_a_taken_nickname_is_a_conflict_and_writes_nothing() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_nickname_taken()
        .times(1)
        .returning(|_| ready(Ok(true)));
    uow.expect_has_open_sign_request().never();
    uow.expect_insert_request().never();
    uow.expect_schedule().never();
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let err = label
        .apply_sign(&non_member(), NICKNAME, now())
        .await
        .expect_err("the nickname is taken");

    assert_eq!(status_and_code(&err), (409, "nickname_taken"));
}

#[tokio::test]
async fn applying_to_sign_with_a_sign_request_open_is_a_conflict_and_writes_nothing() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_nickname_taken()
        .times(1)
        .returning(|_| ready(Ok(false)));
    uow.expect_has_open_sign_request()
        .with(eq(NON_MEMBER))
        .times(1)
        .returning(|_| ready(Ok(true)));
    uow.expect_insert_request().never();
    uow.expect_schedule().never();
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let err = label
        .apply_sign(&non_member(), NICKNAME, now())
        .await
        .expect_err("a sign request is open");

    assert_eq!(status_and_code(&err), (409, "sign_request_open"));
}

#[tokio::test]
async fn applying_to_sign_when_a_concurrent_request_won_the_unique_index_is_the_same_conflict() {
    for (constraint, code) in [
        (Taken::OpenSignRequest, "sign_request_open"),
        (Taken::OpenNickname, "nickname_taken"),
    ] {
        let mut uow = MockUnitOfWork::new();
        sign_checks_pass(&mut uow);
        let taken = constraint.clone();
        uow.expect_insert_request()
            .times(1)
            .returning(move |_| ready(Err(StoreError::Conflict(taken.clone()))));
        uow.expect_schedule().never();
        uow.expect_commit().never();
        let label = label(store_with(vec![uow]));

        let err = label
            .apply_sign(&non_member(), NICKNAME, now())
            .await
            .expect_err("the unique index refused the request");

        assert_eq!(status_and_code(&err), (409, code), "{constraint:?}");
    }
}

#[tokio::test]
async fn applying_to_sign_with_an_invalid_nickname_is_refused_without_touching_the_store() {
    for nickname in ["", "   ", " Nova", &"x".repeat(33)] {
        let label = label(untouched_store());

        let err = label
            .apply_sign(&non_member(), nickname, now())
            .await
            .expect_err("the nickname is not valid");

        assert_eq!(http_status(&err), 422, "{nickname:?}");
        let AppError::Invalid { fields, .. } = &err else {
            panic!("expected a validation error, got {err:?}");
        };
        assert_eq!(fields[0].field, "nickname");
    }
}

#[tokio::test]
async fn only_non_members_may_apply_to_sign() {
    for actor in [artist(), manager(), admin()] {
        let label = label(untouched_store());

        let err = label
            .apply_sign(&actor, NICKNAME, now())
            .await
            .expect_err("only non-members apply to sign");

        assert_eq!(
            status_and_code(&err),
            (403, "role_not_allowed"),
            "{:?}",
            actor.role()
        );
    }
}

#[tokio::test]
async fn applying_to_sign_fails_without_committing_when_scheduling_the_deferred_action_fails() {
    let mut uow = MockUnitOfWork::new();
    sign_checks_pass(&mut uow);
    uow.expect_insert_request()
        .times(1)
        .returning(|new| ready(Ok(stored(new, SIGN_REQUEST))));
    uow.expect_schedule()
        .times(1)
        .returning(|_, _, _| ready(unavailable()));
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let err = label
        .apply_sign(&non_member(), NICKNAME, now())
        .await
        .expect_err("the outbox could not be written");

    assert!(matches!(err, AppError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
}

// ---------------------------------------------------------------- apply: publish

/// A unit of work whose `release` answers `found`; nothing may be written.
fn publish_refused_uow(found: Option<Release>) -> MockUnitOfWork {
    let mut uow = MockUnitOfWork::new();
    uow.expect_release()
        .with(eq(RELEASE), eq(true))
        .times(1)
        .returning(move |_, _| ready(Ok(found.clone())));
    uow.expect_insert_request().never();
    uow.expect_schedule().never();
    uow.expect_commit().never();
    uow
}

/// A unit of work where the release is the artist's, unpublished, without open request;
/// nothing may be written.
fn publish_date_refused_uow() -> MockUnitOfWork {
    let mut uow = publish_refused_uow(Some(release(ARTIST, ReleaseStatus::Unpublished)));
    uow.expect_has_open_publish_request()
        .with(eq(RELEASE))
        .times(1)
        .returning(|_| ready(Ok(false)));
    uow
}

#[tokio::test]
async fn applying_to_publish_an_unknown_release_is_not_found() {
    let label = label(store_with(vec![publish_refused_uow(None)]));

    let err = label
        .apply_publish(&artist(), RELEASE, days_from_today(30), now())
        .await
        .expect_err("no such release");

    assert_eq!(status_and_code(&err), (404, "release_not_found"));
}

#[tokio::test]
async fn applying_to_publish_another_artists_release_is_forbidden() {
    let other_artist = ArtistId(ARTIST.get() + 1);
    let uow = publish_refused_uow(Some(release(other_artist, ReleaseStatus::Unpublished)));
    let label = label(store_with(vec![uow]));

    let err = label
        .apply_publish(&artist(), RELEASE, days_from_today(30), now())
        .await
        .expect_err("not the owner");

    assert_eq!(status_and_code(&err), (403, "not_release_owner"));
}

#[tokio::test]
async fn applying_to_publish_a_published_release_is_a_conflict() {
    let uow = publish_refused_uow(Some(release(ARTIST, ReleaseStatus::Published)));
    let label = label(store_with(vec![uow]));

    let err = label
        .apply_publish(&artist(), RELEASE, days_from_today(30), now())
        .await
        .expect_err("published already");

    assert_eq!(status_and_code(&err), (409, "release_published"));
}

#[tokio::test]
async fn applying_to_publish_a_release_with_an_open_publish_request_is_a_conflict() {
    let mut uow = publish_refused_uow(Some(release(ARTIST, ReleaseStatus::Unpublished)));
    uow.expect_has_open_publish_request()
        .with(eq(RELEASE))
        .times(1)
        .returning(|_| ready(Ok(true)));
    let label = label(store_with(vec![uow]));

    let err = label
        .apply_publish(&artist(), RELEASE, days_from_today(30), now())
        .await
        .expect_err("a publish request is open");

    assert_eq!(status_and_code(&err), (409, "publish_request_open"));
}

#[tokio::test]
async fn applying_to_publish_seven_days_ahead_is_too_soon() {
    let label = label(store_with(vec![publish_date_refused_uow()]));

    let err = label
        .apply_publish(&artist(), RELEASE, days_from_today(7), now())
        .await
        .expect_err("at least eight days' notice");

    assert_eq!(status_and_code(&err), (422, "date_too_soon"));
    let AppError::Invalid { fields, .. } = &err else {
        panic!("expected a validation error, got {err:?}");
    };
    assert_eq!(fields[0].field, "expected_date");
}

#[tokio::test]
async fn applying_to_publish_after_the_contract_ends_is_bad_input() {
    let actor = artist_with_contract_until(days_from_today(20));
    let label = label(store_with(vec![publish_date_refused_uow()]));

    let err = label
        .apply_publish(&actor, RELEASE, days_from_today(30), now())
        .await
        .expect_err("the contract ends before the expected date");

    assert_eq!(status_and_code(&err), (400, "contract_ends_before"));
}

#[tokio::test]
async fn only_artists_may_apply_to_publish() {
    for actor in [non_member(), manager(), admin()] {
        let label = label(untouched_store());

        let err = label
            .apply_publish(&actor, RELEASE, days_from_today(30), now())
            .await
            .expect_err("only artists apply to publish");

        assert_eq!(
            status_and_code(&err),
            (403, "role_not_allowed"),
            "{:?}",
            actor.role()
        );
    }
}

#[tokio::test]
async fn applying_to_publish_assigns_the_artists_manager_and_schedules_evaluation_and_expiry() {
    let expected_date = days_from_today(8);
    let mut seq = Sequence::new();
    let mut uow = MockUnitOfWork::new();
    uow.expect_release()
        .with(eq(RELEASE), eq(true))
        .times(1)
        .returning(|_, _| ready(Ok(Some(release(ARTIST, ReleaseStatus::Unpublished)))));
    uow.expect_has_open_publish_request()
        .with(eq(RELEASE))
        .times(1)
        .returning(|_| ready(Ok(false)));
    uow.expect_insert_request()
        .with(eq(NewRequest {
            kind: RequestType::Publish,
            applicant_id: ARTIST_USER,
            manager_id: Some(MANAGER),
            nickname: None,
            release_id: Some(RELEASE),
            expected_date: Some(expected_date),
            created_at: now(),
        }))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|new| ready(Ok(stored(new, PUBLISH_REQUEST))));
    let scheduled = recorder::<(RequestType, DeferredAction, DateTime<Utc>)>();
    let sink = Arc::clone(&scheduled);
    uow.expect_schedule()
        .times(2)
        .in_sequence(&mut seq)
        .returning(move |kind, action, not_before| {
            record(&sink, (kind, action.clone(), not_before));
            ready(Ok(()))
        });
    uow.expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label(store_with(vec![uow]));

    let request = label
        .apply_publish(&artist(), RELEASE, expected_date, now())
        .await
        .expect("eight days' notice is enough");

    assert_eq!(request.manager_id, Some(MANAGER));
    assert_eq!(request.status, Status::New);
    let first = |step| DeferredAction {
        request_id: PUBLISH_REQUEST,
        step,
        attempt: 1,
        enqueued_at: now(),
    };
    assert_eq!(
        seen(&scheduled),
        vec![
            (RequestType::Publish, first(Step::Evaluate), now()),
            (RequestType::Publish, first(Step::Expire), now() + ttl()),
        ]
    );
}

// ---------------------------------------------------------------- accept: sign

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SignWrite {
    InsertArtist,
    SetRole,
    UpdateRequest,
}

/// The unit of work of accepting the sign request, every write succeeding up to `failing`
/// (which fails with the store unavailable); the steps after it must not run, and commit
/// runs only when nothing fails.
fn sign_acceptance(failing: Option<SignWrite>) -> MockUnitOfWork {
    let runs = |write: SignWrite| failing.is_none_or(|failing| write <= failing);
    let fails = |write: SignWrite| failing == Some(write);
    let mut seq = Sequence::new();
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .with(eq(SIGN_REQUEST), eq(true))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(Some(sign_request(Status::OnApproval)))));
    uow.expect_user()
        .with(eq(NON_MEMBER))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| ready(Ok(Some(user(NON_MEMBER, Role::NonMember)))));

    let insert_artist = uow.expect_insert_artist().with(eq(NewArtist {
        user_id: NON_MEMBER,
        nickname: NICKNAME.into(),
        contract_due: day("2027-03-10"),
        manager_id: MANAGER,
    }));
    if runs(SignWrite::InsertArtist) {
        let fail = fails(SignWrite::InsertArtist);
        insert_artist
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |new| {
                ready(if fail {
                    unavailable()
                } else {
                    Ok(Artist {
                        id: ArtistId(99),
                        user_id: new.user_id,
                        nickname: new.nickname.clone(),
                        contract_due: new.contract_due,
                        active: true,
                        manager_id: new.manager_id,
                    })
                })
            });
    } else {
        insert_artist.never();
    }

    let set_role = uow.expect_set_role().with(eq(NON_MEMBER), eq(Role::Artist));
    if runs(SignWrite::SetRole) {
        let fail = fails(SignWrite::SetRole);
        set_role
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| ready(if fail { unavailable() } else { Ok(()) }));
    } else {
        set_role.never();
    }

    let update = uow.expect_update_request().with(
        eq(SIGN_REQUEST),
        eq(Status::OnApproval),
        eq(closing("The request is accepted.")),
    );
    if runs(SignWrite::UpdateRequest) {
        let fail = fails(SignWrite::UpdateRequest);
        update
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, change| {
                ready(if fail {
                    unavailable()
                } else {
                    Ok(Some(applied(&sign_request(Status::OnApproval), change)))
                })
            });
    } else {
        update.never();
    }

    if failing.is_none() {
        uow.expect_commit()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| ready(Ok(())));
    } else {
        uow.expect_commit().never();
    }
    uow
}

#[tokio::test]
async fn accepting_a_sign_request_makes_the_applicant_an_artist_and_closes_it_in_one_unit_of_work()
{
    let label = label(store_with(vec![sign_acceptance(None)]));

    let closed = label
        .accept(&manager(), SIGN_REQUEST, now())
        .await
        .expect("the request is accepted");

    assert_eq!(closed.status, Status::Closed);
    assert_eq!(closed.description, "The request is accepted.");
}

async fn accept_sign_failing_at(write: SignWrite) {
    let label = label(store_with(vec![sign_acceptance(Some(write))]));

    let err = label
        .accept(&manager(), SIGN_REQUEST, now())
        .await
        .expect_err("a write failed");

    assert!(
        matches!(err, AppError::Unavailable(_)),
        "{write:?}: {err:?}"
    );
}

#[tokio::test]
async fn accepting_a_sign_request_writes_nothing_when_creating_the_artist_fails() {
    accept_sign_failing_at(SignWrite::InsertArtist).await;
}

#[tokio::test]
async fn accepting_a_sign_request_writes_nothing_when_changing_the_role_fails() {
    accept_sign_failing_at(SignWrite::SetRole).await;
}

#[tokio::test]
async fn accepting_a_sign_request_writes_nothing_when_closing_the_request_fails() {
    accept_sign_failing_at(SignWrite::UpdateRequest).await;
}

#[tokio::test]
async fn accepting_a_sign_request_whose_nickname_was_taken_meanwhile_is_a_conflict() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .times(1)
        .returning(|_, _| ready(Ok(Some(sign_request(Status::OnApproval)))));
    uow.expect_user()
        .times(1)
        .returning(|_| ready(Ok(Some(user(NON_MEMBER, Role::NonMember)))));
    uow.expect_insert_artist()
        .times(1)
        .returning(|_| ready(Err(StoreError::Conflict(Taken::Nickname))));
    uow.expect_set_role().never();
    uow.expect_update_request().never();
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let err = label
        .accept(&manager(), SIGN_REQUEST, now())
        .await
        .expect_err("the nickname was taken");

    assert_eq!(status_and_code(&err), (409, "nickname_taken"));
}

// ---------------------------------------------------------------- accept: publish

#[tokio::test]
async fn accepting_a_publish_request_publishes_the_release_on_the_expected_date() {
    let expected_date = days_from_today(30);
    let mut seq = Sequence::new();
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .with(eq(PUBLISH_REQUEST), eq(true))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(Some(publish_request(Status::OnApproval)))));
    uow.expect_release()
        .with(eq(RELEASE), eq(true))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(Some(release(ARTIST, ReleaseStatus::Unpublished)))));
    uow.expect_insert_publication()
        .with(eq(RELEASE), eq(expected_date), eq(MANAGER))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|release_id, scheduled_on, manager_id| {
            ready(Ok(Publication {
                id: PublicationId(1),
                release_id,
                scheduled_on,
                manager_id,
            }))
        });
    uow.expect_set_release_status()
        .with(eq(RELEASE), eq(ReleaseStatus::Published))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(())));
    uow.expect_update_request()
        .with(
            eq(PUBLISH_REQUEST),
            eq(Status::OnApproval),
            // No evaluation in the change: the evaluation is kept.
            eq(closing("The request is accepted.")),
        )
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, change| {
            ready(Ok(Some(applied(
                &publish_request(Status::OnApproval),
                change,
            ))))
        });
    uow.expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label(store_with(vec![uow]));

    let closed = label
        .accept(&manager(), PUBLISH_REQUEST, now())
        .await
        .expect("the request is accepted");

    assert_eq!(closed.status, Status::Closed);
    assert_eq!(closed.description, "The request is accepted.");
    assert_eq!(
        closed.evaluation,
        publish_request(Status::OnApproval).evaluation
    );
}

#[tokio::test]
async fn accepting_a_publish_request_whose_date_has_come_is_a_conflict_and_writes_nothing() {
    for expected_date in [today(), today() - Days::new(1)] {
        let mut uow = MockUnitOfWork::new();
        uow.expect_request().times(1).returning(move |_, _| {
            ready(Ok(Some(Request {
                expected_date: Some(expected_date),
                ..publish_request(Status::OnApproval)
            })))
        });
        uow.expect_release().never();
        uow.expect_insert_publication().never();
        uow.expect_set_release_status().never();
        uow.expect_update_request().never();
        uow.expect_commit().never();
        let label = label(store_with(vec![uow]));

        let err = label
            .accept(&manager(), PUBLISH_REQUEST, now())
            .await
            .expect_err("the expected date is not in the future");

        assert_eq!(
            status_and_code(&err),
            (409, "date_passed"),
            "{expected_date}"
        );
    }
}

// ---------------------------------------------------------------- accept, decline: refusals

/// A unit of work where the locked request is `request` and nothing may be written.
fn read_only_uow(request: Request) -> MockUnitOfWork {
    let id = request.id;
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .with(eq(id), eq(true))
        .times(1)
        .returning(move |_, _| ready(Ok(Some(request.clone()))));
    uow.expect_user().never();
    uow.expect_insert_artist().never();
    uow.expect_set_role().never();
    uow.expect_release().never();
    uow.expect_insert_publication().never();
    uow.expect_set_release_status().never();
    uow.expect_update_request().never();
    uow.expect_commit().never();
    uow
}

#[tokio::test]
async fn accepting_a_request_assigned_to_another_manager_is_not_found() {
    for assigned in [Some(OTHER_MANAGER), None] {
        let request = Request {
            manager_id: assigned,
            ..sign_request(Status::OnApproval)
        };
        let label = label(store_with(vec![read_only_uow(request)]));

        let err = label
            .accept(&manager(), SIGN_REQUEST, now())
            .await
            .expect_err("not this manager's request");

        assert_eq!(
            status_and_code(&err),
            (404, "request_not_found"),
            "{assigned:?}"
        );
    }
}

#[tokio::test]
async fn accepting_an_unknown_request_is_not_found() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .times(1)
        .returning(|_, _| ready(Ok(None)));
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let err = label
        .accept(&manager(), SIGN_REQUEST, now())
        .await
        .expect_err("no such request");

    assert_eq!(status_and_code(&err), (404, "request_not_found"));
}

#[tokio::test]
async fn accepting_a_request_not_yet_on_approval_answers_not_ready() {
    for request in [
        sign_request(Status::New),
        publish_request(Status::New),
        publish_request(Status::Processing),
    ] {
        let (id, kind, status) = (request.id, request.kind, request.status);
        let label = label(store_with(vec![read_only_uow(request)]));

        let err = label
            .accept(&manager(), id, now())
            .await
            .expect_err("not on approval yet");

        assert_eq!(
            err,
            AppError::conflict(ErrorCode::NotReady, "Not ready"),
            "{kind:?} {status:?}"
        );
    }
}

#[tokio::test]
async fn accepting_a_closed_request_answers_already_closed() {
    for request in [
        sign_request(Status::Closed),
        publish_request(Status::Closed),
    ] {
        let id = request.id;
        let label = label(store_with(vec![read_only_uow(request)]));

        let err = label
            .accept(&manager(), id, now())
            .await
            .expect_err("closed already");

        assert_eq!(
            err,
            AppError::conflict(ErrorCode::AlreadyClosed, "Already closed")
        );
    }
}

#[tokio::test]
async fn only_managers_may_accept_or_decline() {
    for actor in [non_member(), artist(), admin()] {
        let label = label(untouched_store());

        let accepted = label
            .accept(&actor, SIGN_REQUEST, now())
            .await
            .expect_err("only managers accept");
        let declined = label
            .decline(&actor, SIGN_REQUEST, now())
            .await
            .expect_err("only managers decline");

        for err in [accepted, declined] {
            assert_eq!(
                status_and_code(&err),
                (403, "role_not_allowed"),
                "{:?}",
                actor.role()
            );
        }
    }
}

#[tokio::test]
async fn declining_closes_an_open_request_and_keeps_its_evaluation() {
    for request in [
        sign_request(Status::OnApproval),
        sign_request(Status::New),
        publish_request(Status::Processing),
        publish_request(Status::OnApproval),
    ] {
        let (id, status) = (request.id, request.status);
        let mut seq = Sequence::new();
        let mut uow = MockUnitOfWork::new();
        let found = request.clone();
        uow.expect_request()
            .with(eq(id), eq(true))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| ready(Ok(Some(found.clone()))));
        let base = request.clone();
        uow.expect_update_request()
            .with(eq(id), eq(status), eq(closing("The request is declined.")))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, change| ready(Ok(Some(applied(&base, change)))));
        uow.expect_commit()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| ready(Ok(())));
        let label = label(store_with(vec![uow]));

        let closed = label
            .decline(&manager(), id, now())
            .await
            .expect("the request is declined");

        assert_eq!(closed.status, Status::Closed, "{status:?}");
        assert_eq!(closed.description, "The request is declined.");
        assert_eq!(closed.evaluation, request.evaluation);
    }
}

#[tokio::test]
async fn declining_a_closed_request_answers_already_closed_and_writes_nothing() {
    let label = label(store_with(vec![read_only_uow(sign_request(
        Status::Closed,
    ))]));

    let err = label
        .decline(&manager(), SIGN_REQUEST, now())
        .await
        .expect_err("closed already");

    assert_eq!(
        err,
        AppError::conflict(ErrorCode::AlreadyClosed, "Already closed")
    );
}

// ---------------------------------------------------------------- deferred: assign a manager

fn unassigned_sign_request(status: Status) -> Request {
    Request {
        manager_id: None,
        ..sign_request(status)
    }
}

#[tokio::test]
async fn assigning_picks_the_least_loaded_manager_and_puts_the_request_on_approval() {
    let mut seq = Sequence::new();
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .with(eq(SIGN_REQUEST), eq(true))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(Some(unassigned_sign_request(Status::New)))));
    uow.expect_least_loaded_manager()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(Some(OTHER_MANAGER))));
    uow.expect_update_request()
        .with(
            eq(SIGN_REQUEST),
            eq(Status::New),
            eq(RequestChange {
                status: Some(Status::OnApproval),
                manager_id: Some(OTHER_MANAGER),
                ..RequestChange::default()
            }),
        )
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, change| {
            ready(Ok(Some(applied(
                &unassigned_sign_request(Status::New),
                change,
            ))))
        });
    uow.expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    uow.expect_schedule().never();
    let label = label(store_with(vec![uow]));

    let outcome = label
        .run_step(&action(SIGN_REQUEST, Step::AssignManager, 1), now())
        .await
        .expect("the step runs");

    assert_eq!(outcome, StepOutcome::Done("assigned"));
}

/// Runs the assign step at `attempt` with no manager in the label; what it scheduled.
async fn assign_without_managers(
    attempt: u32,
) -> (
    StepOutcome,
    Vec<(RequestType, DeferredAction, DateTime<Utc>)>,
) {
    let mut seq = Sequence::new();
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .times(1)
        .returning(|_, _| ready(Ok(Some(unassigned_sign_request(Status::New)))));
    uow.expect_least_loaded_manager()
        .times(1)
        .returning(|| ready(Ok(None)));
    uow.expect_update_request().never();
    uow.expect_count_attempt()
        .with(eq(SIGN_REQUEST))
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_| ready(Ok(i32::try_from(attempt).expect("a small attempt"))));
    let scheduled = recorder();
    let sink = Arc::clone(&scheduled);
    uow.expect_schedule()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |kind, action, not_before| {
            record(&sink, (kind, action.clone(), not_before));
            ready(Ok(()))
        });
    uow.expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label(store_with(vec![uow]));

    let outcome = label
        .run_step(&action(SIGN_REQUEST, Step::AssignManager, attempt), now())
        .await
        .expect("the step runs");
    (outcome, seen(&scheduled))
}

#[tokio::test]
async fn assigning_without_any_manager_retries_the_same_step_one_second_later() {
    let (outcome, scheduled) = assign_without_managers(1).await;

    assert_eq!(
        outcome,
        StepOutcome::Retried {
            next_attempt: 2,
            delay: Duration::from_secs(1)
        }
    );
    assert_eq!(
        scheduled,
        vec![(
            RequestType::Sign,
            DeferredAction {
                request_id: SIGN_REQUEST,
                step: Step::AssignManager,
                attempt: 2,
                enqueued_at: now(),
            },
            now() + chrono::Duration::seconds(1),
        )]
    );
}

#[tokio::test]
async fn assigning_without_any_manager_on_the_third_attempt_retries_four_seconds_later() {
    let (outcome, scheduled) = assign_without_managers(3).await;

    assert_eq!(
        outcome,
        StepOutcome::Retried {
            next_attempt: 4,
            delay: Duration::from_secs(4)
        }
    );
    let [(kind, next, not_before)] = scheduled.as_slice() else {
        panic!("expected one scheduled action, got {scheduled:?}");
    };
    assert_eq!(*kind, RequestType::Sign);
    assert_eq!((next.step, next.attempt), (Step::AssignManager, 4));
    assert_eq!(*not_before, now() + chrono::Duration::seconds(4));
}

#[test]
fn retry_delays_double_from_one_second_and_stop_at_ten_minutes() {
    let rules = Rules::default();
    let delays: Vec<u64> = (1..=13)
        .map(|attempt| retry_delay(rules.retry_min, rules.retry_max, attempt).as_secs())
        .collect();

    assert_eq!(
        delays,
        vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]
    );
    assert_eq!(
        retry_delay(rules.retry_min, rules.retry_max, 1000),
        Duration::from_secs(600)
    );
    assert_eq!(
        retry_delay(rules.retry_min, rules.retry_max, 0),
        Duration::from_secs(1),
        "a bogus attempt 0 waits like the first"
    );
}

#[tokio::test]
async fn assigning_a_request_already_on_approval_is_skipped_without_writes() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .times(1)
        .returning(|_, _| ready(Ok(Some(sign_request(Status::OnApproval)))));
    uow.expect_least_loaded_manager().never();
    uow.expect_update_request().never();
    uow.expect_count_attempt().never();
    uow.expect_schedule().never();
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let outcome = label
        .run_step(&action(SIGN_REQUEST, Step::AssignManager, 1), now())
        .await
        .expect("the step runs");

    assert_eq!(outcome, StepOutcome::Skipped("moved_on"));
}

#[tokio::test]
async fn a_step_for_an_unknown_request_says_so() {
    for step in [Step::AssignManager, Step::Evaluate, Step::Expire] {
        let mut uow = MockUnitOfWork::new();
        uow.expect_request()
            .with(eq(SIGN_REQUEST), eq(true))
            .times(1)
            .returning(|_, _| ready(Ok(None)));
        uow.expect_commit().never();
        let label = label(store_with(vec![uow]));

        let outcome = label
            .run_step(&action(SIGN_REQUEST, step, 1), now())
            .await
            .expect("the step runs");

        assert_eq!(outcome, StepOutcome::UnknownRequest, "{step:?}");
    }
}

// ---------------------------------------------------------------- deferred: evaluate

/// The first unit of work of the evaluation: New -> Processing, committed.
fn start_evaluation_uow(seq: &mut Sequence) -> MockUnitOfWork {
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .with(eq(PUBLISH_REQUEST), eq(true))
        .times(1)
        .in_sequence(seq)
        .returning(|_, _| ready(Ok(Some(publish_request(Status::New)))));
    uow.expect_update_request()
        .with(
            eq(PUBLISH_REQUEST),
            eq(Status::New),
            eq(RequestChange {
                status: Some(Status::Processing),
                ..RequestChange::default()
            }),
        )
        .times(1)
        .in_sequence(seq)
        .returning(|_, _, change| ready(Ok(Some(applied(&publish_request(Status::New), change)))));
    uow.expect_commit()
        .times(1)
        .in_sequence(seq)
        .returning(|| ready(Ok(())));
    uow
}

/// The second unit of work of the evaluation up to the facts: the request `Processing`
/// and its release.
fn gather_facts_uow(seq: &mut Sequence) -> MockUnitOfWork {
    let mut uow = MockUnitOfWork::new();
    uow.expect_request()
        .with(eq(PUBLISH_REQUEST), eq(true))
        .times(1)
        .in_sequence(seq)
        .returning(|_, _| ready(Ok(Some(publish_request(Status::Processing)))));
    uow.expect_release()
        .with(eq(RELEASE), eq(false))
        .times(1)
        .returning(|_, _| ready(Ok(Some(release(ARTIST, ReleaseStatus::Unpublished)))));
    uow
}

/// Expects the evaluation to be stored (Processing -> On approval) and committed; what was
/// stored.
fn expect_evaluation_stored(
    uow: &mut MockUnitOfWork,
    seq: &mut Sequence,
) -> Recorder<RequestChange> {
    let stored = recorder();
    let sink = Arc::clone(&stored);
    uow.expect_update_request()
        .with(
            eq(PUBLISH_REQUEST),
            eq(Status::Processing),
            mockall::predicate::always(),
        )
        .times(1)
        .in_sequence(seq)
        .returning(move |_, _, change| {
            record(&sink, change.clone());
            ready(Ok(Some(applied(
                &publish_request(Status::Processing),
                change,
            ))))
        });
    uow.expect_commit()
        .times(1)
        .in_sequence(seq)
        .returning(|| ready(Ok(())));
    stored
}

fn entry(name: &str, diff: i32, reason: &str) -> Entry {
    Entry {
        name: name.into(),
        diff,
        reason: reason.into(),
    }
}

#[tokio::test]
async fn evaluating_moves_to_processing_then_stores_the_criteria_and_grade_on_approval() {
    let expected_date = days_from_today(30);
    let mut seq = Sequence::new();
    let first = start_evaluation_uow(&mut seq);
    let mut second = gather_facts_uow(&mut seq);
    second
        .expect_publication_dates()
        .with(eq(ARTIST))
        .times(1)
        .returning(|_| {
            // Three within the last three months, a scheduled future one included; one older.
            ready(Ok(vec![
                day("2025-11-01"),
                day("2026-01-05"),
                day("2026-02-20"),
                day("2026-04-01"),
            ]))
        });
    second
        .expect_publications_on()
        .with(eq(expected_date))
        .times(1)
        .returning(|_| ready(Ok(2)));
    let stored = expect_evaluation_stored(&mut second, &mut seq);
    let label = label(store_with(vec![first, second]));

    let outcome = label
        .run_step(&action(PUBLISH_REQUEST, Step::Evaluate, 1), now())
        .await
        .expect("the step runs");

    assert_eq!(outcome, StepOutcome::Done("evaluated"));
    assert_eq!(
        seen(&stored),
        vec![RequestChange {
            status: Some(Status::OnApproval),
            evaluation: Some(Evaluation {
                entries: vec![
                    entry(
                        "No releases from artist more than limit",
                        -1,
                        "More than limit releases per season"
                    ),
                    entry("No releases that day", -1, "More than one release per day"),
                ],
                grade: -2,
            }),
            ..RequestChange::default()
        }]
    );
}

#[tokio::test]
async fn evaluating_a_quiet_season_gives_ok_everywhere_and_grade_zero() {
    let mut seq = Sequence::new();
    let first = start_evaluation_uow(&mut seq);
    let mut second = gather_facts_uow(&mut seq);
    second
        .expect_publication_dates()
        .times(1)
        .returning(|_| ready(Ok(vec![day("2026-01-05"), day("2026-02-20")])));
    second
        .expect_publications_on()
        .times(1)
        .returning(|_| ready(Ok(1)));
    let stored = expect_evaluation_stored(&mut second, &mut seq);
    let label = label(store_with(vec![first, second]));

    label
        .run_step(&action(PUBLISH_REQUEST, Step::Evaluate, 1), now())
        .await
        .expect("the step runs");

    let evaluation = seen(&stored)
        .pop()
        .and_then(|change| change.evaluation)
        .expect("an evaluation was stored");
    assert_eq!(
        evaluation,
        Evaluation {
            entries: vec![
                entry("No releases from artist more than limit", 0, "OK"),
                entry("No releases that day", 0, "OK"),
            ],
            grade: 0,
        }
    );
}

#[tokio::test]
async fn a_fact_the_store_refuses_gives_cant_apply_criteria_and_the_evaluation_completes() {
    let mut seq = Sequence::new();
    let first = start_evaluation_uow(&mut seq);
    let mut second = gather_facts_uow(&mut seq);
    second
        .expect_publication_dates()
        .times(1)
        .returning(|_| ready(Err(StoreError::Rejected("unreadable row".into()))));
    second
        .expect_publications_on()
        .times(1)
        .returning(|_| ready(Ok(2)));
    let stored = expect_evaluation_stored(&mut second, &mut seq);
    let label = label(store_with(vec![first, second]));

    let outcome = label
        .run_step(&action(PUBLISH_REQUEST, Step::Evaluate, 1), now())
        .await
        .expect("a refused fact does not fail the step");

    assert_eq!(outcome, StepOutcome::Done("evaluated"));
    let change = seen(&stored).pop().expect("the evaluation was stored");
    assert_eq!(change.status, Some(Status::OnApproval));
    assert_eq!(
        change.evaluation,
        Some(Evaluation {
            entries: vec![
                entry(
                    "No releases from artist more than limit",
                    0,
                    "Can't apply criteria"
                ),
                entry("No releases that day", -1, "More than one release per day"),
            ],
            grade: -1,
        })
    );
}

#[tokio::test]
async fn evaluating_while_the_store_is_down_fails_transiently_and_stores_no_evaluation() {
    let mut seq = Sequence::new();
    let first = start_evaluation_uow(&mut seq);
    let mut second = gather_facts_uow(&mut seq);
    second
        .expect_publication_dates()
        .times(1)
        .returning(|_| ready(unavailable()));
    second.expect_publications_on().never();
    second.expect_update_request().never();
    second.expect_commit().never();
    let label = label(store_with(vec![first, second]));

    let err = label
        .run_step(&action(PUBLISH_REQUEST, Step::Evaluate, 1), now())
        .await
        .expect_err("the store is down");

    assert!(matches!(err, AppError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient(), "the consumer runs the step again");
}

#[tokio::test]
async fn evaluating_a_request_left_processing_by_a_crash_carries_on_without_rewriting_it() {
    let mut seq = Sequence::new();
    let mut first = MockUnitOfWork::new();
    first
        .expect_request()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(Some(publish_request(Status::Processing)))));
    first.expect_update_request().never();
    first.expect_commit().never();
    let mut second = gather_facts_uow(&mut seq);
    second
        .expect_publication_dates()
        .times(1)
        .returning(|_| ready(Ok(vec![])));
    second
        .expect_publications_on()
        .times(1)
        .returning(|_| ready(Ok(0)));
    let stored = expect_evaluation_stored(&mut second, &mut seq);
    let label = label(store_with(vec![first, second]));

    let outcome = label
        .run_step(&action(PUBLISH_REQUEST, Step::Evaluate, 2), now())
        .await
        .expect("the step runs");

    assert_eq!(outcome, StepOutcome::Done("evaluated"));
    assert_eq!(seen(&stored).len(), 1);
}

#[tokio::test]
async fn evaluating_a_request_that_moved_on_is_skipped_without_writes() {
    for status in [Status::OnApproval, Status::Closed] {
        let mut uow = MockUnitOfWork::new();
        uow.expect_request()
            .times(1)
            .returning(move |_, _| ready(Ok(Some(publish_request(status)))));
        uow.expect_update_request().never();
        uow.expect_commit().never();
        let label = label(store_with(vec![uow]));

        let outcome = label
            .run_step(&action(PUBLISH_REQUEST, Step::Evaluate, 1), now())
            .await
            .expect("the step runs");

        assert_eq!(outcome, StepOutcome::Skipped("moved_on"), "{status:?}");
    }
}

#[tokio::test]
async fn evaluating_a_request_whose_release_vanished_closes_it_with_the_reason() {
    let mut seq = Sequence::new();
    let first = start_evaluation_uow(&mut seq);
    let mut second = MockUnitOfWork::new();
    second
        .expect_request()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(Some(publish_request(Status::Processing)))));
    second
        .expect_release()
        .times(1)
        .returning(|_, _| ready(Ok(None)));
    second.expect_publication_dates().never();
    second
        .expect_update_request()
        .with(
            eq(PUBLISH_REQUEST),
            eq(Status::Processing),
            eq(closing(
                "The request is declined: the release of this request no longer exists",
            )),
        )
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, change| {
            ready(Ok(Some(applied(
                &publish_request(Status::Processing),
                change,
            ))))
        });
    second
        .expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label(store_with(vec![first, second]));

    let outcome = label
        .run_step(&action(PUBLISH_REQUEST, Step::Evaluate, 1), now())
        .await
        .expect("a permanent failure is not an error of the step");

    assert_eq!(outcome, StepOutcome::Done("failed"));
}

#[tokio::test]
async fn a_step_that_fails_for_good_closes_the_request_with_the_reason() {
    let mut seq = Sequence::new();
    let mut failing = MockUnitOfWork::new();
    failing
        .expect_request()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(Some(unassigned_sign_request(Status::New)))));
    failing
        .expect_least_loaded_manager()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Err(StoreError::Rejected("bad row".into()))));
    failing.expect_update_request().never();
    failing.expect_commit().never();
    let mut closing_uow = MockUnitOfWork::new();
    closing_uow
        .expect_request()
        .with(eq(SIGN_REQUEST), eq(true))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| ready(Ok(Some(unassigned_sign_request(Status::New)))));
    closing_uow
        .expect_update_request()
        .with(
            eq(SIGN_REQUEST),
            eq(Status::New),
            eq(closing(
                "The request is declined: the assign manager step failed (internal error)",
            )),
        )
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, change| {
            ready(Ok(Some(applied(
                &unassigned_sign_request(Status::New),
                change,
            ))))
        });
    closing_uow
        .expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label(store_with(vec![failing, closing_uow]));

    let outcome = label
        .run_step(&action(SIGN_REQUEST, Step::AssignManager, 1), now())
        .await
        .expect("a permanent failure closes the request instead of failing the step");

    assert_eq!(outcome, StepOutcome::Done("failed"));
}

// ---------------------------------------------------------------- deferred: expire

#[tokio::test]
async fn an_open_request_older_than_its_time_to_live_is_closed_as_no_longer_relevant() {
    for found in [
        Request {
            created_at: days_ago(91),
            ..unassigned_sign_request(Status::New)
        },
        Request {
            created_at: days_ago(91),
            ..publish_request(Status::OnApproval)
        },
    ] {
        let (id, status) = (found.id, found.status);
        let mut seq = Sequence::new();
        let mut uow = MockUnitOfWork::new();
        let base = found.clone();
        uow.expect_request()
            .with(eq(id), eq(true))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| ready(Ok(Some(found.clone()))));
        uow.expect_update_request()
            .with(
                eq(id),
                eq(status),
                eq(closing(
                    "The request is declined: the request is no longer relevant",
                )),
            )
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, change| ready(Ok(Some(applied(&base, change)))));
        uow.expect_commit()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| ready(Ok(())));
        uow.expect_schedule().never();
        let label = label(store_with(vec![uow]));

        let outcome = label
            .run_step(&action(id, Step::Expire, 1), now())
            .await
            .expect("the step runs");

        assert_eq!(outcome, StepOutcome::Done("expired"), "{status:?}");
    }
}

#[tokio::test]
async fn an_open_request_not_yet_due_is_looked_at_again_when_its_time_to_live_is_over() {
    let created_at = days_ago(10);
    let mut seq = Sequence::new();
    let mut uow = MockUnitOfWork::new();
    uow.expect_request().times(1).returning(move |_, _| {
        ready(Ok(Some(Request {
            created_at,
            ..sign_request(Status::OnApproval)
        })))
    });
    uow.expect_update_request().never();
    let original = action(SIGN_REQUEST, Step::Expire, 1);
    uow.expect_schedule()
        .with(
            eq(RequestType::Sign),
            eq(DeferredAction {
                enqueued_at: now(),
                ..original.clone()
            }),
            eq(created_at + ttl()),
        )
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| ready(Ok(())));
    uow.expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label(store_with(vec![uow]));

    let outcome = label
        .run_step(&original, now())
        .await
        .expect("the step runs");

    assert_eq!(outcome, StepOutcome::Skipped("not_due"));
}

#[tokio::test]
async fn expiring_a_closed_request_is_skipped_without_writes() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_request().times(1).returning(|_, _| {
        ready(Ok(Some(Request {
            created_at: days_ago(200),
            ..sign_request(Status::Closed)
        })))
    });
    uow.expect_update_request().never();
    uow.expect_schedule().never();
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let outcome = label
        .run_step(&action(SIGN_REQUEST, Step::Expire, 1), now())
        .await
        .expect("the step runs");

    assert_eq!(outcome, StepOutcome::Skipped("closed"));
}

// ---------------------------------------------------------------- register, login

const NAME: &str = "Alex Rivera";
const EMAIL: &str = "alex@example.com";
const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn registering_hashes_the_password_then_inserts_a_non_member() {
    let mut seq = Sequence::new();
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_hash()
        .withf(|password| password == PASSWORD)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| ready(Ok(HASH.to_owned())));
    let mut uow = MockUnitOfWork::new();
    uow.expect_insert_user()
        .with(eq(NewUser {
            name: NAME.into(),
            email: EMAIL.into(),
            password_hash: HASH.into(),
            role: Role::NonMember,
        }))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|new| {
            ready(Ok(User {
                id: NON_MEMBER,
                name: new.name.clone(),
                email: new.email.clone(),
                role: new.role,
                created_at: now(),
            }))
        });
    uow.expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label_with_hasher(store_with(vec![uow]), hasher);

    let user = label
        .register(NAME, EMAIL, PASSWORD)
        .await
        .expect("registered");

    assert_eq!((user.id, user.role), (NON_MEMBER, Role::NonMember));
}

#[tokio::test]
async fn registering_a_taken_email_is_a_conflict() {
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_hash()
        .times(1)
        .returning(|_| ready(Ok(HASH.to_owned())));
    let mut uow = MockUnitOfWork::new();
    uow.expect_insert_user()
        .times(1)
        .returning(|_| ready(Err(StoreError::Conflict(Taken::Email))));
    uow.expect_commit().never();
    let label = label_with_hasher(store_with(vec![uow]), hasher);

    let err = label
        .register(NAME, EMAIL, PASSWORD)
        .await
        .expect_err("the e-mail address is taken");

    assert_eq!(status_and_code(&err), (409, "email_taken"));
}

#[tokio::test]
async fn registering_invalid_values_is_refused_before_hashing_or_touching_the_store() {
    let mut hasher = MockPasswordHasher::new();
    hasher.expect_hash().never();
    let label = label_with_hasher(untouched_store(), hasher);

    let err = label
        .register(NAME, "not an address", "short")
        .await
        .expect_err("invalid values");

    assert_eq!(status_and_code(&err), (422, "validation_failed"));
}

/// Logs in with `PASSWORD` when the store knows `found`; the hasher expects to check
/// against `hash` and answers `matches`.
async fn login(
    found: Option<Credentials>,
    hash: Option<&'static str>,
    matches: bool,
) -> Result<User, AppError> {
    let mut uow = MockUnitOfWork::new();
    uow.expect_credentials()
        .withf(|email| email == EMAIL)
        .times(1)
        .returning(move |_| ready(Ok(found.clone())));
    uow.expect_commit().never();
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_verify()
        .withf(move |password, stored| password == PASSWORD && stored.as_deref() == hash)
        .times(1)
        .returning(move |_, _| ready(matches));
    let label = label_with_hasher(store_with(vec![uow]), hasher);
    label.login(&format!(" {EMAIL} "), PASSWORD).await
}

fn credentials() -> Credentials {
    Credentials {
        user: user(NON_MEMBER, Role::NonMember),
        password_hash: HASH.into(),
    }
}

#[tokio::test]
async fn logging_in_with_the_right_password_returns_the_user() {
    let user = login(Some(credentials()), Some(HASH), true)
        .await
        .expect("logged in");

    assert_eq!(user.id, NON_MEMBER);
}

#[tokio::test]
async fn logging_in_with_a_wrong_password_is_refused_after_checking_the_hash() {
    let err = login(Some(credentials()), Some(HASH), false)
        .await
        .expect_err("wrong password");

    assert_eq!(
        err,
        AppError::unauthenticated(ErrorCode::BadCredentials, BAD_CREDENTIALS)
    );
}

#[tokio::test]
async fn logging_in_with_an_unknown_email_still_spends_a_check_and_is_refused() {
    let err = login(None, None, false)
        .await
        .expect_err("unknown e-mail address");

    assert_eq!(
        err,
        AppError::unauthenticated(ErrorCode::BadCredentials, BAD_CREDENTIALS)
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let wrong_password = login(Some(credentials()), Some(HASH), false)
        .await
        .expect_err("wrong password");
    // Even a hasher that (wrongly) says yes to no hash must not log anyone in.
    let unknown_email = login(None, None, true)
        .await
        .expect_err("unknown e-mail address");

    assert_eq!(wrong_password, unknown_email);
    assert_eq!(wrong_password.to_string(), unknown_email.to_string());
}

// ---------------------------------------------------------------- appoint managers

const CANDIDATE: UserId = UserId(31);
const SECOND_CANDIDATE: UserId = UserId(32);

#[tokio::test]
async fn appointing_managers_is_all_or_nothing_when_one_user_is_an_artist() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_user()
        .with(eq(CANDIDATE))
        .times(1)
        .returning(|id| ready(Ok(Some(user(id, Role::NonMember)))));
    uow.expect_insert_manager()
        .with(eq(CANDIDATE))
        .times(1)
        .returning(|_| ready(Ok(ManagerId(9))));
    uow.expect_set_role()
        .with(eq(CANDIDATE), eq(Role::Manager))
        .times(1)
        .returning(|_, _| ready(Ok(())));
    uow.expect_user()
        .with(eq(SECOND_CANDIDATE))
        .times(1)
        .returning(|id| ready(Ok(Some(user(id, Role::Artist)))));
    uow.expect_insert_manager()
        .with(eq(SECOND_CANDIDATE))
        .never();
    uow.expect_set_role()
        .with(eq(SECOND_CANDIDATE), mockall::predicate::always())
        .never();
    uow.expect_manager().never();
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let err = label
        .appoint_managers(&admin(), &[SECOND_CANDIDATE, CANDIDATE])
        .await
        .expect_err("an artist cannot be a manager");

    assert_eq!(status_and_code(&err), (409, "artist_cannot_be_manager"));
}

#[tokio::test]
async fn appointing_an_unknown_user_is_not_found_and_writes_nothing() {
    let mut uow = MockUnitOfWork::new();
    uow.expect_user()
        .with(eq(CANDIDATE))
        .times(1)
        .returning(|_| ready(Ok(None)));
    uow.expect_insert_manager().never();
    uow.expect_set_role().never();
    uow.expect_commit().never();
    let label = label(store_with(vec![uow]));

    let err = label
        .appoint_managers(&admin(), &[CANDIDATE])
        .await
        .expect_err("no such user");

    assert_eq!(status_and_code(&err), (404, "user_not_found"));
}

#[tokio::test]
async fn appointing_a_manager_again_or_an_admin_is_a_conflict() {
    for (role, code) in [
        (Role::Manager, "already_manager"),
        (Role::Admin, "admin_cannot_be_manager"),
    ] {
        let mut uow = MockUnitOfWork::new();
        uow.expect_user()
            .times(1)
            .returning(move |id| ready(Ok(Some(user(id, role)))));
        uow.expect_insert_manager().never();
        uow.expect_commit().never();
        let label = label(store_with(vec![uow]));

        let err = label
            .appoint_managers(&admin(), &[CANDIDATE])
            .await
            .expect_err("cannot be appointed");

        assert_eq!(status_and_code(&err), (409, code), "{role:?}");
    }
}

#[tokio::test]
async fn only_admins_may_appoint_managers() {
    for actor in [non_member(), artist(), manager()] {
        let label = label(untouched_store());

        let err = label
            .appoint_managers(&actor, &[CANDIDATE])
            .await
            .expect_err("only admins appoint");

        assert_eq!(
            status_and_code(&err),
            (403, "role_not_allowed"),
            "{:?}",
            actor.role()
        );
    }
}

#[tokio::test]
async fn appointing_managers_writes_every_one_in_one_unit_of_work() {
    let mut seq = Sequence::new();
    let mut uow = MockUnitOfWork::new();
    uow.expect_user()
        .times(2)
        .returning(|id| ready(Ok(Some(user(id, Role::NonMember)))));
    uow.expect_insert_manager()
        .times(2)
        .returning(|user_id| ready(Ok(ManagerId(user_id.get() + 100))));
    uow.expect_set_role()
        .with(mockall::predicate::always(), eq(Role::Manager))
        .times(2)
        .returning(|_, _| ready(Ok(())));
    uow.expect_manager()
        .times(2)
        .in_sequence(&mut seq)
        .returning(|id| ready(Ok(Some(manager_record(id, UserId(id.get() - 100))))));
    uow.expect_commit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| ready(Ok(())));
    let label = label(store_with(vec![uow]));

    let managers = label
        .appoint_managers(&admin(), &[SECOND_CANDIDATE, CANDIDATE, SECOND_CANDIDATE])
        .await
        .expect("appointed");

    let users: Vec<UserId> = managers.iter().map(|m| m.user_id).collect();
    assert_eq!(users, vec![CANDIDATE, SECOND_CANDIDATE], "each once");
}

#[test]
fn a_huge_attempt_number_gets_the_longest_delay_at_once() {
    let rules = Rules::default();
    let started = std::time::Instant::now();

    let delay = retry_delay(rules.retry_min, rules.retry_max, u32::MAX);

    assert_eq!(delay, Duration::from_secs(600));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the delay is computed in constant time, not by walking {} steps",
        u32::MAX
    );
}
