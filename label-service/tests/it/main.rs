//! The integration tests of the label-service, in one binary.

mod api;
mod authz;
mod bad_input;
mod browser;
mod cli;
mod concurrency;
mod db;
mod outage;
mod postgres;
mod prometheus;
mod security;
mod stack;
mod startup;
mod traces;
mod web;
mod workflow;
