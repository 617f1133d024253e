//! Events, callbacks, deliveries and their attempt log.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use uuid::Uuid;

use super::filter::{count_and_page_ordered, Condition};
use super::{on_conn, Conn, Page, Result, Slice};

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: i64,
    pub event_id: Uuid,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub object_type: String,
    pub object_id: String,
    pub sequence: i64,
    pub occurred_at: DateTime<Utc>,
    /// Kept as the stored text: reading it never parses it, so no stored value (however deep)
    /// can fail a list or a delivery pass.
    pub data: Json<Box<RawValue>>,
    pub spread_at: Option<DateTime<Utc>>,
}

/// An event to insert, its sequence already given.
#[derive(Debug, Clone)]
pub struct NewEventRow {
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub object_type: &'static str,
    pub object_id: String,
    pub sequence: i64,
    pub data: Value,
}

/// Takes `count` sequence numbers for each object; returns the last one taken per object. The
/// keys are locked in sorted order, so writers of overlapping objects cannot deadlock.
pub async fn take_sequences(
    conn: Conn<'_>,
    wanted: &[(&'static str, String, i64)],
) -> Result<HashMap<(String, String), i64>> {
    let mut wanted = wanted.to_vec();
    wanted.sort();
    let rows: Vec<(String, String, i64)> = match conn {
        Conn::Postgres(c) => {
            const SQL: &str = "insert into event_sequence (object_type, object_id, last_sequence) \
                select * from unnest($1::text[], $2::text[], $3::int8[]) \
                on conflict (object_type, object_id) \
                do update set last_sequence = event_sequence.last_sequence + excluded.last_sequence \
                returning object_type, object_id, last_sequence";
            let types: Vec<&str> = wanted.iter().map(|w| w.0).collect();
            let ids: Vec<&str> = wanted.iter().map(|w| w.1.as_str()).collect();
            let counts: Vec<i64> = wanted.iter().map(|w| w.2).collect();
            sqlx::query_as(SQL)
                .bind(types)
                .bind(ids)
                .bind(counts)
                .fetch_all(&mut *c)
                .await?
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(
                "insert into event_sequence (object_type, object_id, last_sequence) ",
            );
            qb.push_values(&wanted, |mut row, w| {
                row.push_bind(w.0).push_bind(w.1.clone()).push_bind(w.2);
            });
            qb.push(
                " on conflict (object_type, object_id) \
                 do update set last_sequence = last_sequence + excluded.last_sequence \
                 returning object_type, object_id, last_sequence",
            );
            qb.build_query_as().fetch_all(&mut *c).await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(t, id, last)| ((t, id), last))
        .collect())
}

pub async fn insert_events(
    conn: Conn<'_>,
    events: &[NewEventRow],
    now: DateTime<Utc>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    match conn {
        Conn::Postgres(c) => {
            const SQL: &str = "insert into event (event_id, type, object_type, object_id, sequence, occurred_at, data) \
                select e.id, e.type, e.object_type, e.object_id, e.sequence, $6, e.data::jsonb \
                from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $7::text[]) \
                    as e(id, type, object_type, object_id, sequence, data)";
            sqlx::query(SQL)
                .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
                .bind(events.iter().map(|e| e.event_type).collect::<Vec<_>>())
                .bind(events.iter().map(|e| e.object_type).collect::<Vec<_>>())
                .bind(
                    events
                        .iter()
                        .map(|e| e.object_id.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(events.iter().map(|e| e.sequence).collect::<Vec<_>>())
                .bind(now)
                .bind(
                    events
                        .iter()
                        .map(|e| e.data.to_string())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *c)
                .await?;
        }
        Conn::Sqlite(c) => {
            let mut qb = QueryBuilder::new(
                "insert into event (event_id, type, object_type, object_id, sequence, occurred_at, data) ",
            );
            qb.push_values(events, |mut row, e| {
                row.push_bind(e.event_id)
                    .push_bind(e.event_type)
                    .push_bind(e.object_type)
                    .push_bind(e.object_id.clone())
                    .push_bind(e.sequence)
                    .push_bind(now)
                    .push_bind(e.data.to_string());
            });
            qb.build().execute(&mut *c).await?;
        }
    }
    Ok(())
}

pub async fn list_events(
    conn: Conn<'_>,
    conditions: &[Condition],
    slice: Slice,
) -> Result<Page<EventRow>> {
    count_and_page_ordered(conn, "event", conditions, "id", slice).await
}

pub async fn get_event(conn: Conn<'_>, event_id: Uuid) -> Result<Option<EventRow>> {
    const SQL: &str = "select * from event where event_id = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(event_id).fetch_optional(&mut *c).await)?)
}

/// The statistics of a queue table lag far behind it (autovacuum has not caught up with a
/// million rows that came and went); keep the planner on ordered index walks, which skip dead
/// entries, whatever they say. `set local` ends with the caller's transaction.
async fn prefer_index_walks(c: &mut sqlx::PgConnection) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("set local enable_bitmapscan = off")
        .execute(&mut *c)
        .await?;
    sqlx::query("set local enable_seqscan = off")
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Fans out up to `limit` events that have not been spread to the active, unexpired callbacks
/// whose topic matches them, and marks them spread. A (event, callback) pair gets one delivery
/// however often this runs. A callback gets only events committed after it became active (see
/// [`activate_callback`]), and a user's callback URL gets one delivery of an event however many
/// of their subscriptions match it: the oldest matching subscription's (docs/events.md).
/// Returns (events spread, deliveries written).
pub async fn spread_events(conn: Conn<'_>, limit: i64, now: DateTime<Utc>) -> Result<(u64, u64)> {
    // `{c}` is the callback alias, `{after}` the dialect's "committed after its activation".
    const MATCHES: &str = "{c}.state = 'active' and {c}.lease_expires_at > $2 \
        and ({c}.topic_prefix = '' or lower(e.type) = {c}.topic_prefix \
             or substr(lower(e.type), 1, length({c}.topic_prefix) + 1) = {c}.topic_prefix || '.') \
        and {after}";
    const POSTGRES_AFTER: &str = "({c}.activated_snapshot is null or (e.txid is not null \
        and not pg_visible_in_snapshot(e.txid, {c}.activated_snapshot)))";
    const SQLITE_AFTER: &str =
        "({c}.activated_after_event is null or e.id > {c}.activated_after_event)";
    let after = match conn.backend() {
        super::Backend::Postgres => POSTGRES_AFTER,
        super::Backend::Sqlite => SQLITE_AFTER,
    };
    let matches = |alias: &str| MATCHES.replace("{after}", after).replace("{c}", alias);
    let fan_out = format!(
        "insert into delivery (event_id, callback_id, state, attempts, next_attempt_at, created_at, updated_at) \
        select e.id, c.id, 'pending', 0, $2, $2, $2 from event e join callback c on {} \
        where e.id >= $1 and e.id <= $3 and e.spread_at is null \
        and not exists (select 1 from callback o where o.callback_url = c.callback_url \
            and o.created_by = c.created_by \
            and (o.created_at < c.created_at or (o.created_at = c.created_at and o.id < c.id)) \
            and {}) \
        order by e.id, c.id \
        on conflict (event_id, callback_id) do nothing",
        matches("c"),
        matches("o"),
    );
    let fan_out = fan_out.as_str();
    const MARK: &str =
        "update event set spread_at = $2 where id >= $1 and id <= $3 and spread_at is null";
    Ok(match conn {
        Conn::Postgres(c) => {
            prefer_index_walks(&mut *c).await?;
            // Lock the batch so that other workers spread other events meanwhile.
            let ids: Vec<i64> = sqlx::query_scalar(
                "select id from event where spread_at is null order by id limit $1 for update skip locked",
            )
            .bind(limit)
            .fetch_all(&mut *c)
            .await?;
            let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
                return Ok((0, 0));
            };
            // The range may hold events another worker has locked; `spread_at is null` and
            // the conflict rule make fanning them out here too harmless.
            let fanned = sqlx::query(&fan_out.replace(
                "e.spread_at is null",
                "e.spread_at is null and e.id = any($4)",
            ))
            .bind(first)
            .bind(now)
            .bind(last)
            .bind(&ids)
            .execute(&mut *c)
            .await?
            .rows_affected();
            let marked = sqlx::query(&MARK.replace("spread_at is null", "id = any($4)"))
                .bind(first)
                .bind(now)
                .bind(last)
                .bind(&ids)
                .execute(&mut *c)
                .await?
                .rows_affected();
            (marked, fanned)
        }
        Conn::Sqlite(c) => {
            let range: (Option<i64>, Option<i64>) = sqlx::query_as(
                "select min(id), max(id) from (select id from event where spread_at is null order by id limit $1)",
            )
            .bind(limit)
            .fetch_one(&mut *c)
            .await?;
            let (Some(first), Some(last)) = range else {
                return Ok((0, 0));
            };
            let fanned = sqlx::query(fan_out)
                .bind(first)
                .bind(now)
                .bind(last)
                .execute(&mut *c)
                .await?
                .rows_affected();
            let marked = sqlx::query(MARK)
                .bind(first)
                .bind(now)
                .bind(last)
                .execute(&mut *c)
                .await?
                .rows_affected();
            (marked, fanned)
        }
    })
}

/// Marks events unspread again (from `since` on), so that the spreader passes over them anew.
pub async fn unspread_events(conn: Conn<'_>, since: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "update event set spread_at = null where occurred_at >= $1";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(since).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}

// ---- callbacks ----

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

// ---- deliveries ----

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: i64,
    pub callback_id: Uuid,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub locked_by: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery with its event's public id and type, as the API lists it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryView {
    #[sqlx(flatten)]
    pub delivery: DeliveryRow,
    pub event_uuid: Uuid,
    pub event_type: String,
}

/// Deliveries with their event's public id and type, and the owner of their callback (whom the
/// API shows them to).
const DELIVERY_VIEW: &str = "(select d.*, e.event_id as event_uuid, e.type as event_type, \
    cb.created_by as callback_owner from delivery d join event e on e.id = d.event_id \
    join callback cb on cb.id = d.callback_id) v";

pub async fn list_deliveries(
    conn: Conn<'_>,
    conditions: &[Condition],
    slice: Slice,
) -> Result<Page<DeliveryView>> {
    count_and_page_ordered(conn, DELIVERY_VIEW, conditions, "id desc", slice).await
}

pub async fn get_delivery(conn: Conn<'_>, id: i64) -> Result<Option<DeliveryView>> {
    let sql = format!("select * from {DELIVERY_VIEW} where id = $1");
    Ok(on_conn!(conn, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut *c).await)?)
}

#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

pub async fn list_attempts(conn: Conn<'_>, delivery_id: i64) -> Result<Vec<AttemptRow>> {
    const SQL: &str = "select * from delivery_attempt where delivery_id = $1 order by id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(delivery_id).fetch_all(&mut *c).await)?)
}

/// Puts one delivery back in the queue with a fresh set of attempts, unless it is pending or
/// running already. Returns whether it was re-queued.
pub async fn requeue_delivery(conn: Conn<'_>, id: i64, now: DateTime<Utc>) -> Result<bool> {
    const SQL: &str = "update delivery set state = 'pending', attempts = 0, next_attempt_at = $2, \
        locked_until = null, locked_by = null, updated_at = $2 \
        where id = $1 and state in ('failed', 'succeeded')";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected() > 0))?,
    )
}

