//! Durable jobs, the vocabulary of the queue: the [`Job`] kinds and their payloads, [`enqueue`]
//! (in the change's own transaction), retry settings, failed jobs, and what a job body holds
//! and returns ([`Claim`], [`Outcome`]). The worker that runs them is the `runtime` module; the job
//! bodies live with their domains.

pub mod cursor;
pub mod failed;
pub mod outcome;

pub use cursor::ClaimCursor;
pub use outcome::{Claim, Failure, Outcome, Slot};

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::WorkerConfig;
use crate::store::{self, jobs as sql, Tx};

/// Every kind of job, stored as its `kind` plus this value as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Create the subscription's Seed Scheduler schedule and remember its id.
    SchedulerCreate { subscription_id: Uuid },
    /// Stop the subscription's Seed Scheduler schedule.
    SchedulerDisable {
        subscription_id: Uuid,
        scheduler_schedule_id: String,
    },
    /// Move the Seed Scheduler schedule to the subscription's new schedule.
    SchedulerUpdate {
        subscription_id: Uuid,
        scheduler_schedule_id: String,
    },
    /// Send the subscription its next message (or, for a resend, its current one again). The
    /// job's `task_id` is the send id the Message Sender sees: the same on every retry.
    SendMessage { subscription_id: Uuid, resend: bool },
    /// Enqueue the sends of every ready subscription on a schedule now (one tick, on request).
    FireSchedule { schedule_id: i64 },
    /// Enqueue a chain of parts of a large tick's sends (or of a schedule fired on request):
    /// those of the subscriptions whose ids are in `first..=last`, then of each next range as
    /// wide, up to `run_last`. Each part commits with the job's progress (`scheduling::ticker`).
    EnqueueSendPart {
        schedule_id: i64,
        /// The tick's zone (`None`: every zone, on request) and whether it takes the
        /// subscribers that name none.
        zone: Option<String>,
        unzoned: bool,
        /// The tick's minute, whose count of sends the part adds to (`None`: on request).
        minute: Option<DateTime<Utc>>,
        first: Uuid,
        last: Uuid,
        run_last: Uuid,
    },
    /// Compute the scheduled metrics and push them to the Go Metrics API.
    FireScheduledMetrics,
    /// WebSub verification of intent for a hub request; activates, renews, denies or ends
    /// the callback.
    VerifyCallback {
        callback_id: Uuid,
        mode: crate::model::callbacks::Mode,
        topic: String,
        lease_seconds: i64,
        secret: Option<String>,
    },
    /// Push every waiting message of an integration group of method `send`.
    PushIntegration { group: String },
}

impl Job {
    pub fn kind(&self) -> &'static str {
        match self {
            Job::SchedulerCreate { .. } => "scheduler_create",
            Job::SchedulerDisable { .. } => "scheduler_disable",
            Job::SchedulerUpdate { .. } => "scheduler_update",
            Job::SendMessage { .. } => "send_message",
            Job::FireSchedule { .. } => "fire_schedule",
            Job::EnqueueSendPart { .. } => "enqueue_send_part",
            Job::FireScheduledMetrics => "fire_scheduled_metrics",
            Job::VerifyCallback { .. } => "verify_callback",
            Job::PushIntegration { .. } => "push_integration",
        }
    }

    pub fn subscription_id(&self) -> Option<Uuid> {
        match self {
            Job::SchedulerCreate { subscription_id }
            | Job::SchedulerDisable {
                subscription_id, ..
            }
            | Job::SchedulerUpdate {
                subscription_id, ..
            }
            | Job::SendMessage {
                subscription_id, ..
            } => Some(*subscription_id),
            Job::FireSchedule { .. }
            | Job::EnqueueSendPart { .. }
            | Job::FireScheduledMetrics
            | Job::VerifyCallback { .. }
            | Job::PushIntegration { .. } => None,
        }
    }

    /// Jobs with the same key never wait or run side by side, so a duplicate request while one
    /// is pending or running adds nothing. Sends have the same rule per subscription, kept by
    /// the `job_send_once` index rather than a key.
    pub fn dedupe_key(&self) -> Option<String> {
        match self {
            Job::SchedulerCreate { subscription_id } => {
                Some(format!("scheduler_create:{subscription_id}"))
            }
            Job::FireSchedule { schedule_id } => Some(format!("fire_schedule:{schedule_id}")),
            Job::FireScheduledMetrics => Some("fire_scheduled_metrics".into()),
            Job::PushIntegration { group } => Some(format!("push_integration:{group}")),
            // One unfinished send per subscription is enforced by its own index (job_send_once).
            Job::SendMessage { .. }
            | Job::SchedulerDisable { .. }
            | Job::SchedulerUpdate { .. }
            | Job::EnqueueSendPart { .. }
            | Job::VerifyCallback { .. } => None,
        }
    }
}

