//! Black-box tests: the real server over HTTP, on SQLite and on PostgreSQL.

mod helpers;
mod peers;
mod receiver;

mod admin;
mod admin_browser;
mod admin_pages;
mod audit;
mod auth;
mod binary_content;
mod cli;
mod dropin;
mod errors;
mod events;
mod fanout;
mod forecast;
mod healthcheck;
mod hub;
mod import;
mod integrations;
mod limits;
mod local_time;
mod message_sets;
mod messages;
mod metrics;
mod openapi;
mod openapi_samples;
mod openapi_samples_events;
mod outbox;
mod privileges;
mod schedules;
mod scheduling;
mod secrets;
mod sending;
mod ssrf;
mod subscriptions;
