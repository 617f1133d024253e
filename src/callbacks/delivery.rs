//! The spreader and the delivery worker.
//!
//! Each pass: fan new events out to the matching callbacks (in SQL, once per event and
//! callback), end leases that ran out, then claim due deliveries under a lease, POST them
//! (grouped into batches for callbacks that take them) and record every attempt in one
//! transaction. A worker that dies mid-delivery leaves its deliveries `running`; when the lease
//! ends another worker claims them again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LINK, RETRY_AFTER};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::signing;
use crate::effects::{follow, Change, Effects};
use crate::events;
use crate::jobs::{after, ClaimCursor};
use crate::store::events::{self as sql, AttemptOutcome, DeliveryWork};
use crate::store::{self, Db};

/// Events fanned out per transaction.
const SPREAD_BATCH: i64 = 1000;
/// Deliveries claimed per pass: enough to keep every connection busy with full batches.
const CLAIM: usize = 4096;
/// Bytes of a receiver's answer kept in the log.
const RESPONSE_LOG_BYTES: usize = 2000;

/// What deliveries need: the database, the hub's settings and guarded client, the
/// consequences of a disabled callback, and this service's origin (for the links).
pub struct Delivery<'a> {
    pub db: &'a Db,
    pub hub: &'a Arc<super::Hub>,
    pub effects: &'a Effects,
    pub public_origin: &'a str,
}

/// Marks active callbacks whose lease ended `expired`.
pub async fn sweep(db: &Db) -> store::Result<()> {
    let mut tx = db.begin().await?;
    let expired = sql::expire_callbacks(tx.conn(), store::now()).await?;
    tx.commit().await?;
    for callback in expired {
        tracing::info!(callback = %callback.id, topic = %callback.topic, "callback lease ended");
    }
    Ok(())
}

/// Keeps the planner's picture of the queue tables close to their size, where autovacuum does
/// not (it may be off, or behind a million rows that came and went): with statistics of an
/// empty table it chose full index scans for primary-key lookups.
pub async fn refresh_statistics(db: &Db) -> store::Result<()> {
    let mut conn = db.acquire().await?;
    sql::refresh_statistics(conn.conn()).await
}

/// Fans out every event not yet spread; returns how many events were spread and how many
/// deliveries written.
pub async fn spread(db: &Db) -> store::Result<(u64, u64)> {
    spread_from(db, &mut ClaimCursor::new(Duration::ZERO)).await
}

/// Like [`spread`], for a spreader that keeps its place between passes: it starts after the
/// last event it spread, and from the first unspread event only now and then (`ClaimCursor`).
pub async fn spread_from(db: &Db, cursor: &mut ClaimCursor<i64>) -> store::Result<(u64, u64)> {
    let mut total = (0, 0);
    loop {
        let after = cursor.start();
        let mut tx = db.begin().await?;
        let done = sql::spread_events(tx.conn(), SPREAD_BATCH, store::now(), after).await?;
        tx.commit().await?;
        cursor.claimed(done.last);
        if done.events == 0 {
            return Ok(total);
        }
        total.0 += done.events;
        total.1 += done.deliveries;
        metrics::counter!("sbm_events_spread_total").increment(done.events);
        metrics::counter!("sbm_deliveries_created_total").increment(done.deliveries);
    }
}

/// What one pass did.
pub struct PassDone {
    /// Events spread plus deliveries attempted.
    pub work: usize,
    pub deliveries_written: u64,
}

