//! The one place that decides what follows each change. Domain code reports a [`Change`] inside
//! its transaction; [`consequences`] (a plain table from change to jobs), [`events`] (from change
//! to lifecycle events, docs/events.md) and [`metrics`] (from change to Go Metrics counters) say
//! what must happen, and [`follow`] writes it all in the same transaction, so the change and its
//! consequences commit together or not at all.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::content::model::{BinaryContent, Message, MessageSet, Schedule};
use crate::events::{self, Event};
use crate::go_metrics;
use crate::http::representation as wire;
use crate::jobs::{self, Job, JobSettings};
use crate::store::events::CallbackRow;
use crate::store::{self, content as content_sql, metrics as metrics_sql, Tx};
use crate::subscriptions::model::{status, Subscription};

/// What the consequences depend on besides the change itself.
#[derive(Debug, Clone)]
pub struct Effects {
    pub jobs: JobSettings,
    /// Compatible mode: a Seed Scheduler is configured and drives sends with POST-backs.
    pub scheduler_mode: bool,
    /// A Go Metrics API is configured: count the original's metrics.
    pub go_metrics: bool,
    /// Where this service is reached, for the URLs in event data.
    pub public_origin: String,
}

/// What happened to a piece of content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Created,
    Updated,
    Deleted,
}

