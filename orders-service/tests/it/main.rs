//! The orders-service's integration tests, against the real PostgreSQL, a private
//! Kafka-protocol broker per test, and the real service binary.

mod api;
mod bad_input;
mod browser;
mod chaos;
mod dead_letters;
/// The process-level stack, from the crate's test kit.
mod harness {
    pub use orders_service::testkit::*;
}
mod outage;
mod restart;
