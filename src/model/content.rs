//! Content records as stored, and the writable fields of each.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

/// The zone every schedule had before zones existed, and the default.
pub const DEFAULT_ZONE: &str = "UTC";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Schedule {
    pub id: i64,
    pub minute: String,
    pub hour: String,
    pub day_of_week: String,
    pub day_of_month: String,
    pub month_of_year: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The IANA zone the fields are evaluated in.
    pub timezone: String,
}

/// The writable fields of a [`Schedule`]; each already validated as a cron field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleFields {
    pub minute: String,
    pub hour: String,
    pub day_of_week: String,
    pub day_of_month: String,
    pub month_of_year: String,
    pub timezone: String,
}

impl Default for ScheduleFields {
    fn default() -> Self {
        let any = || "*".to_string();
        ScheduleFields {
            minute: any(),
            hour: any(),
            day_of_week: any(),
            day_of_month: any(),
            month_of_year: any(),
            timezone: DEFAULT_ZONE.to_string(),
        }
    }
}

impl From<&Schedule> for ScheduleFields {
    fn from(s: &Schedule) -> Self {
        ScheduleFields {
            minute: s.minute.clone(),
            hour: s.hour.clone(),
            day_of_week: s.day_of_week.clone(),
            day_of_month: s.day_of_month.clone(),
            month_of_year: s.month_of_year.clone(),
            timezone: s.timezone.clone(),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageSet {
    pub id: i64,
    pub short_name: String,
    pub label: String,
    pub notes: Option<String>,
    pub channel: Option<String>,
    pub next_set_id: Option<i64>,
    pub default_schedule_id: i64,
    pub content_type: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Quiet hours: sends leave only from start to end (HH:MM, subscribers' local time).
    pub send_window_start: Option<String>,
    pub send_window_end: Option<String>,
}

/// What a message set's messages carry: text, or audio files the Message Sender fetches.
pub const CONTENT_TYPES: &[&str] = &["text", "audio"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSetFields {
    pub short_name: String,
    pub label: String,
    pub notes: Option<String>,
    pub channel: Option<String>,
    pub next_set_id: Option<i64>,
    pub default_schedule_id: i64,
    pub content_type: String,
    pub send_window_start: Option<String>,
    pub send_window_end: Option<String>,
}

impl Default for MessageSetFields {
    fn default() -> Self {
        MessageSetFields {
            short_name: String::new(),
            label: String::new(),
            notes: None,
            channel: None,
            next_set_id: None,
            default_schedule_id: 0,
            content_type: "text".into(),
            send_window_start: None,
            send_window_end: None,
        }
    }
}

impl From<&MessageSet> for MessageSetFields {
    fn from(m: &MessageSet) -> Self {
        MessageSetFields {
            short_name: m.short_name.clone(),
            label: m.label.clone(),
            notes: m.notes.clone(),
            channel: m.channel.clone(),
            next_set_id: m.next_set_id,
            default_schedule_id: m.default_schedule_id,
            content_type: m.content_type.clone(),
            send_window_start: m.send_window_start.clone(),
            send_window_end: m.send_window_end.clone(),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub message_set_id: i64,
    pub sequence_number: i32,
    pub lang: String,
    pub text_content: Option<String>,
    pub binary_content_id: Option<i64>,
    pub metadata: Option<Json<Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFields {
    pub message_set_id: i64,
    pub sequence_number: i32,
    pub lang: String,
    pub text_content: Option<String>,
    pub binary_content_id: Option<i64>,
    pub metadata: Option<Value>,
}

impl From<&Message> for MessageFields {
    fn from(m: &Message) -> Self {
        MessageFields {
            message_set_id: m.message_set_id,
            sequence_number: m.sequence_number,
            lang: m.lang.clone(),
            text_content: m.text_content.clone(),
            binary_content_id: m.binary_content_id,
            metadata: m.metadata.as_ref().map(|j| j.0.clone()),
        }
    }
}

/// An uploaded file (usually audio) that messages refer to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BinaryContent {
    pub id: i64,
    /// Relative to the media root.
    pub path: String,
    pub media_type: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a stored file is and what it is, for writing a [`BinaryContent`] row.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub path: String,
    pub media_type: String,
    pub size_bytes: i64,
}

/// How many rows still refer to a record that someone asked to delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage(pub Vec<(&'static str, i64)>);

impl Usage {
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, n)| *n == 0)
    }

    /// "3 messages and 1 message set", for the error a client sees.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        parts.join(" and ")
    }
}
