//! The wire structs of the integration routes (`integrations.rs`): what they read and answer.
//! The answers' fields are in alphabetical order: they replaced `json!` objects, whose keys
//! serde_json sorts, and the bytes on the wire stay the same.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::schemas::{BatchFormat, GroupMethod, TopicText};

/// An integration group as written (POST; PATCH: only the fields sent change, and `name`, if
/// sent, must be the group's). A `send` group needs a `target_url`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct GroupIn {
    #[schema(pattern = "^[a-z0-9_-]{1,64}$", max_length = 64)]
    name: String,
    #[schema(value_type = GroupMethod)]
    method: String,
    #[schema(max_length = 200, pattern = r"\S")]
    title: String,
    #[serde(default)]
    description: String,
    /// The event types whose events become the group's messages: `subscription.*`, `send.failed`.
    #[serde(default)]
    #[schema(value_type = Vec<TopicText>)]
    event_types: Vec<String>,
    /// How long fetched messages stay leased to a poller before they are handed out again.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    lease_seconds: i32,
    /// Where a send group pushes (required for `method: send`).
    #[schema(
        format = "uri",
        max_length = 2000,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://"
    )]
    target_url: Option<String>,
    /// An `Authorization` header value for pushes; never shown again.
    #[schema(max_length = 4000, pattern = r"^[^\x00-\x1f\x7f]*$")]
    auth_header: Option<String>,
    #[serde(default)]
    #[schema(value_type = BatchFormat)]
    format: String,
    /// Push schedule (send groups), cron fields as schedules take them.
    #[serde(default)]
    #[schema(max_length = 64, pattern = r"^(\*|[0-5]?[0-9](,[0-5]?[0-9])*)$")]
    minute: String,
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^(\*|([01]?[0-9]|2[0-3])(,([01]?[0-9]|2[0-3]))*)$"
    )]
    hour: String,
    #[serde(default)]
    #[schema(max_length = 64, pattern = r"^(\*|[0-7](,[0-7])*)$")]
    day_of_week: String,
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^(\*|([1-9]|[12][0-9]|3[01])(,([1-9]|[12][0-9]|3[01]))*)$"
    )]
    day_of_month: String,
    #[serde(default)]
    #[schema(max_length = 64, pattern = r"^(\*|([1-9]|1[0-2])(,([1-9]|1[0-2]))*)$")]
    month_of_year: String,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    max_batch_size: i32,
    /// Whether a push with nothing waiting is skipped.
    #[serde(default)]
    skip_empty: bool,
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"\S")]
    instance: String,
}

/// An integration group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupOut {
    pub auth_header_set: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub day_of_month: String,
    pub day_of_week: String,
    pub description: String,
    pub event_types: Vec<String>,
    #[schema(value_type = BatchFormat)]
    pub format: String,
    pub hour: String,
    pub instance: String,
    #[schema(format = DateTime, required = true)]
    pub last_push_at: Option<String>,
    pub lease_seconds: i32,
    /// Poll groups only.
    #[schema(required = true)]
    pub mark_url: Option<String>,
    pub max_batch_size: i32,
    #[schema(value_type = GroupMethod)]
    pub method: String,
    pub minute: String,
    pub month_of_year: String,
    pub name: String,
    #[schema(format = DateTime, required = true)]
    pub next_push_at: Option<String>,
    /// Poll groups only.
    #[schema(required = true)]
    pub poll_url: Option<String>,
    pub skip_empty: bool,
    #[schema(required = true)]
    pub target_url: Option<String>,
    pub title: String,
    pub unacknowledged_errors: i64,
    pub unsent_count: i64,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A message added by hand.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct GroupMessageIn {
    #[schema(value_type = Object)]
    data: Value,
}

/// A message of an integration group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMessageOut {
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(value_type = Object)]
    pub data: Value,
    /// The event it was made from; none for a message added by hand.
    #[schema(required = true)]
    pub event_id: Option<Uuid>,
    pub group: String,
    pub id: i64,
    #[schema(format = DateTime, required = true)]
    pub leased_until: Option<String>,
    /// Email of who added it by hand.
    #[schema(required = true)]
    pub manual_created_by: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub sent_at: Option<String>,
}

/// One entry of a message's audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    /// `created`, `fetched`, `marked`, `sent`, `unsent`, …
    pub action: String,
    #[schema(format = DateTime)]
    pub at: String,
    /// Email of who did it, if a user did.
    #[schema(required = true)]
    pub by: Option<String>,
}

/// A message with its audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMessageDetailOut {
    pub audit: Vec<AuditOut>,
    #[serde(flatten)]
    #[schema(inline)]
    pub message: GroupMessageOut,
}

/// Whether a push was queued (false: one is already waiting).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedOut {
    pub queued: bool,
}

/// A poll token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollTokenOut {
    pub group: String,
    pub mark_url: String,
    pub poll_url: String,
    /// `integration-poll:<group>`.
    pub scope: String,
    pub token: String,
}

/// A fetched message: its id and time beside its data's own fields.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PolledMessage {
    id: i64,
    #[schema(format = DateTime)]
    datetime: String,
    /// The message's data fields (or its non-object data under `data`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    fields: Value,
}

/// A fetched batch, in Haplo's JSON (built by `integrations::format::json_batch`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PollBatchOut {
    /// Always 0.
    #[schema(minimum = 0, maximum = 0)]
    version: i32,
    /// What to mark the batch with.
    token: String,
    messages: Vec<PolledMessage>,
    /// Messages still waiting after this batch.
    #[serde(rename = "unreadCount")]
    unread_count: i64,
}

/// Marks a fetched batch as received (the token may come in the query string instead; one of
/// the two is required).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct MarkIn {
    #[schema(pattern = r"\S")]
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MarkOut {
    #[serde(rename = "markedCount")]
    pub marked_count: u64,
    #[serde(rename = "unreadCount")]
    pub unread_count: i64,
}

/// A failure of a push or of making a message, for an operator to see and acknowledge.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationErrorOut {
    #[schema(format = DateTime, required = true)]
    pub acknowledged_at: Option<String>,
    /// Email of who acknowledged it.
    #[schema(required = true)]
    pub acknowledged_by: Option<String>,
    /// Free-form: the receiver's status and answer, the event, …
    pub details: Value,
    pub group: String,
    pub id: i64,
    pub message: String,
    #[schema(format = DateTime)]
    pub occurred_at: String,
    pub source: String,
}
