//! SQL for `sbm import django` (docs/import.md): rows written with the ids they had in the
//! source, keyset pages of what is already there, the import bookkeeping, and moving the id
//! sequences past imported ids.
//!
//! Rows go in as multi-row `insert … on conflict (id) do update`, so one statement both adds
//! new rows and brings changed ones up to date, on either engine.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{on_conn, Conn, Result};
use crate::model::content::{BinaryContent, Message, MessageSet, Schedule};
use crate::model::subscriptions::Subscription;

/// Rows per multi-row statement: under both engines' limits on bound parameters (SQLite
/// 32,766, PostgreSQL 65,535) for the widest table (17 columns).
pub const BATCH_ROWS: usize = 1000;

/// `insert into <table> (<columns>) ` and ` on conflict (id) do update set c = excluded.c, …`
/// for every column but `id` and those in `keep` (left as they are on an update).
fn upsert_sql(table: &str, columns: &[&str], keep: &[&str]) -> (String, String) {
    let head = format!("insert into {table} ({}) ", columns.join(", "));
    let sets: Vec<String> = columns
        .iter()
        .filter(|c| **c != "id" && !keep.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    (
        head,
        format!(" on conflict (id) do update set {}", sets.join(", ")),
    )
}

/// Runs one multi-row upsert of `$rows` into `$table`, binding each row's `$fields` in order.
macro_rules! upsert {
    ($conn:expr, $table:expr, $columns:expr, $keep:expr, $rows:expr, |$b:ident, $r:ident| $push:expr) => {{
        if $rows.is_empty() {
            return Ok(());
        }
        let (head, tail) = upsert_sql($table, $columns, $keep);
        on_conn!($conn, c => {
            let mut qb = sqlx::QueryBuilder::new(head.as_str());
            qb.push_values($rows.iter(), |mut $b, $r| {
                $push;
            });
            qb.push(tail.as_str());
            qb.build().execute(&mut *c).await?;
        });
        Ok(())
    }};
}

pub async fn upsert_schedules(conn: Conn<'_>, rows: &[Schedule]) -> Result<()> {
    const COLUMNS: &[&str] = &[
        "id",
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "month_of_year",
        "created_at",
        "updated_at",
    ];
    upsert!(conn, "schedule", COLUMNS, &["created_at"], rows, |b, s| {
        b.push_bind(s.id)
            .push_bind(&s.minute)
            .push_bind(&s.hour)
            .push_bind(&s.day_of_week)
            .push_bind(&s.day_of_month)
            .push_bind(&s.month_of_year)
            .push_bind(s.created_at)
            .push_bind(s.updated_at)
    })
}

/// Message sets go in without their `next_set` (which may point at a set not written yet);
/// [`set_next_sets`] links them once all are in.
pub async fn upsert_message_sets(conn: Conn<'_>, rows: &[MessageSet]) -> Result<()> {
    const COLUMNS: &[&str] = &[
        "id",
        "short_name",
        "label",
        "notes",
        "channel",
        "default_schedule_id",
        "content_type",
        "created_at",
        "updated_at",
    ];
    upsert!(conn, "message_set", COLUMNS, &[], rows, |b, s| {
        b.push_bind(s.id)
            .push_bind(&s.short_name)
            .push_bind(&s.label)
            .push_bind(&s.notes)
            .push_bind(&s.channel)
            .push_bind(s.default_schedule_id)
            .push_bind(&s.content_type)
            .push_bind(s.created_at)
            .push_bind(s.updated_at)
    })
}

/// Sets each message set's `next_set` (set id, next set id) where it differs.
pub async fn set_next_sets(mut conn: Conn<'_>, links: &[(i64, Option<i64>)]) -> Result<()> {
    const SQL: &str = "update message_set set next_set_id = $2 where id = $1 \
        and next_set_id is distinct from $2";
    for (id, next) in links {
        on_conn!(&mut conn, c => sqlx::query(SQL).bind(id).bind(next).execute(&mut **c).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

pub async fn upsert_binary_contents(conn: Conn<'_>, rows: &[BinaryContent]) -> Result<()> {
    const COLUMNS: &[&str] = &[
        "id",
        "path",
        "media_type",
        "size_bytes",
        "created_at",
        "updated_at",
    ];
    upsert!(conn, "binary_content", COLUMNS, &[], rows, |b, r| {
        b.push_bind(r.id)
            .push_bind(&r.path)
            .push_bind(&r.media_type)
            .push_bind(r.size_bytes)
            .push_bind(r.created_at)
            .push_bind(r.updated_at)
    })
}

pub async fn upsert_messages(conn: Conn<'_>, rows: &[Message]) -> Result<()> {
    const COLUMNS: &[&str] = &[
        "id",
        "message_set_id",
        "sequence_number",
        "lang",
        "text_content",
        "binary_content_id",
        "metadata",
        "created_at",
        "updated_at",
    ];
    upsert!(conn, "message", COLUMNS, &[], rows, |b, m| {
        b.push_bind(m.id)
            .push_bind(m.message_set_id)
            .push_bind(m.sequence_number)
            .push_bind(&m.lang)
            .push_bind(&m.text_content)
            .push_bind(m.binary_content_id)
            .push_bind(&m.metadata)
            .push_bind(m.created_at)
            .push_bind(m.updated_at)
    })
}

/// `send_requested_at` is sbm's own (duplicate POST-back guard) and is left as it is.
pub async fn upsert_subscriptions(conn: Conn<'_>, rows: &[Subscription]) -> Result<()> {
    const COLUMNS: &[&str] = &[
        "id",
        "identity",
        "version",
        "message_set_id",
        "next_sequence_number",
        "initial_sequence_number",
        "lang",
        "active",
        "completed",
        "schedule_id",
        "process_status",
        "metadata",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
    ];
    upsert!(conn, "subscription", COLUMNS, &[], rows, |b, s| {
        b.push_bind(s.id)
            .push_bind(s.identity)
            .push_bind(s.version)
            .push_bind(s.message_set_id)
            .push_bind(s.next_sequence_number)
            .push_bind(s.initial_sequence_number)
            .push_bind(&s.lang)
            .push_bind(s.active)
            .push_bind(s.completed)
            .push_bind(s.schedule_id)
            .push_bind(s.process_status)
            .push_bind(&s.metadata)
            .push_bind(s.created_at)
            .push_bind(s.updated_at)
            .push_bind(s.created_by)
            .push_bind(s.updated_by)
    })
}

/// The content tables whose rows keep their integer source ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentTable {
    Schedule,
    MessageSet,
    BinaryContent,
    Message,
}

impl ContentTable {
    pub fn name(self) -> &'static str {
        match self {
            ContentTable::Schedule => "schedule",
            ContentTable::MessageSet => "message_set",
            ContentTable::BinaryContent => "binary_content",
            ContentTable::Message => "message",
        }
    }
}

pub async fn delete_content(conn: Conn<'_>, table: ContentTable, ids: &[i64]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let head = format!("delete from {} where id in (", table.name());
    Ok(on_conn!(conn, c => {
        let mut qb = sqlx::QueryBuilder::new(head.as_str());
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build().execute(&mut *c).await?.rows_affected()
    }))
}

pub async fn delete_subscriptions(conn: Conn<'_>, ids: &[Uuid]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(on_conn!(conn, c => {
        let mut qb = sqlx::QueryBuilder::new("delete from subscription where id in (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build().execute(&mut *c).await?.rows_affected()
    }))
}

