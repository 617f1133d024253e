//! The worker: claims due jobs in batches, runs them concurrently under a limit, and records
//! each outcome (done, retry later, failed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{after, Job};
use crate::effects::Effects;
use crate::model::subscriptions::Subscription;
use crate::peers::{self, Peers};
use crate::store::jobs::{self as sql, JobRow};
use crate::store::{self, subscriptions as subscription_sql, Db, Tx};
use crate::{domain, sending};

/// What jobs need to run.
pub struct JobContext {
    pub db: Db,
    pub peers: Peers,
    pub effects: Effects,
    /// Scheme and host of this service, for POST-back and media URLs given to peers.
    pub public_origin: String,
    /// The token the Seed Scheduler presents on its POST-backs.
    pub scheduler_inbound_token: Option<String>,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Wait between looks at an empty queue.
    pub poll: Duration,
    /// Woken when this process writes jobs, so they start without waiting for the next poll.
    pub wake: Arc<Notify>,
    /// At most this many sends per second to the Message Sender, if set.
    pub send_rate: Option<sending::rate::RateLimiter>,
    /// How often the built-in scheduler looks at the schedules, and how old a missed tick may be
    /// and still fire.
    pub tick_interval: Duration,
    pub catch_up: Duration,
    /// Where the original's metrics go, if configured, and how often they are pushed.
    pub go_metrics: Option<crate::go_metrics::GoMetricsClient>,
    pub metrics_flush: Duration,
    /// Content read by sends, cached briefly.
    pub content: sending::content_cache::ContentCache,
    /// Records accepted sends in batches.
    pub completer: sending::completion::Completer,
    /// Callback verification and delivery: settings and the guarded HTTP client.
    pub hub: Arc<crate::callbacks::Hub>,
    /// This process's instance name: integration groups push only from their own instance.
    pub instance_name: String,
    /// Quiet hours of message sets that have none of their own (SBM_SEND_WINDOW).
    pub send_window: Option<crate::content::zone::SendWindow>,
}

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

    /// Finishes a job that had nothing to write.
    pub async fn finish_alone(&self, db: &Db) -> Result<(), Failure> {
        let mut tx = db.begin().await?;
        if self.finish(&mut tx).await? {
            tx.commit().await?;
        }
        Ok(())
    }
}

pub struct Worker {
    id: String,
    ctx: Arc<JobContext>,
    permits: Arc<Semaphore>,
}

impl Worker {
    pub fn new(ctx: Arc<JobContext>) -> Self {
        let id = format!(
            "worker-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let permits = Arc::new(Semaphore::new(ctx.concurrency.max(1)));
        Worker { id, ctx, permits }
    }

    /// Claims as many due jobs as there are free slots and starts them; returns how many.
    pub async fn claim_and_start(&self) -> Result<usize, store::Error> {
        let free = self.permits.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let now = store::now();
        if self.ctx.db.backend() == store::Backend::Sqlite {
            let mut conn = self.ctx.db.acquire().await?;
            if !sql::any_claimable(conn.conn(), now).await? {
                return Ok(0);
            }
        }
        let mut tx = self.ctx.db.begin().await?;
        let rows = sql::claim_jobs(
            tx.conn(),
            &self.id,
            now,
            after(now, self.ctx.effects.jobs.lease),
            free as i64,
        )
        .await?;
        tx.commit().await?;
        let claimed = rows.len();
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
            tokio::spawn(async move {
                let subscription = row
                    .subscription_id
                    .and_then(|id| prefetched.get(&id).cloned());
                run_job(&ctx, &worker, &row, subscription).await;
                drop(permit);
            });
        }
        Ok(claimed)
    }

    async fn prefetch(&self, ids: &[uuid::Uuid]) -> Result<Vec<Subscription>, store::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.ctx.db.acquire().await?;
        subscription_sql::get_subscriptions(conn.conn(), ids).await
    }

    /// Waits until every started job has ended.
    pub async fn wait_idle(&self) {
        let all = self.ctx.concurrency.max(1) as u32;
        let _all = self
            .permits
            .acquire_many(all)
            .await
            .expect("the semaphore is never closed");
    }

    /// Runs every job that is due now, and the jobs those write, until none is due. For tests
    /// and one-off runs.
    pub async fn drain(&self) -> Result<(), store::Error> {
        loop {
            let started = self.claim_and_start().await?;
            self.wait_idle().await;
            if started == 0 {
                return Ok(());
            }
        }
    }

    /// Runs jobs until `shutdown`, then lets the running ones finish.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(worker = %self.id, concurrency = self.ctx.concurrency, "worker started");
        while !shutdown.is_cancelled() {
            let started = match self.claim_and_start().await {
                Ok(n) => n,
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
                // A slot came free: look for more work straight away.
                permit = self.permits.clone().acquire_owned(), if started > 0 => drop(permit),
            }
        }
        self.wait_idle().await;
        tracing::info!(worker = %self.id, "worker stopped");
    }
}

