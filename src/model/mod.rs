//! The vocabulary: pure data types every layer shares (records as stored, their writable
//! fields). Nothing here reads the database or calls a peer; `store` returns these types and
//! the domain modules work on them.

pub mod auth;
pub mod callbacks;
pub mod content;
pub mod metrics;
pub mod subscriptions;