// ---- keyset pages of the target ----

pub async fn schedules_after(conn: Conn<'_>, after: i64, limit: i64) -> Result<Vec<Schedule>> {
    const SQL: &str = "select * from schedule where id > $1 order by id limit $2";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(after).bind(limit).fetch_all(&mut *c).await)?)
}

pub async fn message_sets_after(conn: Conn<'_>, after: i64, limit: i64) -> Result<Vec<MessageSet>> {
    const SQL: &str = "select * from message_set where id > $1 order by id limit $2";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(after).bind(limit).fetch_all(&mut *c).await)?)
}

pub async fn binary_contents_after(
    conn: Conn<'_>,
    after: i64,
    limit: i64,
) -> Result<Vec<BinaryContent>> {
    const SQL: &str = "select * from binary_content where id > $1 order by id limit $2";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(after).bind(limit).fetch_all(&mut *c).await)?)
}

pub async fn messages_after(conn: Conn<'_>, after: i64, limit: i64) -> Result<Vec<Message>> {
    const SQL: &str = "select * from message where id > $1 order by id limit $2";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(after).bind(limit).fetch_all(&mut *c).await)?)
}

/// Subscriptions in id order (the byte order of the UUID on both engines) after `after`.
pub async fn subscriptions_after(
    conn: Conn<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Subscription>> {
    const FIRST: &str = "select * from subscription order by id limit $1";
    const NEXT: &str = "select * from subscription where id > $1 order by id limit $2";
    Ok(match after {
        None => on_conn!(conn, c => sqlx::query_as(FIRST).bind(limit).fetch_all(&mut *c).await)?,
        Some(after) => {
            on_conn!(conn, c => sqlx::query_as(NEXT).bind(after).bind(limit).fetch_all(&mut *c).await)?
        }
    })
}

// ---- users, tokens, failed sends and the bookkeeping ----

/// The sbm id each earlier-imported row of `source_table` became, by source key.
pub async fn import_keys(conn: Conn<'_>, source_table: &str) -> Result<Vec<(String, i64)>> {
    const SQL: &str = "select source_key, target_id from import_key where source_table = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(source_table).fetch_all(&mut *c).await)?)
}

pub async fn put_import_key(
    conn: Conn<'_>,
    source_table: &str,
    source_key: &str,
    target_id: i64,
) -> Result<()> {
    const SQL: &str = "insert into import_key (source_table, source_key, target_id) \
        values ($1, $2, $3) on conflict (source_table, source_key) \
        do update set target_id = excluded.target_id";
    on_conn!(conn, c => sqlx::query(SQL).bind(source_table).bind(source_key).bind(target_id)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete_import_key(conn: Conn<'_>, source_table: &str, source_key: &str) -> Result<()> {
    const SQL: &str = "delete from import_key where source_table = $1 and source_key = $2";
    on_conn!(conn, c => sqlx::query(SQL).bind(source_table).bind(source_key)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Creates the user or brings an existing one (same email) to the given flags; returns its id.
pub async fn upsert_user(
    conn: Conn<'_>,
    email: &str,
    is_admin: bool,
    is_active: bool,
    created_at: DateTime<Utc>,
) -> Result<i64> {
    const SQL: &str = "insert into app_user (email, is_admin, is_active, created_at) \
        values ($1, $2, $3, $4) on conflict (email) \
        do update set is_admin = excluded.is_admin, is_active = excluded.is_active returning id";
    Ok(
        on_conn!(conn, c => sqlx::query_scalar(SQL).bind(email).bind(is_admin).bind(is_active)
        .bind(created_at).fetch_one(&mut *c).await)?,
    )
}

/// Stores a token's hash for the user (un-revoking it if it was revoked); returns its id.
pub async fn upsert_token(
    conn: Conn<'_>,
    user_id: i64,
    token_hash: &str,
    prefix: &str,
    created_at: DateTime<Utc>,
) -> Result<i64> {
    const SQL: &str = "insert into api_token (user_id, token_hash, prefix, created_at) \
        values ($1, $2, $3, $4) on conflict (token_hash) \
        do update set user_id = excluded.user_id, revoked_at = null returning id";
    Ok(
        on_conn!(conn, c => sqlx::query_scalar(SQL).bind(user_id).bind(token_hash).bind(prefix)
        .bind(created_at).fetch_one(&mut *c).await)?,
    )
}

pub async fn revoke_token(conn: Conn<'_>, id: i64, now: DateTime<Utc>) -> Result<()> {
    const SQL: &str = "update api_token set revoked_at = $2 where id = $1 and revoked_at is null";
    on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A send that failed in the source, as a failed `send_message` job.
#[derive(Debug, Clone)]
pub struct FailedSend {
    pub task_id: Uuid,
    pub subscription_id: Uuid,
    pub payload: Value,
    pub reason: String,
    pub max_attempts: i32,
    pub initiated_at: DateTime<Utc>,
}

/// Writes the failed job, or rewrites the one an earlier run wrote (`existing`) if it is still
/// failed; returns the job's id.
pub async fn put_failed_send(conn: Conn<'_>, existing: Option<i64>, f: &FailedSend) -> Result<i64> {
    const INSERT: &str = "insert into job (task_id, kind, payload, state, attempts, max_attempts, \
        run_at, last_error, subscription_id, created_at, updated_at, failed_at) \
        values ($1, 'send_message', $2, 'failed', $3, $3, $4, $5, $6, $4, $4, $4) returning id";
    const UPDATE: &str = "update job set task_id = $2, payload = $3, last_error = $4, \
        subscription_id = $5, created_at = $6, failed_at = $6 \
        where id = $1 and state = 'failed' returning id";
    Ok(on_conn!(conn, c => {
        let updated: Option<i64> = match existing {
            Some(id) => sqlx::query_scalar(UPDATE).bind(id).bind(f.task_id).bind(Json(&f.payload))
                .bind(&f.reason).bind(f.subscription_id).bind(f.initiated_at)
                .fetch_optional(&mut *c).await?,
            None => None,
        };
        match (updated, existing) {
            (Some(id), _) => id,
            // Re-queued or finished in sbm since the last run: that job is sbm's now.
            (None, Some(id)) => id,
            (None, None) => sqlx::query_scalar(INSERT).bind(f.task_id).bind(Json(&f.payload))
                .bind(f.max_attempts).bind(f.initiated_at).bind(&f.reason).bind(f.subscription_id)
                .fetch_one(&mut *c).await?,
        }
    }))
}

/// Removes a failed job an earlier run wrote (its source row is gone), if it is still failed.
pub async fn delete_failed_job(conn: Conn<'_>, id: i64) -> Result<()> {
    const SQL: &str = "delete from job where id = $1 and state = 'failed'";
    on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many rows `table` holds.
pub async fn count_rows(conn: Conn<'_>, table: &str) -> Result<i64> {
    let sql = format!("select count(*) from {table}");
    Ok(on_conn!(conn, c => sqlx::query_scalar(sql.as_str()).fetch_one(&mut *c).await)?)
}

pub async fn record_run(
    conn: Conn<'_>,
    source: &str,
    schema_version: &str,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    report: &Value,
) -> Result<()> {
    const SQL: &str =
        "insert into import_run (source, schema_version, started_at, finished_at, report) \
        values ($1, $2, $3, $4, $5)";
    on_conn!(conn, c => sqlx::query(SQL).bind(source).bind(schema_version).bind(started_at)
        .bind(finished_at).bind(Json(report)).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves the id sequence of a table that keeps source ids past `at_least` (the largest id the
/// source has, skipped rows included) and past its own largest id, so that rows created in sbm
/// afterwards never collide with an imported one or one a later run imports. Only ever
/// forward.
pub async fn advance_sequence(conn: Conn<'_>, table: ContentTable, at_least: i64) -> Result<()> {
    let table = table.name();
    match conn {
        Conn::Postgres(c) => {
            let sequence: String = sqlx::query_scalar("select pg_get_serial_sequence($1, 'id')")
                .bind(table)
                .fetch_one(&mut *c)
                .await?;
            let sql = format!(
                "select setval('{sequence}', greatest($1, (select max(id) from {table}))) \
                 where greatest($1, (select max(id) from {table})) > \
                     (select case when is_called then last_value else last_value - 1 end from {sequence})"
            );
            sqlx::query(&sql).bind(at_least).execute(&mut *c).await?;
        }
        // `autoincrement` keeps the largest id ever inserted (explicit ids too) in
        // sqlite_sequence; it is raised here for source ids that were skipped.
        Conn::Sqlite(c) => {
            sqlx::query("update sqlite_sequence set seq = $2 where name = $1 and seq < $2")
                .bind(table)
                .bind(at_least)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "insert into sqlite_sequence (name, seq) select $1, $2 \
                 where not exists (select 1 from sqlite_sequence where name = $1)",
            )
            .bind(table)
            .bind(at_least)
            .execute(&mut *c)
            .await?;
        }
    }
    Ok(())
}

/// Deactivates a user an earlier run imported whom the source no longer has.
pub async fn deactivate_user(conn: Conn<'_>, id: i64) -> Result<()> {
    const SQL: &str = "update app_user set is_active = false where id = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The imported users as sbm holds them: (source id, admin, active), for the check.
pub async fn imported_users(conn: Conn<'_>) -> Result<Vec<(String, bool, bool)>> {
    const SQL: &str = "select k.source_key, u.is_admin, u.is_active from import_key k \
        join app_user u on u.id = k.target_id where k.source_table = 'auth_user'";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

/// The hashes of the imported tokens that sbm accepts, for the check.
pub async fn imported_token_hashes(conn: Conn<'_>) -> Result<Vec<String>> {
    const SQL: &str =
        "select t.token_hash from import_key k join api_token t on t.id = k.target_id \
        where k.source_table = 'authtoken_token' and t.revoked_at is null";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).fetch_all(&mut *c).await)?)
}

/// The imported send failures' jobs: (source id, task id, subscription), for the check.
pub async fn imported_failed_sends(conn: Conn<'_>) -> Result<Vec<(String, Uuid, Option<Uuid>)>> {
    const SQL: &str = "select k.source_key, j.task_id, j.subscription_id from import_key k \
        join job j on j.id = k.target_id \
        where k.source_table = 'subscriptions_subscriptionsendfailure'";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}
