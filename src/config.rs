//! Configuration: every setting is a flag with an environment-variable fallback, named as in the
//! original service where it had one. `sbm --help` and `sbm serve --help` list them all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::store::PoolSettings;

#[derive(Args, Debug, Clone)]
pub struct DatabaseConfig {
    /// [Database] postgres://user@host/db or sqlite://path.db (the file is created if missing).
    /// Default: sqlite://sbm.db in the working directory.
    #[arg(long = "database-url", env = "DATABASE_URL", global = true)]
    pub url: Option<String>,

    /// [Database] The original's name for the database URL; used when DATABASE_URL is not set.
    #[arg(
        long = "legacy-database-url",
        env = "STAGE_BASED_MESSAGING_DATABASE",
        global = true,
        hide = true
    )]
    pub legacy_url: Option<String>,

    /// [Database] Largest number of pooled connections.
    #[arg(
        long = "db-max-connections",
        env = "SBM_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub max_connections: u32,

    /// [Database] Seconds to wait for a free connection before answering 503.
    #[arg(
        long = "db-acquire-timeout",
        env = "SBM_DB_ACQUIRE_TIMEOUT",
        default_value_t = 5,
        global = true
    )]
    pub acquire_timeout_secs: u64,
}

impl DatabaseConfig {
    pub const DEFAULT_URL: &'static str = "sqlite://sbm.db";

    pub fn url(&self) -> &str {
        self.url
            .as_deref()
            .or(self.legacy_url.as_deref())
            .unwrap_or(Self::DEFAULT_URL)
    }

    pub fn pool(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.max_connections.max(1),
            acquire_timeout: Duration::from_secs(self.acquire_timeout_secs),
        }
    }

    /// For tests and embedding: a configuration for one URL with default pool settings.
    pub fn for_url(url: impl Into<String>) -> Self {
        DatabaseConfig {
            url: Some(url.into()),
            legacy_url: None,
            max_connections: 10,
            acquire_timeout_secs: 5,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct HttpConfig {
    /// [HTTP] Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "SBM_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// [HTTP] Public base URL of this service (scheme and host, e.g. https://sbm.example.org),
    /// used in links, media URLs and POST-back URLs. A value ending in /api/v1 or
    /// /api/v1/subscriptions (the original's convention) is accepted. When unset, links are
    /// built from the request's Host header.
    #[arg(long = "public-url", env = "STAGE_BASED_MESSAGING_URL")]
    pub public_url: Option<String>,

    /// [HTTP] Build links with https when no public URL is set (the original's USE_SSL).
    #[arg(long = "use-ssl", env = "USE_SSL", action = clap::ArgAction::SetTrue)]
    pub use_ssl: bool,

    /// [HTTP] Largest JSON or form request body, in bytes; larger ones get 413.
    #[arg(long = "max-body-bytes", env = "SBM_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// [HTTP] Largest binary content upload, in bytes; larger ones get 413.
    #[arg(long = "max-upload-bytes", env = "SBM_MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// [HTTP] Page size of list endpoints when the client gives no `limit` (the original's 1000).
    #[arg(long = "page-size", env = "SBM_PAGE_SIZE", default_value_t = 1000)]
    pub page_size: i64,

    /// [HTTP] Largest `limit` a client may ask for; larger ones are reduced to it.
    #[arg(
        long = "max-page-size",
        env = "SBM_MAX_PAGE_SIZE",
        default_value_t = 1000
    )]
    pub max_page_size: i64,

    /// [HTTP] Milliseconds a token that authenticated is trusted without looking it up again;
    /// a revoked token stops working within this long. 0 looks every request's token up.
    #[arg(
        long = "auth-cache-ms",
        env = "SBM_AUTH_CACHE_MS",
        default_value_t = 5_000
    )]
    pub auth_cache_ms: u64,

    /// [HTTP] Seconds an admin UI session may stay unused before it ends (sign in again).
    #[arg(
        long = "admin-session-idle-secs",
        env = "SBM_ADMIN_SESSION_IDLE_SECS",
        default_value_t = 3_600
    )]
    pub admin_session_idle_secs: u64,

    /// [HTTP] Milliseconds a client may take to send a request's headers (from the first byte,
    /// or from the end of the previous request on a kept-alive connection); a slower one is
    /// disconnected.
    #[arg(
        long = "header-timeout-ms",
        env = "SBM_HEADER_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub header_timeout_ms: u64,

    /// [HTTP] Milliseconds a request's body may take to arrive in full, counted from the
    /// request's start; a slower one gets 408. Bounds uploads too: at the default, 50 MiB need
    /// about 4 Mbit/s.
    #[arg(
        long = "body-timeout-ms",
        env = "SBM_BODY_TIMEOUT_MS",
        default_value_t = 120_000
    )]
    pub body_timeout_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub struct MediaConfig {
    /// [Content] Directory where uploaded binary content is stored and served from at /media/.
    #[arg(long = "media-root", env = "SBM_MEDIA_ROOT", default_value = "media")]
    pub media_root: PathBuf,
}

