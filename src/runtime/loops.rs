//! The periodic loops of a worker process, each until `shutdown`: the built-in scheduler's
//! ticks, event deliveries (with the callback lease sweep), the enqueueing of integration
//! pushes, the Go Metrics flusher, and the pruning of rows past their retention. Each pass is a
//! domain function; these only repeat it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::JobContext;
use crate::callbacks::delivery;
use crate::go_metrics::GoMetricsClient;
use crate::jobs::ClaimCursor;
use crate::store::Db;

/// Deliveries written before the first refresh of the queue tables' planner statistics. Each
/// later refresh waits for as many again as were written before it, up to `ANALYZE_AT_MOST`:
/// the statistics follow a table that grows from empty, and a million-event tick analyses five
/// times, not twenty (each `analyze` of the grown tables took over a second).
const ANALYZE_FIRST: u64 = 50_000;
const ANALYZE_AT_MOST: u64 = 1_000_000;
/// How often the spreader starts from the first unspread event, not after the last event it
/// spread (`ClaimCursor`): about the longest an event committed behind that place waits.
const FULL_SPREAD_EVERY: Duration = Duration::from_secs(1);

/// Runs ticks every `interval` until `shutdown`.
pub async fn run_ticker(
    ctx: Arc<JobContext>,
    interval: Duration,
    catch_up: Duration,
    shutdown: CancellationToken,
) {
    tracing::info!(?interval, ?catch_up, "built-in scheduler started");
    loop {
        match crate::scheduling::ticker::tick(&ctx.db, ctx.tick, Utc::now(), catch_up).await {
            Ok(fired) if !fired.is_empty() => ctx.wake.notify_waiters(),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = ?err, "tick failed; trying again at the next one"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Runs delivery passes until `shutdown`, resting `poll` whenever there was nothing to do, and
/// sweeping ended callback leases once a second.
pub async fn run_deliveries(ctx: Arc<JobContext>, shutdown: CancellationToken) {
    let worker = format!("deliver-{}-{}", std::process::id(), Uuid::new_v4().simple());
    let mut last_sweep = Instant::now() - Duration::from_secs(3600);
    let mut written_since_analyze = 0;
    let mut written_before_analyze = 0;
    let mut spread_cursor = ClaimCursor::new(FULL_SPREAD_EVERY);
    while !shutdown.is_cancelled() {
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = Instant::now();
            if let Err(err) = delivery::sweep(&ctx.db).await {
                tracing::warn!(error = %err, "sweeping callback leases failed");
            }
        }
        let busy = match delivery::pass(&ctx.delivery(), &worker, &mut spread_cursor).await {
            Ok(done) => {
                written_since_analyze += done.deliveries_written;
                let due = written_before_analyze.clamp(ANALYZE_FIRST, ANALYZE_AT_MOST);
                if written_since_analyze >= due {
                    written_before_analyze += written_since_analyze;
                    written_since_analyze = 0;
                    if let Err(err) = delivery::refresh_statistics(&ctx.db).await {
                        tracing::warn!(error = %err, "analysing the delivery tables failed");
                    }
                }
                done.work > 0
            }
            Err(err) => {
                tracing::warn!(error = %err, "delivery pass failed; trying again");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(ctx.poll) => {}
            }
        }
    }
}

/// Enqueues due pushes of integration groups once a second until `shutdown`.
pub async fn run_pushes(ctx: Arc<JobContext>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match crate::integrations::push::enqueue_due(&ctx.db, &ctx.effects).await {
            Ok(0) => {}
            Ok(_) => ctx.wake.notify_one(),
            Err(err) => tracing::warn!(error = %err, "enqueueing integration pushes failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Flushes every `interval` until `shutdown`; a failed push is tried again at the next flush.
pub async fn run_metrics_flusher(
    db: Db,
    client: GoMetricsClient,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(err) = crate::go_metrics::flush(&db, &client).await {
            tracing::warn!(error = %err, "metrics push failed; will try again");
        }
    }
}

/// Prunes rows past their retention every `interval` until `shutdown` (the first pass one
/// interval after start, so that a restart loop does not prune on every start). Every worker
/// process runs it; their batches take different rows (`store::retention`).
pub async fn run_pruner(ctx: Arc<JobContext>, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let pass = crate::retention::prune(&ctx.db, &ctx.retention, crate::store::now());
        // A pass may take long on a big backlog: give it up at shutdown. Each batch is one
        // statement, so one cut short is simply not done.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            done = pass => if let Err(err) = done {
                tracing::warn!(error = %err, "pruning failed; trying again at the next pass");
            },
        }
    }
}
