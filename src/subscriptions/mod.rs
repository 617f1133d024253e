//! Subscriptions: creating, changing and deleting them, asking for sends, and recording a send
//! (advancing the sequence, completing the set, starting the next set). Every function takes the
//! caller's transaction and reports its changes to [`effects`](crate::effects).

/// Old path of [`crate::model::subscriptions`], kept while the step-7 branches merge.
pub use crate::model::subscriptions as model;

use std::collections::HashMap;
use std::time::Duration;

use uuid::Uuid;

use crate::content::{is_language_code, LANGUAGE_ERROR};
pub use crate::domain::{Error, Result};
use crate::effects::{follow, follow_all, Change, Effects};
use crate::model::content::MessageSet;
use crate::model::subscriptions::{status, Subscription, SubscriptionFields};
use crate::store::content::{self as content_sql, Table};
use crate::store::subscriptions::{self as sql, Advance};
use crate::store::{self, Tx};
use crate::validation::{missing_pk, FieldErrors};

/// The message sets and schedules that fields name, each read once per transaction (a batch of
/// creations mostly names the same few).
#[derive(Default)]
struct References {
    message_sets: HashMap<i64, Option<MessageSet>>,
    schedules: HashMap<i64, bool>,
}

impl References {
    async fn message_set(&mut self, tx: &mut Tx, id: i64) -> Result<Option<MessageSet>> {
        if let Some(set) = self.message_sets.get(&id) {
            return Ok(set.clone());
        }
        let set = content_sql::get_message_set(tx.conn(), id).await?;
        self.message_sets.insert(id, set.clone());
        Ok(set)
    }

    async fn schedule_exists(&mut self, tx: &mut Tx, id: i64) -> Result<bool> {
        if let Some(&exists) = self.schedules.get(&id) {
            return Ok(exists);
        }
        let exists = content_sql::exists(tx.conn(), Table::Schedule, id).await?;
        self.schedules.insert(id, exists);
        Ok(exists)
    }
}

/// Checks the fields; returns the message set they name (read once, for its default schedule
/// too).
async fn validate(
    tx: &mut Tx,
    effects: &Effects,
    f: &SubscriptionFields,
    references: &mut References,
) -> Result<MessageSet> {
    let mut errors = FieldErrors::new();
    if let Some(zone) = &f.timezone {
        if let Err(message) = crate::content::zone::check_zone(zone, effects.scheduler_mode) {
            errors.add("timezone", message);
        }
    }
    if f.next_sequence_number < 1 {
        errors.add(
            "next_sequence_number",
            "Ensure this value is greater than or equal to 1.",
        );
    }
    if f.initial_sequence_number.is_some_and(|n| n < 1) {
        errors.add(
            "initial_sequence_number",
            "Ensure this value is greater than or equal to 1.",
        );
    }
    if !is_language_code(&f.lang) {
        errors.add("lang", LANGUAGE_ERROR);
    }
    if !status::ALL.contains(&f.process_status) {
        errors.add(
            "process_status",
            format!("\"{}\" is not a valid choice.", f.process_status),
        );
    }
    if f.metadata.as_ref().is_some_and(|m| !m.is_object()) {
        errors.add("metadata", "Expected a JSON object.");
    }
    // The same tests as `content::check_reference`, by reading the rows they test for.
    let set = references.message_set(tx, f.message_set_id).await?;
    if set.is_none() {
        errors.add("messageset", missing_pk(f.message_set_id));
    }
    if let Some(schedule) = f.schedule_id {
        if !references.schedule_exists(tx, schedule).await? {
            errors.add("schedule", missing_pk(schedule));
        }
    }
    errors.into_result()?;
    set.ok_or(Error::NotFound)
}

/// The schedule to store: the one given, or the message set's default.
fn schedule_for(set: &MessageSet, f: &SubscriptionFields) -> i64 {
    f.schedule_id.unwrap_or(set.default_schedule_id)
}

pub async fn create(
    tx: &mut Tx,
    effects: &Effects,
    f: SubscriptionFields,
    user: Option<i64>,
) -> Result<Subscription> {
    let mut created = create_many(tx, effects, vec![(f, user)]).await?;
    created.pop().expect("one outcome for each creation")
}

