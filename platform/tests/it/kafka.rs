//! The consumer runner and the producer against a real Kafka-protocol broker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use platform::kafka::{
    BatchHandler, ConsumerRunner, ConsumerSettings, KafkaProducer, KafkaSettings, Outcome,
    OutgoingRecord, Reason, Received, Subscription, TransientError, header_text,
};
use platform::testkit::{TestBroker, read_topic, unique};
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Everything a handler saw, in the order it saw it.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(i32, i64, String)>>>);

impl Seen {
    fn record(&self, batch: &[Received]) {
        let mut seen = self.0.lock().expect("lock");
        for m in batch {
            let payload =
                String::from_utf8_lossy(m.payload.as_deref().unwrap_or_default()).into_owned();
            seen.push((m.partition, m.offset, payload));
        }
    }

    fn snapshot(&self) -> Vec<(i32, i64, String)> {
        self.0.lock().expect("lock").clone()
    }

    async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<(i32, i64, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.snapshot();
            if seen.len() >= count || tokio::time::Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn subscription(topic: &str, dlq: Option<&str>) -> Subscription {
    Subscription {
        group_id: unique("group"),
        topics: vec![topic.to_owned()],
        dead_letter_topic: dlq.map(str::to_owned),
    }
}

fn consumer_settings() -> ConsumerSettings {
    ConsumerSettings {
        batch_max_messages: 10,
        batch_linger: Duration::from_millis(20),
        retry_initial_delay: Duration::from_millis(50),
        retry_max_delay: Duration::from_millis(400),
        ..ConsumerSettings::default()
    }
}

async fn produce(settings: &KafkaSettings, topic: &str, count: usize, keys: usize) {
    let producer = KafkaProducer::new(settings, "test-producer").expect("producer");
    for i in 0..count {
        producer
            .send(&OutgoingRecord {
                topic: topic.to_owned(),
                key: Some(format!("key-{}", i % keys).into_bytes()),
                payload: Some(format!("m{i}").into_bytes()),
                headers: Vec::new(),
            })
            .await
            .expect("produce");
    }
}

/// Within each partition, the offsets a handler acknowledged are exactly 0..n in order.
fn assert_contiguous_per_partition(seen: &[(i32, i64, String)]) -> BTreeMap<i32, Vec<i64>> {
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (partition, offset, _) in seen {
        per_partition.entry(*partition).or_default().push(*offset);
    }
    for (partition, offsets) in &per_partition {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, &expected,
            "partition {partition} skipped or reordered"
        );
    }
    per_partition
}

/// The (partition, offset) pairs of each batch a handler was offered, call by call.
type Calls = Arc<Mutex<Vec<Vec<(i32, i64)>>>>;

struct FlakyHandler {
    failures_left: AtomicUsize,
    calls: Calls,
    acknowledged: Seen,
}

impl BatchHandler for FlakyHandler {
    async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
        self.calls
            .lock()
            .expect("lock")
            .push(batch.iter().map(|m| (m.partition, m.offset)).collect());
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(TransientError::new(anyhow::anyhow!("database unavailable")));
        }
        self.acknowledged.record(batch);
        Ok(batch
            .iter()
            .map(|_| Outcome::Done { label: "stored" })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_in_place_without_skipping_or_reordering() {
    let broker = TestBroker::start().await;
    let topic = unique("flaky");
    broker.create_topics(&[(&topic, 3)]).await;
    let settings = broker.settings();
    produce(&settings, &topic, 60, 7).await;

    let acknowledged = Seen::default();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let handler = FlakyHandler {
        failures_left: AtomicUsize::new(4),
        calls: Arc::clone(&calls),
        acknowledged: acknowledged.clone(),
    };
    let runner = ConsumerRunner::new(
        &settings,
        subscription(&topic, None),
        consumer_settings(),
        handler,
        None,
        "test",
    )
    .expect("runner");
    let ready = runner.ready_flag();
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));

    let seen = acknowledged.wait_for(60, Duration::from_secs(60)).await;
    // Settle: nothing beyond the 60 must arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    task.await.expect("join").expect("runner ends cleanly");
    assert!(!ready.is_set(), "a stopped runner is not ready");

