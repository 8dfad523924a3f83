//! Reading orders: one by id (cache first, then the store with concurrent misses
//! coalesced and unknown ids remembered briefly), and the most recent ones.
//!
//! The hit path allocates nothing: it hands back the cached bytes.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::ports::{OrderCache, OrderJson, OrderStore, StoreError};
use crate::domain::OrderSummary;
use crate::domain::validation::valid_order_uid;

/// Where an answer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// From the cache.
    Hit(OrderJson),
    /// From the database (and now cached).
    Miss(OrderJson),
}

/// Why an order could not be answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GetOrderError {
    /// The id cannot be an order id.
    #[error("{0:?} is not an order id: 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")]
    BadId(String),
    /// No order has this id.
    #[error("no order with id {0:?}")]
    NotFound(String),
    /// The cache missed and the database cannot answer now.
    #[error("the order store is unavailable")]
    Unavailable,
}

/// A page of recent orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentPage {
    pub orders: Vec<OrderSummary>,
    /// Where the next page starts, when there may be one.
    pub next: Option<(DateTime<Utc>, String)>,
}

/// The query use cases.
#[derive(Debug)]
pub struct Queries<S, C> {
    store: Arc<S>,
    cache: Arc<C>,
}

impl<S, C> Clone for Queries<S, C> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            cache: Arc::clone(&self.cache),
        }
    }
}

impl<S: OrderStore, C: OrderCache> Queries<S, C> {
    /// The use cases over a store and a cache.
    pub fn new(store: Arc<S>, cache: Arc<C>) -> Self {
        Self { store, cache }
    }

    /// One order by id.
    pub async fn get_order(&self, order_uid: &str) -> Result<Lookup, GetOrderError> {
        if let Some(order) = self.cache.get(order_uid).await {
            return Ok(Lookup::Hit(order));
        }
        if !valid_order_uid(order_uid) {
            return Err(GetOrderError::BadId(order_uid.to_owned()));
        }
        if self.cache.is_known_missing(order_uid).await {
            return Err(GetOrderError::NotFound(order_uid.to_owned()));
        }
        let store = Arc::clone(&self.store);
        let uid = order_uid.to_owned();
        let load = Box::pin(async move { store.find(&uid).await });
        match self.cache.get_or_load(order_uid.to_owned(), load).await {
            Ok(Some(order)) => Ok(Lookup::Miss(order)),
            Ok(None) => {
                self.cache.remember_missing(order_uid.to_owned()).await;
                Err(GetOrderError::NotFound(order_uid.to_owned()))
            }
            Err(err) => {
                tracing::warn!(error = %err, "order lookup failed");
                Err(GetOrderError::Unavailable)
            }
        }
    }

    /// Up to `limit` (1..=100) orders, newest first, before the cursor when given.
    pub async fn recent(
        &self,
        limit: u32,
        before: Option<(DateTime<Utc>, String)>,
    ) -> Result<RecentPage, StoreError> {
        let limit = limit.clamp(1, 100);
        let orders = self.store.recent(limit, before).await?;
        let next = (orders.len() == limit as usize)
            .then(|| orders.last().map(|o| (o.date_created, o.order_uid.clone())))
            .flatten();
        Ok(RecentPage { orders, next })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::app::ports::{MockOrderCache, MockOrderStore};

    fn order_json() -> OrderJson {
        OrderJson::new(Bytes::from_static(b"{\"order_uid\":\"a\"}"), &[7; 32])
    }

    fn queries(
        store: MockOrderStore,
        cache: MockOrderCache,
    ) -> Queries<MockOrderStore, MockOrderCache> {
        Queries::new(Arc::new(store), Arc::new(cache))
    }

    #[tokio::test]
    async fn a_hit_never_touches_the_store() {
        let mut store = MockOrderStore::new();
        store.expect_find().never();
        let mut cache = MockOrderCache::new();
        cache
            .expect_get()
            .returning(|_| Box::pin(async { Some(order_json()) }));
        assert_eq!(
            queries(store, cache).get_order("a").await,
            Ok(Lookup::Hit(order_json()))
        );
    }

    #[tokio::test]
    async fn a_miss_loads_through_the_cache_and_reports_the_source() {
        let mut store = MockOrderStore::new();
        store
            .expect_find()
            .withf(|uid| uid == "a")
            .times(1)
            .returning(|_| Box::pin(async { Ok(Some(order_json())) }));
        let mut cache = MockOrderCache::new();
        cache.expect_get().returning(|_| Box::pin(async { None }));
        cache
            .expect_is_known_missing()
            .returning(|_| Box::pin(async { false }));
        cache
            .expect_get_or_load()
            .times(1)
            .returning(|_, load| Box::pin(load));
        assert_eq!(
            queries(store, cache).get_order("a").await,
            Ok(Lookup::Miss(order_json()))
        );
    }

    #[tokio::test]
    async fn an_unknown_id_is_remembered() {
        let mut store = MockOrderStore::new();
        store
            .expect_find()
            .times(1)
            .returning(|_| Box::pin(async { Ok(None) }));
        let mut cache = MockOrderCache::new();
        cache.expect_get().returning(|_| Box::pin(async { None }));
        cache
            .expect_is_known_missing()
            .returning(|_| Box::pin(async { false }));
        cache
            .expect_get_or_load()
            .returning(|_, load| Box::pin(load));
        cache
            .expect_remember_missing()
            .withf(|uid| uid == "nope")
            .times(1)
            .returning(|_| Box::pin(async {}));
        assert_eq!(
            queries(store, cache).get_order("nope").await,
            Err(GetOrderError::NotFound("nope".into()))
        );
    }

    #[tokio::test]
    async fn a_known_missing_id_does_not_reach_the_store() {
        let mut store = MockOrderStore::new();
        store.expect_find().never();
        let mut cache = MockOrderCache::new();
        cache.expect_get().returning(|_| Box::pin(async { None }));
        cache
            .expect_is_known_missing()
            .returning(|_| Box::pin(async { true }));
        assert_eq!(
            queries(store, cache).get_order("gone").await,
            Err(GetOrderError::NotFound("gone".into()))
        );
    }

    #[tokio::test]
    async fn a_malformed_id_is_refused_before_any_lookup_of_the_store() {
        let mut store = MockOrderStore::new();
        store.expect_find().never();
        let mut cache = MockOrderCache::new();
        cache.expect_get().returning(|_| Box::pin(async { None }));
        assert_eq!(
            queries(store, cache).get_order("bad id!").await,
            Err(GetOrderError::BadId("bad id!".into()))
        );
    }

    #[tokio::test]
    async fn an_unavailable_store_on_a_miss_is_unavailable() {
        let mut store = MockOrderStore::new();
        store
            .expect_find()
            .returning(|_| Box::pin(async { Err(StoreError::Unavailable("down".into())) }));
        let mut cache = MockOrderCache::new();
        cache.expect_get().returning(|_| Box::pin(async { None }));
        cache
            .expect_is_known_missing()
            .returning(|_| Box::pin(async { false }));
        cache
            .expect_get_or_load()
            .returning(|_, load| Box::pin(load));
        assert_eq!(
            queries(store, cache).get_order("a").await,
            Err(GetOrderError::Unavailable)
        );
    }
}
