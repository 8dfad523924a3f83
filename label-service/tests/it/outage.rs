//! The transactional outbox during a broker outage: the API keeps accepting applications,
//! and every deferred action is delivered once the broker is back. Messages that timed out
//! in flight make the idempotent producer bump its epoch; the test broker refuses that
//! (`ProducerFenced`), so this also proves the producer is replaced and the relay recovers.

use std::time::Duration;

use serde_json::json;

use crate::stack::{LabelProcess, LabelStack};

#[tokio::test(flavor = "multi_thread")]
async fn applications_made_while_the_broker_is_down_all_reach_on_approval_once_it_is_back() {
    let stack = LabelStack::new().await;
    let service = LabelProcess::start(&stack, &[]).await;
    let api = service.api.clone();
    let admin = api.admin().await;
    let (_, manager_id) = api.new_manager(&admin, "Ines").await;

    // The broker process is stopped (SIGSTOP): it keeps its state, like a real broker that
    // goes away and comes back, and every connection to it hangs.
    stack.broker.pause();
    let mut tasks = Vec::new();
    for n in 0..100 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let user = api
                .register(
                    &format!("Fan {n}"),
                    &format!("fan{n}@example.com"),
                    "fan-password",
                )
                .await;
            let (status, body) = api
                .post(
                    "/requests/sign",
                    Some(&user.token),
                    &json!({"nickname": format!("Fan Band {n}")}),
                )
                .await;
            (status, body)
        }));
        // Bounded concurrency: ten at a time.
        if tasks.len() == 10 {
            for task in tasks.drain(..) {
                let (status, body) = task.await.expect("task");
                assert_eq!(status, 201, "accepted while the broker is down: {body}");
            }
        }
    }
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(
        stack
            .scalar_i64("SELECT count(*) FROM label.requests WHERE status = 'New'")
            .await,
        100,
        "nothing moved while the broker was down"
    );

    // Stay down until the relay has seen deliveries fail (the delivery timeout is 10 s), so
    // the rows wait with counted attempts and a backoff, as in a real outage.
    platform::testkit::eventually(
        "the relay to count failed deliveries",
        Duration::from_secs(60),
        || async {
            let failed = stack
                .scalar_i64(
                    "SELECT count(*) FROM label.outbox WHERE sent_at IS NULL AND attempts > 0",
                )
                .await;
            (failed > 0).then_some(())
        },
    )
    .await;
    stack.broker.resume();
    platform::testkit::eventually(
        "all 100 requests on approval",
        Duration::from_secs(120),
        || async {
            let on_approval = stack
                .scalar_i64(&format!(
                    "SELECT count(*) FROM label.requests WHERE status = 'On approval' AND manager_id = {manager_id}"
                ))
                .await;
            (on_approval == 100).then_some(())
        },
    )
    .await;
    assert_eq!(
        stack
            .scalar_i64("SELECT count(*) FROM label.requests")
            .await,
        100,
        "no duplicate request"
    );
    assert_eq!(
        stack
            .scalar_i64("SELECT count(DISTINCT applicant_id) FROM label.requests")
            .await,
        100
    );
    let assigned = service
        .metric(
            "label_deferred_steps_total",
            &["step=\"assign_manager\"", "outcome=\"assigned\""],
        )
        .await;
    assert_eq!(assigned, 100.0, "each request assigned exactly once");
}