/// Re-queues a callback's failed deliveries of events that occurred in [since, until).
pub async fn recover_deliveries(
    conn: Conn<'_>,
    callback_id: Uuid,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<u64> {
    const SQL: &str = "update delivery set state = 'pending', attempts = 0, next_attempt_at = $4, \
        locked_until = null, locked_by = null, updated_at = $4 \
        where callback_id = $1 and state = 'failed' and event_id in \
            (select id from event where occurred_at >= $2 and ($3 is null or occurred_at < $3))";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(callback_id).bind(since).bind(until).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}

/// A claimed delivery with what its POST needs.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryWork {
    pub id: i64,
    pub attempts: i32,
    pub callback_id: Uuid,
    pub callback_url: String,
    pub topic: String,
    pub secret: Option<String>,
    pub batch_size: i32,
    pub event_uuid: Uuid,
    pub event_type: String,
    pub object_type: String,
    pub object_id: String,
    pub sequence: i64,
    pub occurred_at: DateTime<Utc>,
    /// As in [`EventRow::data`].
    pub data: Json<Box<RawValue>>,
}

/// Whether an event waits to be spread or a delivery to be claimed, read without taking
/// SQLite's write lock (see `jobs::any_claimable`); the same conditions as the SQLite claim.
pub async fn any_delivery_work(conn: Conn<'_>, now: DateTime<Utc>) -> Result<bool> {
    const SQL: &str = "select exists (select 1 from event where spread_at is null) \
        or exists (select 1 from delivery where state = 'pending' and next_attempt_at <= $1 \
            and callback_id in (select id from callback where state in ('active', 'expired'))) \
        or exists (select 1 from delivery where state = 'running' and locked_until < $1 \
            and callback_id in (select id from callback where state in ('active', 'expired')))";
    Ok(on_conn!(conn, c => sqlx::query_scalar::<_, bool>(SQL).bind(now).fetch_one(&mut *c).await)?)
}

