//! Subscription creations from concurrent requests, written a batch to a transaction.
//!
//! Under load a creation's cost is mostly its transaction's round trips to the database (begin,
//! the message set's read, the event, the integration groups' topics, the commit), not its own
//! insert. Requests that arrive while the writers are busy wait for the next batch, and each
//! batch is one transaction of [`subscriptions::create_many`]: per creation, one insert and a
//! share of the rest. A request that finds a writer idle is written at once, alone, as before.
//!
//! Each request still gets its own answer: refused fields are that request's 400 and the others
//! are created. If the batch fails before its commit (nothing was written), each of its requests
//! is written again alone, so that one request's failure is not another's. If the commit itself
//! fails, whether it took effect is unknown, and every request of the batch gets the error, as a
//! lone request would.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex, Notify};

use super::{ApiError, ApiResult};
use crate::effects::Effects;
use crate::model::subscriptions::{Subscription, SubscriptionFields};
use crate::store::{Backend, Db};
use crate::subscriptions;

/// The most creations in one transaction.
const MAX_BATCH: usize = 64;
/// Batches written at the same time on PostgreSQL: while some wait for their commit, another
/// fills.
const WRITERS_POSTGRES: usize = 4;
/// SQLite has one writer: more batches at once only wait for its lock, some of them long (its
/// busy handler sleeps), and every request of such a batch waits with it.
const WRITERS_SQLITE: usize = 1;

/// The queue of creations and the writers that empty it.
#[derive(Clone)]
pub struct Creations {
    queue: mpsc::Sender<Creation>,
}

struct Creation {
    fields: SubscriptionFields,
    user: i64,
    answer: oneshot::Sender<ApiResult<Subscription>>,
}

/// What a writer needs to write a batch.
struct Writer {
    db: Db,
    effects: Arc<Effects>,
    wake: Arc<Notify>,
}

impl Creations {
    /// Starts the writers (on the current Tokio runtime); they stop once every handle is dropped.
    pub fn start(db: Db, effects: Arc<Effects>, wake: Arc<Notify>) -> Self {
        let writers = match db.backend() {
            Backend::Postgres => WRITERS_POSTGRES,
            Backend::Sqlite => WRITERS_SQLITE,
        };
        let (queue, waiting) = mpsc::channel(MAX_BATCH * writers);
        let waiting = Arc::new(Mutex::new(waiting));
        let writer = Arc::new(Writer { db, effects, wake });
        for _ in 0..writers {
            tokio::spawn(run_writer(writer.clone(), waiting.clone()));
        }
        Creations { queue }
    }

    /// Creates the subscription in the next batch and returns it once its batch has committed.
    pub async fn create(&self, fields: SubscriptionFields, user: i64) -> ApiResult<Subscription> {
        let (answer, answered) = oneshot::channel();
        let creation = Creation {
            fields,
            user,
            answer,
        };
        self.queue.send(creation).await.map_err(|_| {
            ApiError::internal(anyhow::anyhow!("the creation writers have stopped"))
        })?;
        answered.await.map_err(|_| {
            ApiError::internal(anyhow::anyhow!(
                "a creation's batch ended without an answer"
            ))
        })?
    }
}

async fn run_writer(writer: Arc<Writer>, waiting: Arc<Mutex<mpsc::Receiver<Creation>>>) {
    loop {
        let batch = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match waiting.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        // Its own task, so that a panic answers this batch's requests (their senders are
        // dropped: a 500) and leaves the writer running.
        let writer = writer.clone();
        let _ = tokio::spawn(async move { writer.write(batch).await }).await;
    }
}

impl Writer {
    #[tracing::instrument(name = "creations.write", skip_all, fields(batch = batch.len()))]
    async fn write(&self, batch: Vec<Creation>) {
        let creations = batch
            .iter()
            .map(|c| (c.fields.clone(), Some(c.user)))
            .collect();
        let mut tx = match self.db.begin().await {
            Ok(tx) => tx,
            Err(err) => return self.write_alone_or_fail(batch, err.into()).await,
        };
        let outcomes = match subscriptions::create_many(&mut tx, &self.effects, creations).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                drop(tx);
                return self.write_alone_or_fail(batch, err.into()).await;
            }
        };
        if let Err(err) = tx.commit().await {
            return answer_all(batch, ApiError::from(err));
        }
        self.wake.notify_one();
        for (creation, outcome) in batch.into_iter().zip(outcomes) {
            let _ = creation.answer.send(outcome.map_err(ApiError::from));
        }
    }

    /// After a batch failed with nothing written: a lone creation gets the error; a batch's
    /// creations are each written again in a transaction of their own.
    async fn write_alone_or_fail(&self, mut batch: Vec<Creation>, err: ApiError) {
        if batch.len() == 1 {
            let _ = batch.remove(0).answer.send(Err(err));
            return;
        }
        for creation in batch {
            let outcome = self.write_one(creation.fields, creation.user).await;
            let _ = creation.answer.send(outcome);
        }
    }

    async fn write_one(&self, fields: SubscriptionFields, user: i64) -> ApiResult<Subscription> {
        let mut tx = self.db.begin().await?;
        let created = subscriptions::create(&mut tx, &self.effects, fields, Some(user)).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(created)
    }
}

/// The commit's error for every creation of the batch (the first gets the error itself).
fn answer_all(batch: Vec<Creation>, err: ApiError) {
    let status = err.status();
    let text = std::error::Error::source(&err).map_or_else(|| err.to_string(), |s| s.to_string());
    let mut err = Some(err);
    for creation in batch {
        let this = err.take().unwrap_or_else(|| {
            let source = anyhow::anyhow!("the commit of this creation's batch failed: {text}");
            if status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
                ApiError::Unavailable(source)
            } else {
                ApiError::Internal(source)
            }
        });
        let _ = creation.answer.send(Err(this));
    }
}
