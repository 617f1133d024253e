//! SQL for subscriptions.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::filter::{count_and_page_ordered, Condition};
use super::{on_conn, sqlite_lists, Conn, Page, Result, Slice};
use crate::model::content::Message;
use crate::model::subscriptions::{Subscription, SubscriptionFields};

/// The columns written from [`SubscriptionFields`], after `id`.
pub async fn insert_subscription(
    conn: Conn<'_>,
    id: Uuid,
    f: &SubscriptionFields,
    schedule_id: i64,
    user: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Subscription> {
    const SQL: &str =
        "insert into subscription (id, identity, version, message_set_id, next_sequence_number, \
        initial_sequence_number, lang, active, completed, schedule_id, process_status, metadata, \
        created_at, updated_at, created_by, updated_by, timezone) \
        values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $14, $15) returning *";
    let metadata = f.metadata.clone().map(Json);
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(id).bind(f.identity).bind(f.version).bind(f.message_set_id).bind(f.next_sequence_number)
        .bind(f.initial_sequence_number).bind(&f.lang).bind(f.active).bind(f.completed).bind(schedule_id)
        .bind(f.process_status).bind(&metadata).bind(now).bind(user).bind(&f.timezone)
        .fetch_one(&mut *c).await)?)
}

pub async fn update_subscription(
    conn: Conn<'_>,
    id: Uuid,
    f: &SubscriptionFields,
    schedule_id: i64,
    user: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Subscription> {
    const SQL: &str = "update subscription set identity = $2, version = $3, message_set_id = $4, \
        next_sequence_number = $5, initial_sequence_number = $6, lang = $7, active = $8, completed = $9, \
        schedule_id = $10, process_status = $11, metadata = $12, updated_at = $13, updated_by = $14, \
        timezone = $15 where id = $1 returning *";
    let metadata = f.metadata.clone().map(Json);
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(id).bind(f.identity).bind(f.version).bind(f.message_set_id).bind(f.next_sequence_number)
        .bind(f.initial_sequence_number).bind(&f.lang).bind(f.active).bind(f.completed).bind(schedule_id)
        .bind(f.process_status).bind(&metadata).bind(now).bind(user).bind(&f.timezone)
        .fetch_one(&mut *c).await)?)
}

pub async fn get_subscription(conn: Conn<'_>, id: Uuid) -> Result<Option<Subscription>> {
    const SQL: &str = "select * from subscription where id = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(id).fetch_optional(&mut *c).await)?)
}

