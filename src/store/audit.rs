//! SQL for the audit log.

use chrono::{DateTime, Utc};

use super::filter::{count_and_page, Condition};
use super::{on_conn, Conn, Page, Result, Slice};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub details: String,
}

/// One entry, as [`insert`] writes it.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub at: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub actor: &'a str,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub details: &'a str,
}

pub async fn insert(conn: Conn<'_>, entry: &NewAudit<'_>) -> Result<()> {
    const SQL: &str =
        "insert into audit_log (at, actor_id, actor, action, object_type, object_id, details) \
        values ($1, $2, $3, $4, $5, $6, $7)";
    on_conn!(conn, c => sqlx::query(SQL).bind(entry.at).bind(entry.actor_id).bind(entry.actor)
        .bind(entry.action).bind(entry.object_type).bind(entry.object_id).bind(entry.details)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Entries matching `conditions`, oldest first.
pub async fn list(
    conn: Conn<'_>,
    conditions: &[Condition],
    slice: Slice,
) -> Result<Page<AuditRow>> {
    count_and_page(conn, "audit_log", conditions, slice).await
}
