//! `MokaOrderCache`: ready-to-send orders in memory, bounded by bytes, no TTL (orders are
//! immutable); a small negative cache of unknown ids with a short TTL; coalesced loading of
//! misses; and the warm-up that refills the cache from the database after a start.
//!
//! It never decides what an order is: it stores bytes under ids.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use moka::future::Cache;

use crate::app::ports::{OrderCache, OrderJson, OrderStore, StoreError};

/// Bytes moka and the key's allocation cost per entry beyond the key and value bytes; an
/// estimate that keeps the byte budget honest for small orders.
const ENTRY_OVERHEAD: u64 = 160;

/// The moka-backed cache.
#[derive(Clone)]
pub struct MokaOrderCache {
    orders: Cache<String, OrderJson>,
    missing: Cache<String, ()>,
    max_bytes: u64,
}

impl std::fmt::Debug for MokaOrderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MokaOrderCache")
            .field("entries", &self.orders.entry_count())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

fn weight(order_uid: &str, order: &OrderJson) -> u64 {
    order_uid.len() as u64 + order.json.len() as u64 + order.etag.len() as u64 + ENTRY_OVERHEAD
}

impl MokaOrderCache {
    /// A cache of at most `max_bytes`, remembering unknown ids for `negative_ttl`.
    pub fn new(max_bytes: u64, negative_ttl: Duration) -> Self {
        let orders = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|uid: &String, order: &OrderJson| {
                u32::try_from(weight(uid, order)).unwrap_or(u32::MAX)
            })
            .build();
        let missing = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(negative_ttl)
            .build();
        Self {
            orders,
            missing,
            max_bytes,
        }
    }

    /// Entries and weighted bytes, as moka counts them now.
    pub async fn usage(&self) -> (u64, u64) {
        self.orders.run_pending_tasks().await;
        (self.orders.entry_count(), self.orders.weighted_size())
    }

    /// Exports entries and bytes as gauges every `period` until `stop`.
    pub async fn report_metrics(
        self,
        period: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        platform::shutdown::every(period, stop, || async {
            let (entries, bytes) = self.usage().await;
            metrics::gauge!("orders_cache_entries").set(entries as f64);
            metrics::gauge!("orders_cache_bytes").set(bytes as f64);
        })
        .await
    }
}

/// Why a coalesced load produced no order.
#[derive(Debug)]
enum LoadMiss {
    NotFound,
    Failed(StoreError),
}

impl OrderCache for MokaOrderCache {
    async fn get(&self, order_uid: &str) -> Option<OrderJson> {
        let found = self.orders.get(order_uid).await;
        if found.is_some() {
            metrics::counter!("orders_cache_hits_total").increment(1);
        } else {
            metrics::counter!("orders_cache_misses_total").increment(1);
        }
        found
    }

    async fn insert(&self, order_uid: String, order: OrderJson) {
        self.missing.invalidate(&order_uid).await;
        self.orders.insert(order_uid, order).await;
    }

    async fn is_known_missing(&self, order_uid: &str) -> bool {
        self.missing.contains_key(order_uid)
    }

    async fn remember_missing(&self, order_uid: String) {
        self.missing.insert(order_uid, ()).await;
    }

    async fn get_or_load(
        &self,
        order_uid: String,
        load: BoxFuture<'static, Result<Option<OrderJson>, StoreError>>,
    ) -> Result<Option<OrderJson>, StoreError> {
        let loaded = self
            .orders
            .try_get_with(order_uid, async move {
                match load.await {
                    Ok(Some(order)) => Ok(order),
                    Ok(None) => Err(LoadMiss::NotFound),
                    Err(err) => Err(LoadMiss::Failed(err)),
                }
            })
            .await;
        match loaded {
            Ok(order) => Ok(Some(order)),
            Err(miss) => match &*miss {
                LoadMiss::NotFound => Ok(None),
                LoadMiss::Failed(StoreError::Unavailable(m)) => {
                    Err(StoreError::Unavailable(m.clone()))
                }
                LoadMiss::Failed(StoreError::Rejected(m)) => Err(StoreError::Rejected(m.clone())),
            },
        }
    }

    fn free_bytes(&self) -> u64 {
        self.max_bytes.saturating_sub(self.orders.weighted_size())
    }

    fn weight_of(&self, order_uid: &str, order: &OrderJson) -> u64 {
        weight(order_uid, order)
    }
}

/// What the warm-up did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmUpReport {
    pub orders: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Loads the newest orders into the cache, one streaming query, until `limit` orders or the
/// cache's byte budget is reached.
pub async fn warm_up<S: OrderStore, C: OrderCache>(
    store: &S,
    cache: &Arc<C>,
    limit: u64,
    budget: u64,
) -> Result<WarmUpReport, StoreError> {
    let started = Instant::now();
    let mut rows = store.stream_recent(limit);
    let (mut orders, mut bytes) = (0_u64, 0_u64);
    while let Some(row) = rows.next().await {
        let (uid, order) = row?;
        let cost = cache.weight_of(&uid, &order);
        if bytes + cost > budget {
            break;
        }
        bytes += cost;
        orders += 1;
        cache.insert(uid, order).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    metrics::gauge!("orders_cache_warmup_seconds").set(seconds);
    metrics::gauge!("orders_cache_warmup_orders").set(orders as f64);
    tracing::info!(orders, bytes, seconds, "cache warm-up finished");
    Ok(WarmUpReport {
        orders,
        bytes,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn order(n: u8) -> OrderJson {
        OrderJson::new(Bytes::from(vec![b'x'; 100]), &[n; 32])
    }

    #[tokio::test]
    async fn concurrent_misses_for_one_id_load_once() {
        let cache = MokaOrderCache::new(1 << 20, Duration::from_secs(5));
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let loads = (0..20).map(|_| {
            let calls = Arc::clone(&calls);
            let cache = cache.clone();
            async move {
                let load = Box::pin(async move {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(Some(order(1)))
                });
                cache.get_or_load("a".into(), load).await
            }
        });
        let results = futures::future::join_all(loads).await;
        assert!(results.iter().all(|r| matches!(r, Ok(Some(_)))));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(cache.get("a").await.is_some(), "the loaded order is cached");
    }

    #[tokio::test]
    async fn not_found_is_not_cached_and_the_negative_cache_expires() {
        let cache = MokaOrderCache::new(1 << 20, Duration::from_millis(200));
        let found = cache
            .get_or_load("b".into(), Box::pin(async { Ok(None) }))
            .await
            .expect("no error");
        assert_eq!(found, None);
        assert!(cache.get("b").await.is_none());
        cache.remember_missing("b".into()).await;
        assert!(cache.is_known_missing("b").await);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !cache.is_known_missing("b").await,
            "forgotten after the TTL"
        );
    }

    #[tokio::test]
    async fn storing_an_order_forgets_that_it_was_missing() {
        let cache = MokaOrderCache::new(1 << 20, Duration::from_secs(60));
        cache.remember_missing("c".into()).await;
        cache.insert("c".into(), order(3)).await;
        assert!(!cache.is_known_missing("c").await);
        assert!(cache.get("c").await.is_some());
    }

    #[tokio::test]
    async fn the_byte_budget_bounds_the_cache() {
        let per_entry = weight("k0000", &order(0));
        let cache = MokaOrderCache::new(per_entry * 10, Duration::from_secs(5));
        for i in 0..100 {
            cache.insert(format!("k{i:04}"), order(0)).await;
        }
        let (entries, bytes) = cache.usage().await;
        assert!(entries <= 10, "{entries} entries");
        assert!(bytes <= per_entry * 10, "{bytes} bytes");
    }
}
