//! Transaction manager and error classification against the real PostgreSQL.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use platform::db::{DbError, DbErrorKind, Isolation, RetryPolicy, TxManager, classify};
use sqlx::{PgConnection, PgPool};

async fn setup(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE TABLE parent (id INT PRIMARY KEY);
         CREATE TABLE item (
             id INT CONSTRAINT item_pkey PRIMARY KEY,
             parent_id INT CONSTRAINT item_parent_fk REFERENCES parent (id),
             amount INT NOT NULL CONSTRAINT item_amount_positive CHECK (amount > 0)
         );
         INSERT INTO parent VALUES (1);",
    )
    .execute(pool)
    .await
    .expect("fixture tables");
}

async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM item")
        .fetch_one(pool)
        .await
        .expect("count")
}

async fn insert(conn: &mut PgConnection, id: i32) -> Result<(), DbError> {
    sqlx::query("INSERT INTO item (id, parent_id, amount) VALUES ($1, 1, 1)")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[sqlx::test]
async fn commit_makes_the_work_visible(pool: PgPool) {
    setup(&pool).await;
    let tx = TxManager::new(pool.clone());
    let value = tx
        .transact(async |conn: &mut PgConnection| {
            insert(conn, 1).await?;
            insert(conn, 2).await?;
            Ok::<_, DbError>(42)
        })
        .await
        .expect("commit");
    assert_eq!(value, 42);
    assert_eq!(count(&pool).await, 2);
}

#[derive(Debug, thiserror::Error)]
enum BusinessError {
    #[error("refused")]
    Refused,
    #[error(transparent)]
    Db(#[from] DbError),
}

#[sqlx::test]
async fn an_error_rolls_everything_back(pool: PgPool) {
    setup(&pool).await;
    let tx = TxManager::new(pool.clone());
    let result: Result<(), BusinessError> = tx
        .transact(async |conn: &mut PgConnection| {
            insert(conn, 1).await?;
            Err(BusinessError::Refused)
        })
        .await;
    assert!(matches!(result, Err(BusinessError::Refused)));
    assert_eq!(count(&pool).await, 0);
}

#[sqlx::test]
async fn dropping_the_transaction_rolls_it_back(pool: PgPool) {
    setup(&pool).await;
    let tx = TxManager::new(pool.clone());
    // The future is dropped while the transaction is open, after its insert.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        tx.transact(async |conn: &mut PgConnection| {
            insert(conn, 1).await?;
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, DbError>(())
        }),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the transaction should have been cut off"
    );

    // The unit-of-work handle rolls back when dropped without commit.
    let mut open = tx.begin().await.expect("begin");
    insert(open.conn(), 2).await.expect("insert");
    drop(open);

    // Give sqlx a moment to run the queued rollbacks, then nothing must be there.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(&pool).await, 0);
}

#[sqlx::test]
async fn a_serialization_failure_is_retried_until_it_succeeds(pool: PgPool) {
    setup(&pool).await;
    let tx = TxManager::new(pool.clone());
    let attempts = AtomicU32::new(0);
    let interferer = pool.clone();
    let total = tx
        .transact_retrying(
            Isolation::Serializable,
            RetryPolicy::default(),
            async |conn: &mut PgConnection| {
                let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                let sum: Option<i64> = sqlx::query_scalar("SELECT sum(amount) FROM item")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(DbError::from)?;
                if attempt == 1 {
                    // Write skew: another serializable transaction reads the same rows and
                    // commits an insert between our read and our write.
                    let other = TxManager::new(interferer.clone());
                    other
                        .transact_with(Isolation::Serializable, async |c: &mut PgConnection| {
                            let _: Option<i64> = sqlx::query_scalar("SELECT sum(amount) FROM item")
                                .fetch_one(&mut *c)
                                .await
                                .map_err(DbError::from)?;
                            insert(c, 100).await
                        })
                        .await
                        .expect("the interfering transaction commits");
                }
                insert(conn, attempt as i32).await?;
                Ok::<_, DbError>(sum.unwrap_or(0))
            },
        )
        .await
        .expect("succeeds after a retry");
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "exactly one retry");
    assert_eq!(total, 1, "the retry saw the interfering row");
    let ids: Vec<i32> = sqlx::query_scalar("SELECT id FROM item ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("ids");
    assert_eq!(ids, vec![2, 100], "the failed attempt left nothing behind");
}

