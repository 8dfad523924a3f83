//! The label's domain: entities, requests and their state machine, the evaluation of publish
//! requests, input validation. Plain data and pure functions: no I/O, no sqlx, axum or
//! rdkafka, no clock reads (the day is always handed in).

pub mod evaluation;
pub mod model;
pub mod request;
pub mod validation;

pub use model::*;
