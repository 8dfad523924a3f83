//! Use cases of the orders-service and the ports they need. Use cases never see a
//! connection, a transaction, a Kafka message or an HTTP type: adapters translate.

pub mod ingest;
pub mod ports;
pub mod query;

pub use ingest::{Ingest, IngestOutcome};
pub use ports::{NewOrder, OrderCache, OrderJson, OrderStore, StoreError, StoreOutcome};
pub use query::{GetOrderError, Lookup, Queries};
