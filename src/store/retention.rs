//! Retention: deleting old rows of the append-only tables in bounded batches (the rules are in
//! `crate::retention`). Each function deletes at most `limit` rows in one statement, so no batch
//! holds SQLite's single write lock or a PostgreSQL transaction for long; the caller repeats it
//! until a batch comes back short.
//!
//! On PostgreSQL each batch locks its rows `for update skip locked`, so several processes
//! pruning at once take different rows, and a row changed meanwhile (a delivery re-queued, a
//! message marked unsent) is checked again against the condition before it is deleted. On
//! SQLite a statement holds the whole database, so nothing changes under it.

use chrono::{DateTime, Utc};

use super::{on_conn, Backend, Conn, Result};

/// Succeeded deliveries delivered before `$1`, oldest first. Pending, running and failed ones
/// are work or a visible failure and are never deleted here. Their attempt log goes with them
/// (`delivery_attempt` cascades).
const DELIVERIES: &str = "delete from delivery where id {in}(select id from delivery \
    where state = 'succeeded' and delivered_at < $1 order by delivered_at limit $2{lock})";

/// Integration messages sent before `$1`; a waiting message (never sent, or marked unsent
/// again) is never deleted. Their audit trail goes with them (`integration_audit` cascades).
const INTEGRATION_MESSAGES: &str = "delete from integration_message where id {in}(select id \
    from integration_message where sent_at < $1 order by sent_at limit $2{lock})";

/// Events that occurred before `$1`, have been spread to the callbacks, have no delivery left
/// (the deliveries' own retention removes those that are done; pending, running or failed
/// ones keep their event) and no integration message made from them that waits. A delivery is
/// only ever written for an event not yet spread, and spreading commits its deliveries with
/// `spread_at`, so an event that is spread and has none will never have one.
const EVENTS: &str = "delete from event where id {in}(select e.id from event e \
    where e.occurred_at < $1 and e.spread_at is not null \
    and not exists (select 1 from delivery d where d.event_id = e.id) \
    and not exists (select 1 from integration_message m \
        where m.event_id = e.event_id and m.sent_at is null) \
    order by e.occurred_at limit $2{lock})";

/// Audit entries recorded before `$1`. Ids grow with time, so the walk of the primary key
/// meets the old entries first.
const AUDIT_LOG: &str = "delete from audit_log where id {in}(select id from audit_log \
    where at < $1 order by id limit $2{lock})";

/// Each statement in the backend's words. On PostgreSQL the batch's subquery locks its rows,
/// and the delete finds them by `id = any(array(select …))`: a primary-key lookup of the
/// batch's ids whatever the planner believes, where `id in (select …)` made it hash the batch
/// and scan the whole table for it (164 ms a batch at 300,000 deliveries, growing with the
/// table; docs/scaling.md). SQLite has no arrays and looks `in (select …)` up by rowid.
fn for_backend(sql: &str, backend: Backend) -> String {
    match backend {
        Backend::Postgres => format!(
            "{})",
            sql.replace("{lock}", " for update skip locked")
                .replace("{in}", "= any(array")
        ),
        Backend::Sqlite => sql.replace("{lock}", "").replace("{in}", "in "),
    }
}

/// A table the pruning pass deletes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Delivery,
    IntegrationMessage,
    Event,
    AuditLog,
}

impl Table {
    /// The table's name, as the metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Table::Delivery => "delivery",
            Table::IntegrationMessage => "integration_message",
            Table::Event => "event",
            Table::AuditLog => "audit_log",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Table::Delivery => DELIVERIES,
            Table::IntegrationMessage => INTEGRATION_MESSAGES,
            Table::Event => EVENTS,
            Table::AuditLog => AUDIT_LOG,
        }
    }
}

/// Deletes up to `limit` of the table's rows older than `before` that may go (see the
/// statements above); returns how many it deleted.
pub async fn prune_batch(
    conn: Conn<'_>,
    table: Table,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64> {
    let sql = for_backend(table.sql(), conn.backend());
    Ok(on_conn!(conn, c => sqlx::query(&sql)
        .bind(before)
        .bind(limit)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_deletes_by_an_array_of_locked_ids_and_sqlite_by_a_subquery() {
        assert_eq!(
            for_backend(AUDIT_LOG, Backend::Postgres),
            "delete from audit_log where id = any(array(select id from audit_log \
             where at < $1 order by id limit $2 for update skip locked))"
        );
        assert_eq!(
            for_backend(AUDIT_LOG, Backend::Sqlite),
            "delete from audit_log where id in (select id from audit_log \
             where at < $1 order by id limit $2)"
        );
    }
}