/// Everything `sbm serve` needs.
#[derive(Args, Debug, Clone)]
pub struct ServeConfig {
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub media: MediaConfig,
    #[command(flatten)]
    pub peers: PeersConfig,
    #[command(flatten)]
    pub worker: WorkerConfig,
    #[command(flatten)]
    pub send: SendConfig,
    #[command(flatten)]
    pub metrics: MetricsConfig,
    #[command(flatten)]
    pub events: EventsConfig,

    /// [Worker] Serve the API only; run the jobs in separate `sbm worker` processes.
    #[arg(long = "no-worker", env = "SBM_NO_WORKER", action = clap::ArgAction::SetTrue)]
    pub no_worker: bool,

    /// [Database] Do not apply pending migrations at start.
    #[arg(long = "no-migrate", env = "SBM_NO_MIGRATE", action = clap::ArgAction::SetTrue)]
    pub no_migrate: bool,
}

/// The peer services (base URLs include their `/api/v1` prefix, as in the original).
#[derive(Args, Debug, Clone, Default)]
pub struct PeersConfig {
    /// [Peers] Seed Scheduler base URL. When set, each subscription gets a Scheduler schedule
    /// that POSTs back to /api/v1/subscriptions/{id}/send (the original's compatible mode).
    #[arg(long = "scheduler-url", env = "SCHEDULER_URL")]
    pub scheduler_url: Option<String>,
    /// [Peers] Token sbm uses to call the Seed Scheduler.
    #[arg(
        long = "scheduler-api-token",
        env = "SCHEDULER_API_TOKEN",
        hide_env_values = true
    )]
    pub scheduler_api_token: Option<String>,
    /// [Peers] Token the Seed Scheduler presents on its POST-backs to sbm.
    #[arg(
        long = "scheduler-inbound-api-token",
        env = "SCHEDULER_INBOUND_API_TOKEN",
        hide_env_values = true
    )]
    pub scheduler_inbound_api_token: Option<String>,
    /// [Peers] Seed Identity Store base URL (where subscribers' addresses are).
    #[arg(long = "identity-store-url", env = "IDENTITY_STORE_URL")]
    pub identity_store_url: Option<String>,
    /// [Peers] Token for the Identity Store.
    #[arg(
        long = "identity-store-token",
        env = "IDENTITY_STORE_TOKEN",
        hide_env_values = true
    )]
    pub identity_store_token: Option<String>,
    /// [Peers] Seed Message Sender base URL (where messages are sent).
    #[arg(long = "message-sender-url", env = "MESSAGE_SENDER_URL")]
    pub message_sender_url: Option<String>,
    /// [Peers] Token for the Message Sender.
    #[arg(
        long = "message-sender-token",
        env = "MESSAGE_SENDER_TOKEN",
        hide_env_values = true
    )]
    pub message_sender_token: Option<String>,
    /// [Peers] Timeout of each call to a peer, in milliseconds (the original used 30 s).
    #[arg(
        long = "peer-timeout-ms",
        env = "SBM_PEER_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub peer_timeout_ms: u64,
}

