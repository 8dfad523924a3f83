//! Adapters: HTTP and Kafka in; PostgreSQL and the moka cache out. They translate between
//! the outside world and the use cases, and hold no business rule.

pub mod cache;
pub mod http;
pub mod kafka;
pub mod postgres;
