//! After a restart the cache is warmed up from the database: orders stored before are
//! answered from memory once `/readyz` is 200. The stop itself is graceful (exit 0).

use std::time::Duration;

use serde_json::Value;

use crate::harness::{MODEL, ServiceProcess, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_orders_are_cache_hits_after_a_restart() {
    let stack = Stack::new().await;
    let mut service = ServiceProcess::start(&stack, &[]).await;
    let uids: Vec<String> = (0..20).map(|i| format!("restart{i:02}")).collect();
    for uid in &uids {
        let mut order: Value = serde_json::from_slice(MODEL).expect("model");
        order["order_uid"] = uid.as_str().into();
        stack
            .publish(Some(uid), &serde_json::to_vec(&order).expect("json"))
            .await;
    }
    for uid in &uids {
        service
            .wait_status(&format!("/order/{uid}"), 200, Duration::from_secs(30))
            .await;
    }
    assert!(service.terminate(), "SIGTERM ends the service with success");

    let service = ServiceProcess::start(&stack, &[]).await;
    for uid in &uids {
        let answer = service.get(&format!("/order/{uid}")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-cache"), Some("hit"), "{uid} was warmed up");
    }
    let metrics = service.get("/metrics").await.text();
    let warmed = metrics
        .lines()
        .find(|l| l.starts_with("orders_cache_warmup_orders "))
        .expect("warm-up count exported");
    assert_eq!(warmed, "orders_cache_warmup_orders 20");
}
