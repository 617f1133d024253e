//! sbm: the Seed Stage-Based Messaging Store.
#![forbid(unsafe_code)]

/// The admin web UI at /admin/.
pub mod admin;
/// Building and running the service.
pub mod app;
/// The audit log: who changed tokens, users and what admins did.
pub mod audit;
/// Users and API tokens.
pub mod auth;
/// Callbacks (WebSub subscriptions): the hub, verification, delivery.
pub mod callbacks;
/// The command line.
pub mod cli;
/// Configuration from flags and environment.
pub mod config;
/// Schedules, message sets, messages and binary content.
pub mod content;
/// The error domain modules return.
pub mod domain;
/// What follows each change: the one table from change to jobs, events and metrics.
pub mod effects;
/// Lifecycle events.
pub mod events;
/// Metrics for the Go Metrics API.
pub mod go_metrics;
/// `sbm healthcheck`: the container image's probe of /healthz.
pub mod healthcheck;
/// The HTTP API.
pub mod http;
/// Importing a Django seed-stage-based-messaging database.
pub mod importer;
/// Integration messages: batches for external systems, by poll or push.
pub mod integrations;
/// Durable jobs: their kinds, enqueueing, failed jobs and what a job body returns.
pub mod jobs;
/// Key rotation: sealing every stored secret again with the current key.
pub mod keys;
/// The vocabulary: records as stored and their writable fields.
pub mod model;
/// Clients for the peer services.
pub mod peers;
/// Retention: how long old rows are kept, and the pass that prunes them.
pub mod retention;
/// The worker process: the job worker and the periodic loops.
pub mod runtime;
/// The built-in scheduler: cron evaluation and ticks.
pub mod scheduling;
/// Secrets at rest: sealing callback secrets and integration auth headers.
pub mod secrets;
/// Composing and sending one message.
pub mod sending;
/// Errors and panics to Sentry, scrubbed of secrets.
pub mod sentry_reporting;
/// Storage on PostgreSQL and SQLite.
pub mod store;
/// Subscriptions and their lifecycle.
pub mod subscriptions;
/// Logging set-up.
pub mod telemetry;
/// DRF-shaped validation errors.
pub mod validation;
/// JSON representations with the Django field names.
pub mod wire;
