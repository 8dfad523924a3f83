//! `PgOrderStore`: orders in PostgreSQL (schema `orders`). All of the service's SQL lives
//! here, as functions over a connection or the pool.
//!
//! A batch is one transaction of multi-row `UNNEST` inserts with `ON CONFLICT DO NOTHING`;
//! ids that were there already are then told apart by comparing payload hashes.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use platform::db::{DbError, TxManager};
use sqlx::{PgConnection, PgPool};

use crate::app::ports::{NewOrder, OrderJson, OrderStore, StoreError, StoreOutcome};
use crate::domain::OrderSummary;

/// The PostgreSQL order store.
#[derive(Debug, Clone)]
pub struct PgOrderStore {
    tx: TxManager,
}

impl PgOrderStore {
    /// A store over `pool` (its `search_path` starts with `orders`).
    pub fn new(pool: PgPool) -> Self {
        Self {
            tx: TxManager::new(pool),
        }
    }

    fn pool(&self) -> &PgPool {
        self.tx.pool()
    }
}

fn store_error(err: DbError) -> StoreError {
    if err.is_transient() {
        StoreError::Unavailable(err.to_string())
    } else {
        match err {
            DbError::UniqueViolation { .. }
            | DbError::ForeignKeyViolation { .. }
            | DbError::CheckViolation { .. } => StoreError::Rejected(err.to_string()),
            // Data PostgreSQL cannot represent (class 22, e.g. \u0000 in jsonb) is refused
            // for good; anything else unexpected is treated as unavailability so that
            // nothing is dropped because of a bug or a broken schema.
            DbError::Other(sqlx::Error::Database(ref db))
                if db.code().is_some_and(|c| c.starts_with("22")) =>
            {
                StoreError::Rejected(err.to_string())
            }
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl OrderStore for PgOrderStore {
    async fn store_batch(&self, orders: &[NewOrder]) -> Result<Vec<StoreOutcome>, StoreError> {
        self.tx
            .transact(async |conn: &mut PgConnection| insert_batch(conn, orders).await)
            .await
            .map_err(store_error)
    }

    async fn find(&self, order_uid: &str) -> Result<Option<OrderJson>, StoreError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT canonical_json, payload_sha256 FROM orders.orders WHERE order_uid = $1",
        )
        .bind(order_uid)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| store_error(e.into()))?;
        Ok(row.map(|(json, sha)| OrderJson::new(Bytes::from(json), &sha)))
    }

    async fn recent(
        &self,
        limit: u32,
        before: Option<(DateTime<Utc>, String)>,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        let (before_date, before_uid) = before.unzip();
        let rows: Vec<(String, DateTime<Utc>, String, i64, String, i64)> = sqlx::query_as(
            "SELECT o.order_uid, o.date_created, o.customer_id, p.amount, p.currency,
                    (SELECT count(*) FROM orders.items i WHERE i.order_uid = o.order_uid)
             FROM orders.orders o JOIN orders.payments p USING (order_uid)
             WHERE $2::timestamptz IS NULL OR (o.date_created, o.order_uid) < ($2, $3)
             ORDER BY o.date_created DESC, o.order_uid DESC
             LIMIT $1",
        )
        .bind(i64::from(limit))
        .bind(before_date)
        .bind(before_uid)
        .fetch_all(self.pool())
        .await
        .map_err(|e| store_error(e.into()))?;
        Ok(rows
            .into_iter()
            .map(
                |(order_uid, date_created, customer_id, amount, currency, item_count)| {
                    OrderSummary {
                        order_uid,
                        date_created,
                        customer_id,
                        amount,
                        currency,
                        item_count,
                    }
                },
            )
            .collect())
    }

    fn stream_recent(
        &self,
        limit: u64,
    ) -> BoxStream<'static, Result<(String, OrderJson), StoreError>> {
        let pool = self.pool().clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        async_stream(pool, limit)
    }
}

