//! Callbacks: WebSub subscriptions to event topics, verified, leased, and delivered to with
//! signed POSTs, retries and a log (docs/events.md).

pub mod delivery;
pub mod hub;
pub mod manage;
pub mod retry;
pub mod secrets;
pub mod signing;
pub mod ssrf;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::EventsConfig;
use crate::store::events::CallbackRow;
use retry::RetryPolicy;
use ssrf::{AddressPolicy, GuardedResolver};

/// How the hub grants leases and how deliveries are made.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    pub lease_default: i64,
    pub lease_min: i64,
    pub lease_max: i64,
    pub policy: AddressPolicy,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub concurrency: usize,
    pub disable_after: Duration,
    /// Where callback host names are looked up (the system resolver but in tests).
    pub lookup: Arc<dyn ssrf::Lookup>,
    /// Seals callback secrets (and integration auth headers) in the database.
    pub keyring: crate::secrets::Keyring,
}

impl CallbackSettings {
    pub fn from_config(c: &EventsConfig) -> anyhow::Result<Self> {
        let policy = AddressPolicy::new(&c.callback_allowed_networks)
            .map_err(|err| anyhow::anyhow!("SBM_CALLBACK_ALLOWED_NETWORKS: {err}"))?;
        let keyring = c.secrets.keyring()?;
        let lease_min = c.lease_min_secs.max(1);
        let lease_max = c.lease_max_secs.max(lease_min);
        Ok(CallbackSettings {
            lease_default: c.lease_default_secs.clamp(lease_min, lease_max),
            lease_min,
            lease_max,
            policy,
            retry: RetryPolicy {
                schedule: c
                    .retry_schedule_secs
                    .iter()
                    .map(|s| Duration::from_secs(*s))
                    .collect(),
                jitter: c.retry_jitter.clamp(0.0, 1.0),
                retry_after_max: Duration::from_secs(c.retry_after_max_secs.max(1)),
            },
            timeout: Duration::from_millis(c.timeout_ms.max(1)),
            concurrency: c.delivery_concurrency.max(1),
            disable_after: Duration::from_secs(c.disable_after_secs),
            lookup: Arc::new(ssrf::SystemLookup),
            keyring,
        })
    }

    /// The lease granted for a requested one (the hub chooses; WebSub forbids perpetual leases).
    pub fn grant_lease(&self, requested: Option<i64>) -> i64 {
        requested
            .unwrap_or(self.lease_default)
            .clamp(self.lease_min, self.lease_max)
    }

    /// The client for verifications and deliveries: it connects only to permitted addresses,
    /// follows no redirects (a 3xx is a failure) and gives up after the timeout.
    pub fn http_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver::with_lookup(
                self.policy.clone(),
                self.lookup.clone(),
            )))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .user_agent(concat!("sbm/", env!("CARGO_PKG_VERSION"), " (WebSub hub)"))
            .build()
            .expect("a client with these settings builds")
    }
}

/// What verifications and deliveries run with.
#[derive(Debug, Clone)]
pub struct Hub {
    pub settings: CallbackSettings,
    pub client: reqwest::Client,
}

impl Hub {
    pub fn new(settings: CallbackSettings) -> Self {
        let client = settings.http_client();
        Hub { settings, client }
    }
}

/// An error with its causes, `outer: inner: …`: reqwest's own text hides why a connection was
/// not made (for instance the guarded resolver's refusal).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A callback as the API shows it; the secret itself is never shown.
pub fn representation(origin: &str, c: &CallbackRow) -> Value {
    crate::wire::callback(origin, c)
}
