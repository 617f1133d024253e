//! Callbacks (WebSub subscriptions) as stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct CallbackRow {
    pub id: Uuid,
    pub topic: String,
    pub topic_prefix: String,
    pub callback_url: String,
    pub secret: Option<String>,
    pub state: String,
    pub state_reason: Option<String>,
    pub lease_seconds: i64,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub batch_size: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
}

/// What a hub request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Subscribe,
    Unsubscribe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Subscribe => "subscribe",
            Mode::Unsubscribe => "unsubscribe",
        }
    }
}