/// One streaming query over the newest orders, for the warm-up. A task reads the rows and
/// hands them over through a small bounded channel, so memory stays flat however many rows
/// there are, and the consumer's pace throttles the query.
fn async_stream(
    pool: PgPool,
    limit: i64,
) -> BoxStream<'static, Result<(String, OrderJson), StoreError>> {
    let (sender, rx) = tokio::sync::mpsc::channel(1024);
    let tx_err = sender.clone();
    tokio::spawn(async move {
        // One long read: the pool's statement timeout guards ordinary queries, but a warm-up
        // of a million orders may rightly take longer, so it is lifted for this transaction
        // only. Were it not, the warm-up would time out and start over forever.
        let mut tx = match pool.begin().await {
            Ok(tx) => tx,
            Err(err) => {
                let _ = tx_err.send(Err(store_error(err.into()))).await;
                return;
            }
        };
        if let Err(err) = sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await
        {
            let _ = tx_err.send(Err(store_error(err.into()))).await;
            return;
        }
        let mut rows = sqlx::query_as::<_, (String, Vec<u8>, Vec<u8>)>(
            "SELECT order_uid, canonical_json, payload_sha256 FROM orders.orders
             ORDER BY date_created DESC, order_uid DESC LIMIT $1",
        )
        .bind(limit)
        .fetch(&mut *tx);
        while let Some(row) = rows.next().await {
            let item = row
                .map(|(uid, json, sha)| (uid, OrderJson::new(Bytes::from(json), &sha)))
                .map_err(|e| store_error(e.into()));
            let failed = item.is_err();
            // The receiver went away: the warm-up stopped reading, so stop the query.
            if sender.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

async fn insert_batch(
    conn: &mut PgConnection,
    orders: &[NewOrder],
) -> Result<Vec<StoreOutcome>, DbError> {
    let n = orders.len();
    let mut uid = Vec::with_capacity(n);
    let mut track = Vec::with_capacity(n);
    let mut entry = Vec::with_capacity(n);
    let mut locale = Vec::with_capacity(n);
    let mut signature = Vec::with_capacity(n);
    let mut customer = Vec::with_capacity(n);
    let mut service = Vec::with_capacity(n);
    let mut shardkey = Vec::with_capacity(n);
    let mut sm_id = Vec::with_capacity(n);
    let mut date = Vec::with_capacity(n);
    let mut oof = Vec::with_capacity(n);
    let mut raw = Vec::with_capacity(n);
    let mut canonical = Vec::with_capacity(n);
    let mut sha = Vec::with_capacity(n);
    for new in orders {
        let o = &new.order;
        uid.push(o.order_uid.as_str());
        track.push(o.track_number.as_str());
        entry.push(o.entry.as_str());
        locale.push(o.locale.as_str());
        signature.push(o.internal_signature.as_str());
        customer.push(o.customer_id.as_str());
        service.push(o.delivery_service.as_str());
        shardkey.push(o.shardkey.as_str());
        sm_id.push(o.sm_id);
        date.push(o.date_created.instant());
        oof.push(o.oof_shard.as_str());
        // Validation parsed these bytes as UTF-8 JSON, so the lossy path never changes them.
        raw.push(String::from_utf8_lossy(&new.raw).into_owned());
        canonical.push(new.canonical.as_ref());
        sha.push(&new.sha256[..]);
    }
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO orders.orders (order_uid, track_number, entry, locale, internal_signature,
             customer_id, delivery_service, shardkey, sm_id, date_created, oof_shard,
             raw_payload, canonical_json, payload_sha256)
         SELECT u, t, e, l, s, c, d, k, m, dt, oo, r::jsonb, cj, h
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::int8[], $10::timestamptz[], $11::text[],
                     $12::text[], $13::bytea[], $14::bytea[])
              AS x(u, t, e, l, s, c, d, k, m, dt, oo, r, cj, h)
         ON CONFLICT (order_uid) DO NOTHING
         RETURNING order_uid",
    )
    .bind(&uid)
    .bind(&track)
    .bind(&entry)
    .bind(&locale)
    .bind(&signature)
    .bind(&customer)
    .bind(&service)
    .bind(&shardkey)
    .bind(&sm_id)
    .bind(&date)
    .bind(&oof)
    .bind(&raw)
    .bind(&canonical)
    .bind(&sha)
    .fetch_all(&mut *conn)
    .await?;
    let inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
    let fresh: Vec<&NewOrder> = orders
        .iter()
        .filter(|o| inserted.contains(&o.order.order_uid))
        .collect();
    insert_children(conn, &fresh).await?;

    let existing: Vec<&str> = orders
        .iter()
        .filter(|o| !inserted.contains(&o.order.order_uid))
        .map(|o| o.order.order_uid.as_str())
        .collect();
    let stored_hashes: HashMap<String, Vec<u8>> = if existing.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, Vec<u8>)>(
            "SELECT order_uid, payload_sha256 FROM orders.orders WHERE order_uid = ANY($1)",
        )
        .bind(&existing)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect()
    };
    Ok(orders
        .iter()
        .map(|o| {
            if inserted.contains(&o.order.order_uid) {
                StoreOutcome::Stored
            } else if stored_hashes.get(&o.order.order_uid).map(Vec::as_slice)
                == Some(&o.sha256[..])
            {
                StoreOutcome::Duplicate
            } else {
                StoreOutcome::Conflict
            }
        })
        .collect())
}

