//! The wire: JSON representations with the Django field names, shared by the API, event data
//! and the consequences table (which must not depend on `http`). Pure functions of the models.

pub mod content;
pub mod subscriptions;
pub mod time;

use serde::Serialize;
use serde_json::{json, Value};

use crate::model::callbacks::CallbackRow;
use crate::model::content::{BinaryContent, Message, MessageSet, Schedule};
use crate::model::subscriptions::Subscription;
use content::{BinaryContentOut, DueTimeOut, MessageOut, MessageSetOut, ScheduleOut};
use subscriptions::SubscriptionOut;
pub use time::{drf_time, format_time};

/// The scheme and authority links start with, without a trailing slash.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    /// `path` must start with '/'.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }
}

fn to_value(out: impl Serialize) -> Value {
    serde_json::to_value(out).expect("wire structs serialize")
}

/// A schedule as a GET shows it, with its next due times.
pub fn schedule(s: &Schedule, next_due: Vec<DueTimeOut>) -> Value {
    to_value(ScheduleOut::new(s.clone(), next_due))
}

pub fn message_set(s: &MessageSet) -> Value {
    to_value(MessageSetOut::from(s.clone()))
}

pub fn message(m: &Message) -> Value {
    to_value(MessageOut::from(m.clone()))
}

pub fn binary_content(origin: &str, b: &BinaryContent) -> Value {
    to_value(BinaryContentOut::new(
        &BaseUrl(origin.to_string()),
        b.clone(),
    ))
}

pub fn subscription(origin: &str, s: &Subscription) -> Value {
    to_value(SubscriptionOut::new(
        &BaseUrl(origin.to_string()),
        s.clone(),
    ))
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(time::timestamp(t)))
}

/// A callback as the API shows it; the secret itself is never shown.
pub fn callback(origin: &str, c: &CallbackRow) -> Value {
    json!({
        "id": c.id,
        "url": format!("{origin}/api/v1/callbacks/{}/", c.id),
        "topic": c.topic,
        "callback": c.callback_url,
        "state": c.state,
        "state_reason": c.state_reason,
        "lease_seconds": c.lease_seconds,
        "lease_expires_at": time(c.lease_expires_at),
        "has_secret": c.secret.is_some(),
        "batch_size": c.batch_size,
        "failing_since": time(c.failing_since),
        "created_by": c.created_by,
        "created_at": time(Some(c.created_at)),
        "updated_at": time(Some(c.updated_at)),
        "verified_at": time(c.verified_at),
    })
}
