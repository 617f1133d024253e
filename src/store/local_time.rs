//! SQL for local time: a subscription's waiting send, and deferring a send to its window.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::jobs::JobRow;
use super::{on_conn, Conn, Result};

/// The subscription's unfinished send (waiting or running), if it has one; there is at most
/// one (the `job_send_once` index).
pub async fn unfinished_send(conn: Conn<'_>, subscription_id: Uuid) -> Result<Option<JobRow>> {
    const SQL: &str = "select * from job where kind = 'send_message' and subscription_id = $1 \
        and state in ('pending', 'running') order by id limit 1";
    Ok(
        on_conn!(conn, c => sqlx::query_as(SQL).bind(subscription_id).fetch_optional(&mut *c).await)?,
    )
}

/// Puts a running job back to wait until `run_at` without counting the attempt its claim
/// counted, recording why. `false` when `worker` no longer holds the job.
pub async fn defer_job(
    conn: Conn<'_>,
    id: i64,
    worker: &str,
    run_at: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    const SQL: &str = "update job set state = 'pending', run_at = $3, deferred_reason = $4, \
        attempts = case when attempts > 0 then attempts - 1 else 0 end, \
        locked_by = null, locked_until = null, updated_at = $5 \
        where id = $1 and state = 'running' and locked_by = $2";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(worker).bind(run_at).bind(reason).bind(now)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}
