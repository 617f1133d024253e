//! The Seed Scheduler (spec/peers.md §1): one schedule per subscription, POSTing back to
//! `/api/v1/subscriptions/{id}/send` on the subscription's cron.

use reqwest::Method;
use serde_json::{json, Value};

use super::{Error, PeerClient};

#[derive(Debug, Clone)]
pub struct Scheduler(pub PeerClient);

impl Scheduler {
    /// Creates a schedule; returns the Scheduler's id for it.
    #[tracing::instrument(skip_all, fields(peer = "scheduler", cron_definition = %cron_definition))]
    pub async fn create_schedule(
        &self,
        cron_definition: &str,
        endpoint: &str,
        auth_token: Option<&str>,
    ) -> Result<String, Error> {
        let body = json!({
            "frequency": null,
            "cron_definition": cron_definition,
            "endpoint": endpoint,
            "auth_token": auth_token,
        });
        let response = self
            .0
            .send(self.0.request(Method::POST, "/schedule/").json(&body))
            .await?;
        let created: Value = response.json().await?;
        match &created["id"] {
            Value::String(id) if !id.is_empty() => Ok(id.clone()),
            Value::Number(id) => Ok(id.to_string()),
            _ => Err(Error::Decode(format!("no schedule id in {created}"))),
        }
    }

    /// Stops a schedule from firing. A schedule the Scheduler no longer has is as good as disabled.
    #[tracing::instrument(skip_all, fields(peer = "scheduler", schedule_id = %schedule_id))]
    pub async fn disable_schedule(&self, schedule_id: &str) -> Result<(), Error> {
        let request = self
            .0
            .request(Method::PATCH, &format!("/schedule/{schedule_id}/"))
            .json(&json!({"enabled": false}));
        match self.0.send(request).await {
            Ok(_) | Err(Error::Status { status: 404, .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Moves a schedule to another cron definition.
    #[tracing::instrument(skip_all, fields(peer = "scheduler", schedule_id = %schedule_id, cron_definition = %cron_definition))]
    pub async fn update_schedule(
        &self,
        schedule_id: &str,
        cron_definition: &str,
    ) -> Result<(), Error> {
        let request = self
            .0
            .request(Method::PATCH, &format!("/schedule/{schedule_id}/"))
            .json(&json!({"cron_definition": cron_definition}));
        self.0.send(request).await.map(drop)
    }
}