/// A tick of at most this many sends is written in its own transaction; a larger one in parts
/// of about this many (`scheduling::ticker`). On the benchmark machine a part of 50,000 took
/// 1.1–2.3 s beside a 1M tick sending at full speed (about 0.35 s at the rate of the one-statement
/// tick alone); docs/benchmarks.md, "Issue 19: a large tick in parts". No other size was measured.
pub const DEFAULT_TICK_PART_SIZE: u64 = 50_000;

/// The background worker that runs jobs.
#[derive(Args, Debug, Clone)]
pub struct WorkerConfig {
    /// [Worker] Jobs run at once by one worker process.
    #[arg(
        long = "worker-concurrency",
        env = "SBM_WORKER_CONCURRENCY",
        default_value_t = 256
    )]
    pub concurrency: usize,
    /// [Worker] Milliseconds between looks at the queue when it was empty.
    #[arg(
        long = "worker-poll-ms",
        env = "SBM_WORKER_POLL_MS",
        default_value_t = 1000
    )]
    pub poll_ms: u64,
    /// [Worker] Seconds a claimed job stays with its worker; a worker that dies loses its jobs to
    /// others after this long. Keep it well above the peer timeout.
    #[arg(
        long = "job-lease-secs",
        env = "SBM_JOB_LEASE_SECS",
        default_value_t = 300
    )]
    pub lease_secs: u64,
    /// [Worker] Attempts before a job is kept as failed (the original: 1 + 5 retries).
    #[arg(
        long = "job-max-attempts",
        env = "SBM_JOB_MAX_ATTEMPTS",
        default_value_t = 6
    )]
    pub max_attempts: i32,
    /// [Worker] Delay before the first retry, in milliseconds; doubles each retry, ±20 % jitter.
    #[arg(
        long = "job-retry-base-ms",
        env = "SBM_JOB_RETRY_BASE_MS",
        default_value_t = 5_000
    )]
    pub retry_base_ms: u64,
    /// [Worker] Longest delay between retries, in milliseconds.
    #[arg(
        long = "job-retry-max-ms",
        env = "SBM_JOB_RETRY_MAX_MS",
        default_value_t = 300_000
    )]
    pub retry_max_ms: u64,
    /// [Worker] Most messages per second sent to the Message Sender by one worker (its channels
    /// have rate limits); 0 means no limit.
    #[arg(
        long = "send-rate-limit",
        env = "SBM_SEND_RATE_LIMIT",
        default_value_t = 0.0
    )]
    pub send_rate_limit: f64,
    /// [Worker] Most messages per second sent to the Message Sender by all the processes on the
    /// database together (a token bucket in the database, on its clock); 0 means no limit. Set
    /// the same value on every process. SBM_SEND_RATE_LIMIT, if set, still caps each process.
    #[arg(
        long = "global-send-rate-limit",
        env = "SBM_GLOBAL_SEND_RATE_LIMIT",
        default_value_t = 0.0
    )]
    pub global_send_rate_limit: f64,
    /// [Scheduler] Seconds between evaluations of the schedules by the built-in scheduler (used
    /// when SCHEDULER_URL is not set).
    #[arg(
        long = "tick-interval-secs",
        env = "SBM_TICK_INTERVAL_SECS",
        default_value_t = 5
    )]
    pub tick_interval_secs: u64,
    /// [Scheduler] After downtime, a missed due minute younger than this many seconds still fires
    /// (once); older ones are skipped and logged.
    #[arg(
        long = "catch-up-secs",
        env = "SBM_CATCH_UP_SECS",
        default_value_t = 900
    )]
    pub catch_up_secs: u64,
    /// [Scheduler] A tick of more sends than this is written in parts of about this many, each
    /// in its own transaction (four at a time), instead of in one transaction: sending starts
    /// when the first part commits, and no transaction holds more than a part.
    #[arg(
        long = "tick-part-size",
        env = "SBM_TICK_PART_SIZE",
        default_value_t = DEFAULT_TICK_PART_SIZE
    )]
    pub tick_part_size: u64,
    /// [Worker] Milliseconds a send may use message sets and messages read earlier (a tick
    /// sends the same few messages to many people); content edits reach sends within this long.
    /// 0 reads them for every send.
    #[arg(
        long = "content-cache-ms",
        env = "SBM_CONTENT_CACHE_MS",
        default_value_t = 5_000
    )]
    pub content_cache_ms: u64,
    /// [Sending] Quiet hours for message sets without a window of their own: sends leave only
    /// between these local times of each subscriber, e.g. `07:00-20:00` (an end before the
    /// start crosses midnight). Unset: no default window.
    #[arg(long = "send-window", env = "SBM_SEND_WINDOW")]
    pub send_window: Option<String>,
    #[command(flatten)]
    pub retention: RetentionConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 256,
            poll_ms: 1000,
            lease_secs: 300,
            max_attempts: 6,
            retry_base_ms: 5_000,
            retry_max_ms: 300_000,
            send_rate_limit: 0.0,
            global_send_rate_limit: 0.0,
            tick_interval_secs: 5,
            catch_up_secs: 900,
            tick_part_size: DEFAULT_TICK_PART_SIZE,
            content_cache_ms: 5_000,
            send_window: None,
            retention: RetentionConfig::default(),
        }
    }
}

