//! What a job body returns and holds: the claim on its job row (finished in the body's own
//! transaction) and why it failed, for the runtime to record.

use crate::domain;
use crate::peers;
use crate::store::jobs::{self as sql, JobRow};
use crate::store::{self, Db, Tx};

/// What a job body comes to: `Ok` once it finished its claim (or lost it), `Err` for the
/// runtime to record as a retry or a failure.
pub type Outcome = Result<(), Failure>;

/// Why a job did not succeed this time.
#[derive(Debug)]
pub struct Failure {
    pub retryable: bool,
    pub message: String,
    /// The subscription's `process_status` to record with the failure, if any.
    pub process_status: Option<i16>,
    /// The original's metric suffix for a failed send (`errored`, `timeout`, `http_error.500`…).
    pub metric: Option<String>,
}

impl Failure {
    pub fn permanent(message: impl Into<String>, process_status: Option<i16>) -> Self {
        Failure {
            retryable: false,
            message: message.into(),
            process_status,
            metric: None,
        }
    }
}

impl From<peers::Error> for Failure {
    fn from(err: peers::Error) -> Self {
        Failure {
            retryable: err.is_retryable(),
            message: err.to_string(),
            process_status: None,
            metric: Some(err.metric_reason()),
        }
    }
}

impl From<store::Error> for Failure {
    fn from(err: store::Error) -> Self {
        Failure {
            retryable: true,
            message: format!("database: {err:?}"),
            process_status: None,
            metric: None,
        }
    }
}

impl From<domain::Error> for Failure {
    fn from(err: domain::Error) -> Self {
        Failure {
            retryable: true,
            message: format!("{err:?}"),
            process_status: None,
            metric: None,
        }
    }
}

/// A job held by this worker.
pub struct Claim<'a> {
    pub row: &'a JobRow,
    pub worker: &'a str,
    pub slot: &'a Slot,
}

/// The worker slot a running job takes (one of `SBM_WORKER_CONCURRENCY`). It is given back when
/// the job ends, or earlier by a job whose rest is only waiting ([`Slot::hand_off`]).
pub struct Slot {
    permit: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    rest: std::sync::Mutex<Option<futures_util::future::BoxFuture<'static, Outcome>>>,
}

impl Slot {
    pub fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        Slot {
            permit: std::sync::Mutex::new(Some(permit)),
            rest: std::sync::Mutex::new(None),
        }
    }

    /// Gives the slot back and leaves `rest` (a wait that needs no peer) for the runtime to
    /// await once the job body has returned `Ok`: its outcome is then the job's. The body's
    /// own state is freed meanwhile, so a job waiting here costs little memory.
    pub fn hand_off(&self, rest: impl std::future::Future<Output = Outcome> + Send + 'static) {
        *self.rest.lock().expect("never poisoned") = Some(Box::pin(rest));
        self.permit.lock().expect("never poisoned").take();
    }

    /// What a job handed off, if it did.
    pub fn take_rest(&self) -> Option<futures_util::future::BoxFuture<'static, Outcome>> {
        self.rest.lock().expect("never poisoned").take()
    }
}

impl Claim<'_> {
    /// Deletes the finished job in `tx`. `false` when this worker lost the job (its lease
    /// expired and another worker took it): the caller must then roll back.
    pub async fn finish(&self, tx: &mut Tx) -> Result<bool, Failure> {
        let held = sql::finish_job(tx.conn(), self.row.id, self.worker).await?;
        if !held {
            lost_lease(self.row, self.worker);
        }
        Ok(held)
    }

    /// Records in `tx` that the job has come as far as `job` says, so that a worker taking it
    /// over starts from there, and renews its lease until `lease_until`. `false` when this
    /// worker lost the job: the caller must then roll back.
    pub async fn record_progress(
        &self,
        tx: &mut Tx,
        job: &crate::jobs::Job,
        lease_until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, Failure> {
        let payload = serde_json::to_value(job).expect("jobs serialise");
        let now = crate::store::now();
        let held = sql::record_progress(
            tx.conn(),
            self.row.id,
            self.worker,
            &payload,
            lease_until,
            now,
        )
        .await?;
        if !held {
            lost_lease(self.row, self.worker);
        }
        Ok(held)
    }

    /// Finishes a job that had nothing to write.
    pub async fn finish_alone(&self, db: &Db) -> Result<(), Failure> {
        let mut tx = db.begin().await?;
        if self.finish(&mut tx).await? {
            tx.commit().await?;
        }
        Ok(())
    }
}

/// The log line of an outcome that came too late: the job's lease ran out (the worker was
/// paused or slow) and another worker took the job over, so this worker's result is not written.
pub fn lost_lease(row: &JobRow, worker: &str) {
    tracing::warn!(job = row.id, kind = %row.kind, worker, attempt = row.attempts,
        "a job finished after its worker lost its lease: another worker holds the job, this outcome is discarded");
}
