//! HTTP plumbing through the router: problem+json bodies, health, request ids, metrics
//! labels, timeouts, trace parents, and a real server draining a request on shutdown.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt as _;
use opentelemetry::trace::TracerProvider as _;
use platform::http::{
    Health, HttpSettings, PROBLEM_JSON, Problem, ReadyFlag, health_router, metrics_router, serve,
    with_standard_layers,
};
use platform::telemetry::{Metrics, propagation};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

async fn send(router: Router, request: Request<Body>) -> Response {
    router.oneshot(request).await.unwrap()
}

async fn get_path(router: Router, path: &str) -> Response {
    send(router, Request::get(path).body(Body::empty()).unwrap()).await
}

async fn body_bytes(response: Response) -> Vec<u8> {
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

async fn json_body(response: Response) -> Value {
    serde_json::from_slice(&body_bytes(response).await).unwrap()
}

fn content_type(response: &Response) -> &str {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
}

fn layered(router: Router) -> Router {
    with_standard_layers(router, &HttpSettings::default())
}

#[tokio::test]
async fn problem_is_problem_json_with_stable_fields() {
    let problem = Problem::unprocessable("invalid_order", "2 fields are invalid")
        .with_instance("/api/v1/orders")
        .with_extension(
            "errors",
            json!([{ "field": "payment.amount", "message": "must be positive" }]),
        )
        // A standard member cannot be overwritten by an extension.
        .with_extension("status", json!(200));
    assert_eq!(problem.code(), "invalid_order");

    let response = problem.into_response();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(content_type(&response), PROBLEM_JSON);
    // Keys sorted: serde_json keeps insertion order or sorts depending on a feature other
    // crates of the workspace may switch on, and the snapshot must not depend on that.
    let body = json_body(response).await;
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(body, @r#"
        {
          "code": "invalid_order",
          "detail": "2 fields are invalid",
          "errors": [
            {
              "field": "payment.amount",
              "message": "must be positive"
            }
          ],
          "instance": "/api/v1/orders",
          "status": 422,
          "title": "Unprocessable Entity",
          "type": "about:blank"
        }
        "#);
    });
}

#[tokio::test]
async fn problem_constructors_set_status_and_code() {
    let cases = [
        (Problem::bad_request("bad_uid", "x"), 400, "bad_uid"),
        (
            Problem::not_found("order_not_found", "x"),
            404,
            "order_not_found",
        ),
        (Problem::conflict("duplicate", "x"), 409, "duplicate"),
        (Problem::unauthorized("x"), 401, "unauthorized"),
        (Problem::forbidden("x"), 403, "forbidden"),
        (Problem::unavailable("x"), 503, "unavailable"),
    ];
    for (problem, status, code) in cases {
        let body = json_body(problem.into_response()).await;
        assert_eq!(body["status"], status);
        assert_eq!(body["code"], code);
        assert_eq!(body["detail"], "x");
        assert_eq!(body["type"], "about:blank");
    }
}

#[tokio::test]
async fn internal_errors_do_not_leak_their_message() {
    let router = Router::new().route(
        "/boom",
        get(|| async {
            let cause = "connection to postgres://app:hunter2@db failed";
            Problem::internal(&cause)
        }),
    );
    let response = get_path(layered(router), "/boom").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(content_type(&response), PROBLEM_JSON);
    let body = body_bytes(response).await;
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("postgres"), "{text}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "internal");
    assert_eq!(body["detail"], "internal error");
}

#[tokio::test]
async fn livez_is_ok() {
    let response = get_path(health_router(Health::new()), "/livez").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!({ "status": "ok" }));
}

#[tokio::test]
async fn readyz_is_ok_when_all_checks_pass() {
    let health = Health::new();
    let warm = ReadyFlag::default();
    warm.set(true);
    health.register("warm_up", warm);
    health.register("database", || async { Ok(()) });

    let response = get_path(health_router(health), "/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await,
        json!({ "status": "ready", "checks": { "warm_up": "ok", "database": "ok" } })
    );
}

#[tokio::test]
async fn readyz_names_the_failing_check() {
    let health = Health::new();
    let consumer = ReadyFlag::default();
    health.register("consumer", consumer.clone());
    health.register("database", || async {
        Err("connection refused".to_owned())
    });
    let router = health_router(health);

    let response = get_path(router.clone(), "/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json_body(response).await,
        json!({
            "status": "not_ready",
            "checks": { "consumer": "not ready", "database": "connection refused" }
        })
    );

    // The flag is shared with the health registry: setting it is seen by the next probe.
    consumer.set(true);
    let body = json_body(get_path(router, "/readyz").await).await;
    assert_eq!(body["checks"]["consumer"], "ok");
}

