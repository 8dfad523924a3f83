//! Every kind of bad input of spec 1.1 ends in the dead-letter topic with the right class
//! and reasons; a conflicting duplicate is refused and dead-lettered; an identical duplicate
//! is acknowledged silently; the service keeps going through all of it.

use std::collections::BTreeMap;
use std::time::Duration;

use platform::kafka::{Reason, header_text};
use platform::testkit::read_topic;
use serde_json::{Value, json};

use crate::harness::{DLQ, MODEL, ServiceProcess, Stack};

fn model() -> Value {
    serde_json::from_slice(MODEL).expect("model.json")
}

fn with(uid: &str, pointer: &str, new: Value) -> Vec<u8> {
    let mut value = model();
    value["order_uid"] = uid.into();
    *value.pointer_mut(pointer).expect("pointer") = new;
    serde_json::to_vec(&value).expect("json")
}

fn without(uid: &str, field: &str) -> Vec<u8> {
    let mut value = model();
    value["order_uid"] = uid.into();
    value.as_object_mut().expect("object").remove(field);
    serde_json::to_vec(&value).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_dead_lettered_with_its_class_and_reasons() {
    let stack = Stack::new().await;
    let service =
        ServiceProcess::start(&stack, &[("ORDERS__VALIDATION__MAX_MESSAGE_BYTES", "4096")]).await;

    let mut padded = model();
    padded["order_uid"] = "big".into();
    padded["padding"] = "x".repeat(5000).into();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed_json", b"{\"order_uid\": ".to_vec()),
        ("wrong_type", with("wt", "/payment/amount", json!("1817"))),
        ("missing_field", without("mf", "customer_id")),
        ("too_large", serde_json::to_vec(&padded).expect("json")),
        (
            "bad_order_uid",
            with("x", "/order_uid", json!("not valid!")),
        ),
        ("empty_field", with("ef", "/delivery/city", json!(""))),
        ("no_items", {
            let mut v = model();
            v["order_uid"] = "ni".into();
            v["items"] = json!([]);
            v["payment"]["goods_total"] = json!(0);
            v["payment"]["amount"] = json!(1500);
            serde_json::to_vec(&v).expect("json")
        }),
        (
            "bad_email",
            with("be", "/delivery/email", json!("not-an-address")),
        ),
        ("bad_phone", with("bp", "/delivery/phone", json!("12345"))),
        (
            "bad_currency",
            with("bc", "/payment/currency", json!("usd")),
        ),
        ("negative_amount", with("na", "/items/0/nm_id", json!(-1))),
        ("amount_mismatch", with("am", "/payment/amount", json!(1))),
        (
            "goods_total_mismatch",
            with("gm", "/items/0/total_price", json!(300)),
        ),
        (
            "track_mismatch",
            with("tm", "/items/0/track_number", json!("OTHER")),
        ),
        (
            "future_date",
            with("fd", "/date_created", json!("2999-01-01T00:00:00Z")),
        ),
    ];
    for (code, payload) in &cases {
        stack.publish(Some(code), payload).await;
    }
    // The first write of an id wins; the same bytes again are a silent duplicate; other
    // bytes under that id are a conflict.
    let original = with("dup1", "/customer_id", json!("first"));
    stack.publish(Some("dup1"), &original).await;
    stack.publish(Some("dup1"), &original).await;
    stack
        .publish(Some("dup1"), &with("dup1", "/customer_id", json!("second")))
        .await;
    // And the service still takes good orders after all of that.
    stack
        .publish(Some("after"), &with("after", "/customer_id", json!("ok")))
        .await;

    let records = read_topic(
        &stack.kafka(),
        DLQ,
        cases.len() + 1,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    let mut by_key: BTreeMap<String, (String, Vec<Reason>)> = BTreeMap::new();
    for record in &records {
        let key = String::from_utf8(record.key.clone().expect("a key")).expect("utf-8");
        let class = header_text(&record.headers, "x-error-class")
            .expect("class")
            .to_owned();
        let reasons: Vec<Reason> =
            serde_json::from_str(header_text(&record.headers, "x-error-reasons").expect("reasons"))
                .expect("JSON");
        assert_eq!(
            header_text(&record.headers, "x-original-topic"),
            Some("orders")
        );
        assert!(header_text(&record.headers, "x-original-offset").is_some());
        assert!(header_text(&record.headers, "x-failed-at").is_some());
        by_key.insert(key, (class, reasons));
    }
    assert_eq!(
        records.len(),
        cases.len() + 1,
        "one dead letter per bad message: {by_key:?}"
    );
    for (code, payload) in &cases {
        let (class, reasons) = by_key
            .get(*code)
            .unwrap_or_else(|| panic!("{code} not dead-lettered"));
        assert_eq!(class, "invalid", "{code}");
        assert!(
            reasons.iter().any(|r| r.code == *code),
            "{code}: {reasons:?}"
        );
        let dead = records
            .iter()
            .find(|r| r.key.as_deref() == Some(code.as_bytes()))
            .expect("record");
        assert_eq!(
            &dead.payload, payload,
            "{code}: the original bytes, untouched"
        );
    }
    let (class, reasons) = by_key.get("dup1").expect("the conflict is dead-lettered");
    assert_eq!(class, "conflict");
    assert_eq!(reasons[0].code, "conflict");

    let served = service
        .wait_status("/order/dup1", 200, Duration::from_secs(10))
        .await
        .json();
    assert_eq!(served["customer_id"], "first", "the first write wins");
    service
        .wait_status("/order/after", 200, Duration::from_secs(30))
        .await;
    assert_eq!(
        stack.stored_count().await,
        2,
        "only the two valid orders are stored, once each"
    );
    assert_eq!(
        service.get("/readyz").await.status,
        200,
        "the service never stopped"
    );
}
