//! Schemas shared by many operations of the OpenAPI document: error bodies, small answers,
//! pagination parameters and the enumerations of the wire format. Bodies built outside `http`
//! (event envelopes, callbacks, poll batches) are described here too; the black-box test in
//! `tests/api/openapi.rs` checks real responses against them.

use std::collections::BTreeMap;

pub use crate::wire::content::ContentType;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// DRF's field errors: each field (or `non_field_errors`) maps to its messages.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct FieldErrorsOut(BTreeMap<String, Vec<String>>);

/// DRF's error body for everything but field errors.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Detail {
    detail: String,
}

/// A 400: field errors, or a `detail` (malformed JSON, form or query, a refused action).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum BadRequest {
    Fields(FieldErrorsOut),
    Detail(Detail),
}

/// `{}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

/// `{"accepted": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub accepted: bool,
}

/// A file's bytes, as served or uploaded.
#[derive(Serialize, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Bytes(Vec<u8>);

/// A hub topic: an event type (`send.succeeded`), a dotted prefix of event types (`send`,
/// `send.*`), or `*` for every event; at most 200 characters.
#[derive(Serialize, ToSchema)]
#[schema(value_type = String, pattern = r"^(\*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*(\.\*)?)$")]
#[allow(dead_code)]
pub struct TopicText(String);

/// DRF's LimitOffsetPagination parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// Page size. Absent or 0 means the default page size; more than the maximum means the
    /// maximum.
    #[param(minimum = 0)]
    limit: Option<i64>,
    /// Rows to skip, at most `http::query::MAX_OFFSET`.
    #[param(minimum = 0, maximum = 2147483647)]
    offset: Option<i64>,
}

/// How an integration group's messages leave: polled by the receiver, or pushed to it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum GroupMethod {
    Poll,
    Send,
}

/// The body format of a pushed batch.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum BatchFormat {
    Json,
    Ndjson,
    Csv,
}

/// A callback's state (docs/events.md).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CallbackState {
    Pending,
    Active,
    Denied,
    Expired,
    Disabled,
    Unsubscribed,
    Gone,
}

/// A delivery's state (docs/events.md).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum DeliveryState {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// What an event is about.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct EventObject {
    /// `subscription`, `message`, `messageset`, `schedule`, `binarycontent`, …
    #[serde(rename = "type")]
    object_type: String,
    id: String,
}

/// An event, as listed and as callbacks receive it (built by `events::envelope`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct EventOut {
    id: Uuid,
    /// `subscription.created`, `send.succeeded`, … (docs/events.md).
    #[serde(rename = "type")]
    event_type: String,
    /// ISO 8601, UTC, microseconds.
    #[schema(format = DateTime)]
    timestamp: String,
    object: EventObject,
    /// Commit order of the event.
    sequence: i64,
    /// The object as the API shows it, and what changed.
    #[schema(value_type = Object)]
    data: Value,
}

/// A WebSub callback (built by `callbacks::representation`); its secret is never shown.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CallbackOut {
    id: Uuid,
    url: String,
    topic: String,
    /// The receiver's URL.
    callback: String,
    state: CallbackState,
    #[schema(required = true)]
    state_reason: Option<String>,
    lease_seconds: i64,
    #[schema(format = DateTime, required = true)]
    lease_expires_at: Option<String>,
    has_secret: bool,
    #[schema(minimum = 1, maximum = 100)]
    batch_size: i32,
    #[schema(format = DateTime, required = true)]
    failing_since: Option<String>,
    #[schema(required = true)]
    created_by: Option<i64>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(format = DateTime, required = true)]
    verified_at: Option<String>,
}
