//! The `orders-producer` binary against a private broker: what it publishes (the mix of
//! kinds, keys, duplicates and conflicts, trace headers), that a seed repeats a run, that
//! files go out byte for byte, and its exit statuses.
//!
//! Broker facts these tests rely on (see the shared notes on the test broker): topics are
//! created explicitly with fresh names, and topics are read from the earliest offset with a
//! fresh group (`read_topic` does both). Nothing here assumes timing beyond generous
//! timeouts, and every test starts its own broker.

use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpListener};
use std::process::Output;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use orders_service::domain::{Rules, validate};
use platform::testkit::{ReadRecord, TestBroker, read_topic, unique};
use serde_json::Value;

const READ_TIMEOUT: Duration = Duration::from_secs(30);
const SETTLE: Duration = Duration::from_secs(1);
const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../orders-service/tests/fixtures/model.json"
);

/// Runs the producer binary to completion.
async fn producer(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_orders-producer"))
        .args(args)
        .env_remove("ORDERS__KAFKA__BROKERS")
        .env_remove("ORDERS__TELEMETRY__OTLP_ENDPOINT")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run orders-producer")
}

/// The JSON summary line of a `--json` run; other lines (logs, ids) are skipped.
fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "orders-producer failed with {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| value.get("sent").is_some())
        .unwrap_or_else(|| panic!("no JSON summary in:\n{stdout}"))
}

fn number(summary: &Value, field: &str) -> usize {
    let value = summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary field {field} in {summary}"));
    usize::try_from(value).expect("a count fits in usize")
}

/// A base time shared by runs that must send the same messages, in whole seconds.
fn base_time() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The records of every partition in offset order, partitions in turn.
fn in_partition_order(mut records: Vec<ReadRecord>) -> Vec<ReadRecord> {
    records.sort_by_key(|r| (r.partition, r.offset));
    records
}

async fn broker_with_topic(partitions: i32) -> (TestBroker, String) {
    let broker = TestBroker::start().await;
    let topic = unique("orders");
    broker.create_topics(&[(&topic, partitions)]).await;
    (broker, topic)
}

#[tokio::test]
async fn generated_mix_arrives_as_the_summary_says() {
    let (broker, topic) = broker_with_topic(3).await;
    let brokers = broker.brokers();
    let base = base_time();
    let output = producer(&[
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--count",
        "200",
        "--seed",
        "7",
        "--base-time",
        &base,
        "--invalid",
        "0.2",
        "--duplicates",
        "0.05",
        "--conflicts",
        "0.05",
        "--json",
    ])
    .await;
    let summary = summary(&output);
    assert_eq!(number(&summary, "sent"), 200, "{summary}");
    assert_eq!(number(&summary, "failed"), 0, "{summary}");
    assert_eq!(summary["seed"], 7, "{summary}");
    let (valid, invalid) = (number(&summary, "valid"), number(&summary, "invalid"));
    let (duplicates, conflicts) = (
        number(&summary, "duplicates"),
        number(&summary, "conflicts"),
    );
    assert_eq!(valid + invalid + duplicates + conflicts, 200, "{summary}");
    assert!(
        invalid > 0 && duplicates > 0 && conflicts > 0,
        "every kind is mixed in: {summary}"
    );

    let records = read_topic(&broker.settings(), &topic, 200, READ_TIMEOUT, SETTLE).await;
    assert_eq!(records.len(), 200);
    let now = Utc::now();
    // Per key, the payloads seen so far: duplicates and conflicts follow their original in
    // the same partition because the producer starts its sends in order.
    let mut seen: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
    let (mut refused, mut repeated, mut conflicting) = (0, 0, 0);
    for record in in_partition_order(records) {
        assert!(
            record.headers.iter().any(|(name, _)| name == "traceparent"),
            "the trace context travels with every record: {:?}",
            record.headers
        );
        let key = record.key.clone().expect("every generated record is keyed");
        match validate(&record.payload, &Rules::default(), now) {
            Ok(validated) => {
                assert_eq!(key, validated.order.order_uid.as_bytes(), "key = order_uid");
                let earlier = seen.entry(key).or_default();
                if earlier.contains(&record.payload) {
                    repeated += 1;
                } else if !earlier.is_empty() {
                    conflicting += 1;
                }
                earlier.push(record.payload);
            }
            Err(violations) => {
                assert!(!violations.is_empty());
                refused += 1;
            }
        }
    }
    assert_eq!(refused, invalid, "{summary}");
    assert_eq!(repeated, duplicates, "{summary}");
    assert_eq!(conflicting, conflicts, "{summary}");
}

#[tokio::test]
async fn the_same_seed_sends_the_same_messages() {
    let broker = TestBroker::start().await;
    let (first, second) = (unique("orders-a"), unique("orders-b"));
    broker.create_topics(&[(&first, 3), (&second, 3)]).await;
    let brokers = broker.brokers();
    let base = base_time();
    for topic in [&first, &second] {
        let output = producer(&[
            "--brokers",
            &brokers,
            "--topic",
            topic,
            "--count",
            "150",
            "--seed",
            "1234",
            "--base-time",
            &base,
            "--invalid",
            "0.3",
            "--duplicates",
            "0.1",
            "--conflicts",
            "0.1",
            "--json",
        ])
        .await;
        assert_eq!(number(&summary(&output), "sent"), 150);
    }
    let read = |topic: String| {
        let settings = broker.settings();
        async move {
            let records = read_topic(&settings, &topic, 150, READ_TIMEOUT, SETTLE).await;
            in_partition_order(records)
                .into_iter()
                .map(|r| (r.partition, r.key, r.payload))
                .collect::<Vec<_>>()
        }
    };
    let (a, b) = tokio::join!(read(first), read(second));
    assert_eq!(a.len(), 150);
    assert!(
        a == b,
        "the same seed and base time must send the same records"
    );
}

