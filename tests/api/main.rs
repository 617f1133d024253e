//! Black-box tests: the real server over HTTP, on SQLite and on PostgreSQL.

mod helpers;
mod peers;
mod receiver;

mod auth;
mod binary_content;
mod cli;
mod errors;
mod events;
mod healthcheck;
mod hub;
mod integrations;
mod message_sets;
mod messages;
mod metrics;
mod outbox;
mod schedules;
mod scheduling;
mod sending;
mod subscriptions;
