//! Integration messages, the batches pollers take, push errors and the audit trail
//! (docs/integrations.md).

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::filter::{count_and_page_ordered, Condition};
use super::{on_conn, Backend, Conn, Page, Result, Slice};

/// Sets `sent_at` of the waiting messages among `ids` and ends their lease; evaluates to how
/// many changed.
macro_rules! set_messages {
    ($c:expr, $group:expr, $ids:expr, $sent_at:expr) => {{
        let mut changed = 0;
        for chunk in $ids.chunks(1000) {
            let mut qb =
                QueryBuilder::new("update integration_message set leased_until = null, sent_at = ");
            qb.push_bind($sent_at);
            qb.push(" where group_name = ")
                .push_bind($group.to_string());
            qb.push(" and sent_at is null and id in (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(")");
            changed += qb.build().execute(&mut *$c).await?.rows_affected();
        }
        changed
    }};
}

/// A message about to be written.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub group: String,
    pub event_id: Option<Uuid>,
    pub data: Value,
    pub manual_created_by: Option<i64>,
}

/// Writes the messages; returns their ids in order.
pub async fn insert_messages(
    conn: Conn<'_>,
    messages: &[NewMessage],
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(messages.len());
    on_conn!(conn, c => {
        // 5 values a row stay under SQLite's limit of bound parameters.
        for chunk in messages.chunks(1000) {
            let mut qb = QueryBuilder::new(
                "insert into integration_message (group_name, event_id, created_at, data, manual_created_by) ",
            );
            qb.push_values(chunk, |mut row, m| {
                row.push_bind(m.group.clone())
                    .push_bind(m.event_id)
                    .push_bind(now)
                    .push_bind(Json(m.data.clone()))
                    .push_bind(m.manual_created_by);
            });
            qb.push(" returning id");
            let mut chunk_ids: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *c).await?;
            chunk_ids.sort_unstable();
            ids.extend(chunk_ids);
        }
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(ids)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub group_name: String,
    pub event_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// As stored: parsed by the reader, one message at a time (see `integrations::read_data`).
    pub data: Json<Box<RawValue>>,
    pub manual_created_by: Option<i64>,
    pub manual_created_by_email: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub leased_until: Option<DateTime<Utc>>,
}

const MESSAGE_VIEW: &str = "(select m.*, u.email as manual_created_by_email, \
    (m.sent_at is not null) as sent from integration_message m \
    left join app_user u on u.id = m.manual_created_by) v";

pub async fn list_messages(
    conn: Conn<'_>,
    conditions: &[Condition],
    slice: Slice,
) -> Result<Page<MessageRow>> {
    count_and_page_ordered(conn, MESSAGE_VIEW, conditions, "id desc", slice).await
}

pub async fn get_message(conn: Conn<'_>, group: &str, id: i64) -> Result<Option<MessageRow>> {
    let sql = format!("select * from {MESSAGE_VIEW} where group_name = $1 and id = $2");
    Ok(
        on_conn!(conn, c => sqlx::query_as(&sql).bind(group).bind(id).fetch_optional(&mut *c).await)?,
    )
}

/// Marks a sent message unsent; `false` if it was waiting already.
pub async fn unsend_message(conn: Conn<'_>, group: &str, id: i64) -> Result<bool> {
    const SQL: &str = "update integration_message set sent_at = null, leased_until = null \
        where group_name = $1 and id = $2 and sent_at is not null";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(group).bind(id).execute(&mut *c).await.map(|r| r.rows_affected() > 0))?,
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub action: String,
    pub email: Option<String>,
    pub at: DateTime<Utc>,
}

