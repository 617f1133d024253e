//! The worker: claims due jobs in batches, runs them concurrently under a limit, and records
//! each outcome (done, retry later, failed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::JobContext;
use crate::jobs::outcome::lost_lease;
use crate::jobs::{after, Claim, ClaimCursor, Failure, Job, Outcome, Slot};
use crate::store::jobs::{self as sql, JobRow, QueuePosition};
use crate::store::{self, subscriptions as subscription_sql, Tx};
use crate::subscriptions::model::Subscription;
use crate::{callbacks, integrations, scheduling, sending};

/// How often a worker claims from the head of the queue, not after its last place
/// (`ClaimCursor`): about the longest a job that landed behind that place waits.
const FULL_CLAIM_EVERY: Duration = Duration::from_secs(1);

/// On SQLite a busy worker claims again once this share of its slots is free
/// (`Worker::claim_at_least`).
const CLAIM_SHARE: usize = 8;

pub struct Worker {
    id: String,
    ctx: Arc<JobContext>,
    /// One per job talking to the peers (a send gives its slot back while its batch commits).
    permits: Arc<Semaphore>,
    /// Every job started and not yet ended.
    jobs: TaskTracker,
    cursor: std::sync::Mutex<ClaimCursor<QueuePosition>>,
}

/// What one claim started.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    pub jobs: usize,
    /// Whether the claim looked at the whole queue, not only past the worker's last place.
    pub full_claim: bool,
}

impl Worker {
    pub fn new(ctx: Arc<JobContext>) -> Self {
        let id = format!(
            "worker-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let permits = Arc::new(Semaphore::new(ctx.concurrency.max(1)));
        let cursor = std::sync::Mutex::new(ClaimCursor::new(FULL_CLAIM_EVERY));
        Worker {
            id,
            ctx,
            permits,
            jobs: TaskTracker::new(),
            cursor,
        }
    }

    /// Claims as many due jobs as there are free slots and starts them.
    pub async fn claim_and_start(&self) -> Result<Started, store::Error> {
        let free = self.permits.available_permits();
        let nothing = Started {
            jobs: 0,
            full_claim: true,
        };
        if free == 0 {
            return Ok(Started {
                full_claim: false,
                ..nothing
            });
        }
        let now = store::now();
        if self.ctx.db.backend() == store::Backend::Sqlite {
            let mut conn = self.ctx.db.acquire().await?;
            if !sql::any_claimable(conn.conn(), now).await? {
                return Ok(nothing);
            }
        }
        let from = self.cursor.lock().expect("never poisoned").start();
        let mut tx = self.ctx.db.begin().await?;
        let rows = sql::claim_jobs(
            tx.conn(),
            &self.id,
            now,
            after(now, self.ctx.effects.jobs.lease),
            free as i64,
            from,
        )
        .await?;
        tx.commit().await?;
        let claimed = rows.len();
        let furthest = rows
            .iter()
            .map(|r| QueuePosition {
                run_at: r.run_at,
                id: r.id,
            })
            .max();
        self.cursor
            .lock()
            .expect("never poisoned")
            .claimed(furthest);
        // The send jobs of the batch read their subscriptions in one query, not one each.
        let send_ids: Vec<uuid::Uuid> = rows
            .iter()
            .filter(|r| r.kind == "send_message")
            .filter_map(|r| r.subscription_id)
            .collect();
        // A failed prefetch only means each send reads its own subscription.
        let prefetched: HashMap<uuid::Uuid, Subscription> = match self.prefetch(&send_ids).await {
            Ok(found) => found.into_iter().map(|s| (s.id, s)).collect(),
            Err(err) => {
                tracing::warn!(error = ?err, "could not prefetch subscriptions");
                HashMap::new()
            }
        };
        let prefetched = Arc::new(prefetched);
        for row in rows {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let ctx = self.ctx.clone();
            let worker = self.id.clone();
            let prefetched = prefetched.clone();
            self.jobs.spawn(async move {
                let subscription = row
                    .subscription_id
                    .and_then(|id| prefetched.get(&id).cloned());
                run_job(&ctx, &worker, &row, &Slot::new(permit), subscription).await;
            });
        }
        Ok(Started {
            jobs: claimed,
            full_claim: from.is_none(),
        })
    }

    async fn prefetch(&self, ids: &[uuid::Uuid]) -> Result<Vec<Subscription>, store::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.ctx.db.acquire().await?;
        subscription_sql::get_subscriptions(conn.conn(), ids).await
    }