    let seen_all = acknowledged.snapshot();
    assert_eq!(seen.len(), 60);
    assert_eq!(
        seen_all.len(),
        60,
        "every message acknowledged exactly once: {seen_all:?}"
    );
    let per_partition = assert_contiguous_per_partition(&seen_all);
    assert_eq!(per_partition.values().map(Vec::len).sum::<usize>(), 60);

    // The first batch was offered five times (four failures, then success) before any other:
    // retried in place, neither skipped nor split.
    let calls = calls.lock().expect("lock").clone();
    assert!(calls.len() > 5);
    for (attempt, offered) in calls.iter().take(5).enumerate() {
        assert_eq!(
            offered, &calls[0],
            "attempt {attempt} offered a different batch"
        );
    }
    let first_acknowledged: Vec<(i32, i64)> = seen_all
        .iter()
        .take(calls[0].len())
        .map(|(p, o, _)| (*p, *o))
        .collect();
    assert_eq!(first_acknowledged, calls[0]);
}

struct RefusingHandler {
    seen: Seen,
}

impl BatchHandler for RefusingHandler {
    async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
        self.seen.record(batch);
        Ok(batch
            .iter()
            .map(|m| {
                if m.payload.as_deref().is_some_and(|p| p.starts_with(b"bad")) {
                    Outcome::DeadLetter {
                        label: "invalid",
                        class: "invalid".into(),
                        reasons: vec![
                            Reason::new("malformed_json", None, "not JSON"),
                            Reason::new("empty_field", Some("entry"), "entry is empty"),
                        ],
                    }
                } else {
                    Outcome::Done { label: "stored" }
                }
            })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_land_in_the_dead_letter_topic_with_headers() {
    let broker = TestBroker::start().await;
    let topic = unique("in");
    let dlq = unique("dlq");
    broker.create_topics(&[(&topic, 1), (&dlq, 1)]).await;
    let settings = broker.settings();
    let producer = KafkaProducer::new(&settings, "test").expect("producer");
    for (i, payload) in ["good-0", "bad-1", "good-2", "bad-3"].iter().enumerate() {
        producer
            .send(&OutgoingRecord {
                topic: topic.clone(),
                key: Some(format!("k{i}").into_bytes()),
                payload: Some(payload.as_bytes().to_vec()),
                headers: vec![("origin".into(), Some(b"test".to_vec()))],
            })
            .await
            .expect("produce");
    }

    let seen = Seen::default();
    let runner = ConsumerRunner::new(
        &settings,
        subscription(&topic, Some(&dlq)),
        consumer_settings(),
        RefusingHandler { seen: seen.clone() },
        Some(producer.clone()),
        "test",
    )
    .expect("runner");
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    let records = read_topic(
        &settings,
        &dlq,
        2,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    stop.cancel();
    task.await.expect("join").expect("runner");

    assert_eq!(records.len(), 2, "exactly the two bad messages");
    for (record, (offset, payload, key)) in
        records.iter().zip([(1, "bad-1", "k1"), (3, "bad-3", "k3")])
    {
        assert_eq!(record.payload, payload.as_bytes(), "value untouched");
        assert_eq!(record.key.as_deref(), Some(key.as_bytes()), "key untouched");
        let h = |name| header_text(&record.headers, name);
        assert_eq!(h("x-error-class"), Some("invalid"));
        let reasons: Vec<Reason> =
            serde_json::from_str(h("x-error-reasons").expect("reasons header"))
                .expect("JSON reasons");
        assert_eq!(reasons.len(), 2);
        assert_eq!(reasons[0].code, "malformed_json");
        assert_eq!(reasons[1].field.as_deref(), Some("entry"));
        assert_eq!(h("x-original-topic"), Some(topic.as_str()));
        assert_eq!(h("x-original-partition"), Some("0"));
        assert_eq!(h("x-original-offset"), Some(offset.to_string().as_str()));
        let failed_at = h("x-failed-at").expect("failed-at header");
        chrono::DateTime::parse_from_rfc3339(failed_at).expect("RFC 3339 time");
        assert_eq!(h("origin"), Some("test"), "original headers kept");
    }
}

/// Acknowledges messages before `stall_from`, then stalls forever on the batch that holds it,
/// like a process that dies mid-batch.
struct StallingHandler {
    stall_from: i64,
    acknowledged: Seen,
}

impl BatchHandler for StallingHandler {
    async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
        if batch.iter().any(|m| m.offset >= self.stall_from) {
            std::future::pending::<()>().await;
        }
        self.acknowledged.record(batch);
        Ok(batch
            .iter()
            .map(|_| Outcome::Done { label: "stored" })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_consumer_redelivers_only_unacknowledged_messages() {
    let broker = TestBroker::start().await;
    let topic = unique("crash");
    broker.create_topics(&[(&topic, 1)]).await;
    let settings = broker.settings();
    produce(&settings, &topic, 30, 1).await;

    let group = subscription(&topic, None);
    let mut consumer = consumer_settings();
    consumer.batch_max_messages = 5;
    let first_seen = Seen::default();
    let first = ConsumerRunner::new(
        &settings,
        group.clone(),
        consumer.clone(),
        StallingHandler {
            stall_from: 12,
            acknowledged: first_seen.clone(),
        },
        None,
        "test",
    )
    .expect("runner");
    // Never cancelled: the task is aborted, as a crash would end it.
    let task = tokio::spawn(first.run(CancellationToken::new()));
    let acknowledged = first_seen.wait_for(10, Duration::from_secs(60)).await;
    assert_eq!(
        acknowledged.len(),
        10,
        "offsets 0..9 acknowledged in two batches"
    );
    // Let the background commit of the stored offsets happen, then kill.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    task.abort();
    let _ = task.await;

    let second_seen = Seen::default();
    let second = ConsumerRunner::new(
        &settings,
        group,
        consumer,
        StallingHandler {
            stall_from: i64::MAX,
            acknowledged: second_seen.clone(),
        },
        None,
        "test",
    )
    .expect("runner");
    let stop = CancellationToken::new();
    let task = tokio::spawn(second.run(stop.clone()));
    let redelivered = second_seen.wait_for(20, Duration::from_secs(60)).await;
    // Settle: nothing more must come.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    task.await.expect("join").expect("runner");

    let offsets: Vec<i64> = second_seen.snapshot().iter().map(|(_, o, _)| *o).collect();
    assert_eq!(redelivered.len(), 20);
    assert_eq!(
        offsets,
        (10..30).collect::<Vec<i64>>(),
        "the second member starts exactly after the acknowledged messages"
    );
}

struct TraceHandler {
    contexts: Arc<Mutex<Vec<(String, String)>>>,
}

impl BatchHandler for TraceHandler {
    async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
        for m in batch {
            let cx = m.span.context();
            let span = cx.span();
            let span_context = span.span_context();
            let traceparent = header_text(&m.headers, "traceparent")
                .unwrap_or_default()
                .to_owned();
            self.contexts
                .lock()
                .expect("lock")
                .push((span_context.trace_id().to_string(), traceparent));
        }
        Ok(batch
            .iter()
            .map(|_| Outcome::Done { label: "stored" })
            .collect())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn trace_context_survives_a_produce_consume_round_trip() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let broker = TestBroker::start().await;
    let topic = unique("traced");
    broker.create_topics(&[(&topic, 1)]).await;
    let settings = broker.settings();
    let producer = KafkaProducer::new(&settings, "test").expect("producer");

    let root = tracing::info_span!("test.root");
    let root_trace_id = root.context().span().span_context().trace_id().to_string();
    assert_ne!(root_trace_id, "00000000000000000000000000000000");
    tracing::Instrument::instrument(
        producer.send(&OutgoingRecord {
            topic: topic.clone(),
            key: None,
            payload: Some(b"traced".to_vec()),
            headers: Vec::new(),
        }),
        root.clone(),
    )
    .await
    .expect("produce");

    let contexts = Arc::new(Mutex::new(Vec::new()));
    let runner = ConsumerRunner::new(
        &settings,
        subscription(&topic, None),
        consumer_settings(),
        TraceHandler {
            contexts: Arc::clone(&contexts),
        },
        None,
        "test",
    )
    .expect("runner");
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while contexts.lock().expect("lock").is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.expect("join").expect("runner");

    let contexts = contexts.lock().expect("lock").clone();
    assert_eq!(contexts.len(), 1);
    let (consumer_trace_id, traceparent) = &contexts[0];
    assert!(
        traceparent.starts_with(&format!("00-{root_trace_id}-")),
        "the record carries the producer's trace: {traceparent}"
    );
    assert_eq!(
        consumer_trace_id, &root_trace_id,
        "the consumer span continues the same trace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_retried_while_the_broker_is_down_and_never_skipped() {
    let mut broker = TestBroker::start().await;
    let topic = unique("in");
    let dlq = unique("dlq");
    broker.create_topics(&[(&topic, 1), (&dlq, 1)]).await;
    let mut settings = broker.settings();
    settings.delivery_timeout = Duration::from_secs(2);
    produce(&settings, &topic, 1, 1).await;
    let producer = KafkaProducer::new(&settings, "test").expect("producer");

    // A handler that refuses everything, slowly enough that the broker can be stopped
    // between reading the message and dead-lettering it.
    struct SlowRefuser(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>);
    impl BatchHandler for SlowRefuser {
        async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
            self.0.notify_one();
            self.1.notified().await;
            Ok(batch
                .iter()
                .map(|_| Outcome::DeadLetter {
                    label: "invalid",
                    class: "invalid".into(),
                    reasons: vec![Reason::new("malformed_json", None, "not JSON")],
                })
                .collect())
        }
    }
    let reached = Arc::new(tokio::sync::Notify::new());
    let proceed = Arc::new(tokio::sync::Notify::new());
    let runner = ConsumerRunner::new(
        &settings,
        subscription(&topic, Some(&dlq)),
        consumer_settings(),
        SlowRefuser(Arc::clone(&reached), Arc::clone(&proceed)),
        Some(producer),
        "test",
    )
    .expect("runner");
    let ready = runner.ready_flag();
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    reached.notified().await;
    broker.stop();
    proceed.notify_one();
    // Delivery fails for a while: the runner is not ready and keeps the message.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ready.is_set() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !ready.is_set(),
        "an unreachable dead-letter topic makes the runner not ready"
    );
    assert!(!task.is_finished(), "the runner does not give up");
    stop.cancel();
    task.await
        .expect("join")
        .expect("runner stops cleanly while retrying");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_without_a_dead_letter_topic_stops_the_runner_instead_of_skipping() {
    let broker = TestBroker::start().await;
    let topic = unique("in");
    broker.create_topics(&[(&topic, 1)]).await;
    let settings = broker.settings();
    let producer = KafkaProducer::new(&settings, "test").expect("producer");
    producer
        .send(&OutgoingRecord {
            topic: topic.clone(),
            key: None,
            payload: Some(b"bad".to_vec()),
            headers: Vec::new(),
        })
        .await
        .expect("produce");
    let runner = ConsumerRunner::new(
        &settings,
        subscription(&topic, None),
        consumer_settings(),
        RefusingHandler {
            seen: Seen::default(),
        },
        None,
        "test",
    )
    .expect("runner");
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        runner.run(CancellationToken::new()),
    )
    .await
    .expect("the runner stops by itself");
    let err = outcome.expect_err("a refusal with nowhere to go is fatal");
    assert!(err.to_string().contains("no dead-letter topic"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_fenced_after_an_outage_is_replaced_and_delivers_again() {
    let broker = TestBroker::start().await;
    let topic = unique("fenced");
    broker.create_topics(&[(&topic, 1)]).await;
    let mut settings = broker.settings();
    settings.delivery_timeout = Duration::from_secs(2);
    let producer = KafkaProducer::new(&settings, "test").expect("producer");
    let record = OutgoingRecord {
        topic: topic.clone(),
        key: Some(b"k".to_vec()),
        payload: Some(b"before".to_vec()),
        headers: Vec::new(),
    };
    producer
        .send(&record)
        .await
        .expect("delivered before the outage");

    // A record that times out in flight makes the idempotent producer bump its epoch; the
    // test broker refuses that and fences it for good.
    broker.pause();
    assert!(
        producer.send(&record).await.is_err(),
        "no delivery while paused"
    );
    broker.resume();

    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let outcome = producer.send(&record).await;
        let delivered = outcome.is_ok();
        outcomes.push(outcome.map(|_| ()).map_err(|err| err.to_string()));
        if delivered {
            break;
        }
    }
    assert!(
        matches!(outcomes.last(), Some(Ok(()))),
        "the producer delivers again after the outage: {outcomes:?}"
    );
    assert!(
        outcomes.len() <= 3,
        "replaced at the first fatal answer: {outcomes:?}"
    );
}

/// Stores what it is given in PostgreSQL, one transaction per call, in the order given; the
/// first calls that hold partition 1 fail after writing (rolled back), as a database outage
/// would; it counts how many calls run at once.
struct StoringHandler {
    pool: sqlx::PgPool,
    failures_left: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl BatchHandler for StoringHandler {
    async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let result = async {
            let mut tx = self.pool.begin().await.map_err(TransientError::new)?;
            for m in batch {
                sqlx::query("INSERT INTO stored (part, msg_offset) VALUES ($1, $2)")
                    .bind(m.partition)
                    .bind(m.offset)
                    .execute(&mut *tx)
                    .await
                    .map_err(TransientError::new)?;
            }
            // Let the other partitions' calls run meanwhile.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let fails = batch.iter().any(|m| m.partition == 1)
                && self
                    .failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            if fails {
                // Dropping the transaction rolls the writes back.
                return Err(TransientError::new(anyhow::anyhow!("database unavailable")));
            }
            tx.commit().await.map_err(TransientError::new)?;
            Ok(batch
                .iter()
                .map(|_| Outcome::Done { label: "stored" })
                .collect())
        }
        .await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

#[sqlx::test]
async fn with_parallel_partitions_each_partition_is_stored_in_offset_order_exactly_once(
    pool: sqlx::PgPool,
) {
    sqlx::raw_sql(
        "CREATE TABLE stored (seq BIGINT GENERATED ALWAYS AS IDENTITY, part INT, msg_offset BIGINT)",
    )
    .execute(&pool)
    .await
    .expect("ddl");
    let broker = TestBroker::start().await;
    let topic = unique("parallel");
    broker.create_topics(&[(&topic, 3)]).await;
    let settings = broker.settings();
    produce(&settings, &topic, 300, 30).await;

    let handler = Arc::new(StoringHandler {
        pool: pool.clone(),
        failures_left: AtomicUsize::new(3),
        in_flight: AtomicUsize::new(0),
        most_in_flight: AtomicUsize::new(0),
    });
    let runner = ConsumerRunner::new(
        &settings,
        subscription(&topic, None),
        ConsumerSettings {
            batch_max_messages: 40,
            parallel_partitions: true,
            ..consumer_settings()
        },
        SharedHandler(Arc::clone(&handler)),
        None,
        "test",
    )
    .expect("runner");
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM stored")
            .fetch_one(&pool)
            .await
            .expect("count");
        if count >= 300 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    task.await.expect("join").expect("runner ends cleanly");

    // In the order PostgreSQL stored them, each partition's offsets are 0, 1, 2, ...: none
    // skipped, none twice, none before an earlier one.
    let rows: Vec<(i32, i64)> = sqlx::query_as("SELECT part, msg_offset FROM stored ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 300, "every message stored exactly once");
    let seen: Vec<(i32, i64, String)> = rows
        .iter()
        .map(|(part, offset)| (*part, *offset, String::new()))
        .collect();
    let per_partition = assert_contiguous_per_partition(&seen);
    assert_eq!(per_partition.len(), 3, "{per_partition:?}");
    assert_eq!(
        handler.failures_left.load(Ordering::SeqCst),
        0,
        "partition 1 failed three times and was retried"
    );
    assert!(
        handler.most_in_flight.load(Ordering::SeqCst) > 1,
        "the partitions were never handled at the same time"
    );
}

/// A handler shared with the test, which reads its counters.
struct SharedHandler<H>(Arc<H>);

impl<H: BatchHandler> BatchHandler for SharedHandler<H> {
    async fn handle(&self, batch: &[Received]) -> Result<Vec<Outcome>, TransientError> {
        self.0.handle(batch).await
    }
}
