//! Database outage: the service's role loses its right to connect for 20 seconds during
//! ingest. `/readyz` turns 503 meanwhile, cache hits keep answering 200, misses answer 503,
//! and afterwards nothing is lost and ingest goes on by itself.

use std::time::Duration;

use chrono::Utc;
use orders_tools::generator::Generator;
use platform::testkit::{eventually, unique};
use sqlx::PgPool;

use crate::harness::{ServiceProcess, Stack, with_database};

async fn admin(stack: &Stack) -> PgPool {
    stack.pool().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_delays_ingest_and_loses_nothing() {
    let stack = Stack::new().await;
    let role = unique("orders_svc").replace('-', "_");
    let db = stack.database.clone();
    let pool = admin(&stack).await;
    for statement in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("REVOKE CONNECT ON DATABASE {db} FROM PUBLIC"),
        format!("GRANT CONNECT, CREATE ON DATABASE {db} TO {role}"),
    ] {
        sqlx::query(&statement)
            .execute(&pool)
            .await
            .expect(&statement);
    }
    let service_url = with_database(
        &stack
            .database_url
            .replacen("postgres@", &format!("{role}@"), 1),
        &db,
    );
    let service = ServiceProcess::spawn_with_url(&stack, &service_url, &[]);
    service.wait_ready().await;

    let mut generator = Generator::new(7, Utc::now());
    let before: Vec<_> = (0..50).map(|_| generator.order()).collect();
    for order in &before {
        stack
            .publish(Some(&order.order_uid), &order.canonical_json())
            .await;
    }
    let first = before[0].order_uid.clone();
    service
        .wait_status(&format!("/order/{first}"), 200, Duration::from_secs(30))
        .await;
    eventually("the first 50 stored", Duration::from_secs(30), || async {
        (stack.stored_count().await == 50).then_some(())
    })
    .await;

    // The outage: no new connections, existing ones cut.
    sqlx::query(&format!("REVOKE CONNECT ON DATABASE {db} FROM {role}"))
        .execute(&pool)
        .await
        .expect("revoke");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(&role)
        .execute(&pool)
        .await
        .expect("terminate");
    let outage_started = tokio::time::Instant::now();
    let during: Vec<_> = (0..50).map(|_| generator.order()).collect();
    for order in &during {
        stack
            .publish(Some(&order.order_uid), &order.canonical_json())
            .await;
    }
    service
        .wait_status("/readyz", 503, Duration::from_secs(15))
        .await;
    let hit = service.get(&format!("/order/{first}")).await;
    assert_eq!(hit.status, 200, "cache hits keep answering");
    assert_eq!(hit.header("x-cache"), Some("hit"));
    let miss = service
        .get(&format!("/order/{}", during[0].order_uid))
        .await;
    assert_eq!(
        miss.status, 503,
        "a miss cannot be answered without the database"
    );
    assert_eq!(miss.json()["code"], "unavailable");
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(outage_started.elapsed())).await;
    assert_eq!(
        service.get("/readyz").await.status,
        503,
        "still not ready at the end of the outage"
    );
    assert_eq!(
        stack.stored_count().await,
        50,
        "nothing stored while the database was away"
    );

    sqlx::query(&format!("GRANT CONNECT ON DATABASE {db} TO {role}"))
        .execute(&pool)
        .await
        .expect("grant");
    service
        .wait_status("/readyz", 200, Duration::from_secs(60))
        .await;
    eventually(
        "every order stored after the outage",
        Duration::from_secs(60),
        || async { (stack.stored_count().await == 100).then_some(()) },
    )
    .await;
    for order in during.iter().take(5) {
        service
            .wait_status(
                &format!("/order/{}", order.order_uid),
                200,
                Duration::from_secs(10),
            )
            .await;
    }
    drop(service);
    pool.close().await;
    // The role outlives the database otherwise; drop it once the database is gone.
    drop(stack);
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
        let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
            .execute(&admin)
            .await;
    }
}