pub async fn audit(
    conn: Conn<'_>,
    message_id: i64,
    action: &str,
    user_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    const SQL: &str =
        "insert into integration_audit (message_id, action, user_id, at) values ($1, $2, $3, $4)";
    on_conn!(conn, c => sqlx::query(SQL).bind(message_id).bind(action).bind(user_id).bind(now).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

pub async fn audit_trail(conn: Conn<'_>, message_id: i64) -> Result<Vec<AuditRow>> {
    const SQL: &str = "select a.action, u.email, a.at from integration_audit a \
        left join app_user u on u.id = a.user_id where a.message_id = $1 order by a.id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(message_id).fetch_all(&mut *c).await)?)
}

/// A waiting message handed out in a batch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BatchMessage {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    /// As in [`MessageRow::data`].
    pub data: Json<Box<RawValue>>,
}

/// Takes up to `limit` of the group's oldest waiting messages that no batch holds, holds them
/// until `lease_until`, and records the batch under `token_hash`.
pub async fn take_batch(
    conn: Conn<'_>,
    group: &str,
    token_hash: &str,
    limit: i64,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<BatchMessage>> {
    const PICK: &str =
        "select id from integration_message where group_name = $2 and sent_at is null \
        and (leased_until is null or leased_until <= $3) order by id limit $4";
    const RECORD: &str =
        "insert into integration_batch (token_hash, group_name, message_ids, created_at) \
        values ($1, $2, $3, $4)";
    // PostgreSQL: other pickers skip the rows this one locked. SQLite: a write transaction
    // holds the whole database, so nobody picks meanwhile.
    let pick = match conn.backend() {
        Backend::Postgres => format!("{PICK} for update skip locked"),
        Backend::Sqlite => PICK.to_string(),
    };
    let lease = format!(
        "update integration_message set leased_until = $1 where id in ({pick}) \
         returning id, created_at, data"
    );
    let mut batch: Vec<BatchMessage> = on_conn!(conn, c => {
        let batch: Vec<BatchMessage> = sqlx::query_as(&lease)
            .bind(lease_until)
            .bind(group)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?;
        let mut ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        sqlx::query(RECORD)
            .bind(token_hash)
            .bind(group)
            .bind(Json(ids))
            .bind(now)
            .execute(&mut *c)
            .await?;
        Ok::<_, sqlx::Error>(batch)
    })?;
    batch.sort_by_key(|m| m.id);
    Ok(batch)
}

/// Forgets the group's batches made before `before`: their tokens mark nothing any more.
pub async fn prune_batches(conn: Conn<'_>, group: &str, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "delete from integration_batch where group_name = $1 and created_at < $2";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(group).bind(before).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}

/// The ids a batch of the group holds; `None` for a token of no batch of this group.
pub async fn batch_ids(conn: Conn<'_>, group: &str, token_hash: &str) -> Result<Option<Vec<i64>>> {
    const SQL: &str =
        "select message_ids from integration_batch where token_hash = $1 and group_name = $2";
    let ids: Option<Json<Vec<i64>>> = on_conn!(conn, c => sqlx::query_scalar(SQL).bind(token_hash).bind(group).fetch_optional(&mut *c).await)?;
    Ok(ids.map(|j| j.0))
}

/// Marks the batch's messages that are still waiting sent and releases them; returns how many.
pub async fn mark_batch(
    conn: Conn<'_>,
    group: &str,
    token_hash: &str,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<u64> {
    const BATCH: &str =
        "update integration_batch set marked_at = coalesce(marked_at, $2) where token_hash = $1";
    Ok(on_conn!(conn, c => {
        let marked = set_messages!(c, group, ids, Some(now));
        sqlx::query(BATCH).bind(token_hash).bind(now).execute(&mut *c).await?;
        Ok::<u64, sqlx::Error>(marked)
    })?)
}

/// Lets a batch's waiting messages go to the next fetch or push at once.
pub async fn release_batch(conn: Conn<'_>, group: &str, ids: &[i64]) -> Result<()> {
    let none: Option<DateTime<Utc>> = None;
    on_conn!(conn, c => {
        set_messages!(c, group, ids, none);
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

/// How many of the group's messages wait.
pub async fn count_waiting(conn: Conn<'_>, group: &str) -> Result<i64> {
    const SQL: &str =
        "select count(*) from integration_message where group_name = $1 and sent_at is null";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(group).fetch_one(&mut *c).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ErrorRow {
    pub id: i64,
    pub group_name: String,
    pub occurred_at: DateTime<Utc>,
    pub source: String,
    pub message: String,
    pub details: Json<Value>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<i64>,
    pub acknowledged_by_email: Option<String>,
}

const ERROR_VIEW: &str = "(select e.*, u.email as acknowledged_by_email, \
    (e.acknowledged_at is not null) as acknowledged from integration_error e \
    left join app_user u on u.id = e.acknowledged_by) v";

pub async fn insert_error(
    conn: Conn<'_>,
    group: &str,
    source: &str,
    message: &str,
    details: Value,
    now: DateTime<Utc>,
) -> Result<()> {
    const SQL: &str =
        "insert into integration_error (group_name, occurred_at, source, message, details) \
        values ($1, $2, $3, $4, $5)";
    on_conn!(conn, c => sqlx::query(SQL).bind(group).bind(now).bind(source).bind(message).bind(Json(details.clone())).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

pub async fn list_errors(
    conn: Conn<'_>,
    conditions: &[Condition],
    slice: Slice,
) -> Result<Page<ErrorRow>> {
    count_and_page_ordered(conn, ERROR_VIEW, conditions, "id desc", slice).await
}

pub async fn get_error(conn: Conn<'_>, id: i64) -> Result<Option<ErrorRow>> {
    let sql = format!("select * from {ERROR_VIEW} where id = $1");
    Ok(on_conn!(conn, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut *c).await)?)
}

/// Acknowledges the error (once: the first acknowledgement is kept).
pub async fn acknowledge_error(
    conn: Conn<'_>,
    id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    const SQL: &str =
        "update integration_error set acknowledged_at = coalesce(acknowledged_at, $2), \
        acknowledged_by = coalesce(acknowledged_by, $3) where id = $1";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(now).bind(user_id).execute(&mut *c).await.map(|r| r.rows_affected() > 0))?,
    )
}