/// Locks the subscriptions' rows in id order, ahead of their send jobs (PostgreSQL; SQLite's
/// single writer needs none). A request for a send locks the subscription and then writes its
/// job; a transaction that finishes or retries a send job and then updates the subscription
/// must take the same order, or the two deadlock (seen: a resend against a failed send's retry).
pub async fn lock_subscriptions(conn: Conn<'_>, ids: &[Uuid]) -> Result<()> {
    if let Conn::Postgres(c) = conn {
        // `order by id` is the order the rows are locked in.
        sqlx::query("select id from subscription where id = any($1) order by id for update")
            .bind(ids)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Reads the row and, on PostgreSQL, locks it until the transaction ends, so that a
/// read-modify-write (an API update, a send's advance) cannot lose a concurrent change. SQLite
/// transactions here already hold the database's write lock.
pub async fn lock_subscription(conn: Conn<'_>, id: Uuid) -> Result<Option<Subscription>> {
    Ok(match conn {
        Conn::Postgres(c) => {
            sqlx::query_as("select * from subscription where id = $1 for update")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        }
        Conn::Sqlite(c) => {
            sqlx::query_as("select * from subscription where id = $1")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        }
    })
}

pub async fn list_subscriptions(
    conn: Conn<'_>,
    filters: &[Condition],
    slice: Slice,
) -> Result<Page<Subscription>> {
    count_and_page_ordered(conn, "subscription", filters, "created_at, id", slice).await
}

pub async fn delete_subscription(conn: Conn<'_>, id: Uuid) -> Result<bool> {
    const SQL: &str = "delete from subscription where id = $1";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// Records that a send was asked for, unless one was asked for after `window_start`; returns
/// whether this request is the first in its window.
pub async fn claim_send_request(
    conn: Conn<'_>,
    id: Uuid,
    now: DateTime<Utc>,
    window_start: DateTime<Utc>,
) -> Result<bool> {
    const SQL: &str = "update subscription set send_requested_at = $2 \
        where id = $1 and (send_requested_at is null or send_requested_at <= $3)";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(now).bind(window_start).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

pub async fn set_process_status(
    conn: Conn<'_>,
    id: Uuid,
    process_status: i16,
    now: DateTime<Utc>,
) -> Result<()> {
    const SQL: &str = "update subscription set process_status = $2, updated_at = $3 where id = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(process_status).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn set_metadata(
    conn: Conn<'_>,
    id: Uuid,
    metadata: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<()> {
    const SQL: &str = "update subscription set metadata = $2, updated_at = $3 where id = $1";
    let metadata = metadata.cloned().map(Json);
    on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(&metadata).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// What a successful send changes, written only if the subscription is still at the sequence
/// number that was sent (so that a duplicate completion cannot advance it twice).
#[derive(Debug, Clone)]
pub struct Advance {
    pub sent_sequence_number: i32,
    pub next_sequence_number: i32,
    pub completed: bool,
    /// Remove `prepend_next_delivery` from the metadata (it went out with this message). Done
    /// in SQL so that a concurrent change to other metadata keys is kept.
    pub clear_prepend: bool,
}

/// The message a subscription at `sequence_number` in `lang` gets.
pub async fn find_message(
    conn: Conn<'_>,
    message_set_id: i64,
    sequence_number: i32,
    lang: &str,
) -> Result<Option<Message>> {
    const SQL: &str =
        "select * from message where message_set_id = $1 and sequence_number = $2 and lang = $3";
    Ok(
        on_conn!(conn, c => sqlx::query_as(SQL).bind(message_set_id).bind(sequence_number).bind(lang).fetch_optional(&mut *c).await)?,
    )
}

/// The highest sequence number of a set in one language: the last message a subscription gets.
pub async fn last_sequence_number(
    conn: Conn<'_>,
    message_set_id: i64,
    lang: &str,
) -> Result<Option<i32>> {
    const SQL: &str =
        "select max(sequence_number) from message where message_set_id = $1 and lang = $2";
    Ok(
        on_conn!(conn, c => sqlx::query_scalar(SQL).bind(message_set_id).bind(lang).fetch_one(&mut *c).await)?,
    )
}

pub async fn count_on_schedule(conn: Conn<'_>, schedule_id: i64) -> Result<i64> {
    const SQL: &str = "select count(*) from subscription where schedule_id = $1";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(schedule_id).fetch_one(&mut *c).await)?)
}

pub async fn count_on_message_set(conn: Conn<'_>, message_set_id: i64) -> Result<i64> {
    const SQL: &str = "select count(*) from subscription where message_set_id = $1";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(message_set_id).fetch_one(&mut *c).await)?)
}

/// One subscription's advance in [`advance_many`].
#[derive(Debug, Clone)]
pub struct AdvanceOf {
    pub id: Uuid,
    pub advance: Advance,
}

/// Applies many advances in one statement; returns the rows that advanced (those still at the
/// sequence number sent).
pub async fn advance_many(
    conn: Conn<'_>,
    items: &[AdvanceOf],
    now: DateTime<Utc>,
) -> Result<Vec<Subscription>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    match conn {
        Conn::Postgres(c) => {
            const SQL: &str = "update subscription s set next_sequence_number = v.next, completed = v.completed, \
                active = case when v.completed then false else s.active end, \
                process_status = case when v.completed then 2 else 0 end, \
                metadata = case when v.clear then s.metadata - 'prepend_next_delivery' else s.metadata end, \
                updated_at = $6 \
                from unnest($1::uuid[], $2::int4[], $3::int4[], $4::bool[], $5::bool[]) as v(id, sent, next, completed, clear) \
                where s.id = v.id and s.next_sequence_number = v.sent returning s.*";
            let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
            let sent: Vec<i32> = items
                .iter()
                .map(|i| i.advance.sent_sequence_number)
                .collect();
            let next: Vec<i32> = items
                .iter()
                .map(|i| i.advance.next_sequence_number)
                .collect();
            let completed: Vec<bool> = items.iter().map(|i| i.advance.completed).collect();
            let clear: Vec<bool> = items.iter().map(|i| i.advance.clear_prepend).collect();
            Ok(sqlx::query_as(SQL)
                .bind(ids)
                .bind(sent)
                .bind(next)
                .bind(completed)
                .bind(clear)
                .bind(now)
                .fetch_all(&mut *c)
                .await?)
        }
        Conn::Sqlite(c) => {
            const SQL: &str = "with v(id, sent, next, completed, clear) as (\
                 select unhex(value ->> 0), value ->> 1, value ->> 2, value ->> 3, value ->> 4 \
                 from json_each($1)) \
                 update subscription set next_sequence_number = v.next, completed = v.completed, \
                 active = case when v.completed then 0 else active end, \
                 process_status = case when v.completed then 2 else 0 end, \
                 metadata = case when v.clear then json_remove(metadata, '$.prepend_next_delivery') else metadata end, \
                 updated_at = $2 \
                 from v where subscription.id = v.id and subscription.next_sequence_number = v.sent returning *";
            let rows: Vec<(String, i32, i32, bool, bool)> = items
                .iter()
                .map(|i| {
                    let a = &i.advance;
                    let id = sqlite_lists::hex(i.id);
                    (
                        id,
                        a.sent_sequence_number,
                        a.next_sequence_number,
                        a.completed,
                        a.clear_prepend,
                    )
                })
                .collect();
            Ok(sqlx::query_as(SQL)
                .bind(sqlite_lists::rows(&rows))
                .bind(now)
                .fetch_all(&mut *c)
                .await?)
        }
    }
}

/// The subscriptions with these ids (missing ones are skipped), in one query.
pub async fn get_subscriptions(conn: Conn<'_>, ids: &[Uuid]) -> Result<Vec<Subscription>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match conn {
        Conn::Postgres(c) => {
            sqlx::query_as("select * from subscription where id = any($1)")
                .bind(ids)
                .fetch_all(&mut *c)
                .await?
        }
        Conn::Sqlite(c) => {
            sqlx::query_as(
                "select * from subscription where id in (select unhex(value) from json_each($1))",
            )
            .bind(sqlite_lists::uuids(ids))
            .fetch_all(&mut *c)
            .await?
        }
    })
}

/// Counts one more user send waiting behind the subscription's unfinished one.
pub async fn queue_send(conn: Conn<'_>, id: Uuid) -> Result<()> {
    const SQL: &str = "update subscription set queued_sends = queued_sends + 1 where id = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// Takes one queued user send of each of these subscriptions that has one; returns them.
pub async fn take_queued_sends(conn: Conn<'_>, ids: &[Uuid]) -> Result<Vec<Subscription>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    const POSTGRES: &str = "update subscription set queued_sends = queued_sends - 1 \
        where queued_sends > 0 and id = any($1) returning *";
    const SQLITE: &str = "update subscription set queued_sends = queued_sends - 1 \
        where queued_sends > 0 and id in (select unhex(value) from json_each($1)) returning *";
    Ok(match conn {
        Conn::Postgres(c) => {
            sqlx::query_as(POSTGRES)
                .bind(ids)
                .fetch_all(&mut *c)
                .await?
        }
        Conn::Sqlite(c) => {
            sqlx::query_as(SQLITE)
                .bind(sqlite_lists::uuids(ids))
                .fetch_all(&mut *c)
                .await?
        }
    })
}
