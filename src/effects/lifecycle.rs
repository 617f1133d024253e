//! Lifecycle events as a consequence: the events each change writes (docs/events.md lists
//! them), their data the objects as a GET would show them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Change, Effects, Op};
use crate::events::Event;
use crate::model::callbacks::CallbackRow;
use crate::model::content::MessageSet;
use crate::model::subscriptions::Subscription;
use crate::wire;

/// The lifecycle events a change writes (docs/events.md lists them).
pub fn events(effects: &Effects, change: Change<'_>) -> Vec<Event> {
    let origin = effects.public_origin.as_str();
    match change {
        Change::Schedule(..)
        | Change::MessageSet(..)
        | Change::Message(..)
        | Change::BinaryContent(..) => content(effects, change).into_iter().collect(),
        Change::SubscriptionCreated(s) => {
            vec![subscription_event("subscription.created", origin, s)]
        }
        Change::SubscriptionUpdated { before, after } => {
            subscription_updated(origin, before, after)
        }
        // Most advances are neither: the subscription is serialized only for one that is.
        Change::SubscriptionAdvanced { before, after } => lifecycle_step(before, after)
            .map(|step| subscription_event(step, origin, after))
            .into_iter()
            .collect(),
        Change::SubscriptionDeleted(s) => {
            vec![subscription_event("subscription.deleted", origin, s)]
        }
        Change::SendRequested { .. }
        | Change::SendRefused(_)
        | Change::ScheduledMetricsRequested
        | Change::ScheduleFireRequested { .. }
        | Change::HubRequested { .. }
        | Change::IntegrationPushRequested { .. } => Vec::new(),
        Change::MessageSent {
            subscription,
            set,
            sequence_number,
            outbound_id,
            send_id,
            resend,
        } => vec![message_sent(
            origin,
            Sent {
                subscription,
                set,
                sequence_number,
                outbound_id,
                send_id,
                resend,
            },
        )],
        Change::SendFailed { retrying: true, .. }
        | Change::SendFailed {
            subscription: None, ..
        } => Vec::new(),
        Change::SendFailed {
            subscription: Some(s),
            reason,
            error,
            task_id,
            attempts,
            retrying: false,
        } => vec![send_failed(origin, s, reason, error, task_id, attempts)],
        Change::SendDeferred {
            subscription,
            task_id,
            until,
            reason,
        } => vec![send_deferred(origin, subscription, task_id, until, reason)],
        Change::CallbackDisabled { callback, reason } => {
            vec![callback_disabled(origin, callback, reason)]
        }
    }
}

/// `<object>.created`, `.updated` or `.deleted` for a piece of content; `None` for other
/// changes.
fn content(effects: &Effects, change: Change<'_>) -> Option<Event> {
    let origin = effects.public_origin.as_str();
    let (op, names, object_type, id, data) = match change {
        Change::Schedule(op, s) => (
            op,
            ["schedule.created", "schedule.updated", "schedule.deleted"],
            "schedule",
            s.id,
            wire::schedule(s, (effects.next_due)(s)),
        ),
        Change::MessageSet(op, s) => (
            op,
            [
                "messageset.created",
                "messageset.updated",
                "messageset.deleted",
            ],
            "messageset",
            s.id,
            wire::message_set(s),
        ),
        Change::Message(op, m) => (
            op,
            ["message.created", "message.updated", "message.deleted"],
            "message",
            m.id,
            wire::message(m),
        ),
        Change::BinaryContent(op, b) => (
            op,
            [
                "binarycontent.created",
                "binarycontent.updated",
                "binarycontent.deleted",
            ],
            "binarycontent",
            b.id,
            wire::binary_content(origin, b),
        ),
        _ => return None,
    };
    let [created, updated, deleted] = names;
    let event_type = match op {
        Op::Created => created,
        Op::Updated => updated,
        Op::Deleted => deleted,
    };
    Some(Event::new(event_type, object_type, id, data))
}

fn subscription_event(event_type: &'static str, origin: &str, s: &Subscription) -> Event {
    Event::new(
        event_type,
        "subscription",
        s.id,
        wire::subscription(origin, s),
    )
}

/// `subscription.updated` with the names of the fields that changed, then
/// `subscription.completed` or `.deactivated` if the update was one of those.
fn subscription_updated(origin: &str, before: &Subscription, after: &Subscription) -> Vec<Event> {
    let data = wire::subscription(origin, after);
    let changed = changed_fields(&wire::subscription(origin, before), &data);
    let mut updated = data.clone();
    updated["changed"] = json!(changed);
    let mut events = vec![Event::new(
        "subscription.updated",
        "subscription",
        after.id,
        updated,
    )];
    events.extend(
        lifecycle_step(before, after).map(|step| Event::new(step, "subscription", after.id, data)),
    );
    events
}

/// The names of the fields that differ between two representations (timestamps aside).
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Vec::new();
    };
    after
        .iter()
        .filter(|(key, value)| {
            key.as_str() != "updated_at" && before.get(key.as_str()) != Some(value)
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// `subscription.completed` or `subscription.deactivated`, when the change is one of those.
fn lifecycle_step(before: &Subscription, after: &Subscription) -> Option<&'static str> {
    if !before.completed && after.completed {
        Some("subscription.completed")
    } else if before.active && !after.active {
        Some("subscription.deactivated")
    } else {
        None
    }
}

/// The fields of [`Change::MessageSent`].
struct Sent<'a> {
    subscription: &'a Subscription,
    set: &'a MessageSet,
    sequence_number: i32,
    outbound_id: &'a str,
    send_id: Uuid,
    resend: bool,
}

fn message_sent(origin: &str, sent: Sent<'_>) -> Event {
    let s = sent.subscription;
    Event::new(
        "send.succeeded",
        "subscription",
        s.id,
        json!({
            "subscription": wire::subscription(origin, s),
            "messageset": sent.set.id,
            "sequence_number": sent.sequence_number,
            "outbound_id": sent.outbound_id,
            "send_id": sent.send_id,
            "resend": sent.resend,
        }),
    )
}

/// A final send failure: `send.errored` (no address) or `send.failed`.
fn send_failed(
    origin: &str,
    s: &Subscription,
    reason: Option<&str>,
    error: &str,
    task_id: Uuid,
    attempts: i32,
) -> Event {
    Event::new(
        if reason == Some("errored") {
            "send.errored"
        } else {
            "send.failed"
        },
        "subscription",
        s.id,
        json!({
            "subscription": wire::subscription(origin, s),
            "task_id": task_id,
            "attempts": attempts,
            "reason": reason.unwrap_or("other"),
            "error": error,
        }),
    )
}

/// A send that waits for its window: when it will go, and why it did not go now.
fn send_deferred(
    origin: &str,
    s: &Subscription,
    task_id: Uuid,
    until: DateTime<Utc>,
    reason: &str,
) -> Event {
    Event::new(
        "send.deferred",
        "subscription",
        s.id,
        json!({
            "subscription": wire::subscription(origin, s),
            "task_id": task_id,
            "run_at": wire::format_time(&until),
            "reason": reason,
        }),
    )
}

fn callback_disabled(origin: &str, callback: &CallbackRow, reason: &str) -> Event {
    Event::new(
        "callback.disabled",
        "callback",
        callback.id,
        json!({
            "callback": wire::callback(origin, callback),
            "reason": reason,
        }),
    )
}