#[tokio::test]
async fn a_json_file_is_sent_byte_for_byte() {
    let (broker, topic) = broker_with_topic(3).await;
    let brokers = broker.brokers();
    let output = producer(&[
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--file",
        MODEL,
        "--count",
        "50",
        "--invalid",
        "0.5",
        "--json",
    ])
    .await;
    let summary = summary(&output);
    assert_eq!(number(&summary, "sent"), 1, "--count is ignored: {summary}");
    assert_eq!(number(&summary, "valid"), 1, "{summary}");

    let records = read_topic(&broker.settings(), &topic, 1, READ_TIMEOUT, SETTLE).await;
    assert_eq!(records.len(), 1);
    let model = std::fs::read(MODEL).expect("read model.json");
    assert_eq!(records[0].payload, model);
    assert_eq!(records[0].key.as_deref(), Some(&b"b563feb7b2b84b6test"[..]));
}

#[tokio::test]
async fn a_json_lines_file_is_one_message_per_line() {
    let (broker, topic) = broker_with_topic(1).await;
    let brokers = broker.brokers();
    let model: Value =
        serde_json::from_slice(&std::fs::read(MODEL).expect("read model.json")).expect("JSON");
    let line = serde_json::to_string(&model).expect("serialize");
    let content = format!("{line}\n\nnot json at all\r\n  {{\"order_uid\": 5}}\n");
    let path = std::env::temp_dir().join(format!("{}.jsonl", unique("producer-lines")));
    std::fs::write(&path, content).expect("write the lines file");
    let path_text = path.to_string_lossy().into_owned();
    let output = producer(&[
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--file",
        &path_text,
        "--json",
    ])
    .await;
    let _ = std::fs::remove_file(&path);
    let summary = summary(&output);
    assert_eq!(number(&summary, "sent"), 3, "{summary}");
    assert_eq!(number(&summary, "valid"), 1, "{summary}");
    assert_eq!(number(&summary, "invalid"), 2, "{summary}");

    let records =
        in_partition_order(read_topic(&broker.settings(), &topic, 3, READ_TIMEOUT, SETTLE).await);
    let sent: Vec<(Option<&[u8]>, &[u8])> = records
        .iter()
        .map(|r| (r.key.as_deref(), r.payload.as_slice()))
        .collect();
    assert_eq!(
        sent,
        vec![
            (Some(&b"b563feb7b2b84b6test"[..]), line.as_bytes()),
            (None, &b"not json at all"[..]),
            (None, &b"  {\"order_uid\": 5}"[..]),
        ]
    );
}

#[tokio::test]
async fn bad_ratios_are_usage_errors() {
    for args in [
        &[
            "--invalid",
            "0.6",
            "--duplicates",
            "0.3",
            "--conflicts",
            "0.2",
        ][..],
        &["--invalid", "1.5"][..],
        &["--duplicates", "-0.1"][..],
    ] {
        let mut all = vec!["--brokers", "127.0.0.1:1", "--timeout", "1"];
        all.extend_from_slice(args);
        let output = producer(&all).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(
            !output.stderr.is_empty(),
            "{args:?} explains itself on stderr"
        );
    }
}

#[tokio::test]
async fn an_unreachable_broker_exits_3_within_the_timeout() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let brokers = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let output = producer(&[
        "--brokers",
        &brokers,
        "--topic",
        "orders",
        "--count",
        "10",
        "--timeout",
        "3",
    ])
    .await;
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(
        elapsed < Duration::from_secs(20),
        "gave up after {elapsed:?}, the timeout was 3 s"
    );
}

/// The base time accepted on the command line is the one the summary reports.
#[tokio::test]
async fn the_summary_names_the_seed_and_base_time() {
    let (broker, topic) = broker_with_topic(1).await;
    let brokers = broker.brokers();
    let output = producer(&[
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--count",
        "5",
        "--seed",
        "99",
        "--base-time",
        "2025-03-01T00:00:00Z",
        "--print-ids",
        "2",
    ])
    .await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0]
            .starts_with("sent 5 (valid 5, invalid 0, duplicates 0, conflicts 0), failed 0 in "),
        "{stdout}"
    );
    assert!(lines[0].ends_with(", seed 99"), "{stdout}");
    let records =
        in_partition_order(read_topic(&broker.settings(), &topic, 5, READ_TIMEOUT, SETTLE).await);
    let uids: Vec<String> = records
        .iter()
        .take(2)
        .map(|r| String::from_utf8(r.key.clone().expect("keyed")).expect("UTF-8 key"))
        .collect();
    assert_eq!(lines[1..], uids);
    let base: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().expect("a time");
    for record in records {
        let order = validate(&record.payload, &Rules::default(), base)
            .expect("valid at the base time")
            .order;
        assert!(order.date_created.instant() <= base);
    }
}