/// Attempts, backoff and lease of jobs.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub max_attempts: i32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub lease: Duration,
}

impl From<&WorkerConfig> for JobSettings {
    fn from(c: &WorkerConfig) -> Self {
        JobSettings {
            max_attempts: c.max_attempts.max(1),
            retry_base: Duration::from_millis(c.retry_base_ms),
            retry_max: Duration::from_millis(c.retry_max_ms.max(c.retry_base_ms)),
            lease: Duration::from_secs(c.lease_secs.max(1)),
        }
    }
}

impl JobSettings {
    /// The wait before the next try after `attempts` tries: the base doubled per earlier retry,
    /// capped, with ±20 % jitter so that jobs that failed together do not retry together.
    pub fn retry_delay(&self, attempts: i32) -> Duration {
        let exponent = attempts.saturating_sub(1).clamp(0, 30) as u32;
        let delay = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.retry_max);
        delay.mul_f64(rand::thread_rng().gen_range(0.8..=1.2))
    }
}

/// Re-queued failed tasks become due this many at a time…
pub const REQUEUE_BATCH: usize = 200;
/// …one batch a second: a few hundred jobs a second is well within what one worker and either
/// engine take alongside their other work.
pub const REQUEUE_SPACING_SECS: i64 = 1;

/// Puts the failed tasks back in the queue (see [`sql::requeue_failed_jobs`]); returns how many.
pub async fn requeue_failed(tx: &mut Tx) -> store::Result<u64> {
    sql::requeue_failed_jobs(
        tx.conn(),
        store::now(),
        REQUEUE_BATCH,
        chrono::Duration::seconds(REQUEUE_SPACING_SECS),
    )
    .await
}

pub fn after(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

/// Writes the job in the caller's transaction. `false` when an equal job (same dedupe key) is
/// already waiting or running.
pub async fn enqueue(tx: &mut Tx, settings: &JobSettings, job: &Job) -> store::Result<bool> {
    enqueue_with_attempts(tx, settings.max_attempts, job).await
}

/// [`enqueue`] for a caller that has only the attempts setting (the ticker).
pub async fn enqueue_with_attempts(
    tx: &mut Tx,
    max_attempts: i32,
    job: &Job,
) -> store::Result<bool> {
    let payload = serde_json::to_value(job).expect("jobs serialise");
    let dedupe_key = job.dedupe_key();
    let now = store::now();
    let new = sql::NewJob {
        kind: job.kind(),
        payload: &payload,
        max_attempts,
        run_at: now,
        dedupe_key: dedupe_key.as_deref(),
        subscription_id: job.subscription_id(),
    };
    sql::insert_job(tx.conn(), &new, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_jitter_up_to_the_cap() {
        let settings = JobSettings {
            max_attempts: 6,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            lease: Duration::from_secs(60),
        };
        for (attempts, expected) in [
            (1, 5.0),
            (2, 10.0),
            (3, 20.0),
            (5, 80.0),
            (9, 300.0),
            (40, 300.0),
        ] {
            let delay = settings.retry_delay(attempts).as_secs_f64();
            assert!(
                delay >= expected * 0.8 - 1e-9 && delay <= expected * 1.2 + 1e-9,
                "{attempts}: {delay}"
            );
        }
    }

    #[test]
    fn jobs_round_trip_through_json_with_their_kind() {
        let job = Job::SendMessage {
            subscription_id: Uuid::nil(),
            resend: false,
        };
        let value = serde_json::to_value(&job).unwrap();
        assert_eq!(value["kind"], "send_message");
        assert_eq!(serde_json::from_value::<Job>(value).unwrap(), job);
    }
}
