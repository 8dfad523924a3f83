//! The orders domain: the order as the contract defines it, and the rules a message must
//! keep to become one. Plain data and pure functions: no I/O, no sqlx, axum or rdkafka
//! (the types derive utoipa's schema description, which is data, not I/O).

pub mod order;
pub mod validation;

pub use order::{Delivery, Item, Order, OrderSummary, Payment, Timestamp};
pub use validation::{Code, Rules, Validated, Violation, validate};
