//! Finishing sends in batches: each send job hands its result to one committer task, which
//! records up to `BATCH` sends in one transaction (one statement to advance them all, one to
//! remove their jobs, one commit) instead of a transaction per send. Sends that complete while
//! a batch is being written form the next batch, so batches grow with the load (group commit).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::effects::{follow_all, Change, Effects};
use crate::jobs::Failure;
use crate::model::content::MessageSet;
use crate::model::subscriptions::Subscription;
use crate::store::{jobs as jobs_sql, subscriptions as subscription_sql, Db};
use crate::subscriptions::{self, Sent};

const BATCH: usize = 256;
/// Sends queued behind the batch being written. A send gives its worker slot back once queued
/// (`sending::job`), so this also bounds the sends a worker holds beyond its concurrency, each a
/// task in memory: four batches' worth took the 1M tick's peak RSS to 163 MiB, one to 141 MiB.
/// SQLite writes one transaction at a time; there a batch pays its wait for the write lock and
/// its commit once for all its sends, so longer batches help, but each send waiting holds
/// memory: at 100k, 128 waiting peaked at 130–136 MiB, 256 at 141–152 MiB (docs/benchmarks.md).
const WAITING_POSTGRES: usize = BATCH;
const WAITING_SQLITE: usize = BATCH / 2;

/// One accepted message, to be recorded.
pub struct Completion {
    pub job_id: i64,
    pub worker: String,
    pub set: Arc<MessageSet>,
    /// `None` for a resend, which does not advance.
    pub sent: Option<Sent>,
    /// The subscription the message went to, as read before the send.
    pub subscription: crate::model::subscriptions::Subscription,
    pub sequence_number: i32,
    /// The Message Sender's id for the outbound.
    pub outbound_id: String,
    /// The id sbm sent with it (the same on retries).
    pub send_id: uuid::Uuid,
}

type Done = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct Completer {
    queue: mpsc::Sender<(Completion, Done)>,
}

impl Completer {
    /// Starts the committer task; it ends when the last `Completer` is dropped.
    pub fn start(db: Db, effects: Effects) -> Completer {
        let waiting = match db.backend() {
            crate::store::Backend::Postgres => WAITING_POSTGRES,
            crate::store::Backend::Sqlite => WAITING_SQLITE,
        };
        let (queue, receiver) = mpsc::channel(waiting);
        tokio::spawn(run(db, effects, receiver));
        Completer { queue }
    }

    /// Hands the send to the committer; returns once it is queued, with what awaits its
    /// commit. The queue is bounded, so a committer that falls behind holds the senders here.
    pub async fn submit(&self, completion: Completion) -> Result<Committing, Failure> {
        let (done, result) = oneshot::channel();
        self.queue
            .send((completion, done))
            .await
            .map_err(|_| committer_stopped())?;
        Ok(Committing { result })
    }
}

/// A send queued for the committer.
pub struct Committing {
    result: oneshot::Receiver<Result<(), String>>,
}

impl Committing {
    /// Waits for the batch holding the send to commit.
    pub async fn committed(self) -> Result<(), Failure> {
        match self.result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Failure {
                retryable: true,
                message,
                process_status: None,
                metric: None,
            }),
            Err(_) => Err(committer_stopped()),
        }
    }
}

fn committer_stopped() -> Failure {
    Failure {
        retryable: true,
        message: "the send committer stopped".into(),
        process_status: None,
        metric: None,
    }
}

async fn run(db: Db, effects: Effects, mut receiver: mpsc::Receiver<(Completion, Done)>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (completions, done): (Vec<Completion>, Vec<Done>) = batch.into_iter().unzip();
        let result = commit(&db, &effects, &completions)
            .await
            .map_err(|err| format!("recording sends: {err:?}"));
        if let Err(err) = &result {
            tracing::warn!(error = %err, sends = completions.len(), "a batch of sends could not be recorded; their jobs retry");
        }
        metrics::histogram!("sbm_send_commit_batch_size").record(completions.len() as f64);
        for sender in done {
            let _ = sender.send(result.clone());
        }
    }
}

async fn commit(
    db: &Db,
    effects: &Effects,
    completions: &[Completion],
) -> Result<(), crate::domain::Error> {
    let mut tx = db.begin().await?;
    let subscriptions: Vec<uuid::Uuid> = completions.iter().map(|c| c.subscription.id).collect();
    subscription_sql::lock_subscriptions(tx.conn(), &subscriptions).await?;
    let completions = held_only(&mut tx, completions).await?;
    let sent: Vec<Sent> = completions.iter().filter_map(|c| c.sent.clone()).collect();
    let advanced = subscriptions::record_sent_many(&mut tx, &sent).await?;
    let after: std::collections::HashMap<uuid::Uuid, &Subscription> =
        advanced.iter().map(|s| (s.id, s)).collect();
    let messages: Vec<Change> = completions
        .iter()
        .map(|c| Change::MessageSent {
            subscription: after
                .get(&c.subscription.id)
                .copied()
                .unwrap_or(&c.subscription),
            set: &c.set,
            sequence_number: c.sequence_number,
            outbound_id: &c.outbound_id,
            send_id: c.send_id,
            resend: c.sent.is_none(),
        })
        .collect();
    follow_all(&mut tx, effects, &messages).await?;
    subscriptions::follow_advances(&mut tx, effects, &sent, &advanced).await?;
    // Their jobs are finished (in `held_only`): a user's send queued behind one goes next.
    let finished: Vec<uuid::Uuid> = completions.iter().map(|c| c.subscription.id).collect();
    subscriptions::release_queued_sends(&mut tx, effects, &finished).await?;
    tx.commit().await?;
    metrics::counter!("sbm_sends_total", "outcome" => "ok", "reason" => "")
        .increment(completions.len() as u64);
    Ok(())
}

/// Finishes the jobs of the batch in `tx` and keeps the completions whose job this worker still
/// held. A worker paused past its lease (SIGSTOP, a long GC-like stall) may finish a send that
/// another worker has taken over and recorded meanwhile: its outcome is discarded here, so the
/// send's event, integration message and advance are written once, by the holder.
async fn held_only<'a>(
    tx: &mut crate::store::Tx,
    completions: &'a [Completion],
) -> Result<Vec<&'a Completion>, crate::domain::Error> {
    let mut by_worker: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for c in completions {
        by_worker
            .entry(c.worker.as_str())
            .or_default()
            .push(c.job_id);
    }
    let mut held = std::collections::HashSet::new();
    for (worker, ids) in by_worker {
        held.extend(jobs_sql::finish_jobs(tx.conn(), &ids, worker).await?);
    }
    let (kept, lost): (Vec<&Completion>, Vec<&Completion>) =
        completions.iter().partition(|c| held.contains(&c.job_id));
    for c in lost {
        tracing::warn!(job = c.job_id, worker = %c.worker, subscription = %c.subscription.id, send_id = %c.send_id,
            "a send finished after its worker lost its lease: another worker holds the job, this outcome is discarded");
    }
    Ok(kept)
}