/// Claims up to `limit` due deliveries of callbacks that take deliveries (active, or expired
/// with a backlog), and deliveries whose worker's lease ran out.
pub async fn claim_deliveries(
    conn: Conn<'_>,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DeliveryWork>> {
    // Deliveries of callbacks that do not take them (disabled, gone, unsubscribed) wait. Those
    // callbacks are few: read them first and pass them as an array, so that the claim is a
    // plain ordered walk of the partial index. A join or an `any(…)` over the callback index
    // let the planner pick a bitmap scan, which cannot skip the dead entries every claimed
    // row leaves at the head of the index and cost seconds per claim at 200,000 deliveries.
    const PAUSED: &str = "select id from callback where state not in ('active', 'expired')";
    // `id = any(array(…))` is a primary-key lookup whatever the planner believes; `id in
    // (select …)` let a generic plan cached while the table was empty become a nested loop
    // over the whole table (a minute per claim at 200,000 rows).
    const POSTGRES: &str = "with due as materialized ( \
            select id from delivery where state = 'pending' and next_attempt_at <= $3 \
                and callback_id <> all($5) \
            order by next_attempt_at, id limit $4 for update skip locked), \
        lost as materialized ( \
            select id from delivery where state = 'running' and locked_until < $3 \
                and callback_id <> all($5) \
            order by locked_until limit $4 for update skip locked) \
        update delivery set state = 'running', attempts = attempts + 1, locked_by = $1, \
            locked_until = $2, updated_at = $3 \
        where id = any(array(select id from due) || array(select id from lost)) \
        returning id";
    const SQLITE: &str =
        "update delivery set state = 'running', attempts = attempts + 1, locked_by = $1, \
            locked_until = $2, updated_at = $3 \
        where id in (select id from delivery where state = 'pending' and next_attempt_at <= $3 \
                and callback_id in (select id from callback where state in ('active', 'expired')) \
                order by next_attempt_at, id limit $4) \
           or id in (select id from delivery where state = 'running' and locked_until < $3 \
                and callback_id in (select id from callback where state in ('active', 'expired')) \
                order by locked_until limit $4) \
        returning id";
    const WORK: &str = "select d.id, d.attempts, d.callback_id, c.callback_url, c.topic, c.secret, c.batch_size, \
            e.event_id as event_uuid, e.type as event_type, e.object_type, e.object_id, e.sequence, e.occurred_at, e.data \
        from delivery d join callback c on c.id = d.callback_id join event e on e.id = d.event_id \
        where d.id in (";
    match conn {
        Conn::Postgres(c) => {
            let paused: Vec<Uuid> = sqlx::query_scalar(PAUSED).fetch_all(&mut *c).await?;
            prefer_index_walks(&mut *c).await?;
            let claimed: Vec<i64> = sqlx::query_scalar(POSTGRES)
                .bind(worker)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .bind(paused)
                .fetch_all(&mut *c)
                .await?;
            if claimed.is_empty() {
                return Ok(Vec::new());
            }
            let sql = WORK.replace("d.id in (", "d.id = any($1) order by d.callback_id, e.id");
            Ok(sqlx::query_as(&sql)
                .bind(claimed)
                .fetch_all(&mut *c)
                .await?)
        }
        Conn::Sqlite(c) => {
            let claimed: Vec<i64> = sqlx::query_scalar(SQLITE)
                .bind(worker)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            if claimed.is_empty() {
                return Ok(Vec::new());
            }
            let mut qb = QueryBuilder::new(WORK);
            let mut ids = qb.separated(", ");
            for id in &claimed {
                ids.push_bind(*id);
            }
            qb.push(") order by d.callback_id, e.id");
            Ok(qb.build_query_as().fetch_all(&mut *c).await?)
        }
    }
}

