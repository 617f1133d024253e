//! Content as the API shows it: schedules, message sets, messages and binary content.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::time::{format_local, format_time};
use super::BaseUrl;
use crate::model::content::{BinaryContent, Message, MessageSet, Schedule};

/// A message set's kind of content.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ContentType {
    Text,
    Audio,
}

/// A time in UTC and in a zone's local time (RFC 3339 with that zone's offset then).
#[derive(Debug, Serialize, ToSchema)]
pub struct DueTimeOut {
    #[schema(example = "2027-03-29T06:00:00Z")]
    pub utc: String,
    #[schema(example = "2027-03-29T08:00:00+02:00")]
    pub local: String,
}

impl DueTimeOut {
    pub fn new(zone: Tz, t: DateTime<Utc>) -> Self {
        DueTimeOut {
            utc: format_time(&t),
            local: format_local(zone, t),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleOut {
    pub id: i64,
    /// `*` or a comma list of 0–59.
    pub minute: String,
    /// `*` or a comma list of 0–23.
    pub hour: String,
    /// `*` or a comma list of 1–7, 1 = Monday (0 is accepted for Sunday).
    pub day_of_week: String,
    /// `*` or a comma list of 1–31.
    pub day_of_month: String,
    /// `*` or a comma list of 1–12.
    pub month_of_year: String,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub updated_at: DateTime<Utc>,
    /// The IANA time zone the fields are evaluated in (default `UTC`).
    pub timezone: String,
    /// The next five due times, in UTC and in the schedule's zone (computed when shown).
    pub next_due: Vec<DueTimeOut>,
}

impl ScheduleOut {
    /// `next_due`: the schedule's next due times (computed by the scheduler, not stored).
    pub fn new(s: Schedule, next_due: Vec<DueTimeOut>) -> Self {
        ScheduleOut {
            id: s.id,
            minute: s.minute,
            hour: s.hour,
            day_of_week: s.day_of_week,
            day_of_month: s.day_of_month,
            month_of_year: s.month_of_year,
            created_at: s.created_at,
            updated_at: s.updated_at,
            timezone: s.timezone,
            next_due,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageSetOut {
    pub id: i64,
    pub short_name: String,
    pub label: String,
    #[schema(value_type = ContentType)]
    pub content_type: String,
    #[schema(required = true)]
    pub notes: Option<String>,
    /// The message set a subscription moves on to when it completes this one.
    #[schema(required = true)]
    pub next_set: Option<i64>,
    pub default_schedule: i64,
    /// The Message Sender channel messages of this set go out on, if not the default.
    #[schema(required = true)]
    pub channel: Option<String>,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub updated_at: DateTime<Utc>,
    /// Quiet hours: sends leave only from this time (HH:MM, the subscriber's local time)...
    pub send_window_start: Option<String>,
    /// ...until this one (excluded; before the start, the window crosses midnight).
    pub send_window_end: Option<String>,
}

impl From<MessageSet> for MessageSetOut {
    fn from(m: MessageSet) -> Self {
        MessageSetOut {
            id: m.id,
            short_name: m.short_name,
            label: m.label,
            content_type: m.content_type,
            notes: m.notes,
            next_set: m.next_set_id,
            default_schedule: m.default_schedule_id,
            channel: m.channel,
            created_at: m.created_at,
            updated_at: m.updated_at,
            send_window_start: m.send_window_start,
            send_window_end: m.send_window_end,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: i64,
    pub messageset: i64,
    pub sequence_number: i32,
    pub lang: String,
    #[schema(required = true)]
    pub text_content: Option<String>,
    #[schema(required = true)]
    pub binary_content: Option<i64>,
    #[schema(value_type = Option<Object>, required = true)]
    pub metadata: Option<Value>,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub updated_at: DateTime<Utc>,
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> Self {
        MessageOut {
            id: m.id,
            messageset: m.message_set_id,
            sequence_number: m.sequence_number,
            lang: m.lang,
            text_content: m.text_content,
            binary_content: m.binary_content_id,
            metadata: m.metadata.map(|j| j.0),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The absolute URL a stored file is served at.
pub fn media_url(base: &BaseUrl, path: &str) -> String {
    base.url(&format!("/media/{path}"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BinaryContentOut {
    pub id: i64,
    /// Absolute URL of the file (what the Message Sender fetches for voice messages).
    pub content: String,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub updated_at: DateTime<Utc>,
}

impl BinaryContentOut {
    pub fn new(base: &BaseUrl, b: BinaryContent) -> Self {
        BinaryContentOut {
            id: b.id,
            content: media_url(base, &b.path),
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}
