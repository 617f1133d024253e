//! Subscriptions as stored, and their writable fields.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

/// `process_status` codes, as the original used them.
pub mod status {
    pub const CONTENT_ERROR: i16 = -2;
    pub const ADDRESS_ERROR: i16 = -1;
    pub const READY: i16 = 0;
    pub const IN_PROCESS: i16 = 1;
    pub const COMPLETED: i16 = 2;
    pub const ALL: [i16; 5] = [CONTENT_ERROR, ADDRESS_ERROR, READY, IN_PROCESS, COMPLETED];
}

/// The metadata key that holds the Seed Scheduler's schedule id for this subscription.
pub const SCHEDULER_ID_KEY: &str = "scheduler_schedule_id";
/// The metadata key whose text (or audio URL) is sent before the next message, then cleared.
pub const PREPEND_KEY: &str = "prepend_next_delivery";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscription {
    pub id: Uuid,
    pub identity: Uuid,
    pub version: i32,
    pub message_set_id: i64,
    pub next_sequence_number: i32,
    pub initial_sequence_number: Option<i32>,
    pub lang: String,
    pub active: bool,
    pub completed: bool,
    pub schedule_id: i64,
    pub process_status: i16,
    pub metadata: Option<Json<Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<i64>,
    pub updated_by: Option<i64>,
    pub send_requested_at: Option<DateTime<Utc>>,
    /// The subscriber's IANA zone; `None` means the schedule's.
    pub timezone: Option<String>,
}

impl Subscription {
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata
            .as_ref()?
            .0
            .get(key)?
            .as_str()
            .filter(|s| !s.is_empty())
    }

    pub fn scheduler_schedule_id(&self) -> Option<&str> {
        self.metadata_str(SCHEDULER_ID_KEY)
    }

    /// Whether it should still be sent messages.
    pub fn is_live(&self) -> bool {
        self.active && !self.completed
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionFields {
    pub identity: Uuid,
    pub version: i32,
    pub message_set_id: i64,
    pub next_sequence_number: i32,
    pub initial_sequence_number: Option<i32>,
    pub lang: String,
    pub active: bool,
    pub completed: bool,
    /// `None` on create means the message set's default schedule.
    pub schedule_id: Option<i64>,
    pub process_status: i16,
    pub metadata: Option<Value>,
    pub timezone: Option<String>,
}

impl Default for SubscriptionFields {
    fn default() -> Self {
        SubscriptionFields {
            identity: Uuid::nil(),
            version: 1,
            message_set_id: 0,
            next_sequence_number: 1,
            initial_sequence_number: None,
            lang: String::new(),
            active: true,
            completed: false,
            schedule_id: None,
            process_status: status::READY,
            metadata: Some(Value::Object(Default::default())),
            timezone: None,
        }
    }
}

impl From<&Subscription> for SubscriptionFields {
    fn from(s: &Subscription) -> Self {
        SubscriptionFields {
            identity: s.identity,
            version: s.version,
            message_set_id: s.message_set_id,
            next_sequence_number: s.next_sequence_number,
            initial_sequence_number: s.initial_sequence_number,
            lang: s.lang.clone(),
            active: s.active,
            completed: s.completed,
            schedule_id: Some(s.schedule_id),
            process_status: s.process_status,
            metadata: s.metadata.as_ref().map(|j| j.0.clone()),
            timezone: s.timezone.clone(),
        }
    }
}
