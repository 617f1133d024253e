//! Retention: how long events, deliveries, integration messages and audit entries are kept, and
//! the pruning pass that deletes older ones (docs/scaling.md). The worker's pruning loop
//! (`runtime::loops::run_pruner`) and `sbm prune` both run [`prune`].
//!
//! Pruning never loses work. Only finished rows go: succeeded deliveries (pending, running and
//! failed ones stay, with their events), sent integration messages (waiting ones stay), and
//! events that are spread, have no delivery left and no integration message waiting. Deliveries
//! and messages are pruned before events in a pass, so an event freed by them goes in the same
//! pass. An event therefore outlives its deliveries: with `SBM_DELIVERY_RETENTION_DAYS=0` an
//! event that was delivered to a callback is kept as long as its delivery, forever.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use crate::config::RetentionConfig;
use crate::domain::Result;
use crate::store::retention::Table;
use crate::store::{self, Db};

/// The retention of each table; `None` keeps its rows forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub events: Option<Duration>,
    pub deliveries: Option<Duration>,
    pub integration_messages: Option<Duration>,
    pub audit_log: Option<Duration>,
    /// Most rows one delete statement removes.
    pub batch: i64,
}

impl Policy {
    pub fn from_config(config: &RetentionConfig) -> Policy {
        let days = |d: u32| (d > 0).then(|| Duration::days(i64::from(d)));
        Policy {
            events: days(config.event_days),
            deliveries: days(config.delivery_days),
            integration_messages: days(config.integration_message_days),
            audit_log: days(config.audit_days),
            batch: i64::from(config.prune_batch_size.max(1)),
        }
    }
}

/// What one pass deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub integration_messages: u64,
    pub events: u64,
    pub audit_log: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.deliveries + self.integration_messages + self.events + self.audit_log
    }
}

/// One full pass: every table with a retention, batch after batch until a batch comes back
/// short. Safe beside other processes pruning at once (see `store::retention`).
pub async fn prune(db: &Db, policy: &Policy, now: DateTime<Utc>) -> Result<Pruned> {
    let started = Instant::now();
    let mut pruned = Pruned::default();
    let tables = [
        (Table::Delivery, policy.deliveries, &mut pruned.deliveries),
        (
            Table::IntegrationMessage,
            policy.integration_messages,
            &mut pruned.integration_messages,
        ),
        (Table::Event, policy.events, &mut pruned.events),
        (Table::AuditLog, policy.audit_log, &mut pruned.audit_log),
    ];
    for (table, keep, count) in tables {
        if let Some(keep) = keep {
            *count = prune_table(db, table, now - keep, policy.batch).await?;
        }
    }
    if pruned.total() > 0 {
        tracing::info!(
            events = pruned.events,
            deliveries = pruned.deliveries,
            integration_messages = pruned.integration_messages,
            audit_log = pruned.audit_log,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pruned rows past their retention"
        );
    }
    Ok(pruned)
}

/// Deletes a table's rows older than `before`, `batch` at a time, each batch its own statement
/// on a connection of its own (no transaction spans two batches).
async fn prune_table(db: &Db, table: Table, before: DateTime<Utc>, batch: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        let deleted = {
            let mut conn = db.acquire().await?;
            store::retention::prune_batch(conn.conn(), table, before, batch).await?
        };
        total += deleted;
        metrics::counter!("sbm_pruned_rows_total", "table" => table.name()).increment(deleted);
        if deleted < batch as u64 {
            return Ok(total);
        }
        // Let the other writers (SQLite has one at a time) in between two batches.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_keeps_a_table_forever() {
        let policy = Policy::from_config(&RetentionConfig {
            event_days: 90,
            delivery_days: 0,
            integration_message_days: 7,
            audit_days: 0,
            prune_interval_secs: 300,
            prune_batch_size: 0,
        });
        assert_eq!(policy.events, Some(Duration::days(90)));
        assert_eq!(policy.deliveries, None);
        assert_eq!(policy.integration_messages, Some(Duration::days(7)));
        assert_eq!(policy.audit_log, None);
        assert_eq!(policy.batch, 1);
    }
}
