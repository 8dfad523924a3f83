//! label-service: a music label's request system. Non-members ask to join, artists ask to
//! publish releases, managers accept or decline what deferred actions (carried by Kafka)
//! assigned and evaluated for them, and an admin appoints managers.
//!
//! Layout: `domain` (plain data, rules, no I/O), `app` (use cases and the ports they need),
//! `adapters` (HTTP and Kafka in; PostgreSQL, outbox and argon2 out), `settings`. This crate
//! must not reach into orders-service.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;
