//! Clients for the services sbm calls: the Seed Scheduler, the Identity Store and the Message
//! Sender (spec/peers.md). Each is built from configuration with its own token and a timeout;
//! request and response shapes stay private to each client's module.

pub mod identity_store;
pub mod message_sender;
pub mod scheduler;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};

use crate::config::PeersConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl Error {
    /// Whether trying again later may succeed. Client errors other than 408 and 429 mean the
    /// request itself is wrong (or sbm is misconfigured), so repeating it would not help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::NotConfigured(_) | Error::Decode(_) => false,
            Error::Timeout | Error::Connect(_) => true,
            Error::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        }
    }

    /// The original's metric suffix for this failure: `timeout`, `connection_error`, `http_error.<code>`.
    pub fn metric_reason(&self) -> String {
        match self {
            Error::Timeout => "timeout".into(),
            Error::Status { status, .. } => format!("http_error.{status}"),
            _ => "connection_error".into(),
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            Error::Timeout
        } else if err.is_decode() {
            Error::Decode(err.to_string())
        } else {
            Error::Connect(err.to_string())
        }
    }
}

/// One peer: its base URL (including `/api/v1`), its token, and a client with timeouts.
#[derive(Debug, Clone)]
pub struct PeerClient {
    /// For metrics and logs: `scheduler`, `identity_store`, `message_sender`.
    name: &'static str,
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl PeerClient {
    pub fn new(name: &'static str, base: &str, token: Option<String>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("sbm/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        PeerClient {
            name,
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http,
        }
    }

    /// A request to `path` (which starts with '/') under the base URL, with the peer's token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        for (name, value) in crate::telemetry::otlp::trace_headers() {
            request = request.header(name, value);
        }
        match &self.token {
            Some(token) => request.header(reqwest::header::AUTHORIZATION, format!("Token {token}")),
            None => request,
        }
    }

    /// Sends the request; any status of 300 or more is an error carrying (the start of) the body.
    #[tracing::instrument(skip_all, fields(peer = self.name))]
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let started = std::time::Instant::now();
        let response = request.send().await;
        metrics::histogram!("sbm_peer_request_duration_seconds", "peer" => self.name)
            .record(started.elapsed().as_secs_f64());
        let response = response?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let mut body = response.text().await.unwrap_or_default();
        body.truncate(500);
        Err(Error::Status {
            status: status.as_u16(),
            body,
        })
    }
}

/// The configured peers; a peer without a URL is absent.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub scheduler: Option<scheduler::Scheduler>,
    pub identity_store: Option<identity_store::IdentityStore>,
    pub message_sender: Option<message_sender::MessageSender>,
}

impl Peers {
    pub fn from_config(config: &PeersConfig) -> Self {
        let timeout = Duration::from_millis(config.peer_timeout_ms);
        let client = |name: &'static str, url: &Option<String>, token: &Option<String>| {
            url.as_deref()
                .filter(|u| !u.is_empty())
                .map(|u| PeerClient::new(name, u, token.clone(), timeout))
        };
        Peers {
            scheduler: client(
                "scheduler",
                &config.scheduler_url,
                &config.scheduler_api_token,
            )
            .map(scheduler::Scheduler),
            identity_store: client(
                "identity_store",
                &config.identity_store_url,
                &config.identity_store_token,
            )
            .map(identity_store::IdentityStore),
            message_sender: client(
                "message_sender",
                &config.message_sender_url,
                &config.message_sender_token,
            )
            .map(message_sender::MessageSender),
        }
    }

    pub fn scheduler(&self) -> Result<&scheduler::Scheduler, Error> {
        self.scheduler
            .as_ref()
            .ok_or(Error::NotConfigured("SCHEDULER_URL"))
    }

    pub fn identity_store(&self) -> Result<&identity_store::IdentityStore, Error> {
        self.identity_store
            .as_ref()
            .ok_or(Error::NotConfigured("IDENTITY_STORE_URL"))
    }

    pub fn message_sender(&self) -> Result<&message_sender::MessageSender, Error> {
        self.message_sender
            .as_ref()
            .ok_or(Error::NotConfigured("MESSAGE_SENDER_URL"))
    }
}