/// One pass: spread (from where `spread_cursor` left off), then claim and make one round of
/// deliveries.
pub async fn pass(
    ctx: &Delivery<'_>,
    worker: &str,
    spread_cursor: &mut ClaimCursor<i64>,
) -> Result<PassDone, crate::domain::Error> {
    if ctx.db.backend() == store::Backend::Sqlite {
        let mut conn = ctx.db.acquire().await?;
        if !sql::any_delivery_work(conn.conn(), store::now()).await? {
            return Ok(PassDone {
                work: 0,
                deliveries_written: 0,
            });
        }
    }
    let (spread, deliveries_written) = spread_from(ctx.db, spread_cursor).await?;
    let spread = spread as usize;
    let settings = &ctx.hub.settings;
    // Longer than any POST may take, so that only a dead worker's deliveries are taken over.
    let lease = settings.timeout + ctx.effects.jobs.lease;
    let now = store::now();
    let claimed = {
        let mut tx = ctx.db.begin().await?;
        let claimed = sql::claim_deliveries(
            tx.conn(),
            worker,
            now,
            after(now, lease),
            CLAIM.max(settings.concurrency * 8) as i64,
        )
        .await?;
        tx.commit().await?;
        claimed
    };
    if claimed.is_empty() {
        return Ok(PassDone {
            work: spread,
            deliveries_written,
        });
    }
    let count = claimed.len();
    let outcomes = deliver_all(ctx, claimed).await;
    record(ctx, worker, outcomes).await?;
    Ok(PassDone {
        work: spread + count,
        deliveries_written,
    })
}

/// What one POST (of one delivery or a batch) came to.
struct Posted {
    callback_id: Uuid,
    deliveries: Vec<(i64, i32)>,
    attempted_at: DateTime<Utc>,
    duration_ms: i32,
    status: Option<u16>,
    retry_after: Option<Duration>,
    response_body: Option<String>,
    error: Option<String>,
}

impl Posted {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
    fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

async fn deliver_all(ctx: &Delivery<'_>, claimed: Vec<DeliveryWork>) -> Vec<Posted> {
    let mut by_callback: Vec<Vec<DeliveryWork>> = Vec::new();
    for work in claimed {
        match by_callback.last_mut() {
            Some(group) if group[0].callback_id == work.callback_id => group.push(work),
            _ => by_callback.push(vec![work]),
        }
    }
    let permits = Arc::new(Semaphore::new(ctx.hub.settings.concurrency));
    let mut posts = JoinSet::new();
    for group in by_callback {
        let size = group[0].batch_size.clamp(1, 100) as usize;
        let batched = group[0].batch_size > 1;
        let mut group = group.into_iter().peekable();
        while group.peek().is_some() {
            let chunk: Vec<DeliveryWork> = group.by_ref().take(size).collect();
            let permit = permits.clone().acquire_owned().await.expect("never closed");
            let hub = ctx.hub.clone();
            let origin = ctx.public_origin.to_string();
            posts.spawn(async move {
                let posted = post(&hub, &origin, chunk, batched).await;
                drop(permit);
                posted
            });
        }
    }
    let mut outcomes = Vec::new();
    while let Some(done) = posts.join_next().await {
        match done {
            Ok(posted) => outcomes.push(posted),
            // A panic in one POST leaves its deliveries to the lease.
            Err(err) => tracing::error!(error = %err, "a delivery task failed"),
        }
    }
    outcomes
}

fn webhook_id(chunk: &[DeliveryWork], batched: bool) -> String {
    if batched {
        let ids: Vec<String> = chunk.iter().map(|w| w.event_uuid.to_string()).collect();
        Uuid::new_v5(&Uuid::NAMESPACE_OID, ids.join(",").as_bytes()).to_string()
    } else {
        chunk[0].event_uuid.to_string()
    }
}

fn body_of(chunk: &[DeliveryWork], batched: bool) -> Vec<u8> {
    fn envelope(w: &DeliveryWork) -> events::Envelope<'_> {
        events::envelope_of(
            w.event_uuid,
            &w.event_type,
            w.occurred_at,
            &w.object_type,
            &w.object_id,
            w.sequence,
            &w.data.0,
        )
    }
    let body = if batched {
        serde_json::to_vec(&chunk.iter().map(envelope).collect::<Vec<_>>())
    } else {
        serde_json::to_vec(&envelope(&chunk[0]))
    };
    body.expect("envelopes serialize")
}

