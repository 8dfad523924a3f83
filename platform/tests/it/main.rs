//! The platform crate's integration tests, against real servers: the machine's PostgreSQL
//! (`DATABASE_URL`, a fresh database per test through `#[sqlx::test]`) and a private
//! Kafka-protocol broker per test (`platform::testkit::TestBroker`).
//!
//! Some modules install process-wide globals (the tracing subscriber, the metrics
//! recorder); nextest runs every test in a process of its own, which keeps them apart.

mod config;
mod db;
mod http;
mod kafka;
mod outbox;
mod service;
mod shutdown;
mod telemetry;
