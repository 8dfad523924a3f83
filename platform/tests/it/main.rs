//! The platform crate's integration tests, against real servers: the machine's PostgreSQL
//! (`DATABASE_URL`, a fresh database per test through `#[sqlx::test]`) and a private
//! Kafka-protocol broker per test (`platform::testkit::TestBroker`).

mod db;
mod kafka;
mod outbox;
