//! Subscriptions as the API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::BaseUrl;
use crate::model::subscriptions::Subscription;

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionOut {
    pub url: String,
    pub id: Uuid,
    pub version: i32,
    pub identity: Uuid,
    pub messageset: i64,
    pub next_sequence_number: i32,
    pub lang: String,
    pub active: bool,
    pub completed: bool,
    pub schedule: i64,
    /// -2, -1 error; 0 ready; 1 sending; 2 completed.
    pub process_status: i16,
    #[schema(value_type = Option<Object>, required = true)]
    pub metadata: Option<Value>,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::wire::time::drf_time")]
    pub updated_at: DateTime<Utc>,
    #[schema(required = true)]
    pub initial_sequence_number: Option<i32>,
    #[schema(required = true)]
    pub created_by: Option<i64>,
    #[schema(required = true)]
    pub updated_by: Option<i64>,
    /// The subscriber's IANA time zone; null means the schedule's.
    pub timezone: Option<String>,
}

impl SubscriptionOut {
    pub fn new(base: &BaseUrl, s: Subscription) -> Self {
        SubscriptionOut {
            url: base.url(&format!("/api/v1/subscriptions/{}/", s.id)),
            id: s.id,
            version: s.version,
            identity: s.identity,
            messageset: s.message_set_id,
            next_sequence_number: s.next_sequence_number,
            lang: s.lang,
            active: s.active,
            completed: s.completed,
            schedule: s.schedule_id,
            process_status: s.process_status,
            metadata: s.metadata.map(|m| m.0),
            created_at: s.created_at,
            updated_at: s.updated_at,
            initial_sequence_number: s.initial_sequence_number,
            created_by: s.created_by,
            updated_by: s.updated_by,
            timezone: s.timezone,
        }
    }
}
