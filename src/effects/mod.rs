//! The one place that decides what follows each change. Domain code reports a [`Change`] inside
//! its transaction; [`consequences`] (a plain table from change to jobs), [`events`] (from change
//! to lifecycle events, docs/events.md) and [`metrics`] (from change to Go Metrics counters) say
//! what must happen, and [`follow`] writes it all in the same transaction, so the change and its
//! consequences commit together or not at all.

mod counters;
mod integrations;
mod lifecycle;

pub use counters::metrics;
pub use lifecycle::events;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::events::{self, Event};
use crate::jobs::{self, Job, JobSettings};
use crate::model::content::{BinaryContent, Message, MessageSet, Schedule};
use crate::model::subscriptions::{status, Subscription};
use crate::store::events::CallbackRow;
use crate::store::{self, metrics as metrics_sql, Tx};
use crate::wire::content::DueTimeOut;

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
    /// A schedule's next due times, for its event data (the scheduler computes them:
    /// `scheduling::local::next_due`, given by the app).
    pub next_due: fn(&Schedule) -> Vec<DueTimeOut>,
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
    /// A send was put back to wait for its send window (quiet hours) to open.
    SendDeferred {
        subscription: &'a Subscription,
        task_id: Uuid,
        until: DateTime<Utc>,
        reason: &'a str,
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
        mode: crate::model::callbacks::Mode,
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
        | Change::SendDeferred { .. }
        | Change::CallbackDisabled { .. } => Vec::new(),
        Change::ScheduledMetricsRequested
        | Change::ScheduleFireRequested { .. }
        | Change::HubRequested { .. }
        | Change::IntegrationPushRequested { .. } => requested_jobs(change),
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
    record_events(tx, lifecycle).await?;
    Ok(written)
}

/// Writes lifecycle events and what follows from them: the integration groups' messages.
/// For writers outside [`follow`] (the importer), so an event never goes without its messages.
pub async fn record_events(tx: &mut Tx, lifecycle: Vec<Event>) -> store::Result<()> {
    let recorded = events::record(tx, lifecycle).await?;
    if recorded.rows.is_empty() {
        return Ok(());
    }
    integrations::feed(tx, &recorded.rows, recorded.occurred_at).await
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
            next_due: |_| Vec::new(),
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
