//! The ports: what the use cases need from storage and from the cache, by capability.
//! Implementations live in `adapters`; tests mock them with mockall.

use std::future::Future;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};

use crate::domain::{Order, OrderSummary};

/// An order ready to send: its canonical JSON and its entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderJson {
    /// The canonical JSON, as served.
    pub json: Bytes,
    /// The quoted strong entity tag derived from the payload's SHA-256.
    pub etag: Bytes,
}

impl OrderJson {
    /// Builds the value from the canonical JSON and its SHA-256.
    pub fn new(json: Bytes, sha256: &[u8]) -> Self {
        let hex: String = sha256.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Self {
            json,
            etag: Bytes::from(format!("\"{hex}\"")),
        }
    }
}

/// A valid order about to be stored, with what the store keeps besides its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub order: Order,
    /// The message value as received (unknown fields included).
    pub raw: Bytes,
    /// The canonical JSON the API serves.
    pub canonical: Bytes,
    /// SHA-256 of `canonical`: equal hashes mean an identical order.
    pub sha256: [u8; 32],
}

impl NewOrder {
    /// Prepares a validated order for storage.
    pub fn new(order: Order, raw: Bytes) -> Self {
        let canonical = Bytes::from(order.canonical_json());
        let sha256 = Sha256::digest(&canonical).into();
        Self {
            order,
            raw,
            canonical,
            sha256,
        }
    }

    /// The ready-to-send form.
    pub fn to_json(&self) -> OrderJson {
        OrderJson::new(self.canonical.clone(), &self.sha256)
    }
}

/// What storing one order did. Orders are immutable: the first write wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// New order, written.
    Stored,
    /// The same order was there already; nothing written.
    Duplicate,
    /// Another payload with this id was there already; nothing written.
    Conflict,
}

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Down, unreachable, too slow: the same call may succeed later.
    #[error("order store unavailable: {0}")]
    Unavailable(String),
    /// The database refused the data itself (a constraint, an unstorable value): trying again
    /// will not help.
    #[error("order store refused the data: {0}")]
    Rejected(String),
}

/// Where orders are kept for good.
#[cfg_attr(test, mockall::automock)]
pub trait OrderStore: Send + Sync + 'static {
    /// Stores new orders in one transaction and says, per order and in order, what happened.
    fn store_batch(
        &self,
        orders: &[NewOrder],
    ) -> impl Future<Output = Result<Vec<StoreOutcome>, StoreError>> + Send;

    /// The order with this id, ready to send.
    fn find(
        &self,
        order_uid: &str,
    ) -> impl Future<Output = Result<Option<OrderJson>, StoreError>> + Send;

    /// The most recent orders, newest first, strictly before `before` (date, uid) when given.
    fn recent(
        &self,
        limit: u32,
        before: Option<(chrono::DateTime<chrono::Utc>, String)>,
    ) -> impl Future<Output = Result<Vec<OrderSummary>, StoreError>> + Send;

    /// The most recent orders, newest first, as one stream: the cache's warm-up.
    fn stream_recent(
        &self,
        limit: u64,
    ) -> BoxStream<'static, Result<(String, OrderJson), StoreError>>;
}

/// The in-memory cache of ready-to-send orders, with a short-lived memory of unknown ids.
#[cfg_attr(test, mockall::automock)]
pub trait OrderCache: Send + Sync + 'static {
    /// A cached order.
    fn get(&self, order_uid: &str) -> impl Future<Output = Option<OrderJson>> + Send;

    /// Caches an order and forgets that its id was unknown.
    fn insert(&self, order_uid: String, order: OrderJson) -> impl Future<Output = ()> + Send;

    /// Whether the id was looked up recently and not found.
    fn is_known_missing(&self, order_uid: &str) -> impl Future<Output = bool> + Send;

    /// Remembers for a short while that the id is unknown.
    fn remember_missing(&self, order_uid: String) -> impl Future<Output = ()> + Send;

    /// Runs `load` for a miss, once for all concurrent callers asking for the same id, and
    /// caches what it found.
    fn get_or_load(
        &self,
        order_uid: String,
        load: BoxFuture<'static, Result<Option<OrderJson>, StoreError>>,
    ) -> impl Future<Output = Result<Option<OrderJson>, StoreError>> + Send;

    /// Bytes still free in the cache's budget, as the cache counts them.
    fn free_bytes(&self) -> u64;

    /// What one cached order costs in the budget.
    fn weight_of(&self, order_uid: &str, order: &OrderJson) -> u64;
}
