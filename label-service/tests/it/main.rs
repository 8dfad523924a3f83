//! The integration tests of the label-service, in one binary.

mod api;
mod authz;
mod bad_input;
mod browser;
mod concurrency;
mod db;
mod outage;
mod postgres;
mod prometheus;
mod security;
/// The process-level stack, from the crate's test kit.
mod stack {
    pub use label_service::testkit::*;
}
mod startup;
mod traces;
mod web;
mod workflow;
