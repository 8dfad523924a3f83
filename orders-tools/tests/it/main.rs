//! orders-tools' integration tests: orders-producer and orders-dlq against a private broker,
//! PostgreSQL and the real orders-service binary (through the orders-service's test kit).

mod dlq;
mod producer;

/// The orders-service's process-level stack.
mod harness {
    pub use orders_service::testkit::*;
}
