//! The process skeleton: a real listener with the health and metrics routes, problem+json
//! for unknown routes, readiness driven by registered checks, and an orderly stop.

use std::net::SocketAddr;
use std::time::Duration;

use platform::http::{HttpSettings, ReadyFlag};
use platform::service::Service;
use platform::telemetry::TelemetrySettings;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// GET over a fresh connection; returns the status line, the headers and the body.
async fn get(address: SocketAddr, path: &str) -> (String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_serves_health_metrics_and_problems_then_stops_cleanly() {
    let service = Service::start("test-service", &TelemetrySettings::default()).expect("start");
    let warmed_up = ReadyFlag::new();
    service.health().register("warm-up", warmed_up.clone());
    let settings = HttpSettings {
        bind: "127.0.0.1:0".parse().expect("address"),
        ..HttpSettings::default()
    };
    let address = service
        .serve_http(&settings, axum::Router::new())
        .await
        .expect("listen");

    let (status, _, _) = get(address, "/livez").await;
    assert!(status.contains(" 200 "), "{status}");
    let (status, _, body) = get(address, "/readyz").await;
    assert!(
        status.contains(" 503 "),
        "not ready before warm-up: {status}"
    );
    assert!(body.contains("warm-up"), "{body}");
    warmed_up.set(true);
    let (status, _, _) = get(address, "/readyz").await;
    assert!(status.contains(" 200 "), "{status}");

    let (status, headers, body) = get(address, "/no/such/route").await;
    assert!(status.contains(" 404 "), "{status}");
    assert!(
        headers.contains("content-type: application/problem+json"),
        "{headers}"
    );
    let problem: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(problem["code"], "route_not_found");
    assert_eq!(problem["status"], 404);

    let (status, headers, body) = get(address, "/metrics").await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(headers.contains("content-type: text/plain"), "{headers}");
    assert!(body.contains("http_requests_total{"), "{body}");
    assert!(body.contains("route=\"/readyz\""), "{body}");

    let stop = service.stop_token();
    service.stop();
    let mut flushed = false;
    service
        .run_until_stopped(Duration::from_secs(5), async { flushed = true })
        .await
        .expect("a clean stop");
    assert!(stop.is_cancelled(), "components saw the stop");
    assert!(flushed, "the stop hook ran");
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the listener is closed"
    );
}