/// The outcome of one attempt of one delivery.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub delivery_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub response_body: Option<String>,
    pub error: Option<String>,
    /// `succeeded`, `pending` (with `next_attempt_at`) or `failed`.
    pub state: &'static str,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Records attempts made under `worker`'s lease: logs each and moves its delivery on. An
/// attempt whose lease was lost meanwhile is logged but leaves the delivery to its new holder.
pub async fn record_attempts(
    conn: Conn<'_>,
    worker: &str,
    outcomes: &[AttemptOutcome],
    now: DateTime<Utc>,
) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    on_conn!(conn, c => {
        // 1000 rows of 7 values stay under SQLite's limit of bound parameters.
        for chunk in outcomes.chunks(1000) {
            let mut log = QueryBuilder::new(
                "insert into delivery_attempt (delivery_id, attempted_at, status_code, duration_ms, response_body, error, next_attempt_at) ",
            );
            log.push_values(chunk, |mut row, o| {
                row.push_bind(o.delivery_id)
                    .push_bind(o.attempted_at)
                    .push_bind(o.status_code)
                    .push_bind(o.duration_ms)
                    .push_bind(o.response_body.clone())
                    .push_bind(o.error.clone())
                    .push_bind(o.next_attempt_at);
            });
            log.build().execute(&mut *c).await?;
        }

        let mut succeeded: std::collections::BTreeMap<Option<i32>, Vec<i64>> = Default::default();
        for o in outcomes.iter().filter(|o| o.state == "succeeded") {
            succeeded.entry(o.status_code).or_default().push(o.delivery_id);
        }
        for (status, ids) in &succeeded {
            for chunk in ids.chunks(1000) {
                let mut done = QueryBuilder::new(
                    "update delivery set state = 'succeeded', locked_until = null, last_error = null, delivered_at = ",
                );
                done.push_bind(now).push(", updated_at = ").push_bind(now);
                done.push(", last_status_code = ").push_bind(*status);
                done.push(" where state = 'running' and locked_by = ").push_bind(worker);
                done.push(" and id in (");
                let mut list = done.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                done.push(")");
                done.build().execute(&mut *c).await?;
            }
        }
        for o in outcomes.iter().filter(|o| o.state != "succeeded") {
            sqlx::query(
                "update delivery set state = $3, next_attempt_at = coalesce($4, next_attempt_at), \
                 locked_until = null, last_status_code = $5, last_error = $6, updated_at = $7 \
                 where id = $1 and state = 'running' and locked_by = $2",
            )
            .bind(o.delivery_id)
            .bind(worker)
            .bind(o.state)
            .bind(o.next_attempt_at)
            .bind(o.status_code)
            .bind(o.error.clone())
            .bind(now)
            .execute(&mut *c)
            .await?;
        }
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

/// Refreshes the planner statistics of the event and delivery tables (PostgreSQL; SQLite's
/// planner needs none for these queries).
pub async fn refresh_statistics(conn: Conn<'_>) -> Result<()> {
    if let Conn::Postgres(c) = conn {
        sqlx::query("analyze delivery, event")
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// How many deliveries are pending, running and failed (succeeded ones are not counted: there
/// are millions).
pub async fn delivery_depth(conn: Conn<'_>) -> Result<Vec<(String, i64)>> {
    const SQL: &str = "select state, count(*) from delivery \
        where state in ('pending', 'running', 'failed') group by state order by state";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}
