//! SQL for the built-in scheduler: ticks, and enqueueing a range of a schedule's sends at once.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on_conn, Conn, Result};
use crate::model::content::Schedule;

pub async fn all_schedules(conn: Conn<'_>) -> Result<Vec<Schedule>> {
    const SQL: &str = "select * from schedule order by id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

/// The latest minute the schedule fired at in the zone, if it ever did.
pub async fn last_tick(
    conn: Conn<'_>,
    schedule_id: i64,
    zone: &str,
) -> Result<Option<DateTime<Utc>>> {
    const SQL: &str =
        "select max(minute) from schedule_tick where schedule_id = $1 and timezone = $2";
    Ok(
        on_conn!(conn, c => sqlx::query_scalar(SQL).bind(schedule_id).bind(zone).fetch_one(&mut *c).await)?,
    )
}

/// The latest minute the schedule fired at in any zone.
pub async fn last_tick_any_zone(conn: Conn<'_>, schedule_id: i64) -> Result<Option<DateTime<Utc>>> {
    const SQL: &str = "select max(minute) from schedule_tick where schedule_id = $1";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(schedule_id).fetch_one(&mut *c).await)?)
}

/// Claims the tick of the zone; `false` when another worker (or an earlier run) already fired it.
pub async fn claim_tick(
    conn: Conn<'_>,
    schedule_id: i64,
    zone: &str,
    minute: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    const SQL: &str =
        "insert into schedule_tick (schedule_id, timezone, minute, enqueued, fired_at) \
        values ($1, $2, $3, 0, $4) on conflict (schedule_id, timezone, minute) do nothing";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(schedule_id).bind(zone).bind(minute).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

pub async fn record_tick_enqueued(
    conn: Conn<'_>,
    schedule_id: i64,
    zone: &str,
    minute: DateTime<Utc>,
    enqueued: i64,
) -> Result<()> {
    const SQL: &str = "update schedule_tick set enqueued = $4 \
        where schedule_id = $1 and timezone = $2 and minute = $3";
    on_conn!(conn, c => sqlx::query(SQL).bind(schedule_id).bind(zone).bind(minute).bind(enqueued).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The zones that a schedule's live subscriptions name as their own, in order. A loose index
/// scan: one index probe per zone, however many subscriptions there are.
pub async fn subscription_zones(conn: Conn<'_>, schedule_id: i64) -> Result<Vec<String>> {
    const SQL: &str = "with recursive zones(tz) as ( \
            select min(timezone) from subscription \
            where schedule_id = $1 and active and not completed and timezone is not null \
          union all \
            select (select min(timezone) from subscription \
                where schedule_id = $1 and active and not completed and timezone > zones.tz) \
            from zones where zones.tz is not null) \
        select tz from zones where tz is not null";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(schedule_id).fetch_all(&mut *c).await)?)
}

/// Which of a schedule's subscribers a tick (or an on-request fire) sends to, by zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zones<'a> {
    /// Every zone: the schedule fired on request.
    All,
    /// The subscribers that name this zone.
    Only(&'a str),
    /// The subscribers that name this zone or none (it is then the schedule's own).
    OrUnzoned(&'a str),
}

/// An inclusive range of subscription ids: a part of a tick. Ids compare as 16 bytes on both
/// engines (PostgreSQL's `uuid` order; SQLite's blobs), which is the order of their `u128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub first: Uuid,
    pub last: Uuid,
}

impl IdRange {
    pub const ALL: IdRange = IdRange {
        first: Uuid::nil(),
        last: Uuid::max(),
    };
}

/// The INSERT … SELECT of [`enqueue_sends`], for one engine and one zone condition (`$6`).
///
/// A send already waiting or running for the subscription is skipped. On PostgreSQL the conflict
/// names `job_send_once`, so that each row is checked against that index only and not against
/// every unique index of the table (−8 % of a 200,000-row tick's statement). SQLite has no UUID
/// function; 16 random bytes are a valid (if unversioned) task id.
///
/// The jobs are written in subscription id order, so their ids (and so the order the workers
/// claim them in) follow it. Each send then touches the indexes keyed by subscription
/// (`subscription_pkey`, `job_send_once`, the event sequence indexes) at the place the send
/// before it left, not at a random leaf: the working set stays small however many subscribers
/// there are, and the rate no longer falls as N grows past what `shared_buffers` holds
/// (docs/benchmarks.md, "Issue 19: sends in subscription order").
macro_rules! send_enqueue {
    (postgres, $zone:expr) => {
        send_enqueue!(@ "gen_random_uuid()", "::jsonb", $zone,
            " on conflict (subscription_id) where kind = 'send_message' \
                and state in ('pending', 'running') do nothing")
    };
    (sqlite, $zone:expr) => {
        send_enqueue!(@ "randomblob(16)", "", $zone, " on conflict do nothing")
    };
    (@ $task_id:literal, $payload_type:literal, $zone:expr, $conflict:literal) => {
        concat!(
            "insert into job (task_id, kind, payload, state, attempts, max_attempts, run_at, \
                subscription_id, created_at, updated_at) \
            select ",
            $task_id,
            ", 'send_message', '{\"kind\": \"send_message\", \"resend\": false}'",
            $payload_type,
            ", 'pending', 0, $2, $3, s.id, $3, $3 \
            from subscription s \
            where s.schedule_id = $1 and s.active and not s.completed and s.process_status = 0 \
                and s.id >= $4 and s.id <= $5",
            $zone,
            " order by s.id",
            $conflict
        )
    };
}

/// The zone conditions of [`send_enqueue`] and [`due_count`], on parameter `$n`.
macro_rules! zone_condition {
    (only, $n:literal) => {
        concat!(" and s.timezone = $", $n)
    };
    (or_unzoned, $n:literal) => {
        concat!(" and (s.timezone is null or s.timezone = $", $n, ")")
    };
}

/// Writes a send job for every active, incomplete, ready subscription on the schedule in
/// `zones` whose id is in `range`, in one statement: the rows never pass through sbm.
/// Subscriptions that already have a send waiting or running are skipped (the `job_send_once`
/// index). Returns how many jobs were written.
///
/// The rows are what `jobs::enqueue` writes for `Job::SendMessage`, except that the payload
/// leaves the subscription id to the row's own column (the worker reads it from there), which
/// keeps a million-row tick from building a million JSON documents.
pub async fn enqueue_sends(
    conn: Conn<'_>,
    schedule_id: i64,
    zones: Zones<'_>,
    range: IdRange,
    max_attempts: i32,
    now: DateTime<Utc>,
) -> Result<u64> {
    let (sql, zone) = match (&conn, zones) {
        (Conn::Postgres(_), Zones::All) => (send_enqueue!(postgres, ""), None),
        (Conn::Postgres(_), Zones::Only(zone)) => (
            send_enqueue!(postgres, zone_condition!(only, "6")),
            Some(zone),
        ),
        (Conn::Postgres(_), Zones::OrUnzoned(zone)) => (
            send_enqueue!(postgres, zone_condition!(or_unzoned, "6")),
            Some(zone),
        ),
        (Conn::Sqlite(_), Zones::All) => (send_enqueue!(sqlite, ""), None),
        (Conn::Sqlite(_), Zones::Only(zone)) => (
            send_enqueue!(sqlite, zone_condition!(only, "6")),
            Some(zone),
        ),
        (Conn::Sqlite(_), Zones::OrUnzoned(zone)) => (
            send_enqueue!(sqlite, zone_condition!(or_unzoned, "6")),
            Some(zone),
        ),
    };
    Ok(on_conn!(conn, c => {
        let query = sqlx::query(sql)
            .bind(schedule_id).bind(max_attempts).bind(now).bind(range.first).bind(range.last);
        match zone {
            Some(zone) => query.bind(zone).execute(&mut *c).await,
            None => query.execute(&mut *c).await,
        }
    }?.rows_affected()))
}

/// How many subscriptions [`enqueue_sends`] would consider over all ids: a tick's size, to
/// decide whether it is written at once or in parts.
pub async fn due_count(conn: Conn<'_>, schedule_id: i64, zones: Zones<'_>) -> Result<i64> {
    macro_rules! count {
        ($zone:expr) => {
            concat!(
                "select count(*) from subscription s \
                where s.schedule_id = $1 and s.active and not s.completed \
                    and s.process_status = 0",
                $zone
            )
        };
    }
    let (sql, zone) = match zones {
        Zones::All => (count!(""), None),
        Zones::Only(zone) => (count!(zone_condition!(only, "2")), Some(zone)),
        Zones::OrUnzoned(zone) => (count!(zone_condition!(or_unzoned, "2")), Some(zone)),
    };
    Ok(on_conn!(conn, c => {
        let query = sqlx::query_scalar(sql).bind(schedule_id);
        match zone {
            Some(zone) => query.bind(zone).fetch_one(&mut *c).await,
            None => query.fetch_one(&mut *c).await,
        }
    }?))
}

/// Adds a part's sends to its tick's count.
pub async fn add_tick_enqueued(
    conn: Conn<'_>,
    schedule_id: i64,
    zone: &str,
    minute: DateTime<Utc>,
    enqueued: i64,
) -> Result<()> {
    const SQL: &str = "update schedule_tick set enqueued = enqueued + $4 \
        where schedule_id = $1 and timezone = $2 and minute = $3";
    on_conn!(conn, c => sqlx::query(SQL).bind(schedule_id).bind(zone).bind(minute).bind(enqueued).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}
