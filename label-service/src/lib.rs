//! label-service: a music label's request system. Non-members ask to join, artists ask to
//! publish releases, managers accept or decline what deferred actions (carried by Kafka)
//! assigned and evaluated for them, and an admin appoints managers.
//!
//! Layout: `settings` (typed configuration). The domain, use cases and adapters arrive with
//! the service's own issue; this crate must not reach into orders-service.

pub mod domain;
pub mod settings;
