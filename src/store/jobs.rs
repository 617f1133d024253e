//! SQL for the job queue.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::filter::count_and_page_ordered;
use super::filter::{Condition, Value as FilterValue};
use super::{on_conn, sqlite_lists, Conn, Page, Result, Slice};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub task_id: Uuid,
    pub kind: String,
    pub payload: Json<Value>,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub dedupe_key: Option<String>,
    pub subscription_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub failed_at: Option<DateTime<Utc>>,
    /// Why the job waits past the time it was due (a send outside its window), if it does.
    pub deferred_reason: Option<String>,
}

/// A job to insert.
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: &'a Value,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub dedupe_key: Option<&'a str>,
    pub subscription_id: Option<Uuid>,
}

/// Inserts the job; `false` when an equal unfinished job exists (same dedupe key, or a send for
/// the same subscription).
pub async fn insert_job(conn: Conn<'_>, job: &NewJob<'_>, now: DateTime<Utc>) -> Result<bool> {
    const SQL: &str =
        "insert into job (task_id, kind, payload, state, attempts, max_attempts, run_at, \
        dedupe_key, subscription_id, created_at, updated_at) \
        values ($1, $2, $3, 'pending', 0, $4, $5, $6, $7, $8, $8) \
        on conflict do nothing";
    let payload = Json(job.payload);
    let done = on_conn!(conn, c => sqlx::query(SQL)
        .bind(Uuid::new_v4()).bind(job.kind).bind(payload).bind(job.max_attempts).bind(job.run_at)
        .bind(job.dedupe_key).bind(job.subscription_id).bind(now)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// Where a claim starts in the queue of due jobs: after the job at this place in its
/// `(run_at, id)` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueuePosition {
    pub run_at: DateTime<Utc>,
    pub id: i64,
}

/// Claims up to `limit` due jobs for `worker` until `lease_until`. Each claim counts as an
/// attempt. On PostgreSQL, `skip locked` lets any number of workers claim at once without
/// taking the same job; SQLite's write lock serialises the claims instead.
///
/// Pending jobs whose time has come, oldest first (with `after`, only those past that place in
/// the queue), and running jobs whose worker let the lease expire (it died). On PostgreSQL
/// every claimed job leaves a dead entry at the head of `job_pending_idx` until a vacuum; a
/// claim from the head steps over all of them, so in a tick of a million sends the late claims
/// each walked thousands of index pages. A worker therefore starts where its last claim ended,
/// and claims from the head now and then for the jobs that landed behind it
/// (`crate::jobs::ClaimCursor`). Every claim looks for expired leases, so a dead worker's jobs
/// are taken over as soon as their lease ends, as before.
///
/// The two kinds are picked in their own materialised subquery, each walking its
/// own partial index, so a claim costs the same with ten pending jobs or a million (an
/// `IN (... limit ...)` or an `OR` of the two made PostgreSQL rescan or sort the whole queue per
/// claim).
pub async fn claim_jobs(
    conn: Conn<'_>,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
    after: Option<QueuePosition>,
) -> Result<Vec<JobRow>> {
    // The pending part, with or without the cursor's `(run_at, id) > ($5, $6)`.
    macro_rules! due {
        ($after:literal) => {
            concat!(
                "select id from job where state = 'pending' and run_at <= $3",
                $after,
                " order by run_at, id limit $4"
            )
        };
    }
    const LOST: &str = "select id from job where state = 'running' and locked_until < $3 \
        order by locked_until limit $4";
    const UPDATE: &str = "update job set state = 'running', attempts = attempts + 1, \
        locked_by = $1, locked_until = $2, updated_at = $3";
    // `id = any(array(…))` keeps the update a primary-key lookup whatever the planner
    // believes of a queue table's size (see `claim_deliveries`).
    let sql = |due: &str| match &conn {
        Conn::Postgres(_) => format!(
            "with due as materialized ({due} for update skip locked), \
            lost as materialized ({LOST} for update skip locked) \
            {UPDATE} where id = any(array(select id from due) || array(select id from lost)) \
            returning *"
        ),
        Conn::Sqlite(_) => {
            format!("{UPDATE} where id in ({due}) or id in ({LOST}) returning *")
        }
    };
    let sql = match after {
        None => sql(due!("")),
        Some(_) => sql(due!(" and (run_at, id) > ($5, $6)")),
    };
    let rows = on_conn!(conn, c => {
        let query = sqlx::query_as(&sql).bind(worker).bind(lease_until).bind(now).bind(limit);
        match after {
            Some(p) => query.bind(p.run_at).bind(p.id).fetch_all(&mut *c).await?,
            None => query.fetch_all(&mut *c).await?,
        }
    });
    Ok(rows)
}

/// Whether a claim would find anything, read without taking SQLite's write lock: an idle
/// worker's claims otherwise hold that single lock so often that another process (`sbm secrets
/// rotate`, an import) waits behind them.
pub async fn any_claimable(conn: Conn<'_>, now: DateTime<Utc>) -> Result<bool> {
    const SQL: &str = "select exists (select 1 from job where state = 'pending' and run_at <= $1) \
        or exists (select 1 from job where state = 'running' and locked_until < $1)";
    Ok(on_conn!(conn, c => sqlx::query_scalar::<_, bool>(SQL).bind(now).fetch_one(&mut *c).await)?)
}

/// Refreshes the planner's statistics of the job table after a large insert, so that the
/// claims that follow are planned for the queue's real size (PostgreSQL; SQLite needs none).
pub async fn refresh_statistics(conn: Conn<'_>) -> Result<()> {
    if let Conn::Postgres(c) = conn {
        sqlx::query("analyze job").execute(&mut *c).await?;
    }
    Ok(())
}

/// Removes a finished job, if `worker` still holds it. `false` means the lease was lost and
/// another worker has (or will have) the job.
pub async fn finish_job(conn: Conn<'_>, id: i64, worker: &str) -> Result<bool> {
    const SQL: &str = "delete from job where id = $1 and state = 'running' and locked_by = $2";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(worker).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// Records how far a running job has come (its new payload) and renews its lease, if `worker`
/// still holds it; `false` means the lease was lost.
pub async fn record_progress(
    conn: Conn<'_>,
    id: i64,
    worker: &str,
    payload: &Value,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    const SQL: &str = "update job set payload = $3, locked_until = $4, updated_at = $5 \
        where id = $1 and state = 'running' and locked_by = $2";
    let payload = Json(payload);
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(worker).bind(payload)
        .bind(lease_until).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// Puts a job back to wait until `run_at`, recording why it failed this time.
pub async fn retry_job(
    conn: Conn<'_>,
    id: i64,
    worker: &str,
    run_at: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    const SQL: &str = "update job set state = 'pending', run_at = $3, last_error = $4, locked_by = null, \
        locked_until = null, updated_at = $5 where id = $1 and state = 'running' and locked_by = $2";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(worker).bind(run_at).bind(error).bind(now)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// Marks a job failed for good (until someone re-queues it).
pub async fn fail_job(
    conn: Conn<'_>,
    id: i64,
    worker: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    const SQL: &str = "update job set state = 'failed', last_error = $3, failed_at = $4, locked_by = null, \
        locked_until = null, updated_at = $4 where id = $1 and state = 'running' and locked_by = $2";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(worker).bind(error).bind(now)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

pub async fn list_failed_jobs(conn: Conn<'_>, slice: Slice) -> Result<Page<JobRow>> {
    let failed = [Condition::eq("state", FilterValue::Text("failed".into()))];
    count_and_page_ordered(conn, "job", &failed, "id", slice).await
}

/// Puts failed jobs back in the queue with fresh attempts; returns how many. Of several failed
/// jobs that do the same thing (one dedupe key, or sends to one subscription) only the newest
/// goes back, and none while an equal unfinished job exists (that one does the work).
///
/// They become due `batch` at a time, `spacing` apart (the first batch at `now`), so that
/// re-queueing thousands at once cannot swamp the workers and the database with them.
pub async fn requeue_failed_jobs(
    conn: Conn<'_>,
    now: DateTime<Utc>,
    batch: usize,
    spacing: chrono::Duration,
) -> Result<u64> {
    const CHOOSE: &str = "select id from job where state = 'failed' \
        and id in (select max(id) from job where state = 'failed' group by kind, dedupe_key, \
            case when kind = 'send_message' then subscription_id end, \
            case when dedupe_key is null and kind <> 'send_message' then id end) \
        and not exists (select 1 from job other where other.state in ('pending', 'running') \
            and ((job.dedupe_key is not null and other.dedupe_key = job.dedupe_key) \
              or (job.kind = 'send_message' and other.kind = 'send_message' \
                  and other.subscription_id = job.subscription_id))) \
        order by id";
    const REQUEUE: &str = "update job set state = 'pending', attempts = 0, run_at = ";
    Ok(on_conn!(conn, c => {
        let ids: Vec<i64> = sqlx::query_scalar(CHOOSE).fetch_all(&mut *c).await?;
        let mut requeued = 0;
        for (n, chunk) in ids.chunks(batch.max(1)).enumerate() {
            let run_at = now + spacing * n as i32;
            let mut qb = sqlx::QueryBuilder::new(REQUEUE);
            qb.push_bind(run_at);
            qb.push(", failed_at = null, updated_at = ");
            qb.push_bind(now);
            qb.push(" where state = 'failed' and id in (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(")");
            requeued += qb.build().execute(&mut *c).await?.rows_affected();
        }
        requeued
    }))
}

/// How many jobs are in each state, and when the oldest pending one became due.
pub async fn queue_depth(conn: Conn<'_>) -> Result<Vec<(String, i64)>> {
    const SQL: &str = "select state, count(*) from job group by state order by state";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

/// When the longest-waiting due job became due.
pub async fn oldest_pending(conn: Conn<'_>) -> Result<Option<DateTime<Utc>>> {
    const SQL: &str = "select min(run_at) from job where state = 'pending'";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).fetch_one(&mut *c).await)?)
}

/// Removes finished jobs that `worker` still holds; returns the ids it removed.
pub async fn finish_jobs(conn: Conn<'_>, ids: &[i64], worker: &str) -> Result<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match conn {
        Conn::Postgres(c) => {
            sqlx::query_scalar(
                "delete from job where state = 'running' and locked_by = $1 and id = any($2) \
                 returning id",
            )
            .bind(worker)
            .bind(ids)
            .fetch_all(&mut *c)
            .await?
        }
        Conn::Sqlite(c) => {
            sqlx::query_scalar(
                "delete from job where state = 'running' and locked_by = $1 \
                 and id in (select value from json_each($2)) returning id",
            )
            .bind(worker)
            .bind(sqlite_lists::ints(ids))
            .fetch_all(&mut *c)
            .await?
        }
    })
}

/// Puts one failed job back in the queue with fresh attempts, unless an equal unfinished job
/// exists (as [`requeue_failed_jobs`]); returns whether it went back.
pub async fn requeue_failed_job(conn: Conn<'_>, id: i64, now: DateTime<Utc>) -> Result<bool> {
    const SQL: &str = "update job set state = 'pending', attempts = 0, run_at = $2, failed_at = null, updated_at = $2 \
        where id = $1 and state = 'failed' \
        and not exists (select 1 from job other where other.state in ('pending', 'running') \
            and ((job.dedupe_key is not null and other.dedupe_key = job.dedupe_key) \
              or (job.kind = 'send_message' and other.kind = 'send_message' \
                  and other.subscription_id = job.subscription_id)))";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}
