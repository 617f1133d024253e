//! The send job: one message to one subscriber.
//!
//! 1. read the subscription, and (cached) its set and the message for its sequence number and
//!    language;
//! 2. ask the Identity Store for the subscriber's number;
//! 3. post the outbound to the Message Sender, with a send id (the job's task id) that stays
//!    the same on retries;
//! 4. in one transaction: record the send (advance, or complete and start the next set) and
//!    finish the job. The job gives its worker slot back as soon as the committer has queued it
//!    (`SBM_WORKER_CONCURRENCY` counts sends in progress with the peers, not waits on commits). A crash between 3 and 4 re-runs the job after its lease: the message may
//!    then reach the Message Sender twice, but with the same send id, and the subscription
//!    still advances once.

use uuid::Uuid;

use super::completion::Completion;
use super::{outbound_body, Outbound};
use crate::content::model::{Message, MessageSet};
use crate::jobs::{Claim, Failure, Outcome};
use crate::store::{content as content_sql, subscriptions as sql, Db};
use crate::subscriptions::model::{status, Subscription, PREPEND_KEY};
use crate::subscriptions::{resend_sequence_number, Sent};

pub use super::SendDeps;

fn content_error(reason: String) -> Failure {
    Failure::permanent(reason, Some(status::CONTENT_ERROR))
}

/// `prefetched` is the subscription as read when the job was claimed, if it was.
pub async fn send(
    ctx: &SendDeps<'_>,
    claim: &Claim<'_>,
    subscription_id: Uuid,
    resend: bool,
    prefetched: Option<Subscription>,
) -> Outcome {
    let subscription = match prefetched {
        Some(subscription) => Some(subscription),
        None => read_subscription(ctx.db, subscription_id).await?,
    };
    let Some(subscription) = subscription.filter(|s| resend || s.is_live()) else {
        // Deleted, deactivated or completed since the send was asked for: nothing to send.
        return claim.finish_alone(ctx.db).await;
    };
    let set = ctx
        .content
        .message_set(ctx.db, subscription.message_set_id)
        .await?
        .ok_or_else(|| content_error("the subscription's message set no longer exists".into()))?;
    if super::quiet_hours::defer_outside_window(ctx, claim, &subscription, &set).await? {
        return Ok(());
    }
    send_message(ctx, claim, subscription, set, resend).await
}

/// Sends the subscription's message (the next, or its current one again for a resend) and
/// hands the accepted send to the committer.
async fn send_message(
    ctx: &SendDeps<'_>,
    claim: &Claim<'_>,
    subscription: Subscription,
    set: std::sync::Arc<MessageSet>,
    resend: bool,
) -> Outcome {
    let send_id = claim.row.task_id;
    let sequence_number = if resend {
        resend_sequence_number(&subscription)
    } else {
        subscription.next_sequence_number
    };
    let (message, file_url) = message_of(ctx, &set, sequence_number, &subscription.lang).await?;
    let to_addr = address_of(ctx, &subscription).await?;
    let prepend = if resend {
        None
    } else {
        subscription.metadata_str(PREPEND_KEY)
    };
    let outbound = Outbound {
        to_addr: &to_addr,
        identity: subscription.identity,
        channel: set.channel.as_deref(),
        content_type: &set.content_type,
        text: message.text_content.as_deref(),
        file_url,
        prepend,
        message_metadata: message.metadata.as_ref().map(|m| &m.0),
        send_id,
        resend,
    };
    let outbound_id = post_outbound(ctx, &outbound).await?;
    tracing::debug!(subscription = %subscription.id, sequence_number, %send_id, %outbound_id, "message sent");
    let prepend_used = prepend.is_some();
    let sent = match resend {
        true => None,
        false => Some(sent_of(ctx, &set, &subscription, sequence_number, prepend_used).await?),
    };
    let completion = Completion {
        job_id: claim.row.id,
        worker: claim.worker.to_string(),
        set,
        sent,
        subscription,
        sequence_number,
        outbound_id,
        send_id,
    };
    let committing = ctx.completer.submit(completion).await?;
    // Done with the peers: the worker's slot goes to the next job while the batch commits.
    claim.slot.hand_off(committing.committed());
    Ok(())
}

async fn read_subscription(db: &Db, id: Uuid) -> Result<Option<Subscription>, Failure> {
    let mut conn = db.acquire().await?;
    Ok(sql::get_subscription(conn.conn(), id).await?)
}

/// What the accepted send moves the subscription on by.
async fn sent_of(
    ctx: &SendDeps<'_>,
    set: &MessageSet,
    subscription: &Subscription,
    sequence_number: i32,
    prepend_used: bool,
) -> Result<Sent, Failure> {
    let last = ctx
        .content
        .last_sequence_number(ctx.db, set.id, &subscription.lang)
        .await?;
    Ok(Sent {
        before: subscription.clone(),
        sequence_number,
        prepend_used,
        last,
    })
}

/// The message to send and the URL of its media, if it has any.
async fn message_of(
    ctx: &SendDeps<'_>,
    set: &MessageSet,
    sequence_number: i32,
    lang: &str,
) -> Result<(std::sync::Arc<Message>, Option<String>), Failure> {
    let message = ctx
        .content
        .message(ctx.db, set.id, sequence_number, lang)
        .await?
        .ok_or_else(|| {
            content_error(format!(
                "message set {} ({}) has no message {sequence_number} in {lang}",
                set.id, set.short_name
            ))
        })?;
    let file_url = match message.binary_content_id {
        Some(id) => {
            let mut conn = ctx.db.acquire().await?;
            let binary = content_sql::get_binary_content(conn.conn(), id).await?;
            binary.map(|b| format!("{}/media/{}", ctx.public_origin, b.path))
        }
        None => None,
    };
    if set.content_type == "audio" && file_url.is_none() {
        return Err(content_error(format!(
            "audio message {} of set {} has no binary content",
            message.id, set.id
        )));
    }
    Ok((message, file_url))
}

/// The subscriber's number, from the Identity Store.
async fn address_of(ctx: &SendDeps<'_>, subscription: &Subscription) -> Result<String, Failure> {
    ctx.peers
        .identity_store()?
        .msisdn(subscription.identity)
        .await?
        .ok_or_else(|| {
            let reason = format!(
                "identity {} has no msisdn address to send to",
                subscription.identity
            );
            Failure {
                metric: Some("errored".into()),
                ..Failure::permanent(reason, Some(status::ADDRESS_ERROR))
            }
        })
}

/// Posts the outbound to the Message Sender, within the send rate; returns its id.
async fn post_outbound(ctx: &SendDeps<'_>, outbound: &Outbound<'_>) -> Result<String, Failure> {
    let sender = ctx.peers.message_sender()?;
    if let Some(limiter) = ctx.send_rate {
        limiter.wait().await;
    }
    Ok(sender.create_outbound(&outbound_body(outbound)).await?)
}
