//! One test per rule of spec 1.1, on variations of the canonical order.

use serde_json::json;

use super::*;

const MODEL: &str = include_str!("../../tests/fixtures/model.json");

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

fn model() -> Value {
    serde_json::from_str(MODEL).expect("model.json")
}

fn check(value: &Value) -> Result<Validated, Vec<Violation>> {
    validate(value.to_string().as_bytes(), &Rules::default(), now())
}

/// The codes and fields of the violations of `value`, which must be refused.
fn refused(value: &Value) -> Vec<(&'static str, Option<String>)> {
    check(value)
        .expect_err("must be refused")
        .into_iter()
        .map(|v| (v.code.as_str(), v.field))
        .collect()
}

fn with(mut value: Value, pointer: &str, new: Value) -> Value {
    *value.pointer_mut(pointer).expect("pointer exists") = new;
    value
}

fn field(path: &str) -> Option<String> {
    Some(path.to_owned())
}

#[test]
fn the_canonical_order_is_valid_and_serializes_back_field_by_field() {
    let validated = validate(MODEL.as_bytes(), &Rules::default(), now()).expect("valid");
    assert!(validated.warnings.is_empty());
    let served = String::from_utf8(validated.order.canonical_json()).expect("utf-8");
    // Same keys, same values, same order at every level: the compact forms are identical.
    assert_eq!(served, minify(MODEL));
}

/// JSON text without the whitespace between tokens; strings and key order untouched.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[test]
fn malformed_json() {
    for bytes in [&b"{not json"[..], &[0xff, 0xfe], b"[1,2]", b"\"text\"", b""] {
        let err = validate(bytes, &Rules::default(), now()).expect_err("refused");
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].code, Code::MalformedJson, "{bytes:?}");
    }
}

#[test]
fn too_large() {
    let rules = Rules {
        max_bytes: 100,
        ..Rules::default()
    };
    let err = validate(MODEL.as_bytes(), &rules, now()).expect_err("refused");
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].code, Code::TooLarge);
}

#[test]
fn wrong_type() {
    let value = with(model(), "/payment/amount", json!("1817"));
    let value = with(value, "/delivery/zip", json!(2639809));
    let value = with(value, "/items/0/price", json!(4.5));
    let value = with(value, "/payment/payment_dt", json!(u64::MAX));
    assert_eq!(
        refused(&value),
        vec![
            ("wrong_type", field("delivery.zip")),
            ("wrong_type", field("payment.amount")),
            ("wrong_type", field("payment.payment_dt")),
            ("wrong_type", field("items[0].price")),
        ],
        "no follow-on noise from the unreadable fields"
    );
    let value = with(model(), "/delivery", json!("a string"));
    assert_eq!(refused(&value), vec![("wrong_type", field("delivery"))]);
    let value = with(model(), "/items", json!([7]));
    assert_eq!(refused(&value), vec![("wrong_type", field("items[0]"))]);
}

#[test]
fn missing_field() {
    let mut value = model();
    value.as_object_mut().expect("object").remove("customer_id");
    value["payment"]
        .as_object_mut()
        .expect("object")
        .remove("currency");
    assert_eq!(
        refused(&value),
        vec![
            ("missing_field", field("payment.currency")),
            ("missing_field", field("customer_id")),
        ]
    );
    let mut value = model();
    value.as_object_mut().expect("object").remove("payment");
    assert_eq!(refused(&value), vec![("missing_field", field("payment"))]);
}

#[test]
fn bad_order_uid() {
    for uid in ["", "has space", "<script>", &"x".repeat(65)] {
        let value = with(model(), "/order_uid", json!(uid));
        assert_eq!(
            refused(&value),
            vec![("bad_order_uid", field("order_uid"))],
            "{uid:?}"
        );
    }
    assert!(valid_order_uid(&"a".repeat(64)));
    assert!(valid_order_uid("b563feb7b2b84b6test_-"));
}

#[test]
fn empty_field() {
    let value = with(model(), "/delivery/city", json!(""));
    let value = with(value, "/items/0/brand", json!("  "));
    assert_eq!(
        refused(&value),
        vec![
            ("empty_field", field("delivery.city")),
            ("empty_field", field("items[0].brand")),
        ]
    );
}

#[test]
fn no_items() {
    let value = with(model(), "/items", json!([]));
    let codes = refused(&value);
    assert!(codes.contains(&("no_items", field("items"))), "{codes:?}");
    let item = model()["items"][0].clone();
    let many = with(model(), "/items", Value::Array(vec![item; 1001]));
    let codes = refused(&many);
    assert!(codes.contains(&("no_items", field("items"))), "{codes:?}");
}

#[test]
fn bad_email() {
    for email in ["", "test", "a@b", "a b@c.d", "@c.d", "a@@c.d", "a@c..d"] {
        let value = with(model(), "/delivery/email", json!(email));
        assert_eq!(
            refused(&value),
            vec![("bad_email", field("delivery.email"))],
            "{email:?}"
        );
    }
}

#[test]
fn bad_phone() {
    for phone in ["9720000000", "+1234", "+123456789012345678901", "+972-000"] {
        let value = with(model(), "/delivery/phone", json!(phone));
        assert_eq!(
            refused(&value),
            vec![("bad_phone", field("delivery.phone"))],
            "{phone:?}"
        );
    }
    assert!(valid_phone("+12345"));
    assert!(valid_phone(&format!("+{}", "1".repeat(20))));
}

