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
