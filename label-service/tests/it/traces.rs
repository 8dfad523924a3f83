//! Traces arrive whole at an OTLP receiver: one from `orders-producer` through the broker's
//! headers to the orders-service's consumer and its database transaction, and one from a
//! label-service HTTP request through the outbox row and Kafka to the deferred step.
//!
//! The receiver is built here, because no OpenTelemetry Collector or Jaeger can be installed
//! on the test machines. The issue suggests a gRPC receiver (tonic), but the services export
//! OTLP over HTTP with protobuf bodies (`POST /v1/traces`, what Jaeger and the Collector
//! receive on port 4318), so the faithful receiver is an HTTP one decoding the very same
//! protobuf messages (`ExportTraceServiceRequest` of `opentelemetry-proto`): gRPC would test
//! a transport the services never use.
//!
//! The orders-service is run as its binary from the same target directory (built by
//! `cargo build --bins` or `cargo nextest run --workspace`): the services must not depend on
//! each other, so it is not a dependency of this crate.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use platform::testkit::{
    ServiceProcess, TestBroker, TestDatabase, eventually, free_port, sibling_binary, workspace_root,
};
use prost::Message as _;
use serde_json::json;

use crate::stack::{LabelProcess, LabelStack};

const WAIT: Duration = Duration::from_secs(60);
/// The batch span processor exports every 5 s by default; the services under test export
/// every 200 ms, so spans arrive while the test waits for them.
const EXPORT_DELAY: (&str, &str) = ("OTEL_BSP_SCHEDULE_DELAY", "200");

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    /// `service.name` of the resource that exported it.
    service: String,
    trace_id: String,
    span_id: String,
    /// Empty for a root span.
    parent_span_id: String,
    name: String,
    kind: i32,
    attributes: BTreeMap<String, String>,
    start_unix_nano: u64,
    end_unix_nano: u64,
}

impl ReceivedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

type Spans = Arc<Mutex<Vec<ReceivedSpan>>>;

/// An OTLP/HTTP protobuf trace receiver on 127.0.0.1 and a free port.
struct Receiver {
    endpoint: String,
    spans: Spans,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let address = listener.local_addr().expect("receiver address");
        let spans = Spans::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(Arc::clone(&spans));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        Self {
            endpoint: format!("http://{address}"),
            spans,
            server,
        }
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `find` finds what it looks for in the spans received so far.
    async fn wait_for<T>(&self, what: &str, find: impl Fn(&[ReceivedSpan]) -> Option<T>) -> T {
        let find = &find;
        eventually(what, WAIT, || async move { find(&self.spans()) }).await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(spans): State<Spans>, body: Bytes) -> impl IntoResponse {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            received.push(ReceivedSpan {
                service: service.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                name: span.name,
                kind: span.kind,
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| {
                        (
                            kv.key.clone(),
                            text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                        )
                    })
                    .collect(),
                start_unix_nano: span.start_time_unix_nano,
                end_unix_nano: span.end_time_unix_nano,
            });
        }
    }
    spans
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(received);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// The spans of one trace, for lookups by id and name.
struct Trace<'a> {
    spans: Vec<&'a ReceivedSpan>,
}

impl<'a> Trace<'a> {
    fn of(spans: &'a [ReceivedSpan], trace_id: &str) -> Self {
        Self {
            spans: spans.iter().filter(|s| s.trace_id == trace_id).collect(),
        }
    }

