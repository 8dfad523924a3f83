//! The transactional outbox against the real PostgreSQL and broker.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use platform::db::{DbError, TxManager};
use platform::kafka::{KafkaProducer, header_text};
use platform::outbox::{NewMessage, OutboxTable, Relay, RelaySettings, enqueue};
use platform::testkit::{TestBroker, read_topic, unique};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// The outbox table as a service's migration creates it (see migrations/label).
const OUTBOX_DDL: &str = "
CREATE SCHEMA svc;
CREATE TABLE svc.outbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic         TEXT        NOT NULL,
    message_key   BYTEA,
    payload       BYTEA       NOT NULL,
    headers       JSONB       NOT NULL DEFAULT '[]'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    not_before    TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts      INTEGER     NOT NULL DEFAULT 0,
    last_error    TEXT,
    claimed_by    UUID,
    claimed_until TIMESTAMPTZ,
    sent_at       TIMESTAMPTZ
);
CREATE TABLE svc.thing (id INT PRIMARY KEY);";

fn table() -> OutboxTable {
    OutboxTable::new("svc.outbox").expect("valid name")
}

fn message(topic: &str, payload: String) -> NewMessage {
    NewMessage {
        topic: topic.to_owned(),
        key: Some(payload.clone().into_bytes()),
        payload: payload.into_bytes(),
        headers: vec![("kind".into(), "test".into())],
        not_before: None,
    }
}

fn fast_settings() -> RelaySettings {
    RelaySettings {
        batch_size: 25,
        poll_interval: Duration::from_millis(50),
        retry_initial_delay: Duration::from_millis(200),
        retry_max_delay: Duration::from_secs(1),
        ..RelaySettings::default()
    }
}

async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM svc.outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test]
async fn two_relays_publish_each_row_exactly_once(pool: PgPool) {
    sqlx::raw_sql(OUTBOX_DDL).execute(&pool).await.expect("ddl");
    let broker = TestBroker::start().await;
    let topic = unique("events");
    broker.create_topics(&[(&topic, 3)]).await;
    let settings = broker.settings();

    let tx = TxManager::new(pool.clone());
    for batch in 0..10 {
        tx.transact(async |conn: &mut PgConnection| {
            for i in 0..30 {
                let n = batch * 30 + i;
                sqlx::query("INSERT INTO svc.thing VALUES ($1)")
                    .bind(n)
                    .execute(&mut *conn)
                    .await?;
                enqueue(conn, &table(), &message(&topic, format!("row-{n}"))).await?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .expect("write rows and messages");
    }

    let producer = KafkaProducer::new(&settings, "relay").expect("producer");
    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let relay = Relay::new(pool.clone(), producer.clone(), table(), fast_settings());
            tokio::spawn(relay.run(stop.clone()))
        })
        .collect();

    let records = read_topic(
        &settings,
        &topic,
        300,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    stop.cancel();
    for relay in relays {
        relay.await.expect("join").expect("relay");
    }

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        *counts
            .entry(String::from_utf8(record.payload.clone()).expect("utf-8"))
            .or_default() += 1;
        assert_eq!(header_text(&record.headers, "kind"), Some("test"));
    }
    assert_eq!(counts.len(), 300, "every row published");
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "published twice: {duplicated:?}");
    assert_eq!(unsent(&pool).await, 0, "every row marked sent");
}

