//! Failed jobs: putting them back in the queue, for the API's `POST /api/v1/failed-tasks/` and
//! the admin UI alike.

use crate::store::jobs as sql;
use crate::store::{self, Tx};

/// Which failed jobs to re-queue.
#[derive(Debug, Clone, Copy)]
pub enum Requeue {
    /// Every failed job (one of each set of equal ones).
    All,
    /// The failed job with this id.
    One(i64),
}

/// Puts failed jobs back in the queue with fresh attempts; returns how many went back. The
/// caller commits and wakes the worker.
pub async fn requeue(tx: &mut Tx, which: Requeue) -> store::Result<u64> {
    let now = store::now();
    let count = match which {
        Requeue::All => super::requeue_failed(tx).await?,
        Requeue::One(id) => u64::from(sql::requeue_failed_job(tx.conn(), id, now).await?),
    };
    tracing::info!(count, ?which, "re-queued failed tasks");
    Ok(count)
}