#[sqlx::test]
async fn a_serialization_failure_without_retry_is_classified(pool: PgPool) {
    setup(&pool).await;
    let tx = TxManager::new(pool.clone());
    let result = tx
        .transact_retrying(
            Isolation::Serializable,
            RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            },
            async |conn: &mut PgConnection| {
                let _: Option<i64> = sqlx::query_scalar("SELECT sum(amount) FROM item")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(DbError::from)?;
                TxManager::new(pool.clone())
                    .transact_with(Isolation::Serializable, async |c: &mut PgConnection| {
                        let _: Option<i64> = sqlx::query_scalar("SELECT sum(amount) FROM item")
                            .fetch_one(&mut *c)
                            .await
                            .map_err(DbError::from)?;
                        insert(c, 100).await
                    })
                    .await?;
                insert(conn, 1).await
            },
        )
        .await;
    let err = result.expect_err("no retries allowed");
    assert_eq!(err.kind(), DbErrorKind::SerializationFailure);
    assert!(err.is_transient());
    assert!(err.is_retryable_conflict());
}

#[sqlx::test]
async fn constraint_violations_are_classified_with_their_names(pool: PgPool) {
    setup(&pool).await;
    let mut conn = pool.acquire().await.expect("connection");
    insert(&mut conn, 1).await.expect("first insert");

    let unique = insert(&mut conn, 1).await.expect_err("duplicate id");
    assert_eq!(unique.kind(), DbErrorKind::UniqueViolation);
    assert_eq!(unique.constraint(), Some("item_pkey"));
    assert!(!unique.is_transient());

    let foreign = sqlx::query("INSERT INTO item (id, parent_id, amount) VALUES (2, 99, 1)")
        .execute(&mut *conn)
        .await
        .map_err(classify)
        .expect_err("unknown parent");
    assert_eq!(foreign.kind(), DbErrorKind::ForeignKeyViolation);
    assert_eq!(foreign.constraint(), Some("item_parent_fk"));

    let check = sqlx::query("INSERT INTO item (id, parent_id, amount) VALUES (3, 1, -5)")
        .execute(&mut *conn)
        .await
        .map_err(classify)
        .expect_err("negative amount");
    assert_eq!(check.kind(), DbErrorKind::CheckViolation);
    assert_eq!(check.constraint(), Some("item_amount_positive"));

    let bad_sql = sqlx::query("SELECT * FROM no_such_table")
        .execute(&mut *conn)
        .await
        .map_err(classify)
        .expect_err("missing table");
    assert_eq!(bad_sql.kind(), DbErrorKind::Other);
    assert!(!bad_sql.is_transient());
}

#[sqlx::test]
async fn a_lost_connection_is_transient(pool: PgPool) {
    let mut victim = pool.acquire().await.expect("connection");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *victim)
        .await
        .expect("pid");
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&pool)
        .await
        .expect("terminate");
    assert!(terminated);
    let err = sqlx::query("SELECT 1")
        .execute(&mut *victim)
        .await
        .map_err(classify)
        .expect_err("the connection is gone");
    assert_eq!(err.kind(), DbErrorKind::Unavailable, "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let settings = platform::db::DatabaseSettings {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres").into(),
        acquire_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let pool = settings.lazy_pool("test", "public").expect("pool");
    let err = sqlx::query("SELECT 1")
        .execute(&pool)
        .await
        .map_err(classify)
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), DbErrorKind::Unavailable, "{err:?}");
}

#[sqlx::test]
async fn the_pool_applies_schema_and_statement_timeout(pool: PgPool) {
    sqlx::raw_sql("CREATE SCHEMA svc; CREATE TABLE svc.thing (id INT)")
        .execute(&pool)
        .await
        .expect("schema");
    let options = pool.connect_options();
    let url = format!(
        "postgres://postgres@{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    );
    let settings = platform::db::DatabaseSettings {
        url: url.into(),
        statement_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let svc_pool = settings.lazy_pool("test", "svc").expect("pool");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM thing")
        .fetch_one(&svc_pool)
        .await
        .expect("unqualified name resolves in the service schema");
    assert_eq!(rows, 0);
    let err = sqlx::query("SELECT pg_sleep(2)")
        .execute(&svc_pool)
        .await
        .map_err(classify)
        .expect_err("statement timeout");
    assert_eq!(err.kind(), DbErrorKind::Timeout, "{err:?}");
}
