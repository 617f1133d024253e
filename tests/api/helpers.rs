//! The test harness: a real sbm server on port 0 against a fresh database, and a client that
//! talks HTTP to it as any client of the original would.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use sbm::app::App;
use sbm::config::{
    EventsConfig, HttpConfig, MediaConfig, MetricsConfig, PeersConfig, SendConfig, ServeConfig,
    WorkerConfig,
};
use sbm::store::{Db, PoolSettings};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name($crate::helpers::Backend::Postgres).await })*
        }
    };
}

fn postgres_admin_url() -> String {
    std::env::var("SBM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test and is removed when the test ends.
pub enum TestDatabase {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        name: String,
        url: String,
    },
}

impl TestDatabase {
    /// `None` when PostgreSQL is not reachable outside CI (the test is then skipped with a note);
    /// under `CI=true` an unreachable PostgreSQL fails the test.
    pub async fn create(backend: Backend) -> Option<TestDatabase> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("sbm.db").display());
                Some(TestDatabase::Sqlite { _dir: dir, url })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
                    Ok(conn) => conn,
                    Err(err) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                        panic!("CI=true but PostgreSQL at {admin_url} is unreachable: {err}")
                    }
                    Err(err) => {
                        eprintln!("skipping PostgreSQL test: {admin_url} unreachable ({err})");
                        return None;
                    }
                };
                let name = format!("sbm_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                let mut url = url::Url::parse(&admin_url).expect("postgres url");
                url.set_path(&name);
                Some(TestDatabase::Postgres {
                    name,
                    url: url.to_string(),
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite { url, .. } | TestDatabase::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { name, .. } = self {
            let name = name.clone();
            // Drop runs inside the test's runtime, which cannot be blocked on; use a thread with
            // its own small runtime.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&postgres_admin_url()).await
                    {
                        let _ =
                            sqlx::query(&format!("drop database if exists {name} with (force)"))
                                .execute(&mut admin)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// Token of an admin user.
    pub token: String,
    pub db: Db,
    pub media_root: PathBuf,
    shutdown: CancellationToken,
    _media_dir: tempfile::TempDir,
    // Last, so the server and pool are gone before the database is dropped.
    _database: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn serve_config(media_root: PathBuf) -> ServeConfig {
    ServeConfig {
        http: HttpConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            use_ssl: false,
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 1024 * 1024,
            page_size: 1000,
            max_page_size: 1000,
            // Revocation tests need every request's token looked up.
            auth_cache_ms: 0,
            admin_session_idle_secs: 3_600,
            header_timeout_ms: 30_000,
            body_timeout_ms: 120_000,
        },
        media: MediaConfig { media_root },
        peers: PeersConfig::default(),
        worker: fast_worker(),
        // Tests fire schedules back to back; the duplicate window has its own test.
        send: SendConfig {
            dedupe_window_secs: 0,
        },
        metrics: MetricsConfig::default(),
        events: EventsConfig {
            secrets: sbm::secrets::SecretsConfig::with_key(TEST_SECRET_KEY),
            ..EventsConfig::default()
        },
        no_worker: false,
        no_migrate: true,
    }
}

/// A worker that looks at the queue often and retries within milliseconds.
pub fn fast_worker() -> WorkerConfig {
    WorkerConfig {
        concurrency: 8,
        poll_ms: 10,
        lease_secs: 5,
        max_attempts: 3,
        retry_base_ms: 10,
        retry_max_ms: 50,
        send_rate_limit: 0.0,
        global_send_rate_limit: 0.0,
        // Ticks are driven by the tests themselves, except where a test asks for the loop.
        tick_interval_secs: 3600,
        catch_up_secs: 900,
        tick_part_size: sbm::config::DEFAULT_TICK_PART_SIZE,
        content_cache_ms: 5_000,
        send_window: None,
        retention: sbm::config::RetentionConfig::default(),
    }
}

/// The SECRET_KEY of every test server (stored secrets are sealed with it).
pub const TEST_SECRET_KEY: &str = "test-secret-key";

/// The token the fake Scheduler presents on its POST-backs.
pub const INBOUND_TOKEN: &str = "scheduler-inbound-token";

/// Points the configuration at the fake peers.
pub fn use_peers(config: &mut ServeConfig, peers: &crate::peers::FakePeers) {
    config.peers = PeersConfig {
        scheduler_url: Some(peers.scheduler_url()),
        scheduler_api_token: Some("scheduler-token".into()),
        scheduler_inbound_api_token: Some(INBOUND_TOKEN.into()),
        identity_store_url: Some(peers.identity_store_url()),
        identity_store_token: Some("identity-token".into()),
        message_sender_url: Some(peers.message_sender_url()),
        message_sender_token: Some("sender-token".into()),
        peer_timeout_ms: 2_000,
    };
}

/// A worker of this test's own (as another process would run), against the app's database and
/// the fake peers; without the Seed Scheduler when `scheduler` is false.
pub fn worker_for(
    app: &TestApp,
    peers: &crate::peers::FakePeers,
    scheduler: bool,
) -> sbm::runtime::Worker {
    let mut config = serve_config(std::env::temp_dir());
    use_peers(&mut config, peers);
    if !scheduler {
        config.peers.scheduler_url = None;
    }
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let ctx = sbm::app::job_context(
        app.db.clone(),
        &config.peers,
        &config.worker,
        &config.metrics,
        &config.events,
        app.address.clone(),
        wake,
    )
    .expect("worker context");
    sbm::runtime::Worker::new(std::sync::Arc::new(ctx))
}

/// Runs a command to its end without blocking the test's runtime: the server under test runs on
/// that runtime, and a blocking wait would freeze it mid-transaction, holding SQLite's write lock
/// against the very command being waited for.
pub async fn output_of(command: std::process::Command) -> std::process::Output {
    tokio::process::Command::from(command)
        .output()
        .await
        .expect("the command runs")
}

/// Waits (up to 15 s) until `check` holds, polling.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Work the server has to do now, counted in one snapshot of the database: jobs running or
/// due, events not yet spread to callbacks, deliveries under way or due to an active callback.
const BUSY: &str = "select \
    (select count(*) from job where state = 'running' or (state = 'pending' and run_at <= $1)) \
    + (select count(*) from event where spread_at is null) \
    + (select count(*) from delivery d join callback c on c.id = d.callback_id \
       where d.state = 'running' \
          or (d.state = 'pending' and d.next_attempt_at <= $2 and c.state = 'active'))";

/// Waits (up to 15 s) until the worker and the delivery loop are idle: nothing is running and
/// nothing is due within the next second. After this, "nothing more happened" can be asserted
/// (whatever the server was going to do about the changes so far is done) without guessing
/// how long that takes.
pub async fn quiet(app: &TestApp) {
    eventually("the worker is idle", || async {
        let horizon = sbm::store::now() + chrono::Duration::seconds(1);
        let busy: i64 = match &app.db {
            Db::Postgres(pool) => sqlx::query_scalar(BUSY)
                .bind(horizon)
                .bind(horizon)
                .fetch_one(pool)
                .await
                .expect("count work"),
            Db::Sqlite(pool) => sqlx::query_scalar(BUSY)
                .bind(horizon)
                .bind(horizon)
                .fetch_one(pool)
                .await
                .expect("count work"),
        };
        busy == 0
    })
    .await;
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server with a configuration the caller may adjust first.
pub async fn spawn_app_with(
    backend: Backend,
    adjust: impl FnOnce(&mut ServeConfig),
) -> Option<TestApp> {
    if std::env::var("TEST_LOG").is_ok() {
        sbm::telemetry::init();
    }
    let database = TestDatabase::create(backend).await?;
    let pool = PoolSettings {
        max_connections: 5,
        acquire_timeout: Duration::from_secs(10),
    };
    let db = Db::connect(database.url(), &pool).await.expect("connect");
    db.migrate().await.expect("migrate");
    let media_dir = tempfile::tempdir().expect("media dir");
    let mut config = serve_config(media_dir.path().to_path_buf());
    adjust(&mut config);
    let app = App::with_db(db.clone(), &config).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    let token = issue_token(&db, "admin@example.org", true).await;
    Some(TestApp {
        address,
        client: reqwest::Client::new(),
        token,
        db,
        media_root: media_dir.path().to_path_buf(),
        shutdown,
        _media_dir: media_dir,
        _database: database,
    })
}

pub async fn issue_token(db: &Db, email: &str, admin: bool) -> String {
    let mut tx = db.begin().await.unwrap();
    let issued = sbm::auth::issue_token(&mut tx, email, admin).await.unwrap();
    tx.commit().await.unwrap();
    issued.token
}

/// What a client sees of a response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body").to_vec();
    Reply {
        status,
        headers,
        bytes,
    }
}

impl TestApp {
    pub fn database_url(&self) -> &str {
        self._database.url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        reply(request.send().await.expect("request sent")).await
    }

    /// A request as the admin, with a JSON body when given.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("Authorization", format!("Token {}", self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Uploads a file as binary content; returns the reply.
    pub async fn upload(
        &self,
        method: Method,
        path: &str,
        file_name: &str,
        bytes: Vec<u8>,
        mime: &str,
    ) -> Reply {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str(mime)
            .unwrap();
        let form = reqwest::multipart::Form::new().part("content", part);
        let request = self
            .client
            .request(method, self.url(path))
            .header("Authorization", format!("Token {}", self.token))
            .multipart(form);
        self.send(request).await
    }

    /// How many records a list endpoint reports.
    pub async fn count(&self, list_path: &str) -> i64 {
        self.get(list_path).await.expect(200).json()["count"]
            .as_i64()
            .expect("count")
    }

    // ---- fixtures ----

    pub async fn create_schedule(&self) -> i64 {
        let body = json!({"minute": "0", "hour": "8", "day_of_week": "1,4"});
        self.post("/api/v1/schedule/", body)
            .await
            .expect(201)
            .json()["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn create_message_set(&self, short_name: &str, content_type: &str) -> i64 {
        let schedule = self.create_schedule().await;
        let body = json!({"short_name": short_name, "content_type": content_type, "default_schedule": schedule});
        self.post("/api/v1/messageset/", body)
            .await
            .expect(201)
            .json()["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn create_message(
        &self,
        messageset: i64,
        sequence_number: i64,
        lang: &str,
        text: &str,
    ) -> i64 {
        let body = json!({"messageset": messageset, "sequence_number": sequence_number, "lang": lang, "text_content": text});
        self.post("/api/v1/message/", body).await.expect(201).json()["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn upload_audio(&self, name: &str, bytes: &[u8]) -> Value {
        self.upload(
            Method::POST,
            "/api/v1/binarycontent/",
            name,
            bytes.to_vec(),
            "audio/mpeg",
        )
        .await
        .expect(201)
        .json()
    }
}

/// A JSON value nested `levels` objects deep, for the depth bounds.
pub fn nested(levels: usize) -> Value {
    let mut value = json!("leaf");
    for _ in 0..levels {
        value = json!({ "a": value });
    }
    value
}
