//! Adapters: HTTP and Kafka in; PostgreSQL (with the outbox) and argon2 out. They translate
//! and hold no business rule.

pub mod http;
pub mod kafka;
pub mod passwords;
pub mod postgres;
pub mod web;
