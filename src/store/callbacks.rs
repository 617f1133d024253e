//! Callbacks (WebSub subscriptions): lookup, lease and state.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::filter::{count_and_page_ordered, Condition};
use super::{on_conn, Conn, Page, Result, Slice};

pub use crate::model::callbacks::CallbackRow;

pub async fn get_callback(conn: Conn<'_>, id: Uuid) -> Result<Option<CallbackRow>> {
    const SQL: &str = "select * from callback where id = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(id).fetch_optional(&mut *c).await)?)
}

/// `owner`'s callback for (topic, URL): another user's subscription of the same pair is not it.
pub async fn find_callback(
    conn: Conn<'_>,
    owner: i64,
    topic_prefix: &str,
    callback_url: &str,
) -> Result<Option<CallbackRow>> {
    const SQL: &str =
        "select * from callback where created_by = $1 and topic_prefix = $2 and callback_url = $3";
    Ok(
        on_conn!(conn, c => sqlx::query_as(SQL).bind(owner).bind(topic_prefix).bind(callback_url).fetch_optional(&mut *c).await)?,
    )
}

/// `owner`'s callback for (topic, URL), created `pending` if they have none yet.
pub async fn pending_callback(
    conn: Conn<'_>,
    topic: &str,
    topic_prefix: &str,
    callback_url: &str,
    lease_seconds: i64,
    owner: i64,
    now: DateTime<Utc>,
) -> Result<CallbackRow> {
    const INSERT: &str = "insert into callback (id, topic, topic_prefix, callback_url, state, lease_seconds, created_by, created_at, updated_at) \
        values ($1, $2, $3, $4, 'pending', $5, $6, $7, $7) \
        on conflict (created_by, topic_prefix, callback_url) do nothing";
    const SELECT: &str =
        "select * from callback where created_by = $1 and topic_prefix = $2 and callback_url = $3";
    Ok(on_conn!(conn, c => {
        sqlx::query(INSERT)
            .bind(Uuid::new_v4())
            .bind(topic)
            .bind(topic_prefix)
            .bind(callback_url)
            .bind(lease_seconds)
            .bind(owner)
            .bind(now)
            .execute(&mut *c)
            .await?;
        sqlx::query_as(SELECT).bind(owner).bind(topic_prefix).bind(callback_url).fetch_one(&mut *c).await
    })?)
}

/// A verified subscription: active with the new lease and secret. A callback that becomes active
/// (rather than renewing) records where it starts: it receives only events committed after
/// this (see the fan-out in [`spread_events`]).
pub async fn activate_callback(
    conn: Conn<'_>,
    id: Uuid,
    topic: &str,
    secret: Option<&str>,
    lease_seconds: i64,
    now: DateTime<Utc>,
) -> Result<Option<CallbackRow>> {
    const SQL: &str = "update callback set state = 'active', state_reason = null, topic = $2, secret = $3, \
        lease_seconds = $4, lease_expires_at = $5, failing_since = null, verified_at = $6, updated_at = $6, \
        {starts} where id = $1 returning *";
    const POSTGRES_START: &str = "activated_snapshot = case when state = 'active' \
        then activated_snapshot else pg_current_snapshot() end";
    const SQLITE_START: &str = "activated_after_event = case when state = 'active' \
        then activated_after_event else (select coalesce(max(id), 0) from event) end";
    let expires = now + chrono::Duration::seconds(lease_seconds);
    let sql = SQL.replace(
        "{starts}",
        match conn.backend() {
            super::Backend::Postgres => POSTGRES_START,
            super::Backend::Sqlite => SQLITE_START,
        },
    );
    Ok(
        on_conn!(conn, c => sqlx::query_as(&sql).bind(id).bind(topic).bind(secret).bind(lease_seconds).bind(expires).bind(now).fetch_optional(&mut *c).await)?,
    )
}

pub async fn set_callback_state(
    conn: Conn<'_>,
    id: Uuid,
    state: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<CallbackRow>> {
    const SQL: &str = "update callback set state = $2, state_reason = $3, updated_at = $4 where id = $1 returning *";
    Ok(
        on_conn!(conn, c => sqlx::query_as(SQL).bind(id).bind(state).bind(reason).bind(now).fetch_optional(&mut *c).await)?,
    )
}

pub async fn set_batch_size(
    conn: Conn<'_>,
    id: Uuid,
    batch_size: i32,
    now: DateTime<Utc>,
) -> Result<Option<CallbackRow>> {
    const SQL: &str =
        "update callback set batch_size = $2, updated_at = $3 where id = $1 returning *";
    Ok(
        on_conn!(conn, c => sqlx::query_as(SQL).bind(id).bind(batch_size).bind(now).fetch_optional(&mut *c).await)?,
    )
}

pub async fn delete_callback(conn: Conn<'_>, id: Uuid) -> Result<bool> {
    const SQL: &str = "delete from callback where id = $1";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|r| r.rows_affected() > 0))?,
    )
}

pub async fn list_callbacks(
    conn: Conn<'_>,
    conditions: &[Condition],
    slice: Slice,
) -> Result<Page<CallbackRow>> {
    count_and_page_ordered(conn, "callback", conditions, "created_at, id", slice).await
}

/// Active callbacks whose lease has ended become `expired`; returns them.
pub async fn expire_callbacks(conn: Conn<'_>, now: DateTime<Utc>) -> Result<Vec<CallbackRow>> {
    const SQL: &str =
        "update callback set state = 'expired', state_reason = 'the lease ended', updated_at = $1 \
        where state = 'active' and lease_expires_at <= $1 returning *";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(now).fetch_all(&mut *c).await)?)
}

/// Notes a failed attempt; returns when the callback started failing.
pub async fn note_failing(
    conn: Conn<'_>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    const SQL: &str = "update callback set failing_since = coalesce(failing_since, $2) where id = $1 returning failing_since";
    let since: Option<Option<DateTime<Utc>>> = on_conn!(conn, c => sqlx::query_scalar(SQL).bind(id).bind(now).fetch_optional(&mut *c).await)?;
    Ok(since.flatten())
}

pub async fn clear_failing(conn: Conn<'_>, id: Uuid) -> Result<()> {
    const SQL: &str =
        "update callback set failing_since = null where id = $1 and failing_since is not null";
    on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}
