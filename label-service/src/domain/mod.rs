//! The label's domain: requests and their state machine, the evaluation of publish
//! requests. Plain data and pure functions: no I/O, no sqlx, axum or rdkafka.

pub mod evaluation;
pub mod request;