#[sqlx::test]
async fn a_rolled_back_row_is_never_published(pool: PgPool) {
    sqlx::raw_sql(OUTBOX_DDL).execute(&pool).await.expect("ddl");
    let broker = TestBroker::start().await;
    let topic = unique("events");
    broker.create_topics(&[(&topic, 1)]).await;
    let settings = broker.settings();
    let tx = TxManager::new(pool.clone());

    let rolled_back: Result<(), DbError> = tx
        .transact(async |conn: &mut PgConnection| {
            enqueue(conn, &table(), &message(&topic, "rolled-back".into())).await?;
            // The change that caused it fails: the message must go with it.
            sqlx::query("INSERT INTO svc.thing VALUES (1), (1)")
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
        .await;
    assert!(rolled_back.is_err());
    tx.transact(async |conn: &mut PgConnection| {
        enqueue(conn, &table(), &message(&topic, "committed".into())).await
    })
    .await
    .expect("committed message");

    let relay = Relay::new(
        pool.clone(),
        KafkaProducer::new(&settings, "relay").expect("producer"),
        table(),
        fast_settings(),
    );
    let report = relay.round().await.expect("round");
    assert_eq!((report.claimed, report.published, report.failed), (1, 1, 0));
    let records = read_topic(
        &settings,
        &topic,
        1,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    let payloads: Vec<_> = records.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(payloads, vec![b"committed".to_vec()]);
}

#[sqlx::test]
async fn a_deferred_row_waits_for_its_time(pool: PgPool) {
    sqlx::raw_sql(OUTBOX_DDL).execute(&pool).await.expect("ddl");
    let broker = TestBroker::start().await;
    let topic = unique("events");
    broker.create_topics(&[(&topic, 1)]).await;
    let relay = Relay::new(
        pool.clone(),
        KafkaProducer::new(&broker.settings(), "relay").expect("producer"),
        table(),
        fast_settings(),
    );
    let mut conn = pool.acquire().await.expect("conn");
    let mut deferred = message(&topic, "later".into());
    deferred.not_before = Some(Utc::now() + chrono::Duration::milliseconds(1500));
    enqueue(&mut conn, &table(), &deferred)
        .await
        .expect("enqueue");

    assert_eq!(
        relay.round().await.expect("round").claimed,
        0,
        "not due yet"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(relay.round().await.expect("round").published, 1, "due now");
}

#[sqlx::test]
async fn a_broker_outage_delays_rows_and_never_loses_them(pool: PgPool) {
    sqlx::raw_sql(OUTBOX_DDL).execute(&pool).await.expect("ddl");
    let mut broker = TestBroker::start().await;
    let topic = unique("events");
    broker.create_topics(&[(&topic, 1)]).await;
    let mut settings = broker.settings();
    settings.delivery_timeout = Duration::from_secs(1);
    let relay = Relay::new(
        pool.clone(),
        KafkaProducer::new(&settings, "relay").expect("producer"),
        table(),
        fast_settings(),
    );
    let mut conn = pool.acquire().await.expect("conn");
    for i in 0..5 {
        enqueue(&mut conn, &table(), &message(&topic, format!("m{i}")))
            .await
            .expect("enqueue");
    }

    broker.stop();
    let report = relay.round().await.expect("round");
    assert_eq!((report.claimed, report.published, report.failed), (5, 0, 5));
    let (attempts, errors): (i64, i64) = sqlx::query_as(
        "SELECT sum(attempts)::bigint, count(last_error) FROM svc.outbox WHERE sent_at IS NULL",
    )
    .fetch_one(&pool)
    .await
    .expect("row state");
    assert_eq!(
        (attempts, errors),
        (5, 5),
        "each row counts its failed attempt"
    );
    assert_eq!(
        relay.round().await.expect("round").claimed,
        0,
        "failed rows wait for their backoff, no tight loop"
    );

    broker.restart().await;
    broker.create_topics(&[(&topic, 1)]).await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(relay.clone().run(stop.clone()));
    let records = read_topic(
        &settings,
        &topic,
        5,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    stop.cancel();
    task.await.expect("join").expect("relay");
    assert_eq!(records.len(), 5);
    assert_eq!(unsent(&pool).await, 0);
}

/// Waits (bounded) until no row of svc.outbox is unsent; how long that took.
async fn until_all_sent(pool: &PgPool, limit: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    loop {
        if unsent(pool).await == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "rows still unsent after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn a_row_committed_while_the_relay_sleeps_is_published_without_waiting_for_a_poll(
    pool: PgPool,
) {
    sqlx::raw_sql(OUTBOX_DDL).execute(&pool).await.expect("ddl");
    let broker = TestBroker::start().await;
    let topic = unique("events");
    broker.create_topics(&[(&topic, 1)]).await;
    // A poll far longer than the test may take: only the notification can wake the relay.
    let settings = RelaySettings {
        poll_interval: Duration::from_secs(120),
        ..fast_settings()
    };
    let relay = Relay::new(
        pool.clone(),
        KafkaProducer::new(&broker.settings(), "relay").expect("producer"),
        table(),
        settings,
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(relay.run(stop.clone()));
    // Its first round finds nothing; then it sleeps for the poll interval.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let tx = TxManager::new(pool.clone());
    for round in 0..3 {
        tx.transact(async |conn: &mut PgConnection| {
            sqlx::query("INSERT INTO svc.thing VALUES ($1)")
                .bind(round)
                .execute(&mut *conn)
                .await?;
            enqueue(conn, &table(), &message(&topic, format!("woken-{round}"))).await
        })
        .await
        .expect("write a row");
        let took = until_all_sent(&pool, Duration::from_secs(20)).await;
        println!("row {round} published {took:?} after its commit");
        // Between rounds the relay is idle again, so each row proves a wake-up.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.cancel();
    task.await.expect("join").expect("relay");
    let records = read_topic(
        &broker.settings(),
        &topic,
        3,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(records.len(), 3);
}

#[sqlx::test]
async fn rows_claimed_by_a_relay_that_died_are_published_within_seconds_of_a_restart(pool: PgPool) {
    sqlx::raw_sql(OUTBOX_DDL).execute(&pool).await.expect("ddl");
    let broker = TestBroker::start().await;
    let topic = unique("events");
    broker.create_topics(&[(&topic, 1)]).await;
    let mut conn = pool.acquire().await.expect("conn");
    for i in 0..10 {
        enqueue(
            &mut conn,
            &table(),
            &message(&topic, format!("claimed-{i}")),
        )
        .await
        .expect("enqueue");
    }
    drop(conn);

    // The first relay claims the rows while the broker cannot answer, so its publishes hang
    // (renewing the lease); then it dies, as a killed process would: no mark, no release.
    broker.pause();
    let dying = Relay::new(
        pool.clone(),
        KafkaProducer::new(&broker.settings(), "dying").expect("producer"),
        table(),
        RelaySettings::default(),
    );
    let round = tokio::spawn(async move { dying.round().await });
    let claimed_at = tokio::time::Instant::now();
    loop {
        let claimed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM svc.outbox WHERE claimed_by IS NOT NULL")
                .fetch_one(&pool)
                .await
                .expect("count");
        if claimed == 10 {
            break;
        }
        assert!(
            claimed_at.elapsed() < Duration::from_secs(10),
            "not claimed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Longer than a lease: the heartbeat keeps the claim while the relay lives.
    tokio::time::sleep(RelaySettings::default().lease + Duration::from_secs(1)).await;
    let still_claimed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM svc.outbox WHERE claimed_until > now() AND sent_at IS NULL",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(still_claimed, 10, "the live relay's lease was renewed");
    round.abort();
    let _ = round.await;
    broker.resume();

    // The restarted relay (a new instance, default settings) takes the rows over.
    let restarted = Relay::new(
        pool.clone(),
        KafkaProducer::new(&broker.settings(), "restarted").expect("producer"),
        table(),
        RelaySettings::default(),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(restarted.run(stop.clone()));
    let took = until_all_sent(&pool, Duration::from_secs(30)).await;
    println!("all rows published {took:?} after the restart");
    assert!(
        took < Duration::from_secs(5),
        "the dead relay's rows waited {took:?}, more than 5 s"
    );
    stop.cancel();
    task.await.expect("join").expect("relay");
}
