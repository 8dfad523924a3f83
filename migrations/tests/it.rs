//! Migrations against the real PostgreSQL: both schemas apply, twice without harm, and keep
//! their bookkeeping apart.

use migrations::Schema;
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn both_schemas_apply_idempotently_with_separate_bookkeeping(pool: PgPool) {
    for _ in 0..2 {
        migrations::apply(&pool, Schema::Orders)
            .await
            .expect("orders");
        migrations::apply(&pool, Schema::Label)
            .await
            .expect("label");
    }
    for (schema, migrator) in [
        ("orders", &migrations::ORDERS),
        ("label", &migrations::LABEL),
    ] {
        let applied: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {schema}._sqlx_migrations WHERE success"
        ))
        .fetch_one(&pool)
        .await
        .expect("bookkeeping table in the service's schema");
        assert_eq!(applied, migrator.iter().count() as i64, "{schema}");
    }
    let public_bookkeeping: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations')::text")
            .fetch_one(&pool)
            .await
            .expect("lookup");
    assert_eq!(public_bookkeeping, None, "nothing lands in public");
    let outbox: Option<String> = sqlx::query_scalar("SELECT to_regclass('label.outbox')::text")
        .fetch_one(&pool)
        .await
        .expect("lookup");
    assert_eq!(outbox.as_deref(), Some("label.outbox"));
}

#[tokio::test]
async fn an_unreachable_database_is_a_transient_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .expect("lazy pool");
    let err = migrations::apply(&pool, Schema::Orders)
        .await
        .expect_err("nothing listens there");
    assert!(err.is_transient(), "{err}");
}