/// [`create`] for many subscriptions in one transaction, each with its own user: the message
/// sets and schedules they name are read once, and their events, metric rows and jobs are
/// written together. Returns each creation's outcome in order: one whose fields are refused
/// writes nothing and gets its error, the others are created. An error of the database is the
/// whole call's (the transaction is then to be rolled back).
pub async fn create_many(
    tx: &mut Tx,
    effects: &Effects,
    creations: Vec<(SubscriptionFields, Option<i64>)>,
) -> Result<Vec<Result<Subscription>>> {
    let mut references = References::default();
    let mut outcomes = Vec::with_capacity(creations.len());
    for (mut f, user) in creations {
        let set = match validate(tx, effects, &f, &mut references).await {
            Ok(set) => set,
            Err(refused @ Error::Invalid(_)) => {
                outcomes.push(Err(refused));
                continue;
            }
            Err(other) => return Err(other),
        };
        f.initial_sequence_number = f.initial_sequence_number.or(Some(f.next_sequence_number));
        let schedule = schedule_for(&set, &f);
        let id = Uuid::new_v4();
        let created =
            sql::insert_subscription(tx.conn(), id, &f, schedule, user, store::now()).await?;
        outcomes.push(Ok(created));
    }
    let changes: Vec<Change> = outcomes
        .iter()
        .flatten()
        .map(Change::SubscriptionCreated)
        .collect();
    follow_all(tx, effects, &changes).await?;
    Ok(outcomes)
}

/// Reads and locks a subscription for a read-modify-write in this transaction.
pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Subscription> {
    sql::lock_subscription(tx.conn(), id)
        .await?
        .ok_or(Error::NotFound)
}

/// Writes new fields over `before` (read with [`lock`] in the same transaction).
pub async fn update(
    tx: &mut Tx,
    effects: &Effects,
    before: &Subscription,
    f: SubscriptionFields,
    user: Option<i64>,
) -> Result<Subscription> {
    let set = validate(tx, effects, &f, &mut References::default()).await?;
    let schedule = schedule_for(&set, &f);
    let after =
        sql::update_subscription(tx.conn(), before.id, &f, schedule, user, store::now()).await?;
    follow(
        tx,
        effects,
        Change::SubscriptionUpdated {
            before,
            after: &after,
        },
    )
    .await?;
    Ok(after)
}

pub async fn delete(tx: &mut Tx, effects: &Effects, id: Uuid) -> Result<()> {
    let subscription = lock(tx, id).await?;
    sql::delete_subscription(tx.conn(), id).await?;
    follow(tx, effects, Change::SubscriptionDeleted(&subscription)).await?;
    Ok(())
}

/// The answer to a send request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendRequest {
    /// A send job was written.
    Accepted,
    /// A send for this subscription is waiting or running: this one follows it once it has
    /// finished.
    Queued,
    /// A send for this subscription is already waiting or running, or was asked for moments
    /// ago: this request is a repeat and adds nothing.
    Duplicate,
    /// The subscription exists but takes no sends (inactive or completed): nothing is sent,
    /// and its Seed Scheduler schedule, if any, is disabled.
    NotLive(&'static str),
    /// There is no such subscription.
    Missing,
}

/// Who asked for a send, which decides what a second request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// The Seed Scheduler's POST-back. It delivers at least once, so a second request within
    /// `window` of the previous one, or while a send waits or runs, is its repeat.
    Scheduler { window: Duration },
    /// A user: every request is a message wanted, sent in turn after those before it.
    User,
}

/// Asks for the subscription's next message to be sent.
pub async fn request_send(
    tx: &mut Tx,
    effects: &Effects,
    id: Uuid,
    requester: Requester,
) -> Result<SendRequest> {
    let Some(subscription) = sql::lock_subscription(tx.conn(), id).await? else {
        return Ok(SendRequest::Missing);
    };
    if !subscription.is_live() {
        follow(tx, effects, Change::SendRefused(&subscription)).await?;
        let reason = if subscription.completed {
            "Subscription is completed"
        } else {
            "Subscription is not active"
        };
        return Ok(SendRequest::NotLive(reason));
    }
    match requester {
        Requester::Scheduler { window } => {
            let now = store::now();
            let window_start = now - chrono::Duration::from_std(window).unwrap_or_default();
            if !sql::claim_send_request(tx.conn(), id, now, window_start).await? {
                return Ok(SendRequest::Duplicate);
            }
            enqueue_send(tx, effects, &subscription, false).await
        }
        Requester::User => match enqueue_send(tx, effects, &subscription, false).await? {
            SendRequest::Duplicate => {
                sql::queue_send(tx.conn(), id).await?;
                Ok(SendRequest::Queued)
            }
            written => Ok(written),
        },
    }
}

/// Turns the queued user sends of these subscriptions, whose send has just finished, into
/// their next send jobs: one each, so that they still go one at a time.
pub async fn release_queued_sends(
    tx: &mut Tx,
    effects: &Effects,
    ids: &[Uuid],
) -> store::Result<()> {
    for subscription in sql::take_queued_sends(tx.conn(), ids).await? {
        if subscription.is_live() {
            let change = Change::SendRequested {
                subscription: &subscription,
                resend: false,
            };
            follow(tx, effects, change).await?;
        }
    }
    Ok(())
}