/// How long the append-only tables keep their rows (docs/scaling.md). Every worker process
/// prunes them every `prune_interval_secs`; `sbm prune` runs one pass by hand.
#[derive(Args, Debug, Clone)]
pub struct RetentionConfig {
    /// [Retention] Days an event is kept after it occurred; 0 keeps events forever. An event
    /// with a delivery still kept, or an integration message still waiting, is kept with it.
    #[arg(
        long = "event-retention-days",
        env = "SBM_EVENT_RETENTION_DAYS",
        default_value_t = Self::EVENT_DAYS
    )]
    pub event_days: u32,
    /// [Retention] Days a succeeded delivery (with its attempt log) is kept after it was
    /// delivered; 0 keeps them forever. Pending, running and failed deliveries are never pruned.
    #[arg(
        long = "delivery-retention-days",
        env = "SBM_DELIVERY_RETENTION_DAYS",
        default_value_t = Self::DELIVERY_DAYS
    )]
    pub delivery_days: u32,
    /// [Retention] Days an integration message is kept after it was sent (fetched and marked,
    /// or pushed); 0 keeps them forever. Waiting messages are never pruned.
    #[arg(
        long = "integration-message-retention-days",
        env = "SBM_INTEGRATION_MESSAGE_RETENTION_DAYS",
        default_value_t = Self::INTEGRATION_MESSAGE_DAYS
    )]
    pub integration_message_days: u32,
    /// [Retention] Days an audit log entry is kept; 0 (the default) keeps the audit log forever.
    #[arg(
        long = "audit-retention-days",
        env = "SBM_AUDIT_RETENTION_DAYS",
        default_value_t = Self::AUDIT_DAYS
    )]
    pub audit_days: u32,
    /// [Retention] Seconds between pruning passes of a worker process; 0 turns the workers'
    /// pruning off (`sbm prune` still works).
    #[arg(
        long = "prune-interval-secs",
        env = "SBM_PRUNE_INTERVAL_SECS",
        default_value_t = Self::PRUNE_INTERVAL_SECS
    )]
    pub prune_interval_secs: u64,
    /// [Retention] Most rows one delete statement of a pruning pass removes.
    #[arg(
        long = "prune-batch-size",
        env = "SBM_PRUNE_BATCH_SIZE",
        default_value_t = Self::PRUNE_BATCH_SIZE
    )]
    pub prune_batch_size: u32,
}