#[test]
fn bad_currency() {
    for currency in ["usd", "US", "USDT", "U5D"] {
        let value = with(model(), "/payment/currency", json!(currency));
        assert_eq!(
            refused(&value),
            vec![("bad_currency", field("payment.currency"))],
            "{currency:?}"
        );
    }
}

#[test]
fn negative_amount() {
    let value = with(model(), "/items/0/chrt_id", json!(-1));
    assert_eq!(
        refused(&value),
        vec![("negative_amount", field("items[0].chrt_id"))]
    );
    let value = with(model(), "/sm_id", json!(-5));
    assert_eq!(refused(&value), vec![("negative_amount", field("sm_id"))]);
    let value = with(model(), "/items/0/sale", json!(101));
    assert_eq!(
        refused(&value),
        vec![("negative_amount", field("items[0].sale"))]
    );
    let value = with(model(), "/items/0/sale", json!(100));
    assert!(check(&value).is_ok(), "100 percent is the limit");
}

#[test]
fn amount_mismatch() {
    let value = with(model(), "/payment/amount", json!(1818));
    assert_eq!(
        refused(&value),
        vec![("amount_mismatch", field("payment.amount"))]
    );
    let value = with(model(), "/payment/custom_fee", json!(i64::MAX));
    let value = with(value, "/payment/amount", json!(1));
    assert_eq!(
        refused(&value),
        vec![("amount_mismatch", field("payment.amount"))],
        "an overflowing sum is a mismatch, not a panic"
    );
}

#[test]
fn goods_total_mismatch() {
    let value = with(model(), "/items/0/total_price", json!(300));
    assert_eq!(
        refused(&value),
        vec![("goods_total_mismatch", field("payment.goods_total"))]
    );
}

#[test]
fn track_mismatch() {
    let value = with(model(), "/items/0/track_number", json!("OTHER"));
    assert_eq!(
        refused(&value),
        vec![("track_mismatch", field("items[0].track_number"))]
    );
}

#[test]
fn future_date() {
    let value = with(model(), "/date_created", json!("2026-01-01T00:06:00Z"));
    assert_eq!(
        refused(&value),
        vec![("future_date", field("date_created"))]
    );
    let value = with(model(), "/date_created", json!("2026-01-01T00:04:59Z"));
    assert!(check(&value).is_ok(), "within the 5-minute allowance");
    let value = with(model(), "/date_created", json!("yesterday"));
    assert_eq!(refused(&value), vec![("wrong_type", field("date_created"))]);
}

#[test]
fn relaxed_rules_become_warnings() {
    let rules = Rules {
        strict: false,
        ..Rules::default()
    };
    let value = with(model(), "/items/0/track_number", json!("OTHER"));
    let value = with(value, "/payment/amount", json!(1));
    let validated = validate(value.to_string().as_bytes(), &rules, now()).expect("accepted");
    let codes: Vec<Code> = validated.warnings.iter().map(|w| w.code).collect();
    assert_eq!(codes, vec![Code::AmountMismatch, Code::TrackMismatch]);
    let value = with(model(), "/payment/currency", json!("usd"));
    assert!(
        validate(value.to_string().as_bytes(), &rules, now()).is_err(),
        "only the relaxable rules relax"
    );
}

#[test]
fn all_violations_are_collected() {
    let value = with(model(), "/payment/currency", json!("usd"));
    let value = with(value, "/delivery/email", json!("nope"));
    let value = with(value, "/entry", json!(""));
    let codes: Vec<&str> = refused(&value).into_iter().map(|(c, _)| c).collect();
    assert_eq!(codes, vec!["empty_field", "bad_email", "bad_currency"]);
}

#[test]
fn unknown_fields_are_dropped_from_the_canonical_json() {
    let mut value = model();
    value["extra"] = json!({"nested": true});
    value["delivery"]["note"] = json!("ring twice");
    let validated = check(&value).expect("valid");
    assert_eq!(
        serde_json::from_slice::<Value>(&validated.order.canonical_json()).expect("json"),
        model()
    );
}

#[test]
fn no_items_and_a_goods_total_above_zero_are_both_reported() {
    let value = with(model(), "/items", json!([]));
    assert_eq!(
        refused(&value),
        vec![
            ("no_items", field("items")),
            ("goods_total_mismatch", field("payment.goods_total"))
        ]
    );
}

#[test]
fn a_nul_character_anywhere_is_refused_by_name() {
    let value = with(model(), "/items/0/brand", json!("Vivienne\u{0}Sabo"));
    let mut value = with(value, "/delivery/region", json!("\u{0}"));
    value["extra"] = json!({"deep": ["ok", "bad\u{0}"]});
    assert_eq!(
        refused(&value),
        vec![
            ("nul_character", field("delivery.region")),
            ("nul_character", field("items[0].brand")),
            ("nul_character", field("extra.deep[1]")),
        ]
    );
}

#[test]
fn date_created_keeps_the_text_it_was_written_with() {
    let value = with(model(), "/date_created", json!("2021-11-26T09:22:19+03:00"));
    let validated = check(&value).expect("valid");
    let served: Value = serde_json::from_slice(&validated.order.canonical_json()).expect("json");
    assert_eq!(served["date_created"], "2021-11-26T09:22:19+03:00");
    assert_eq!(
        validated.order.date_created.instant(),
        DateTime::parse_from_rfc3339("2021-11-26T06:22:19Z")
            .expect("time")
            .with_timezone(&Utc)
    );
}
