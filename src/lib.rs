//! sbm: the Seed Stage-Based Messaging Store.
#![forbid(unsafe_code)]

/// Building and running the service.
pub mod app;
/// Users and API tokens.
pub mod auth;
/// The command line.
pub mod cli;
/// Configuration from flags and environment.
pub mod config;
/// Schedules, message sets, messages and binary content.
pub mod content;
/// The HTTP API.
pub mod http;
/// Storage on PostgreSQL and SQLite.
pub mod store;
/// Logging set-up.
pub mod telemetry;
/// DRF-shaped validation errors.
pub mod validation;