    /// Free slots a busy worker waits for before it claims again. On SQLite, claiming for each
    /// slot as it came free made many small write transactions, each holding the one write lock
    /// the send committer waits for. On PostgreSQL claims do not queue behind each other, and a
    /// slot left idle while more free up is a send not in flight (the 1M tick ran 7 % slower
    /// with it, in one pair); there a free slot is claimed for straight away.
    fn claim_at_least(&self) -> u32 {
        match self.ctx.db.backend() {
            store::Backend::Sqlite => (self.ctx.concurrency / CLAIM_SHARE).max(1) as u32,
            store::Backend::Postgres => 1,
        }
    }

    /// Waits until every started job has ended (not only given its slot back).
    pub async fn wait_idle(&self) {
        self.jobs.close();
        self.jobs.wait().await;
        self.jobs.reopen();
    }

    /// Runs every job that is due now, and the jobs those write, until none is due. For tests
    /// and one-off runs.
    pub async fn drain(&self) -> Result<(), store::Error> {
        loop {
            let started = self.claim_and_start().await?;
            self.wait_idle().await;
            if started.jobs == 0 {
                if started.full_claim {
                    return Ok(());
                }
                // A claim past the worker's last place misses jobs behind it.
                self.cursor.lock().expect("never poisoned").rewind();
            }
        }
    }

    /// Runs jobs until `shutdown`, then lets the running ones finish.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(worker = %self.id, concurrency = self.ctx.concurrency, "worker started");
        while !shutdown.is_cancelled() {
            let started = match self.claim_and_start().await {
                Ok(started) => started.jobs,
                Err(err) => {
                    tracing::warn!(error = ?err, "could not claim jobs");
                    0
                }
            };
            if started > 0 && self.permits.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(self.ctx.poll) => {}
                _ = self.ctx.wake.notified() => {}
                // Slots came free: look for more work straight away.
                permits = self.permits.clone().acquire_many_owned(self.claim_at_least()),
                    if started > 0 => drop(permits),
            }
        }
        self.wait_idle().await;
        tracing::info!(worker = %self.id, "worker stopped");
    }
}

async fn run_job(
    ctx: &JobContext,
    worker: &str,
    row: &JobRow,
    slot: &Slot,
    subscription: Option<Subscription>,
) {
    let started = std::time::Instant::now();
    let claim = Claim { row, worker, slot };
    let mut payload = row.payload.0.clone();
    // Sends written by a tick keep their subscription id in the row only (store::ticks).
    if let (Some(id), Some(fields)) = (row.subscription_id, payload.as_object_mut()) {
        fields
            .entry("subscription_id")
            .or_insert_with(|| serde_json::json!(id));
    }
    let outcome = match serde_json::from_value::<Job>(payload) {
        Err(err) => Err(Failure::permanent(format!("unreadable job: {err}"), None)),
        Ok(_) if row.attempts > row.max_attempts => Err(Failure::permanent(
            "the worker running this job stopped before it finished, too often",
            None,
        )),
        // Boxed, so that the task of a job that handed off its rest holds only that rest.
        Ok(job) => Box::pin(execute(ctx, &claim, job, subscription)).await,
    };
    let outcome = match (outcome, slot.take_rest()) {
        (Ok(()), Some(rest)) => rest.await,
        (outcome, _) => outcome,
    };
    metrics::histogram!("sbm_job_duration_seconds", "kind" => row.kind.clone())
        .record(started.elapsed().as_secs_f64());
    if let Err(failure) = outcome {
        Box::pin(record_failure_patiently(ctx, &claim, &failure)).await;
    }
}

