//! The orders-service's integration tests, against the real PostgreSQL, a private
//! Kafka-protocol broker per test, and the real service binary.

mod api;
mod bad_input;
mod browser;
mod chaos;
mod dead_letters;
mod dlq_tool;
mod harness;
mod outage;
mod producer;
mod restart;