/// The headers of a delivery: Standard Webhooks' id, timestamp and signature, WebSub's
/// signature and links.
pub fn headers(
    origin: &str,
    topic: &str,
    secrets: &[String],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = |s: String| HeaderValue::from_str(&s).expect("ASCII header values");
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", value(id.to_string()));
    headers.insert("webhook-timestamp", value(timestamp.to_string()));
    if let Some(current) = secrets.first() {
        // During a secret rotation every signing secret signs, space-separated (Standard
        // Webhooks); WebSub's header has room for one, the current.
        let signatures: Vec<String> = secrets
            .iter()
            .map(|secret| {
                let key = signing::standard_webhooks_key(secret);
                signing::standard_webhooks_signature(&key, id, timestamp, body)
            })
            .collect();
        headers.insert("webhook-signature", value(signatures.join(" ")));
        headers.insert(
            "x-hub-signature",
            value(signing::websub_signature(current.as_bytes(), body)),
        );
    }
    let topic: String = url::form_urlencoded::byte_serialize(topic.as_bytes()).collect();
    headers.insert(
        LINK,
        value(format!(
            "<{origin}/api/v1/hub>; rel=\"hub\", <{origin}/api/v1/events/?topic={topic}>; rel=\"self\""
        )),
    );
    headers
}