#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    Schedule(Op, &'a Schedule),
    MessageSet(Op, &'a MessageSet),
    Message(Op, &'a Message),
    BinaryContent(Op, &'a BinaryContent),
    SubscriptionCreated(&'a Subscription),
    SubscriptionUpdated {
        before: &'a Subscription,
        after: &'a Subscription,
    },
    /// A send moved the subscription on (or completed it); the send's own event reports it.
    SubscriptionAdvanced {
        before: &'a Subscription,
        after: &'a Subscription,
    },
    SubscriptionDeleted(&'a Subscription),
    /// A send was asked for (Scheduler POST-back or resend). Ticks write their sends
    /// set-based (`store::ticks::enqueue_schedule_sends`), the same job rows this writes.
    SendRequested {
        subscription: &'a Subscription,
        resend: bool,
    },
    /// A send was asked for a subscription that no longer takes messages.
    SendRefused(&'a Subscription),
    /// The Message Sender accepted a message for the subscription (as it is after the send).
    MessageSent {
        subscription: &'a Subscription,
        set: &'a MessageSet,
        sequence_number: i32,
        outbound_id: &'a str,
        send_id: Uuid,
        resend: bool,
    },
    /// A send failed; `reason` is `errored` (no address) or the peer failure's metric suffix,
    /// if it has one.
    SendFailed {
        subscription: Option<&'a Subscription>,
        reason: Option<&'a str>,
        error: &'a str,
        task_id: Uuid,
        attempts: i32,
        /// The send will be tried again (no event yet: only a final failure is one).
        retrying: bool,
    },
    /// A callback was disabled because its deliveries kept failing.
    CallbackDisabled {
        callback: &'a CallbackRow,
        reason: &'a str,
    },
    /// An operator asked for the scheduled metrics to be computed and pushed now.
    ScheduledMetricsRequested,
    /// An operator (or the Scheduler) asked for one tick of a schedule now.
    ScheduleFireRequested {
        schedule_id: i64,
    },
    /// A hub request was recorded: its verification of intent follows. The secret is sealed.
    HubRequested {
        callback_id: Uuid,
        mode: crate::callbacks::hub::Mode,
        topic: &'a str,
        lease_seconds: i64,
        sealed_secret: Option<&'a str>,
    },
    /// An operator asked a send group to push its waiting messages now.
    IntegrationPushRequested {
        group: &'a str,
    },
}

fn stops_sending(before: &Subscription, after: &Subscription) -> bool {
    let live = |s: &Subscription| s.is_live() && s.process_status != status::COMPLETED;
    live(before) && !live(after)
}

/// The jobs a change calls for.
pub fn consequences(effects: &Effects, change: Change<'_>) -> Vec<Job> {
    let disable = |s: &Subscription| {
        s.scheduler_schedule_id().map(|id| Job::SchedulerDisable {
            subscription_id: s.id,
            scheduler_schedule_id: id.to_string(),
        })
    };
    match change {
        Change::SubscriptionCreated(s) => {
            let wants_schedule =
                effects.scheduler_mode && s.is_live() && s.process_status == status::READY;
            wants_schedule
                .then_some(Job::SchedulerCreate {
                    subscription_id: s.id,
                })
                .into_iter()
                .collect()
        }
        Change::SubscriptionUpdated { before, after }
        | Change::SubscriptionAdvanced { before, after } => {
            if stops_sending(before, after) {
                disable(after).into_iter().collect()
            } else if before.schedule_id != after.schedule_id && after.is_live() {
                after
                    .scheduler_schedule_id()
                    .map(|id| Job::SchedulerUpdate {
                        subscription_id: after.id,
                        scheduler_schedule_id: id.to_string(),
                    })
                    .into_iter()
                    .collect()
            } else {
                Vec::new()
            }
        }
        Change::SubscriptionDeleted(s) | Change::SendRefused(s) => disable(s).into_iter().collect(),
        Change::SendRequested {
            subscription,
            resend,
        } => {
            vec![Job::SendMessage {
                subscription_id: subscription.id,
                resend,
            }]
        }
        Change::Schedule(..)
        | Change::MessageSet(..)
        | Change::Message(..)
        | Change::BinaryContent(..)
        | Change::MessageSent { .. }
        | Change::SendFailed { .. }
        | Change::CallbackDisabled { .. } => Vec::new(),
        Change::ScheduledMetricsRequested
        | Change::ScheduleFireRequested { .. }
        | Change::HubRequested { .. }
        | Change::IntegrationPushRequested { .. } => requested_jobs(change),
    }
}

fn content_event(
    op: Op,
    created: &'static str,
    updated: &'static str,
    deleted: &'static str,
) -> &'static str {
    match op {
        Op::Created => created,
        Op::Updated => updated,
        Op::Deleted => deleted,
    }
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

/// The lifecycle events a change writes (docs/events.md lists them).
pub fn events(effects: &Effects, change: Change<'_>) -> Vec<Event> {
    let origin = effects.public_origin.as_str();
    let subscription = |s: &Subscription| wire::subscription(origin, s);
    match change {
        Change::Schedule(op, s) => vec![Event::new(
            content_event(
                op,
                "schedule.created",
                "schedule.updated",
                "schedule.deleted",
            ),
            "schedule",
            s.id,
            wire::schedule(s),
        )],
        Change::MessageSet(op, s) => vec![Event::new(
            content_event(
                op,
                "messageset.created",
                "messageset.updated",
                "messageset.deleted",
            ),
            "messageset",
            s.id,
            wire::message_set(s),
        )],
        Change::Message(op, m) => vec![Event::new(
            content_event(op, "message.created", "message.updated", "message.deleted"),
            "message",
            m.id,
            wire::message(m),
        )],
        Change::BinaryContent(op, b) => vec![Event::new(
            content_event(
                op,
                "binarycontent.created",
                "binarycontent.updated",
                "binarycontent.deleted",
            ),
            "binarycontent",
            b.id,
            wire::binary_content(origin, b),
        )],
        Change::SubscriptionCreated(s) => {
            vec![Event::new(
                "subscription.created",
                "subscription",
                s.id,
                subscription(s),
            )]
        }
        Change::SubscriptionUpdated { before, after } => {
            let data = subscription(after);
            let changed = changed_fields(&subscription(before), &data);
            let mut updated = data.clone();
            updated["changed"] = json!(changed);
            let mut events = vec![Event::new(
                "subscription.updated",
                "subscription",
                after.id,
                updated,
            )];
            events.extend(
                lifecycle_step(before, after)
                    .map(|step| Event::new(step, "subscription", after.id, data)),
            );
            events
        }
        // Most advances are neither: the subscription is serialized only for one that is.
        Change::SubscriptionAdvanced { before, after } => lifecycle_step(before, after)
            .map(|step| Event::new(step, "subscription", after.id, subscription(after)))
            .into_iter()
            .collect(),
        Change::SubscriptionDeleted(s) => {
            vec![Event::new(
                "subscription.deleted",
                "subscription",
                s.id,
                subscription(s),
            )]
        }
        Change::SendRequested { .. } | Change::SendRefused(_) => Vec::new(),
        Change::MessageSent {
            subscription: s,
            set,
            sequence_number,
            outbound_id,
            send_id,
            resend,
        } => vec![Event::new(
            "send.succeeded",
            "subscription",
            s.id,
            json!({
                "subscription": subscription(s),
                "messageset": set.id,
                "sequence_number": sequence_number,
                "outbound_id": outbound_id,
                "send_id": send_id,
                "resend": resend,
            }),
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
        } => vec![Event::new(
            if reason == Some("errored") {
                "send.errored"
            } else {
                "send.failed"
            },
            "subscription",
            s.id,
            json!({
                "subscription": subscription(s),
                "task_id": task_id,
                "attempts": attempts,
                "reason": reason.unwrap_or("other"),
                "error": error,
            }),
        )],
        Change::CallbackDisabled { callback, reason } => vec![Event::new(
            "callback.disabled",
            "callback",
            callback.id,
            json!({
                "callback": crate::callbacks::representation(origin, callback),
                "reason": reason,
            }),
        )],
        Change::ScheduledMetricsRequested
        | Change::ScheduleFireRequested { .. }
        | Change::HubRequested { .. }
        | Change::IntegrationPushRequested { .. } => Vec::new(),
    }
}

/// The job an operator's (or a peer's) request asks for directly.
fn requested_jobs(change: Change<'_>) -> Vec<Job> {
    match change {
        Change::ScheduledMetricsRequested => vec![Job::FireScheduledMetrics],
        Change::ScheduleFireRequested { schedule_id } => vec![Job::FireSchedule { schedule_id }],
        Change::HubRequested {
            callback_id,
            mode,
            topic,
            lease_seconds,
            sealed_secret,
        } => vec![Job::VerifyCallback {
            callback_id,
            mode,
            topic: topic.to_string(),
            lease_seconds,
            secret: sealed_secret.map(str::to_string),
        }],
        Change::IntegrationPushRequested { group } => vec![Job::PushIntegration {
            group: group.to_string(),
        }],
        _ => Vec::new(),
    }
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

/// Writes the change's consequences in its transaction; returns how many jobs were new (a job
/// equal to one already waiting is not written twice).
pub async fn follow(tx: &mut Tx, effects: &Effects, change: Change<'_>) -> store::Result<usize> {
    follow_all(tx, effects, &[change]).await
}

/// [`follow`] for many changes of one transaction, writing their metric rows in one insert.
pub async fn follow_all(
    tx: &mut Tx,
    effects: &Effects,
    changes: &[Change<'_>],
) -> store::Result<usize> {
    let mut written = 0;
    let mut names = Vec::new();
    let mut lifecycle = Vec::new();
    for change in changes {
        for job in consequences(effects, *change) {
            if jobs::enqueue(tx, &effects.jobs, &job).await? {
                written += 1;
            }
        }
        if effects.go_metrics {
            names.extend(metrics(tx, *change).await?);
        }
        lifecycle.extend(events(effects, *change));
    }
    metrics_sql::record(tx.conn(), &names, 1.0, store::now()).await?;
    events::record(tx, lifecycle).await?;
    Ok(written)
}

/// The Go Metrics counters a change adds to (the original's real-time `.sum` metrics).
pub async fn metrics(tx: &mut Tx, change: Change<'_>) -> store::Result<Vec<String>> {
    Ok(match change {
        Change::SubscriptionCreated(s) => {
            match content_sql::get_message_set(tx.conn(), s.message_set_id).await? {
                Some(set) => go_metrics::created(&set, &s.lang),
                None => Vec::new(),
            }
        }
        Change::MessageSent { set, .. } => go_metrics::sent(set),
        Change::SendFailed {
            reason: Some(reason),
            ..
        } => go_metrics::send_failed(reason),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;
    use std::time::Duration;
    use uuid::Uuid;

    fn effects(scheduler_mode: bool) -> Effects {
        let jobs = JobSettings {
            max_attempts: 3,
            retry_base: Duration::from_millis(1),
            retry_max: Duration::from_millis(1),
            lease: Duration::from_secs(1),
        };
        Effects {
            jobs,
            scheduler_mode,
            go_metrics: false,
            public_origin: "http://sbm.test".into(),
        }
    }

    fn subscription(scheduler_id: Option<&str>) -> Subscription {
        Subscription {
            id: Uuid::new_v4(),
            identity: Uuid::new_v4(),
            version: 1,
            message_set_id: 1,
            next_sequence_number: 1,
            initial_sequence_number: Some(1),
            lang: "eng_ZA".into(),
            active: true,
            completed: false,
            schedule_id: 1,
            process_status: 0,
            metadata: Some(sqlx::types::Json(match scheduler_id {
                Some(id) => json!({"scheduler_schedule_id": id}),
                None => json!({}),
            })),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            created_by: None,
            updated_by: None,
            send_requested_at: None,
            timezone: None,
        }
    }

    #[test]
    fn a_new_subscription_gets_a_scheduler_schedule_only_in_compatible_mode() {
        let s = subscription(None);
        assert_eq!(
            consequences(&effects(true), Change::SubscriptionCreated(&s)),
            vec![Job::SchedulerCreate {
                subscription_id: s.id
            }]
        );
        assert!(consequences(&effects(false), Change::SubscriptionCreated(&s)).is_empty());
        let inactive = Subscription { active: false, ..s };
        assert!(consequences(&effects(true), Change::SubscriptionCreated(&inactive)).is_empty());
    }

    #[test]
    fn deactivating_completing_or_deleting_disables_the_scheduler_schedule() {
        let before = subscription(Some("abc"));
        let disable = vec![Job::SchedulerDisable {
            subscription_id: before.id,
            scheduler_schedule_id: "abc".into(),
        }];
        for after in [
            Subscription {
                active: false,
                ..before.clone()
            },
            Subscription {
                completed: true,
                ..before.clone()
            },
            Subscription {
                process_status: 2,
                ..before.clone()
            },
        ] {
            assert_eq!(
                consequences(
                    &effects(true),
                    Change::SubscriptionUpdated {
                        before: &before,
                        after: &after
                    }
                ),
                disable
            );
        }
        assert_eq!(
            consequences(&effects(true), Change::SubscriptionDeleted(&before)),
            disable
        );
        let unchanged = Subscription {
            lang: "zul_ZA".into(),
            ..before.clone()
        };
        assert!(consequences(
            &effects(true),
            Change::SubscriptionUpdated {
                before: &before,
                after: &unchanged
            }
        )
        .is_empty());
        let no_id = subscription(None);
        assert!(consequences(&effects(true), Change::SubscriptionDeleted(&no_id)).is_empty());
    }

    #[test]
    fn a_schedule_change_moves_the_scheduler_schedule() {
        let before = subscription(Some("abc"));
        let after = Subscription {
            schedule_id: 2,
            ..before.clone()
        };
        assert_eq!(
            consequences(
                &effects(true),
                Change::SubscriptionUpdated {
                    before: &before,
                    after: &after
                }
            ),
            vec![Job::SchedulerUpdate {
                subscription_id: before.id,
                scheduler_schedule_id: "abc".into()
            }]
        );
    }
}
