//! Input an outside tester found mishandled, against the real binary, broker and database:
//! a `date_created` with an offset is served as written; a tombstone is dead-lettered
//! without a value; an empty item list with a wrong total reports both rules; a NUL
//! character is refused by validation, by name; every dead-letter log line names its own
//! message; orders are not cacheable by shared caches; and with the broker down the logs
//! stay short while `/readyz` keeps the instance in rotation, degraded.

use std::time::Duration;

use platform::kafka::{KafkaProducer, OutgoingRecord, Reason, header_text};
use platform::testkit::read_topic;
use serde_json::{Value, json};

use crate::harness::{DLQ, MODEL, ORDERS, ServiceProcess, Stack};

fn order(uid: &str) -> Value {
    let mut value: Value = serde_json::from_slice(MODEL).expect("model.json");
    value["order_uid"] = uid.into();
    value
}

/// The dead-letter records, by their original key.
async fn dead_letters(stack: &Stack, count: usize) -> Vec<(String, Vec<Reason>, bool, Vec<u8>)> {
    read_topic(
        &stack.kafka(),
        DLQ,
        count,
        Duration::from_secs(60),
        Duration::from_secs(1),
    )
    .await
    .into_iter()
    .map(|record| {
        let key = String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
        let reasons: Vec<Reason> =
            serde_json::from_str(header_text(&record.headers, "x-error-reasons").expect("reasons"))
                .expect("reasons as JSON");
        (key, reasons, record.tombstone, record.payload)
    })
    .collect()
}

fn codes(reasons: &[Reason]) -> Vec<&str> {
    reasons.iter().map(|r| r.code.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_outcome_and_offsets_stay_with_their_messages() {
    let stack = Stack::new().await;
    let service = ServiceProcess::start(&stack, &[]).await;

    // Served as written: the offset and the fraction stay.
    let mut offset = order("offset-date");
    offset["date_created"] = json!("2021-11-26T09:22:19.25+03:00");
    stack
        .publish(
            Some("offset-date"),
            &serde_json::to_vec(&offset).expect("json"),
        )
        .await;

    // A tombstone: no value at all.
    let producer = KafkaProducer::new(&stack.kafka(), "test").expect("producer");
    producer
        .send(&OutgoingRecord {
            topic: ORDERS.to_owned(),
            key: Some(b"tombstone".to_vec()),
            payload: None,
            headers: Vec::new(),
        })
        .await
        .expect("publish a tombstone");

    // No items and a goods_total that does not add up: both rules.
    let mut empty = order("empty-items");
    empty["items"] = json!([]);
    stack
        .publish(
            Some("empty-items"),
            &serde_json::to_vec(&empty).expect("json"),
        )
        .await;

    // An escaped NUL in a known field and in an unknown one.
    let mut nul = order("nul-char");
    nul["delivery"]["name"] = json!("Test\u{0}Testov");
    nul["note"] = json!("a\u{0}b");
    stack
        .publish(Some("nul-char"), &serde_json::to_vec(&nul).expect("json"))
        .await;

    let dead = dead_letters(&stack, 3).await;
    assert_eq!(dead.len(), 3, "{dead:?}");
    let by_key = |key: &str| {
        dead.iter()
            .find(|(k, ..)| k == key)
            .unwrap_or_else(|| panic!("no dead letter for {key}: {dead:?}"))
    };
    let (_, reasons, tombstone, payload) = by_key("tombstone");
    assert!(
        *tombstone,
        "the dead letter of a tombstone has no value, not an empty one"
    );
    assert!(payload.is_empty());
    assert_eq!(codes(reasons), ["malformed_json"]);
    let (_, reasons, ..) = by_key("empty-items");
    assert_eq!(
        codes(reasons),
        ["no_items", "goods_total_mismatch"],
        "{reasons:?}"
    );
    let (_, reasons, ..) = by_key("nul-char");
    assert_eq!(
        codes(reasons),
        ["nul_character", "nul_character"],
        "{reasons:?}"
    );
    let fields: Vec<_> = reasons.iter().filter_map(|r| r.field.as_deref()).collect();
    assert!(
        fields.contains(&"delivery.name") && fields.contains(&"note"),
        "{fields:?}"
    );

    let answer = service
        .wait_status("/order/offset-date", 200, Duration::from_secs(60))
        .await;
    let body: Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["date_created"], "2021-11-26T09:22:19.25+03:00");
    // Personal data: the browser may keep it, no shared cache may.
    assert_eq!(
        answer.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );

    // Each dead-letter log line's span names the message it is about.
    let log = service.log_text();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "message dead-lettered")
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    for line in &lines {
        let fields = &line["fields"];
        let span = &line["span"];
        assert_eq!(span["name"], "kafka.message", "{line}");
        assert_eq!(
            span["messaging.kafka.offset"], fields["offset"],
            "the line's span is another message's: {line}"
        );
        assert_eq!(
            span["messaging.kafka.partition"], fields["partition"],
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_the_logs_stay_short_and_the_instance_stays_in_rotation() {
    let mut stack = Stack::new().await;
    let service = ServiceProcess::start(&stack, &[]).await;
    stack.broker.stop();

    // /readyz turns degraded (200), naming the broker, well before the run ends.
    let answer = service
        .wait_status("/livez", 200, Duration::from_secs(10))
        .await;
    assert_eq!(answer.status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let readyz = loop {
        let answer = service.get("/readyz").await;
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if body["status"] == "degraded" {
            break (answer.status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never said degraded: {} {body}",
            answer.status
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(readyz.0, 200, "{}", readyz.1);
    assert_ne!(readyz.1["checks"]["kafka"], "ok", "{}", readyz.1);
    assert_eq!(readyz.1["checks"]["database"], "ok", "{}", readyz.1);
    let metrics = String::from_utf8_lossy(&service.get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains("readiness_check{check=\"kafka\"} 0"),
        "{metrics}"
    );

    // Twenty seconds of outage: the broker errors are logged per kind, not per attempt.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let log = service.log_text();
    let noisy: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("\"level\":\"ERROR\"") || line.contains("\"level\":\"WARN\""))
        .collect();
    assert!(
        noisy.len() <= 40,
        "{} warning and error lines in 20 s of outage:\n{}",
        noisy.len(),
        noisy.join("\n")
    );
    assert!(
        noisy.iter().any(|line| line.contains("librdkafka")),
        "the outage is still reported:\n{log}"
    );
}
