//! The integration tests of the label-service, in one binary.

mod db;
mod postgres;
mod api;
mod authz;
mod concurrency;
mod security;