impl RetentionConfig {
    pub const EVENT_DAYS: u32 = 90;
    pub const DELIVERY_DAYS: u32 = 30;
    pub const INTEGRATION_MESSAGE_DAYS: u32 = 90;
    pub const AUDIT_DAYS: u32 = 0;
    pub const PRUNE_INTERVAL_SECS: u64 = 300;
    pub const PRUNE_BATCH_SIZE: u32 = 5_000;
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            event_days: Self::EVENT_DAYS,
            delivery_days: Self::DELIVERY_DAYS,
            integration_message_days: Self::INTEGRATION_MESSAGE_DAYS,
            audit_days: Self::AUDIT_DAYS,
            prune_interval_secs: Self::PRUNE_INTERVAL_SECS,
            prune_batch_size: Self::PRUNE_BATCH_SIZE,
        }
    }
}

/// What decides how sends behave.
#[derive(Args, Debug, Clone)]
pub struct SendConfig {
    /// [Sending] A second send request for a subscription within this many seconds of the
    /// previous one is a duplicate delivery (the Scheduler delivers at least once) and is ignored.
    /// Keep it below the shortest schedule period (one minute).
    #[arg(
        long = "send-dedupe-window-secs",
        env = "SBM_SEND_DEDUPE_WINDOW_SECS",
        default_value_t = 55
    )]
    pub dedupe_window_secs: u64,
}

impl Default for SendConfig {
    fn default() -> Self {
        SendConfig {
            dedupe_window_secs: 55,
        }
    }
}

/// The Go Metrics API the original pushed its metrics to.
#[derive(Args, Debug, Clone, Default)]
pub struct MetricsConfig {
    /// [Metrics] Go Metrics API root URL (sbm posts to <url>/metrics/). Unset: no pushes.
    #[arg(long = "metrics-url", env = "METRICS_URL")]
    pub metrics_url: Option<String>,
    /// [Metrics] Bearer token for the Metrics API (the original's METRICS_AUTH_TOKEN).
    #[arg(
        long = "metrics-auth-token",
        env = "METRICS_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub metrics_auth_token: Option<String>,
    /// [Metrics] Basic-auth user for the Metrics API (used instead of the token when set).
    #[arg(long = "metrics-auth-user", env = "METRICS_AUTH_USER")]
    pub metrics_auth_user: Option<String>,
    /// [Metrics] Basic-auth password for the Metrics API.
    #[arg(
        long = "metrics-auth-password",
        env = "METRICS_AUTH_PASSWORD",
        hide_env_values = true
    )]
    pub metrics_auth_password: Option<String>,
    /// [Metrics] Seconds between pushes of the counted metrics (each push is one request).
    #[arg(
        long = "metrics-flush-secs",
        env = "SBM_METRICS_FLUSH_SECS",
        default_value_t = 10
    )]
    pub flush_secs: u64,
}

