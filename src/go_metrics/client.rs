//! `POST {METRICS_URL}/metrics/` with a flat `{name: value}` object; Bearer or Basic auth.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;

use crate::config::MetricsConfig;
use crate::peers;

#[derive(Debug, Clone)]
pub struct GoMetricsClient {
    url: String,
    authorization: Option<String>,
    http: reqwest::Client,
}

impl GoMetricsClient {
    /// `None` when no `METRICS_URL` is configured.
    pub fn from_config(config: &MetricsConfig, timeout: Duration) -> Option<GoMetricsClient> {
        let url = config.metrics_url.as_deref().filter(|u| !u.is_empty())?;
        let authorization = match (
            &config.metrics_auth_user,
            &config.metrics_auth_password,
            &config.metrics_auth_token,
        ) {
            (Some(user), password, _) if !user.is_empty() => {
                let credentials = format!("{user}:{}", password.as_deref().unwrap_or(""));
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                ))
            }
            (_, _, Some(token)) if !token.is_empty() => Some(format!("Bearer {token}")),
            _ => None,
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("the HTTP client configuration is valid");
        Some(GoMetricsClient {
            url: format!("{}/metrics/", url.trim_end_matches('/')),
            authorization,
            http,
        })
    }

    #[tracing::instrument(skip_all, fields(peer = "go_metrics", metrics = values.len()))]
    pub async fn push(&self, values: &BTreeMap<String, f64>) -> Result<(), peers::Error> {
        if values.is_empty() {
            return Ok(());
        }
        let mut request = self.http.post(&self.url).json(values);
        if let Some(authorization) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let started = std::time::Instant::now();
        let response = request.send().await;
        metrics::histogram!("sbm_peer_request_duration_seconds", "peer" => "metrics")
            .record(started.elapsed().as_secs_f64());
        let response = response?;
        if response.status().is_success() {
            Ok(())
        } else {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            Err(peers::Error::Status { status, body })
        }
    }
}
