//! Infrastructure shared by both services: configuration, telemetry, shutdown, PostgreSQL,
//! Kafka, the transactional outbox and HTTP plumbing.
//!
//! This crate never knows a domain type and never depends on a service. Each module states
//! what it is for and what it must not do.

pub mod config;
pub mod db;
pub mod http;
pub mod kafka;
pub mod outbox;
pub mod service;
pub mod shutdown;
pub mod telemetry;

#[cfg(feature = "testkit")]
pub mod testkit;