    fn by_id(&self, span_id: &str) -> Option<&'a ReceivedSpan> {
        self.spans.iter().copied().find(|s| s.span_id == span_id)
    }

    fn children(&self, parent: &ReceivedSpan, name: &str) -> Vec<&'a ReceivedSpan> {
        self.spans
            .iter()
            .copied()
            .filter(|s| s.parent_span_id == parent.span_id && s.name == name)
            .collect()
    }

    /// The span and its ancestors, nearest first, as far as they were received.
    fn ancestry(&self, span: &'a ReceivedSpan) -> Vec<&'a ReceivedSpan> {
        let mut chain = vec![span];
        while let Some(parent) = chain
            .last()
            .and_then(|last| self.by_id(&last.parent_span_id))
        {
            if chain.len() > 64 {
                break;
            }
            chain.push(parent);
        }
        chain
    }

    fn describe(&self) -> String {
        self.spans
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} parent={} {:?}",
                    s.service, s.span_id, s.name, s.parent_span_id, s.attributes
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_one_trace_from_the_producer_through_the_broker_to_the_database() {
    let receiver = Receiver::start().await;
    let broker = TestBroker::start().await;
    broker
        .create_topics(&[("orders", 3), ("orders.dlq", 1)])
        .await;
    let database = TestDatabase::create("orders_traces").await;

    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let brokers = broker.brokers();
    let service = ServiceProcess::spawn(
        &sibling_binary("orders-service"),
        "orders-service-traces",
        [
            ("APP_ENV", "test"),
            ("ORDERS__DATABASE__URL", database.url.as_str()),
            ("ORDERS__KAFKA__BROKERS", brokers.as_str()),
            ("ORDERS__KAFKA__SESSION_TIMEOUT", "6s"),
            ("ORDERS__KAFKA__HEARTBEAT_INTERVAL", "500ms"),
            ("ORDERS__HTTP__BIND", bind.as_str()),
            ("ORDERS__TELEMETRY__LOG_FORMAT", "json"),
            (
                "ORDERS__TELEMETRY__OTLP_ENDPOINT",
                receiver.endpoint.as_str(),
            ),
            EXPORT_DELAY,
        ],
        port,
    );
    service.wait_ready(WAIT).await;

    // The producer exports its own spans (it flushes them when it exits).
    let mut producer = Command::new(sibling_binary("orders-producer"));
    producer
        .current_dir(workspace_root())
        .env_remove("ORDERS__KAFKA__BROKERS")
        .env("ORDERS__TELEMETRY__OTLP_ENDPOINT", &receiver.endpoint)
        .env(EXPORT_DELAY.0, EXPORT_DELAY.1)
        .args([
            "--brokers",
            &broker.brokers(),
            "--topic",
            "orders",
            "--file",
        ])
        .arg(workspace_root().join("orders-service/tests/fixtures/model.json"))
        .stdin(Stdio::null());
    let output =
        tokio::task::spawn_blocking(move || producer.output().expect("run orders-producer"))
            .await
            .expect("join");
    assert!(
        output.status.success(),
        "orders-producer failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // produce (orders-producer) -> kafka.message -> kafka.batch -> db.transaction
    // (orders-service), all in one trace.
    let (produce, message, batch, transaction) = receiver
        .wait_for(
            "the producer's trace down to the database transaction",
            |spans| {
                let produce = spans
                    .iter()
                    .find(|s| s.service == "orders-producer" && s.name == "kafka.produce")?;
                let trace = Trace::of(spans, &produce.trace_id);
                let message = trace
                    .children(produce, "kafka.message")
                    .into_iter()
                    .find(|s| s.service == "orders-service")?;
                let batch = trace.children(message, "kafka.batch").into_iter().next()?;
                let transaction = trace.children(batch, "db.transaction").into_iter().next()?;
                Some((
                    produce.clone(),
                    message.clone(),
                    batch.clone(),
                    transaction.clone(),
                ))
            },
        )
        .await;
    let spans = receiver.spans();
    let trace = Trace::of(&spans, &produce.trace_id);
    let context = trace.describe();

    // The produce span sits under the producer's run span, the root of the trace.
    let run = trace
        .by_id(&produce.parent_span_id)
        .unwrap_or_else(|| panic!("the produce span's parent was received:\n{context}"));
    assert_eq!(run.name, "orders-producer.run", "{context}");
    assert_eq!(run.service, "orders-producer", "{context}");
    assert!(run.parent_span_id.is_empty(), "{context}");
    assert_eq!(produce.kind, SpanKind::Producer as i32, "{context}");
    assert_eq!(
        produce.attribute("messaging.destination.name"),
        Some("orders"),
        "{context}"
    );

    // The consumer continued the producer's trace from the record's headers.
    for span in [&message, &batch, &transaction] {
        assert_eq!(span.trace_id, produce.trace_id, "{context}");
        assert_eq!(span.service, "orders-service", "{context}");
    }
    assert_eq!(message.parent_span_id, produce.span_id, "{context}");
    assert_eq!(message.kind, SpanKind::Consumer as i32, "{context}");
    assert_eq!(
        message.attribute("messaging.source.name"),
        Some("orders"),
        "{context}"
    );
    assert_eq!(message.attribute("outcome"), Some("stored"), "{context}");
    assert_eq!(batch.parent_span_id, message.span_id, "{context}");
    assert_eq!(batch.attribute("size"), Some("1"), "{context}");
    assert_eq!(transaction.parent_span_id, batch.span_id, "{context}");
    assert_eq!(
        transaction.attribute("db.system"),
        Some("postgresql"),
        "{context}"
    );
    assert_eq!(
        transaction.attribute("outcome"),
        Some("commit"),
        "{context}"
    );
    // Children within their parents' time.
    assert!(
        produce.start_unix_nano <= message.start_unix_nano,
        "{context}"
    );
    assert!(
        message.start_unix_nano <= batch.start_unix_nano,
        "{context}"
    );
    assert!(
        batch.start_unix_nano <= transaction.start_unix_nano,
        "{context}"
    );
    assert!(
        transaction.end_unix_nano <= batch.end_unix_nano,
        "{context}"
    );
    assert!(batch.end_unix_nano <= message.end_unix_nano, "{context}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_request_is_one_trace_from_http_through_the_outbox_to_the_deferred_step() {
    let receiver = Receiver::start().await;
    let stack = LabelStack::new().await;
    let mut service = LabelProcess::start(
        &stack,
        &[
            (
                "LABEL__TELEMETRY__OTLP_ENDPOINT",
                receiver.endpoint.as_str(),
            ),
            EXPORT_DELAY,
        ],
    )
    .await;
    let api = service.api.clone();
    let admin = api.admin().await;
    let (_, manager_id) = api.new_manager(&admin, "Tracy").await;
    let ann = api
        .register("Ann Trace", "ann.trace@example.com", "ann-password")
        .await;
    let (status, request) = api
        .post(
            "/requests/sign",
            Some(&ann.token),
            &json!({"nickname": "Traced Lights"}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let sign_id = request["id"].as_i64().expect("id");
    let on_approval = api
        .wait_for(
            "the sign request on approval",
            &format!("/requests/{sign_id}"),
            &ann.token,
            WAIT,
            |r| r["status"] == "On approval",
        )
        .await;
    assert_eq!(on_approval["manager_id"], manager_id);

    // The HTTP request's span, and the deferred step of the request in the same trace.
    let sign_id_text = sign_id.to_string();
    let (http, step) = receiver
        .wait_for(
            "the sign request's trace down to the deferred step",
            |spans| {
                let http = spans.iter().find(|s| {
                    s.service == "label-service"
                        && s.attribute("route") == Some("/api/v1/requests/sign")
                        && s.attribute("method") == Some("POST")
                })?;
                let step = spans.iter().find(|s| {
                    s.trace_id == http.trace_id
                        && s.name == "label.deferred_step"
                        && s.attribute("request_id") == Some(sign_id_text.as_str())
                })?;
                // The whole chain up to the request must have arrived.
                let trace = Trace::of(spans, &http.trace_id);
                trace
                    .ancestry(step)
                    .iter()
                    .any(|s| s.span_id == http.span_id)
                    .then(|| (http.clone(), step.clone()))
            },
        )
        .await;
    assert!(
        service.terminate(),
        "SIGTERM stops the service with success"
    );
    let spans = receiver.spans();
    let trace = Trace::of(&spans, &http.trace_id);
    let context = trace.describe();

    // The HTTP span: route, method, status and latency, a server span, the trace's root.
    assert_eq!(http.name, "POST /api/v1/requests/sign", "{context}");
    assert_eq!(http.kind, SpanKind::Server as i32, "{context}");
    assert!(http.parent_span_id.is_empty(), "{context}");
    assert_eq!(http.attribute("status"), Some("201"), "{context}");
    assert_eq!(
        http.attribute("http.response.status_code"),
        Some("201"),
        "{context}"
    );
    assert_eq!(
        http.attribute("http.route"),
        Some("/api/v1/requests/sign"),
        "{context}"
    );
    assert_eq!(
        http.attribute("http.request.method"),
        Some("POST"),
        "{context}"
    );
    let latency_ms: u64 = http
        .attribute("latency_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("latency_ms on the HTTP span:\n{context}"));
    let duration_ns = http.end_unix_nano.saturating_sub(http.start_unix_nano);
    assert!(duration_ns > 0, "the HTTP span has a duration:\n{context}");
    assert!(
        latency_ms * 1_000_000 <= duration_ns,
        "latency_ms {latency_ms} within the span's {duration_ns} ns:\n{context}"
    );
    assert!(
        http.attribute("request_id")
            .is_some_and(|id| !id.is_empty()),
        "{context}"
    );

    // deferred step -> kafka.message -> the span that wrote the outbox row, which belongs to
    // the HTTP request.
    assert_eq!(step.service, "label-service");
    let message = trace
        .by_id(&step.parent_span_id)
        .unwrap_or_else(|| panic!("the step's parent was received:\n{context}"));
    assert_eq!(message.name, "kafka.message", "{context}");
    assert_eq!(message.kind, SpanKind::Consumer as i32, "{context}");
    assert_eq!(
        message.attribute("messaging.source.name"),
        Some(crate::stack::SIGN),
        "{context}"
    );
    let writer = trace
        .by_id(&message.parent_span_id)
        .unwrap_or_else(|| panic!("the message's parent was received:\n{context}"));
    let writer_ancestry: Vec<&str> = trace
        .ancestry(writer)
        .iter()
        .map(|s| s.span_id.as_str())
        .collect();
    assert!(
        writer_ancestry.contains(&http.span_id.as_str()),
        "the span that wrote the outbox row ({}) is part of the HTTP request:\n{context}",
        writer.name
    );

    // The outbox row stored exactly that context, and the relay published under it.
    let pool = stack.pool().await;
    let stored: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT headers FROM label.outbox WHERE sent_at IS NOT NULL ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("outbox rows");
    pool.close().await;
    let expected = format!("00-{}-{}-01", http.trace_id, writer.span_id);
    assert!(
        stored.iter().any(|headers| {
            headers
                .as_array()
                .into_iter()
                .flatten()
                .any(|h| h["name"] == "traceparent" && h["value"] == expected.as_str())
        }),
        "an outbox row carries {expected}: {stored:?}"
    );
    let publish = trace
        .children(writer, "outbox.publish")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("outbox.publish under the writer:\n{context}"));
    assert_eq!(
        publish.attribute("topic"),
        Some(crate::stack::SIGN),
        "{context}"
    );
    let produce = trace
        .children(publish, "kafka.produce")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("kafka.produce under outbox.publish:\n{context}"));
    assert_eq!(produce.kind, SpanKind::Producer as i32, "{context}");
    assert!(http.start_unix_nano <= publish.start_unix_nano, "{context}");
    assert!(
        publish.start_unix_nano <= message.start_unix_nano,
        "{context}"
    );
    assert!(message.start_unix_nano <= step.start_unix_nano, "{context}");
    assert!(step.end_unix_nano <= message.end_unix_nano, "{context}");
}
