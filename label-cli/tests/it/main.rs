//! label-cli's integration tests: the real binary against the real label-service (its
//! binary, PostgreSQL, a private broker), through the label-service's test kit.

mod cli;

/// The label-service's process-level stack.
mod stack {
    pub use label_service::testkit::*;
}