async fn run_job(ctx: &JobContext, worker: &str, row: &JobRow, subscription: Option<Subscription>) {
    let started = std::time::Instant::now();
    let claim = Claim { row, worker };
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
        Ok(job) => execute(ctx, &claim, job, subscription).await,
    };
    metrics::histogram!("sbm_job_duration_seconds", "kind" => row.kind.clone())
        .record(started.elapsed().as_secs_f64());
    if let Err(failure) = outcome {
        record_failure_patiently(ctx, &claim, &failure).await;
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
) -> Result<(), Failure> {
    let span = tracing::info_span!(
        "job",
        id = claim.row.id,
        kind = job.kind(),
        attempt = claim.row.attempts
    );
    // Instrumented, not entered: an entered span held across an await stays entered on the
    // thread while other jobs run there, and their log lines carried every job's span.
    tracing::Instrument::instrument(run_kind(ctx, claim, job, subscription), span).await
}

async fn run_kind(
    ctx: &JobContext,
    claim: &Claim<'_>,
    job: Job,
    subscription: Option<Subscription>,
) -> Result<(), Failure> {
    match job {
        Job::SchedulerCreate { subscription_id } => {
            super::scheduler_sync::create(ctx, claim, subscription_id).await
        }
        Job::SchedulerDisable {
            scheduler_schedule_id,
            ..
        } => {
            ctx.peers
                .scheduler()?
                .disable_schedule(&scheduler_schedule_id)
                .await?;
            claim.finish_alone(&ctx.db).await
        }
        Job::SchedulerUpdate {
            subscription_id,
            scheduler_schedule_id,
        } => {
            super::scheduler_sync::update(ctx, claim, subscription_id, &scheduler_schedule_id).await
        }
        Job::SendMessage {
            subscription_id,
            resend,
        } => sending::job::send(ctx, claim, subscription_id, resend, subscription).await,
        Job::VerifyCallback {
            callback_id,
            mode,
            topic,
            lease_seconds,
            secret,
        } => {
            let request = crate::callbacks::verify::Request {
                callback_id,
                mode,
                topic,
                lease_seconds,
                secret,
            };
            crate::callbacks::verify::run(ctx, claim, request).await
        }
        Job::PushIntegration { group } => crate::integrations::push::push(ctx, claim, &group).await,
        Job::FireScheduledMetrics => {
            if let Some(client) = &ctx.go_metrics {
                let values = crate::go_metrics::scheduled(&ctx.db).await?;
                client.push(&values).await?;
            }
            claim.finish_alone(&ctx.db).await
        }
        Job::FireSchedule { schedule_id } => {
            let mut tx = ctx.db.begin().await?;
            let now = store::now();
            let max_attempts = ctx.effects.jobs.max_attempts;
            let enqueued =
                store::ticks::enqueue_schedule_sends(tx.conn(), schedule_id, max_attempts, now)
                    .await?;
            if enqueued >= 10_000 {
                store::jobs::refresh_statistics(tx.conn()).await?;
            }
            if claim.finish(&mut tx).await? {
                tx.commit().await?;
                tracing::info!(schedule = schedule_id, enqueued, "schedule sent on request");
            }
            Ok(())
        }
    }
}

/// The log line of an outcome that came too late: the job's lease ran out (the worker was
/// paused or slow) and another worker took the job over, so this worker's result is not written.
fn lost_lease(row: &JobRow, worker: &str) {
    tracing::warn!(job = row.id, kind = %row.kind, worker, attempt = row.attempts,
        "a job finished after its worker lost its lease: another worker holds the job, this outcome is discarded");
}

async fn record_failure(
    ctx: &JobContext,
    claim: &Claim<'_>,
    failure: &Failure,
) -> Result<(), store::Error> {
    let row = claim.row;
    let now = store::now();
    let mut tx = ctx.db.begin().await?;
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
    if let Some(subscription) = row.subscription_id.filter(|_| row.kind == "send_message") {
        // A send that will be retried, or has failed for a reason other than the subscriber's
        // data, leaves the subscription ready; -1/-2 mark a missing address or message.
        let process_status = failure
            .process_status
            .unwrap_or(crate::model::subscriptions::status::READY);
        subscription_sql::set_process_status(tx.conn(), subscription, process_status, now).await?;
        let current = if retry {
            None
        } else {
            subscription_sql::get_subscription(tx.conn(), subscription).await?
        };
        metrics::counter!("sbm_sends_total", "outcome" => if retry { "retried" } else { "failed" }, "reason" => failure.metric.clone().unwrap_or_else(|| "other".into())).increment(1);
        crate::effects::follow(
            &mut tx,
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
            crate::subscriptions::release_queued_sends(&mut tx, &ctx.effects, &[subscription])
                .await?;
        }
    }
    tx.commit().await
}