/// Records a failure, waiting out a busy database (a pool that is empty for a moment, SQLite's
/// write lock) instead of giving up at once: under its own load the worker must still get its
/// outcomes written, or each job runs again only after its lease, costing an attempt.
async fn record_failure_patiently(ctx: &JobContext, claim: &Claim<'_>, failure: &Failure) {
    let mut pause = Duration::from_millis(50);
    for _ in 0..8 {
        match record_failure(ctx, claim, failure).await {
            Ok(()) => return,
            Err(store::Error::Unavailable(err)) => {
                tracing::warn!(job = claim.row.id, error = %err, "database busy while recording a job failure; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(err) => {
                tracing::error!(job = claim.row.id, error = ?err, "could not record a job failure; it runs again after its lease");
                return;
            }
        }
    }
    tracing::error!(
        job = claim.row.id,
        "database busy too long to record a job failure; it runs again after its lease"
    );
}

async fn execute(
    ctx: &JobContext,
    claim: &Claim<'_>,
    job: Job,
    subscription: Option<Subscription>,
) -> Outcome {
    let span = tracing::info_span!(
        "job",
        id = claim.row.id,
        kind = job.kind(),
        attempt = claim.row.attempts,
        // For a send, its send id: the id the Message Sender sees, the same on every retry.
        task_id = %claim.row.task_id,
        subscription = tracing::field::debug(claim.row.subscription_id),
    );
    // Instrumented, not entered: an entered span held across an await stays entered on the
    // thread while other jobs run there, and their log lines carried every job's span.
    tracing::Instrument::instrument(run_kind(ctx, claim, job, subscription), span).await
}

/// Hands the job to its body, with what the body needs of the context.
async fn run_kind(
    ctx: &JobContext,
    claim: &Claim<'_>,
    job: Job,
    subscription: Option<Subscription>,
) -> Outcome {
    match job {
        Job::SchedulerCreate { subscription_id } => {
            scheduling::sync::create(&ctx.scheduler_sync(), claim, subscription_id).await
        }
        Job::SchedulerDisable {
            scheduler_schedule_id,
            ..
        } => scheduling::sync::disable(&ctx.scheduler_sync(), claim, &scheduler_schedule_id).await,
        Job::SchedulerUpdate {
            subscription_id,
            scheduler_schedule_id,
        } => {
            let sync = ctx.scheduler_sync();
            scheduling::sync::update(&sync, claim, subscription_id, &scheduler_schedule_id).await
        }
        Job::SendMessage {
            subscription_id,
            resend,
        } => {
            let deps = ctx.send_deps();
            sending::job::send(&deps, claim, subscription_id, resend, subscription).await
        }
        Job::VerifyCallback {
            callback_id,
            mode,
            topic,
            lease_seconds,
            secret,
        } => {
            let request = callbacks::verify::Request {
                callback_id,
                mode,
                topic,
                lease_seconds,
                secret,
            };
            callbacks::verify::run(&ctx.db, &ctx.hub, claim, request).await
        }
        Job::PushIntegration { group } => {
            integrations::push::push(&ctx.pusher(), claim, &group).await
        }
        Job::FireScheduledMetrics => {
            crate::go_metrics::fire_scheduled(&ctx.db, ctx.go_metrics.as_ref(), claim).await
        }
        Job::FireSchedule { schedule_id } => fire_schedule(ctx, claim, schedule_id).await,
        Job::EnqueueSendPart {
            schedule_id,
            zone,
            unzoned,
            minute,
            first,
            last,
            run_last,
        } => {
            let range = store::ticks::IdRange { first, last };
            let jobs = &ctx.effects.jobs;
            scheduling::ticker::enqueue_part(
                &ctx.db,
                claim,
                jobs.max_attempts,
                jobs.lease,
                schedule_id,
                zone.as_deref(),
                unzoned,
                minute,
                range,
                run_last,
            )
            .await
        }
    }
}

/// The `FireSchedule` job: the schedule fired on request, its job finished in the same
/// transaction.
async fn fire_schedule(ctx: &JobContext, claim: &Claim<'_>, schedule_id: i64) -> Outcome {
    let mut tx = ctx.db.begin().await?;
    let enqueued = scheduling::ticker::fire_on_request(&mut tx, ctx.tick, schedule_id).await?;
    if claim.finish(&mut tx).await? {
        tx.commit().await?;
        let (enqueued, parts) = (enqueued.sends, enqueued.parts);
        tracing::info!(
            schedule = schedule_id,
            enqueued,
            parts,
            "schedule sent on request"
        );
    }
    Ok(())
}

/// Records the failed attempt: a retry later, or the job failed for good; for a send, what it
/// means for its subscription too. In one transaction.
async fn record_failure(
    ctx: &JobContext,
    claim: &Claim<'_>,
    failure: &Failure,
) -> Result<(), store::Error> {
    let row = claim.row;
    let now = store::now();
    let mut tx = ctx.db.begin().await?;
    let send_of = row.subscription_id.filter(|_| row.kind == "send_message");
    if let Some(subscription) = send_of {
        subscription_sql::lock_subscriptions(tx.conn(), &[subscription]).await?;
    }
    let retry = failure.retryable && row.attempts < row.max_attempts;
    let held = if retry {
        let run_at = after(now, ctx.effects.jobs.retry_delay(row.attempts));
        tracing::warn!(job = row.id, kind = %row.kind, attempt = row.attempts, error = %failure.message, "job failed; will retry");
        sql::retry_job(
            tx.conn(),
            row.id,
            claim.worker,
            run_at,
            &failure.message,
            now,
        )
        .await?
    } else {
        tracing::error!(job = row.id, kind = %row.kind, attempt = row.attempts, error = %failure.message, "job failed");
        sql::fail_job(tx.conn(), row.id, claim.worker, &failure.message, now).await?
    };
    if !held {
        lost_lease(row, claim.worker);
        return Ok(());
    }
    if let Some(subscription) = send_of {
        record_send_failure(&mut tx, ctx, row, subscription, failure, retry).await?;
    }
    tx.commit().await
}

/// What a failed send attempt means for its subscription: its status, the metric, the
/// `SendFailed` change, and (for good) the release of a send queued behind it.
async fn record_send_failure(
    tx: &mut Tx,
    ctx: &JobContext,
    row: &JobRow,
    subscription: uuid::Uuid,
    failure: &Failure,
    retry: bool,
) -> Result<(), store::Error> {
    let now = store::now();
    // A send that will be retried, or has failed for a reason other than the subscriber's
    // data, leaves the subscription ready; -1/-2 mark a missing address or message.
    let process_status = failure
        .process_status
        .unwrap_or(crate::subscriptions::model::status::READY);
    subscription_sql::set_process_status(tx.conn(), subscription, process_status, now).await?;
    let current = if retry {
        None
    } else {
        subscription_sql::get_subscription(tx.conn(), subscription).await?
    };
    metrics::counter!("sbm_sends_total", "outcome" => if retry { "retried" } else { "failed" }, "reason" => failure.metric.clone().unwrap_or_else(|| "other".into())).increment(1);
    crate::effects::follow(
        tx,
        &ctx.effects,
        crate::effects::Change::SendFailed {
            subscription: current.as_ref(),
            reason: failure.metric.as_deref(),
            error: &failure.message,
            task_id: row.task_id,
            attempts: row.attempts,
            retrying: retry,
        },
    )
    .await?;
    if !retry {
        // The failed send is done with: a user's send queued behind it goes next.
        crate::subscriptions::release_queued_sends(tx, &ctx.effects, &[subscription]).await?;
    }
    Ok(())
}