/// Lifecycle events and the callbacks (WebSub subscriptions) they are delivered to.
#[derive(Args, Debug, Clone)]
pub struct EventsConfig {
    /// [Events] Networks (CIDR, comma-separated) that callbacks may point into although they are
    /// private, loopback or link-local, e.g. `10.0.0.0/8,127.0.0.1/32`. Such addresses are
    /// refused by default (SSRF protection); `0.0.0.0/0,::/0` allows every address.
    #[arg(
        long = "callback-allowed-networks",
        env = "SBM_CALLBACK_ALLOWED_NETWORKS",
        value_delimiter = ',',
        num_args = 0..
    )]
    pub callback_allowed_networks: Vec<String>,
    /// [Events] Lease given when a subscriber asks for none (seconds; WebSub suggests 10 days).
    #[arg(
        long = "hub-lease-default-secs",
        env = "SBM_HUB_LEASE_DEFAULT_SECS",
        default_value_t = 864_000
    )]
    pub lease_default_secs: i64,
    /// [Events] Shortest lease granted; shorter requests are raised to it (seconds).
    #[arg(
        long = "hub-lease-min-secs",
        env = "SBM_HUB_LEASE_MIN_SECS",
        default_value_t = 3_600
    )]
    pub lease_min_secs: i64,
    /// [Events] Longest lease granted; longer requests are lowered to it (seconds).
    #[arg(
        long = "hub-lease-max-secs",
        env = "SBM_HUB_LEASE_MAX_SECS",
        default_value_t = 31_536_000
    )]
    pub lease_max_secs: i64,
    /// [Events] Seconds to wait before each retry of a failed delivery, comma-separated; after
    /// the last one the delivery is `failed`. The default makes 8 attempts over about 27 hours.
    #[arg(
        long = "delivery-retry-schedule",
        env = "SBM_DELIVERY_RETRY_SCHEDULE",
        value_delimiter = ',',
        default_value = "5,300,1800,7200,18000,36000,36000"
    )]
    pub retry_schedule_secs: Vec<u64>,
    /// [Events] Random spread applied to each retry delay (0.2 = ±20 %).
    #[arg(
        long = "delivery-retry-jitter",
        env = "SBM_DELIVERY_RETRY_JITTER",
        default_value_t = 0.2
    )]
    pub retry_jitter: f64,
    /// [Events] Longest `Retry-After` honoured from a 429 or 503 (seconds).
    #[arg(
        long = "delivery-retry-after-max-secs",
        env = "SBM_DELIVERY_RETRY_AFTER_MAX_SECS",
        default_value_t = 3_600
    )]
    pub retry_after_max_secs: u64,
    /// [Events] Timeout of one delivery or verification request (milliseconds).
    #[arg(
        long = "delivery-timeout-ms",
        env = "SBM_DELIVERY_TIMEOUT_MS",
        default_value_t = 15_000
    )]
    pub timeout_ms: u64,
    /// [Events] Deliveries in flight at once, per worker process.
    #[arg(
        long = "delivery-concurrency",
        env = "SBM_DELIVERY_CONCURRENCY",
        default_value_t = 64
    )]
    pub delivery_concurrency: usize,
    /// [Events] A callback whose deliveries have only failed for this long is disabled, with a
    /// `callback.disabled` event (seconds; default 5 days).
    #[arg(
        long = "callback-disable-after-secs",
        env = "SBM_CALLBACK_DISABLE_AFTER_SECS",
        default_value_t = 432_000
    )]
    pub disable_after_secs: u64,
    /// [Integrations] This instance's name. A send group pushes only from the instance named in
    /// its `instance`, so a restored copy of production never pushes to partners. Default: the
    /// machine's host name.
    #[arg(long = "instance-name", env = "SBM_INSTANCE_NAME", default_value_t = host_name())]
    pub instance_name: String,
    /// SECRET_KEY and its fallbacks, read by the command line (global options) and filled in
    /// before the service starts.
    #[arg(skip)]
    pub secrets: crate::secrets::SecretsConfig,
}

/// The machine's host name, or `sbm` where it cannot be read.
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .chain(std::env::var("HOSTNAME").ok())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "sbm".to_string())
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            callback_allowed_networks: Vec::new(),
            lease_default_secs: 864_000,
            lease_min_secs: 3_600,
            lease_max_secs: 31_536_000,
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
            retry_jitter: 0.2,
            retry_after_max_secs: 3_600,
            timeout_ms: 15_000,
            delivery_concurrency: 64,
            disable_after_secs: 432_000,
            instance_name: host_name(),
            secrets: crate::secrets::SecretsConfig::default(),
        }
    }
}

/// The configured public URL reduced to its origin: the original told operators to set
/// `STAGE_BASED_MESSAGING_URL` to `https://host/api/v1/subscriptions` or `https://host/api/v1`.
pub fn public_origin(configured: &str) -> String {
    let mut url = configured.trim().trim_end_matches('/');
    for suffix in ["/subscriptions", "/api/v1"] {
        url = url.strip_suffix(suffix).unwrap_or(url);
    }
    url.to_string()
}
