//! Quiet hours: a send that would leave outside its message set's window (or the configured
//! default) waits for the window's next opening in the subscriber's zone.
//!
//! The job is put back to wait with its new run time and the reason (and a `send.deferred`
//! event says so, in the same transaction), before anything is sent,
//! and without counting the attempt: it is still the one send of that subscription (the
//! `job_send_once` index keeps ticks from adding another), and it runs again when the window
//! opens as any waiting job does.

use super::SendDeps;
use crate::content::zone::{effective_zone, format_local, local, window_of};
use crate::effects::{self, Change};
use crate::jobs::{Claim, Failure};
use crate::model::content::MessageSet;
use crate::model::subscriptions::Subscription;
use crate::store::{self, local_time as sql};

/// Defers the claimed send if it is outside its window now; `true` when it did (or when the
/// job was lost to another worker meanwhile): the send must then not go out.
pub async fn defer_outside_window(
    ctx: &SendDeps<'_>,
    claim: &Claim<'_>,
    subscription: &Subscription,
    set: &MessageSet,
) -> Result<bool, Failure> {
    let Some(window) = window_of(set, ctx.send_window) else {
        return Ok(false);
    };
    let schedule_zone = match &subscription.timezone {
        Some(_) => None,
        None => {
            ctx.content
                .schedule_zone(ctx.db, subscription.schedule_id)
                .await?
        }
    };
    let zone = effective_zone(
        subscription.timezone.as_deref(),
        schedule_zone.as_deref().unwrap_or("UTC"),
    );
    let now = store::now();
    let opens = window.next_send_time(zone, now);
    if opens <= now {
        return Ok(false);
    }
    let reason = format!(
        "outside the send window {} ({}, local time {}); deferred to {}",
        window.describe(),
        zone.name(),
        local(zone, now).format("%H:%M"),
        format_local(zone, opens),
    );
    let mut tx = ctx.db.begin().await?;
    if sql::defer_job(tx.conn(), claim.row.id, claim.worker, opens, &reason, now).await? {
        let change = Change::SendDeferred {
            subscription,
            task_id: claim.row.task_id,
            until: opens,
            reason: &reason,
        };
        effects::follow(&mut tx, ctx.effects, change).await?;
        tx.commit().await?;
        metrics::counter!("sbm_sends_deferred_total").increment(1);
        tracing::info!(subscription = %subscription.id, job = claim.row.id, %opens, "send deferred to its window");
    }
    Ok(true)
}
