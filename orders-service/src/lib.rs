//! orders-service: consumes orders from Kafka, validates and stores them in PostgreSQL,
//! keeps them in an in-memory cache rebuilt from the database after a restart, and serves
//! them over HTTP and a small web page.
//!
//! Layout: `settings` (typed configuration). The domain, use cases and adapters arrive with
//! the service's own issue; this crate must not reach into label-service.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;