/// The secrets a delivery is signed with; Err (the attempt's error) when the stored secret
/// cannot be decrypted, rather than sending it unsigned.
fn signing_secrets(
    hub: &super::Hub,
    stored: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, String> {
    let Some(stored) = stored else {
        return Ok(Vec::new());
    };
    super::secrets::open(&hub.settings.keyring, stored)
        .map(|secrets| secrets.signing(now))
        .map_err(|err| format!("not sent: {err}"))
}

async fn post(hub: &super::Hub, origin: &str, chunk: Vec<DeliveryWork>, batched: bool) -> Posted {
    let first = &chunk[0];
    let mut posted = Posted {
        callback_id: first.callback_id,
        deliveries: chunk.iter().map(|w| (w.id, w.attempts)).collect(),
        attempted_at: store::now(),
        duration_ms: 0,
        status: None,
        retry_after: None,
        response_body: None,
        error: None,
    };
    // The resolver guards host names; an address written into the URL is checked here, against
    // today's policy rather than the one in force when the callback subscribed.
    let refused = url::Url::parse(&first.callback_url)
        .map_err(|err| err.to_string())
        .and_then(|url| hub.settings.policy.check_url(&url));
    if let Err(reason) = refused {
        posted.error = Some(reason);
        return posted;
    }
    let secrets = match signing_secrets(hub, first.secret.as_deref(), posted.attempted_at) {
        Ok(secrets) => secrets,
        Err(reason) => {
            posted.error = Some(reason);
            return posted;
        }
    };
    let id = webhook_id(&chunk, batched);
    let body = body_of(&chunk, batched);
    let headers = headers(
        origin,
        &first.topic,
        &secrets,
        &id,
        posted.attempted_at.timestamp(),
        &body,
    );
    let started = Instant::now();
    let result = hub
        .client
        .post(&first.callback_url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    read_answer(&mut posted, result).await;
    posted.duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    metrics::histogram!("sbm_delivery_duration_seconds").record(started.elapsed().as_secs_f64());
    posted
}

/// Notes the receiver's answer (or why there was none) in `posted`.
async fn read_answer(posted: &mut Posted, result: reqwest::Result<reqwest::Response>) {
    match result {
        Ok(response) => {
            let status = response.status();
            posted.status = Some(status.as_u16());
            if status.as_u16() == 429 || status.as_u16() == 503 {
                posted.retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| super::retry::parse_retry_after(v, Utc::now()));
            }
            let text = response.text().await.unwrap_or_default();
            posted.response_body = Some(truncate(text, RESPONSE_LOG_BYTES));
            if !status.is_success() {
                posted.error = Some(format!("the callback answered {status}"));
            }
        }
        Err(err) => {
            posted.error = Some(if err.is_timeout() {
                "timed out".to_string()
            } else {
                super::error_chain(&err)
            });
        }
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Per callback of a pass: whether any POST succeeded, whether any failed, whether it is gone.
#[derive(Default)]
struct CallbackOutcome {
    succeeded: bool,
    failed: bool,
    gone: bool,
}

/// Writes the attempts and moves deliveries and callbacks on, in one transaction.
async fn record(
    ctx: &Delivery<'_>,
    worker: &str,
    posts: Vec<Posted>,
) -> Result<(), crate::domain::Error> {
    let now = store::now();
    let (outcomes, callbacks) = attempt_outcomes(&ctx.hub.settings, &posts, now);
    let mut tx = ctx.db.begin().await?;
    sql::record_attempts(tx.conn(), worker, &outcomes, now).await?;
    for (callback_id, outcome) in callbacks {
        if outcome.gone {
            sql::set_callback_state(
                tx.conn(),
                callback_id,
                "gone",
                Some("the callback answered 410 Gone"),
                now,
            )
            .await?;
            tracing::info!(callback = %callback_id, "callback answered 410; subscription ended");
        } else if outcome.succeeded {
            sql::clear_failing(tx.conn(), callback_id).await?;
        } else if outcome.failed {
            let since = sql::note_failing(tx.conn(), callback_id, now).await?;
            let failing_for = since.map(|since| (now - since).to_std().unwrap_or_default());
            if failing_for.is_some_and(|d| d >= ctx.hub.settings.disable_after) {
                disable(&mut tx, ctx, callback_id, now).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Each delivery's attempt (and its next state under the retry schedule), and what the pass
/// came to per callback.
fn attempt_outcomes(
    settings: &super::CallbackSettings,
    posts: &[Posted],
    now: DateTime<Utc>,
) -> (Vec<AttemptOutcome>, HashMap<Uuid, CallbackOutcome>) {
    let mut outcomes = Vec::new();
    let mut callbacks: HashMap<Uuid, CallbackOutcome> = HashMap::new();
    let mut rng = rand::rngs::StdRng::from_entropy();
    for posted in posts {
        let entry = callbacks.entry(posted.callback_id).or_default();
        let outcome = if posted.succeeded() {
            entry.succeeded = true;
            ("succeeded", None)
        } else if posted.gone() {
            entry.gone = true;
            ("failed", None)
        } else {
            entry.failed = true;
            let attempts = posted.deliveries.iter().map(|d| d.1).max().unwrap_or(1);
            match settings
                .retry
                .delay_after(attempts.max(1) as u32, posted.retry_after, &mut rng)
            {
                Some(delay) => ("pending", Some(after(now, delay))),
                None => ("failed", None),
            }
        };
        for (delivery_id, _) in &posted.deliveries {
            outcomes.push(AttemptOutcome {
                delivery_id: *delivery_id,
                attempted_at: posted.attempted_at,
                status_code: posted.status.map(i32::from),
                duration_ms: posted.duration_ms,
                response_body: posted.response_body.clone(),
                error: posted.error.clone(),
                state: outcome.0,
                next_attempt_at: outcome.1,
            });
        }
        metrics::counter!("sbm_delivery_attempts_total", "outcome" => outcome.0)
            .increment(posted.deliveries.len() as u64);
    }
    (outcomes, callbacks)
}

async fn disable(
    tx: &mut store::Tx,
    ctx: &Delivery<'_>,
    callback_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), crate::domain::Error> {
    let reason = format!(
        "every delivery attempt failed for {} s",
        ctx.hub.settings.disable_after.as_secs()
    );
    let Some(callback) =
        sql::set_callback_state(tx.conn(), callback_id, "disabled", Some(&reason), now).await?
    else {
        return Ok(());
    };
    tracing::warn!(callback = %callback.id, url = %callback.callback_url, "callback disabled: its deliveries keep failing");
    follow(
        tx,
        ctx.effects,
        Change::CallbackDisabled {
            callback: &callback,
            reason: &reason,
        },
    )
    .await?;
    Ok(())
}