#[tokio::test]
async fn a_failing_degradable_check_keeps_the_instance_ready_but_degraded() {
    let health = Health::new();
    health.register("database", || async { Ok(()) });
    let consumer = ReadyFlag::default();
    health.register_degradable("consumer", consumer.clone());
    health.register_degradable("kafka", || async { Err("all brokers down".to_owned()) });
    let router = health_router(health.clone());

    let response = get_path(router.clone(), "/readyz").await;
    assert_eq!(response.status(), StatusCode::OK, "still in rotation");
    assert_eq!(
        json_body(response).await,
        json!({
            "status": "degraded",
            "checks": { "database": "ok", "consumer": "not ready", "kafka": "all brokers down" }
        })
    );

    // A required check failing still takes it out.
    health.register("database", || async {
        Err("connection refused".to_owned())
    });
    let response = get_path(router, "/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(response).await["status"], "not_ready");
}

#[tokio::test]
async fn readyz_times_out_a_hanging_check() {
    let health = Health::new();
    health.register("slow", || async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    });
    let started = Instant::now();
    let response = get_path(health_router(health), "/readyz").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(response).await;
    assert!(
        body["checks"]["slow"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{body}"
    );
}

#[tokio::test]
async fn readyz_is_unavailable_after_shutting_down() {
    let health = Health::new();
    health.register("database", || async { Ok(()) });
    let router = health_router(health.clone());
    assert_eq!(
        get_path(router.clone(), "/readyz").await.status(),
        StatusCode::OK
    );

    health.set_shutting_down();
    let response = get_path(router, "/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(response).await["status"], "not_ready");
}

#[tokio::test]
async fn request_id_is_generated_when_absent_and_echoed_when_given() {
    let router = layered(Router::new().route("/ping", get(|| async { "pong" })));

    let response = get_path(router.clone(), "/ping").await;
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");

    let request = Request::get("/ping")
        .header("x-request-id", "client-chosen-42")
        .body(Body::empty())
        .unwrap();
    let response = send(router, request).await;
    assert_eq!(response.headers()["x-request-id"], "client-chosen-42");
}

#[tokio::test]
async fn metrics_use_the_route_template_not_the_raw_path() {
    let metrics = Metrics::install().unwrap();
    let router = layered(
        Router::new()
            .route(
                "/order/{id}",
                get(|Path(id): Path<String>| async move { id }),
            )
            .merge(metrics_router(metrics.clone())),
    );

    let response = get_path(router.clone(), "/order/b563feb7b2b84b6test").await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = get_path(router.clone(), "/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = get_path(router, "/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        content_type(&response).starts_with("text/plain; version=0.0.4"),
        "{}",
        content_type(&response)
    );
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/order/{id}",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_request_duration_seconds_bucket{method="GET",route="/order/{id}",status="200",le="0.0005"}"#
        ),
        "{text}"
    );
    assert!(!text.contains("b563feb7b2b84b6test"), "{text}");
}

#[tokio::test]
async fn slow_request_times_out_with_503_problem() {
    let settings = HttpSettings {
        request_timeout: Duration::from_millis(50),
        ..HttpSettings::default()
    };
    let router = with_standard_layers(
        Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        ),
        &settings,
    );
    let started = Instant::now();
    let response = get_path(router, "/slow").await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(content_type(&response), PROBLEM_JSON);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(json_body(response).await["code"], "timeout");
}

#[tokio::test]
async fn request_span_continues_the_callers_trace() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("http-test")));
    // A scoped subscriber: the test runtime runs the handler on this thread.
    let _default = tracing::subscriber::set_default(subscriber);

    let router = layered(Router::new().route(
        "/trace",
        get(|| async {
            let headers = propagation::inject(&tracing::Span::current());
            headers
                .into_iter()
                .find(|(name, _)| name == propagation::TRACEPARENT)
                .map(|(_, value)| value)
                .unwrap_or_default()
        }),
    ));
    let request = Request::get("/trace")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    let response = send(router, request).await;
    let traceparent = String::from_utf8(body_bytes(response).await).unwrap();

    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{traceparent}"
    );
    // The request's span is a new child, not the caller's span.
    assert!(!traceparent.contains("00f067aa0ba902b7"), "{traceparent}");
}

#[tokio::test]
async fn serve_drains_an_in_flight_request_on_shutdown() {
    let started_handling = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&started_handling);
    let router = layered(Router::new().route(
        "/slow",
        get(move || {
            let flag = Arc::clone(&flag);
            async move {
                flag.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                "finished"
            }
        }),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let server = tokio::spawn(serve(listener, router, token.clone()));

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    while !started_handling.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    token.cancel();

    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("finished"), "{answer}");

    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Once stopped, the server no longer accepts connections.
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