async fn insert_children(conn: &mut PgConnection, orders: &[&NewOrder]) -> Result<(), DbError> {
    if orders.is_empty() {
        return Ok(());
    }
    let d: Vec<_> = orders
        .iter()
        .map(|o| (&o.order.order_uid, &o.order.delivery))
        .collect();
    sqlx::query(
        "INSERT INTO orders.deliveries (order_uid, name, phone, zip, city, address, region, email)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[])",
    )
    .bind(d.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>())
    .bind(d.iter().map(|(_, x)| x.name.as_str()).collect::<Vec<_>>())
    .bind(d.iter().map(|(_, x)| x.phone.as_str()).collect::<Vec<_>>())
    .bind(d.iter().map(|(_, x)| x.zip.as_str()).collect::<Vec<_>>())
    .bind(d.iter().map(|(_, x)| x.city.as_str()).collect::<Vec<_>>())
    .bind(
        d.iter()
            .map(|(_, x)| x.address.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(d.iter().map(|(_, x)| x.region.as_str()).collect::<Vec<_>>())
    .bind(d.iter().map(|(_, x)| x.email.as_str()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;

    let p: Vec<_> = orders
        .iter()
        .map(|o| (&o.order.order_uid, &o.order.payment))
        .collect();
    sqlx::query(
        "INSERT INTO orders.payments (order_uid, transaction, request_id, currency, provider,
             amount, payment_dt, bank, delivery_cost, goods_total, custom_fee)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::int8[], $7::int8[], $8::text[], $9::int8[], $10::int8[], $11::int8[])",
    )
    .bind(p.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.transaction.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.request_id.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.currency.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.provider.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.amount).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.payment_dt).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.bank.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.delivery_cost).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.goods_total).collect::<Vec<_>>())
    .bind(p.iter().map(|(_, x)| x.custom_fee).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;

    let items: Vec<(&str, i32, &crate::domain::Item)> = orders
        .iter()
        .flat_map(|o| {
            o.order.items.iter().enumerate().map(|(i, item)| {
                (
                    o.order.order_uid.as_str(),
                    i32::try_from(i).unwrap_or(i32::MAX),
                    item,
                )
            })
        })
        .collect();
    sqlx::query(
        "INSERT INTO orders.items (order_uid, position, chrt_id, track_number, price, rid, name,
             sale, size, total_price, nm_id, brand, status)
         SELECT * FROM UNNEST($1::text[], $2::int4[], $3::int8[], $4::text[], $5::int8[],
                              $6::text[], $7::text[], $8::int8[], $9::text[], $10::int8[],
                              $11::int8[], $12::text[], $13::int8[])",
    )
    .bind(items.iter().map(|(u, _, _)| *u).collect::<Vec<_>>())
    .bind(items.iter().map(|(_, p, _)| *p).collect::<Vec<_>>())
    .bind(items.iter().map(|(_, _, x)| x.chrt_id).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|(_, _, x)| x.track_number.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(items.iter().map(|(_, _, x)| x.price).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|(_, _, x)| x.rid.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|(_, _, x)| x.name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(items.iter().map(|(_, _, x)| x.sale).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|(_, _, x)| x.size.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|(_, _, x)| x.total_price)
            .collect::<Vec<_>>(),
    )
    .bind(items.iter().map(|(_, _, x)| x.nm_id).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|(_, _, x)| x.brand.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(items.iter().map(|(_, _, x)| x.status).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