/// Asks for the subscription's current message to be sent again (without advancing).
pub async fn request_resend(tx: &mut Tx, effects: &Effects, id: Uuid) -> Result<SendRequest> {
    let subscription = lock(tx, id).await?;
    enqueue_send(tx, effects, &subscription, true).await
}

async fn enqueue_send(
    tx: &mut Tx,
    effects: &Effects,
    subscription: &Subscription,
    resend: bool,
) -> Result<SendRequest> {
    if follow(
        tx,
        effects,
        Change::SendRequested {
            subscription,
            resend,
        },
    )
    .await?
        == 0
    {
        return Ok(SendRequest::Duplicate);
    }
    Ok(SendRequest::Accepted)
}

/// The sequence number a resend sends: the last message sent (the current one when the
/// subscription has completed, as completing does not advance).
pub fn resend_sequence_number(s: &Subscription) -> i32 {
    if s.completed {
        s.next_sequence_number
    } else {
        (s.next_sequence_number - 1)
            .max(s.initial_sequence_number.unwrap_or(1))
            .max(1)
    }
}

/// A message accepted for a subscription, to record with [`record_sent_many`].
#[derive(Debug, Clone)]
pub struct Sent {
    /// The subscription as read before the send.
    pub before: Subscription,
    pub sequence_number: i32,
    pub prepend_used: bool,
    /// The set's last sequence number in the subscription's language.
    pub last: Option<i32>,
}

/// Records that each message was accepted: moves each subscription to its next message, or
/// completes its set (when it was the set's last message in the language) and starts the next
/// set; clears a prepended text that went out. One statement for all; a subscription that has
/// already moved past the number sent is left alone (so a repeated send never advances twice).
/// Returns the subscriptions as they are after the advance; [`follow_advances`] then writes
/// what follows.
pub async fn record_sent_many(tx: &mut Tx, sent: &[Sent]) -> Result<Vec<Subscription>> {
    let items: Vec<sql::AdvanceOf> = sent
        .iter()
        .map(|s| {
            let completed = s.last.is_none_or(|last| s.sequence_number >= last);
            sql::AdvanceOf {
                id: s.before.id,
                advance: Advance {
                    sent_sequence_number: s.sequence_number,
                    next_sequence_number: if completed {
                        s.sequence_number
                    } else {
                        s.sequence_number + 1
                    },
                    completed,
                    clear_prepend: s.prepend_used,
                },
            }
        })
        .collect();
    Ok(sql::advance_many(tx.conn(), &items, store::now()).await?)
}

/// What follows the advances of [`record_sent_many`], once the sends themselves have been
/// followed (so a subscription's `send.succeeded` precedes its `subscription.completed`):
/// scheduler sync, completion events, and the next set's subscription.
pub async fn follow_advances(
    tx: &mut Tx,
    effects: &Effects,
    sent: &[Sent],
    advanced: &[Subscription],
) -> Result<()> {
    let before: std::collections::HashMap<Uuid, &Subscription> =
        sent.iter().map(|s| (s.before.id, &s.before)).collect();
    let changes: Vec<Change> = advanced
        .iter()
        .filter_map(|after| {
            before
                .get(&after.id)
                .map(|before| Change::SubscriptionAdvanced { before, after })
        })
        .collect();
    crate::effects::follow_all(tx, effects, &changes).await?;
    for after in advanced.iter().filter(|a| a.completed) {
        start_next_set(tx, effects, after).await?;
    }
    Ok(())
}

/// When a completed subscription's set has a `next_set`, subscribes the same identity to it
/// from the first message, on that set's default schedule.
async fn start_next_set(
    tx: &mut Tx,
    effects: &Effects,
    finished: &Subscription,
) -> Result<Option<Subscription>> {
    let set = content_sql::get_message_set(tx.conn(), finished.message_set_id)
        .await?
        .ok_or(Error::NotFound)?;
    let Some(next_set) = set.next_set_id else {
        return Ok(None);
    };
    let Some(next) = content_sql::get_message_set(tx.conn(), next_set).await? else {
        return Ok(None);
    };
    let fields = SubscriptionFields {
        identity: finished.identity,
        version: finished.version,
        message_set_id: next.id,
        next_sequence_number: 1,
        initial_sequence_number: Some(1),
        lang: finished.lang.clone(),
        schedule_id: Some(next.default_schedule_id),
        // The subscriber lives where they lived.
        timezone: finished.timezone.clone(),
        ..SubscriptionFields::default()
    };
    create(tx, effects, fields, finished.created_by)
        .await
        .map(Some)
}
