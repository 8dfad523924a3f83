//! No loss: the service is killed with SIGKILL three times while it ingests 20,000 orders
//! and started again each time; afterwards the database holds every valid order exactly
//! once and every invalid one is in the dead-letter topic.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use orders_tools::generator::{Generator, InvalidKind};
use platform::kafka::{KafkaProducer, OutgoingRecord};
use platform::testkit::{eventually, read_topic};

use crate::harness::{DLQ, ORDERS, ServiceProcess, Stack};

const TOTAL: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_lost_when_the_service_is_killed_during_ingest() {
    let stack = Stack::new().await;
    let mut generator = Generator::new(20_000, Utc::now());
    let mut valid = BTreeSet::new();
    let mut invalid = BTreeSet::new();
    let mut records = Vec::with_capacity(TOTAL);
    for i in 0..TOTAL {
        if i % 50 == 7 {
            let kind = InvalidKind::ALL[(i / 50) % InvalidKind::ALL.len()];
            let (key, payload) = generator.invalid_record(kind);
            invalid.insert(key.clone());
            records.push((key, payload));
        } else {
            let order = generator.order();
            valid.insert(order.order_uid.clone());
            records.push((order.order_uid.clone(), order.canonical_json()));
        }
    }
    let producer = KafkaProducer::new(&stack.kafka(), "chaos").expect("producer");
    futures::stream::iter(records)
        .map(|(key, payload)| {
            let producer = producer.clone();
            async move {
                producer
                    .send(&OutgoingRecord {
                        topic: ORDERS.to_owned(),
                        key: Some(key.into_bytes()),
                        payload: Some(payload),
                        headers: Vec::new(),
                    })
                    .await
                    .expect("publish")
            }
        })
        .buffer_unordered(2000)
        .collect::<Vec<_>>()
        .await;

    let mut service = ServiceProcess::start(&stack, &[]).await;
    for round in 1..=3_i64 {
        // Kill it mid-ingest: once some progress is visible, but long before the end.
        let floor = round * 2_000;
        eventually(
            "ingest progress before a kill",
            Duration::from_secs(120),
            || async { (stack.stored_count().await >= floor).then_some(()) },
        )
        .await;
        let stored = stack.stored_count().await;
        assert!(
            stored < valid.len() as i64,
            "round {round}: ingest finished before the kill ({stored}); the test would prove nothing"
        );
        service.kill();
        service = ServiceProcess::start(&stack, &[]).await;
    }

    eventually(
        "every valid order stored",
        Duration::from_secs(180),
        || async { (stack.stored_count().await >= valid.len() as i64).then_some(()) },
    )
    .await;
    let pool = stack.pool().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT order_uid FROM orders.orders")
        .fetch_all(&pool)
        .await
        .expect("stored ids");
    let stored_set: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), valid.len(), "each valid order exactly once");
    assert_eq!(stored_set, valid, "exactly the valid orders");
    let item_orders: i64 = sqlx::query_scalar("SELECT count(DISTINCT order_uid) FROM orders.items")
        .fetch_one(&pool)
        .await
        .expect("items");
    assert_eq!(item_orders, valid.len() as i64, "every order has its items");

    let dead = read_topic(
        &stack.kafka(),
        DLQ,
        invalid.len(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    let dead_keys: BTreeSet<String> = dead
        .iter()
        .filter_map(|r| r.key.clone())
        .map(|k| String::from_utf8(k).expect("utf-8"))
        .collect();
    let missing: Vec<_> = invalid.difference(&dead_keys).collect();
    assert!(
        missing.is_empty(),
        "invalid messages missing from the dead-letter topic: {missing:?}"
    );
    assert!(
        dead_keys.is_subset(&invalid),
        "only invalid messages are dead-lettered"
    );
    service.wait_ready().await;
}
