//! Deliveries of events to callbacks, their claim and their attempt log.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use uuid::Uuid;

use super::dialect::prefer_index_walks;
use super::filter::{count_and_page_ordered, Condition};
use super::{on_conn, sqlite_lists, Conn, Page, Result, Slice};

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

// Deliveries of callbacks that do not take them (disabled, gone, unsubscribed) wait. Those
// callbacks are few: read them first and pass them as an array, so that the claim is a
// plain ordered walk of the partial index. A join or an `any(…)` over the callback index
// let the planner pick a bitmap scan, which cannot skip the dead entries every claimed
// row leaves at the head of the index and cost seconds per claim at 200,000 deliveries.
const PAUSED_CALLBACKS: &str = "select id from callback where state not in ('active', 'expired')";
// `id = any(array(…))` is a primary-key lookup whatever the planner believes; `id in
// (select …)` let a generic plan cached while the table was empty become a nested loop
// over the whole table (a minute per claim at 200,000 rows).
const CLAIM_POSTGRES: &str = "with due as materialized ( \
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
const CLAIM_SQLITE: &str =
    "update delivery set state = 'running', attempts = attempts + 1, locked_by = $1, \
        locked_until = $2, updated_at = $3 \
    where id in (select id from delivery where state = 'pending' and next_attempt_at <= $3 \
            and callback_id in (select id from callback where state in ('active', 'expired')) \
            order by next_attempt_at, id limit $4) \
       or id in (select id from delivery where state = 'running' and locked_until < $3 \
            and callback_id in (select id from callback where state in ('active', 'expired')) \
            order by locked_until limit $4) \
    returning id";
const CLAIMED_WORK: &str = "select d.id, d.attempts, d.callback_id, c.callback_url, c.topic, c.secret, c.batch_size, \
        e.event_id as event_uuid, e.type as event_type, e.object_type, e.object_id, e.sequence, e.occurred_at, e.data \
    from delivery d join callback c on c.id = d.callback_id join event e on e.id = d.event_id \
    where d.id in (";

/// Claims up to `limit` due deliveries of callbacks that take deliveries (active, or expired
/// with a backlog), and deliveries whose worker's lease ran out.
pub async fn claim_deliveries(
    conn: Conn<'_>,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DeliveryWork>> {
    match conn {
        Conn::Postgres(c) => {
            let paused: Vec<Uuid> = sqlx::query_scalar(PAUSED_CALLBACKS)
                .fetch_all(&mut *c)
                .await?;
            prefer_index_walks(&mut *c).await?;
            let claimed: Vec<i64> = sqlx::query_scalar(CLAIM_POSTGRES)
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
            let sql =
                CLAIMED_WORK.replace("d.id in (", "d.id = any($1) order by d.callback_id, e.id");
            Ok(sqlx::query_as(&sql)
                .bind(claimed)
                .fetch_all(&mut *c)
                .await?)
        }
        Conn::Sqlite(c) => {
            let claimed: Vec<i64> = sqlx::query_scalar(CLAIM_SQLITE)
                .bind(worker)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            if claimed.is_empty() {
                return Ok(Vec::new());
            }
            let sql = format!(
                "{CLAIMED_WORK}select value from json_each($1)) order by d.callback_id, e.id"
            );
            Ok(sqlx::query_as(&sql)
                .bind(sqlite_lists::ints(&claimed))
                .fetch_all(&mut *c)
                .await?)
        }
    }
}

const ATTEMPT_LOG: &str = "insert into delivery_attempt (delivery_id, attempted_at, status_code, \
    duration_ms, response_body, error, next_attempt_at) ";
const SUCCEEDED: &str = "update delivery set state = 'succeeded', locked_until = null, \
    last_error = null, delivered_at = ";

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
    let mut succeeded: std::collections::BTreeMap<Option<i32>, Vec<i64>> = Default::default();
    for o in outcomes.iter().filter(|o| o.state == "succeeded") {
        succeeded
            .entry(o.status_code)
            .or_default()
            .push(o.delivery_id);
    }
    let conn = match conn {
        Conn::Postgres(c) => {
            // 1000 rows of 7 values stay under the limit of bound parameters.
            for chunk in outcomes.chunks(1000) {
                let mut log = QueryBuilder::new(ATTEMPT_LOG);
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
            for (status, ids) in &succeeded {
                sqlx::query(&format!(
                    "{SUCCEEDED}$1, updated_at = $1, last_status_code = $2 \
                     where state = 'running' and locked_by = $3 and id = any($4)"
                ))
                .bind(now)
                .bind(*status)
                .bind(worker)
                .bind(ids)
                .execute(&mut *c)
                .await?;
            }
            Conn::Postgres(c)
        }
        Conn::Sqlite(c) => {
            let rows: Vec<_> = outcomes
                .iter()
                .map(|o| {
                    let at = sqlite_lists::time(o.attempted_at);
                    let next = o.next_attempt_at.map(sqlite_lists::time);
                    (
                        o.delivery_id,
                        at,
                        o.status_code,
                        o.duration_ms,
                        &o.response_body,
                        &o.error,
                        next,
                    )
                })
                .collect();
            sqlx::query(&format!(
                "{ATTEMPT_LOG}select value ->> 0, value ->> 1, value ->> 2, value ->> 3, \
                 value ->> 4, value ->> 5, value ->> 6 from json_each($1)"
            ))
            .bind(sqlite_lists::rows(&rows))
            .execute(&mut *c)
            .await?;
            for (status, ids) in &succeeded {
                sqlx::query(&format!(
                    "{SUCCEEDED}$1, updated_at = $1, last_status_code = $2 \
                     where state = 'running' and locked_by = $3 \
                     and id in (select value from json_each($4))"
                ))
                .bind(now)
                .bind(*status)
                .bind(worker)
                .bind(sqlite_lists::ints(ids))
                .execute(&mut *c)
                .await?;
            }
            Conn::Sqlite(c)
        }
    };
    on_conn!(conn, c => {
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
