//! The HTTP contract against the running service: the canonical order served byte for byte
//! in the contract's field order, caching headers, errors as problem+json, the list, the
//! metrics of spec section 7, and the OpenAPI document.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{MODEL, ServiceProcess, Stack};

const UID: &str = "b563feb7b2b84b6test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canonical_order_is_served_exactly_as_the_contract_shows_it() {
    let stack = Stack::new().await;
    let service = ServiceProcess::start(&stack, &[]).await;
    stack.publish(Some(UID), MODEL).await;

    let answer = service
        .wait_status(&format!("/order/{UID}"), 200, Duration::from_secs(30))
        .await;
    assert_eq!(answer.header("content-type"), Some("application/json"));
    // Field by field and in the same order as model.json: the snapshot is the body itself.
    insta::assert_snapshot!("canonical_order_body", answer.text());
    let served: serde_json::Value = answer.json();
    let model: serde_json::Value = serde_json::from_slice(MODEL).expect("model.json");
    assert_eq!(served, model);

    let etag = answer.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(
        answer.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    assert!(matches!(answer.header("x-cache"), Some("hit" | "miss")));

    let again = service.get(&format!("/api/v1/orders/{UID}")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, answer.body, "both paths serve the same bytes");
    assert_eq!(
        again.header("x-cache"),
        Some("hit"),
        "stored orders are cached"
    );

    let not_modified = service
        .get_with(&format!("/order/{UID}"), &[("if-none-match", &etag)])
        .await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_malformed_and_listed_orders_answer_as_documented() {
    let stack = Stack::new().await;
    let service = ServiceProcess::start(&stack, &[]).await;
    stack.publish(Some(UID), MODEL).await;
    service
        .wait_status(&format!("/order/{UID}"), 200, Duration::from_secs(30))
        .await;

    let missing = service.get("/order/doesnotexist").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    let problem = missing.json();
    assert_eq!(problem["code"], "order_not_found");
    assert_eq!(problem["status"], 404);
    let missing_again = service.get("/order/doesnotexist").await;
    assert_eq!(
        missing_again.status, 404,
        "the negative cache answers the same"
    );

    let malformed = service.get("/order/bad%20id!").await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["code"], "bad_order_uid");

    let list = service.get("/api/v1/orders?limit=5").await;
    assert_eq!(list.status, 200);
    let list = list.json();
    assert_eq!(list["orders"][0]["order_uid"], UID);
    assert_eq!(list["orders"][0]["amount"], 1817);
    assert_eq!(list["orders"][0]["item_count"], 1);
    assert_eq!(list["next"], serde_json::Value::Null);
    // Every refusal is problem+json with its own code, whatever the value looks like.
    for (query, code) in [
        ("limit=0", "bad_limit"),
        ("limit=101", "bad_limit"),
        ("limit=-1", "bad_limit"),
        ("limit=abc", "bad_limit"),
        ("limit=99999999999999999999", "bad_limit"),
        ("limit=", "bad_limit"),
        ("before=nonsense", "bad_cursor"),
        ("limit=1&limit=2", "bad_query"),
    ] {
        let refused = service.get(&format!("/api/v1/orders?{query}")).await;
        assert_eq!(refused.status, 400, "{query}: {}", refused.text());
        assert_eq!(
            refused.header("content-type"),
            Some("application/problem+json"),
            "{query}"
        );
        assert_eq!(refused.json()["code"], code, "{query}");
    }
    // A known path with another method: 405 problem+json naming the methods it takes.
    for (method, path) in [
        ("POST", "/order/doesnotexist"),
        ("DELETE", "/api/v1/orders"),
    ] {
        let refused = service.request(method, path).await;
        assert_eq!(refused.status, 405, "{method} {path}");
        assert_eq!(
            refused.json()["code"],
            "method_not_allowed",
            "{method} {path}"
        );
        assert!(
            refused
                .header("allow")
                .is_some_and(|allow| allow.contains("GET")),
            "{method} {path}: {:?}",
            refused.header("allow")
        );
    }
}

/// Metric names and types from the Prometheus text format: each sample line must be
/// `name{labels} value` with a numeric value.
fn parse_prometheus(text: &str) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let mut samples = BTreeSet::new();
    let mut types = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().expect("a metric name");
            let kind = parts.next().expect("a metric type");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            types.insert((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        assert!(value.parse::<f64>().is_ok(), "not a number in {line:?}");
        let name = series.split('{').next().expect("a name");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line:?}"
            );
        }
        samples.insert(name.to_owned());
    }
    (samples, types)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_spec_section_7_in_the_prometheus_text_format() {
    let stack = Stack::new().await;
    let service = ServiceProcess::start(&stack, &[]).await;
    stack.publish(Some(UID), MODEL).await;
    stack.publish(Some("bad"), b"{not json").await;
    service
        .wait_status(&format!("/order/{UID}"), 200, Duration::from_secs(30))
        .await;
    service.get("/order/unknown1").await;
    // librdkafka's statistics (the lag gauges) arrive every 5 s.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let answer = service.get("/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    let (samples, types) = parse_prometheus(&answer.text());
    for name in [
        "kafka_consumer_messages_total",
        "kafka_consumer_batch_size_count",
        "kafka_consumer_batch_duration_seconds_bucket",
        "kafka_consumer_ingest_lag_seconds_bucket",
        "kafka_consumer_lag",
        "kafka_consumer_retries_total",
        "kafka_dead_letters_total",
        "orders_cache_hits_total",
        "orders_cache_misses_total",
        "orders_cache_entries",
        "orders_cache_bytes",
        "orders_cache_warmup_seconds",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "db_pool_connections",
    ] {
        assert!(samples.contains(name), "missing {name}; have {samples:?}");
    }
    assert!(types.contains(&(
        "http_request_duration_seconds".to_owned(),
        "histogram".to_owned()
    )));
    let text = answer.text();
    assert!(text.contains("outcome=\"stored\""), "{text}");
    assert!(text.contains("outcome=\"invalid\""), "{text}");
    assert!(
        text.contains("route=\"/order/{order_uid}\""),
        "route templates, not raw paths"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_3_1_and_documents_every_route() {
    let stack = Stack::new().await;
    let service = ServiceProcess::start(&stack, &[]).await;
    let answer = service.get("/api-docs/openapi.json").await;
    assert_eq!(answer.status, 200);
    let text = answer.text();
    let parsed: oas3::OpenApiV3Spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    assert!(parsed.openapi.starts_with("3.1"), "{}", parsed.openapi);
    let documented: BTreeSet<String> = parsed
        .paths
        .as_ref()
        .map(|paths| paths.keys().cloned().collect())
        .unwrap_or_default();
    let routes = [
        "/order/{order_uid}",
        "/api/v1/orders/{order_uid}",
        "/api/v1/orders",
        "/",
        "/livez",
        "/readyz",
        "/metrics",
        "/api-docs/openapi.json",
        "/docs",
    ];
    for route in routes {
        assert!(
            documented.contains(route),
            "{route} is not documented: {documented:?}"
        );
    }
    // Every documented route answers (none is documented but missing).
    for route in routes {
        let path = route.replace("{order_uid}", UID);
        let status = service.get(&path).await.status;
        assert!(
            status != 404 || path.contains(UID),
            "{route} answers {status}"
        );
    }
    let docs = service.get("/docs").await;
    assert_eq!(docs.status, 200);
    assert!(docs.header("content-security-policy").is_some());
}
