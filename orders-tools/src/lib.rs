//! The orders-service's tools, out of the server: the order generator (valid orders and
//! each kind of bad one, deterministic from a seed) that `orders-producer` publishes, and the
//! dead-letter tool behind `orders-dlq`. They use the service's domain and settings; the
//! service does not use them.

pub mod dlq;
pub mod generator;
