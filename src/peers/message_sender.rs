//! The Seed Message Sender (spec/peers.md §2): takes one outbound message per request.

use reqwest::Method;
use serde_json::Value;

use super::{Error, PeerClient};

#[derive(Debug, Clone)]
pub struct MessageSender(pub PeerClient);

impl MessageSender {
    /// Creates an outbound message; returns the Message Sender's id for it.
    #[tracing::instrument(skip_all, fields(peer = "message_sender"))]
    pub async fn create_outbound(&self, body: &Value) -> Result<String, Error> {
        let response = self
            .0
            .send(self.0.request(Method::POST, "/outbound/").json(body))
            .await?;
        let created: Value = response.json().await.unwrap_or(Value::Null);
        Ok(created["id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_default())
    }
}
