//! `orders-dlq`: lists dead-letter records with their reasons and replays selected
//! ones to the orders topic once the cause is fixed.

use std::process::Command;
use std::time::Duration;

use platform::testkit::read_topic;
use serde_json::{Value, json};

use crate::harness::{DLQ, MODEL, ServiceProcess, Stack};

fn dlq_command(stack: &Stack, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orders-dlq"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("APP_ENV", "test")
        .env("ORDERS__KAFKA__BROKERS", stack.broker.brokers())
        .args(args)
        .output()
        .expect("run orders-dlq")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_with_reasons_and_replayed_after_a_fix() {
    let stack = Stack::new().await;
    let mut service = ServiceProcess::start(&stack, &[]).await;
    let mut mismatch: Value = serde_json::from_slice(MODEL).expect("model");
    mismatch["order_uid"] = "sum1".into();
    mismatch["payment"]["amount"] = json!(1);
    stack
        .publish(Some("sum1"), &serde_json::to_vec(&mismatch).expect("json"))
        .await;
    stack.publish(Some("junk"), b"{not json").await;
    read_topic(
        &stack.kafka(),
        DLQ,
        2,
        Duration::from_secs(30),
        Duration::from_millis(500),
    )
    .await;

    let listed = dlq_command(&stack, &["list", "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let records: Vec<Value> = String::from_utf8(listed.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    let sum = records
        .iter()
        .find(|r| r["key"] == "sum1")
        .expect("the sum mismatch");
    assert_eq!(sum["class"], "invalid");
    assert_eq!(sum["reasons"][0]["code"], "amount_mismatch");
    assert_eq!(sum["original_topic"], "orders");
    let position = format!("{}:{}", sum["partition"], sum["offset"]);

    let human = dlq_command(&stack, &["list"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("amount_mismatch") && text.contains("malformed_json"),
        "{text}"
    );

    // The fix: this deployment relaxes the sum rules. Then replay just that record.
    assert!(service.terminate());
    let service = ServiceProcess::start(&stack, &[("ORDERS__VALIDATION__STRICT", "false")]).await;
    let replayed = dlq_command(&stack, &["replay", "--record", &position]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("1 record(s) replayed"));
    let served = service
        .wait_status("/order/sum1", 200, Duration::from_secs(30))
        .await;
    assert_eq!(served.json()["payment"]["amount"], 1);

    let unknown = dlq_command(&stack, &["replay", "--record", "0:999"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no dead-letter record"));
    let usage = dlq_command(&stack, &["replay"]);
    assert!(
        !usage.status.success(),
        "replay without a selection is refused"
    );
}
