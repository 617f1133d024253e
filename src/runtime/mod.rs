//! The runtime: everything a worker process runs until it is told to stop. The job worker
//! (claim, dispatch to the job bodies, record outcomes, retry), and the periodic loops: the
//! built-in scheduler's ticks, event deliveries, integration pushes, the metrics flusher and the
//! pruning of rows past their retention.
//!
//! The job bodies themselves are domain functions (`sending::job`, `callbacks::verify`,
//! `integrations::push`, `scheduling::sync`, …) that take what they need; [`JobContext`], built
//! once in `app.rs`, is where the runtime finds it.

pub mod loops;
pub mod worker;

pub use worker::Worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::effects::Effects;
use crate::peers::Peers;
use crate::sending;
use crate::store::Db;

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
    /// The attempts of a tick's sends, and the size above which a tick is written in parts.
    pub tick: crate::scheduling::ticker::TickSettings,
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
    /// How long old rows are kept, and how often this process prunes them (`None`: never).
    pub retention: crate::retention::Policy,
    pub prune_interval: Option<Duration>,
}

impl JobContext {
    /// What a send needs of this context.
    pub fn send_deps(&self) -> sending::job::SendDeps<'_> {
        sending::job::SendDeps {
            db: &self.db,
            peers: &self.peers,
            content: &self.content,
            completer: &self.completer,
            send_rate: self.send_rate.as_ref(),
            public_origin: &self.public_origin,
            send_window: self.send_window,
            effects: &self.effects,
        }
    }

    /// What event deliveries need of this context.
    pub fn delivery(&self) -> crate::callbacks::delivery::Delivery<'_> {
        crate::callbacks::delivery::Delivery {
            db: &self.db,
            hub: &self.hub,
            effects: &self.effects,
            public_origin: &self.public_origin,
        }
    }

    /// What pushes of integration groups need of this context.
    pub fn pusher(&self) -> crate::integrations::push::Pusher<'_> {
        crate::integrations::push::Pusher {
            db: &self.db,
            timeout: self.hub.settings.timeout,
            keyring: &self.hub.settings.keyring,
            instance_name: &self.instance_name,
            job_lease: self.effects.jobs.lease,
        }
    }

    /// What the Seed Scheduler jobs need of this context.
    pub fn scheduler_sync(&self) -> crate::scheduling::sync::SchedulerSync<'_> {
        crate::scheduling::sync::SchedulerSync {
            db: &self.db,
            peers: &self.peers,
            public_origin: &self.public_origin,
            inbound_token: self.scheduler_inbound_token.as_deref(),
        }
    }
}

/// Runs everything a worker process does until `shutdown`: the jobs, event deliveries, and in
/// built-in mode (no Seed Scheduler) the ticks of the built-in scheduler.
pub async fn run_background(ctx: Arc<JobContext>, shutdown: CancellationToken) {
    let ticker = (!ctx.effects.scheduler_mode).then(|| {
        tokio::spawn(loops::run_ticker(
            ctx.clone(),
            ctx.tick_interval,
            ctx.catch_up,
            shutdown.clone(),
        ))
    });
    let flusher = ctx.go_metrics.clone().map(|client| {
        tokio::spawn(loops::run_metrics_flusher(
            ctx.db.clone(),
            client,
            ctx.metrics_flush,
            shutdown.clone(),
        ))
    });
    let deliveries = tokio::spawn(loops::run_deliveries(ctx.clone(), shutdown.clone()));
    let pushes = tokio::spawn(loops::run_pushes(ctx.clone(), shutdown.clone()));
    let pruner = ctx
        .prune_interval
        .map(|every| tokio::spawn(loops::run_pruner(ctx.clone(), every, shutdown.clone())));
    worker::Worker::new(ctx).run(shutdown).await;
    let _ = deliveries.await;
    let _ = pushes.await;
    if let Some(pruner) = pruner {
        let _ = pruner.await;
    }
    if let Some(flusher) = flusher {
        let _ = flusher.await;
    }
    if let Some(ticker) = ticker {
        let _ = ticker.await;
    }
}

/// One delivery pass with this context (see [`crate::callbacks::delivery::pass`]), spreading
/// every event not yet spread.
pub async fn delivery_pass(
    ctx: &JobContext,
    worker: &str,
) -> Result<crate::callbacks::delivery::PassDone, crate::domain::Error> {
    let mut spread_every_event = crate::jobs::ClaimCursor::new(std::time::Duration::ZERO);
    crate::callbacks::delivery::pass(&ctx.delivery(), worker, &mut spread_every_event).await
}
