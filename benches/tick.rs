//! The send benchmark: one tick of N due subscriptions, end to end.
//!
//! Creates a fresh database, seeds N subscriptions set-based across three message sets and two
//! languages, starts fast fake Identity Store and Message Sender servers on loopback, runs
//! `sbm serve` (the release binary) as a child process in built-in scheduler mode, fires one
//! tick, and reports: the time to enqueue the tick, the time until every outbound was accepted
//! and every subscription advanced, sends per second, sbm's peak RSS, and whether the fake
//! Message Sender received exactly N messages (no duplicates, none missing).
//!
//! With `--callback-batch B`, a callback subscribed to `send.*` (B events per POST) receives
//! the tick's `send.succeeded` events at a fast receiver, which checks that each arrives once.
//! With `--integration-group`, a poll integration group on `send.*` takes a message of each
//! event, and the run checks that there is exactly one per send.
//!
//!     cargo bench --bench tick -- --backend postgres --n 1000000 [--concurrency 256]
//!     cargo bench --bench tick -- --backend sqlite --n 100000
//!     cargo bench --bench tick -- --backend postgres --n 1000000 --callback-batch 100
//!     cargo bench --bench tick -- --backend postgres --n 1000000 --integration-group
//!     cargo bench --bench tick -- --backend postgres --n 1000000 --zones 10
//!     cargo bench --bench tick -- --backend postgres --n 100000 --keep-db   (leaves it behind)
//!     cargo bench --bench tick -- --backend postgres --n 1000000 --part-size 1000000   (one
//!         transaction, as before ticks were written in parts)
//!
//! With `--zones K`, the subscriptions name K time zones in turn (each its own zone group of
//! the every-minute schedule, so the tick is K claims and K INSERT … SELECTs instead of one).
//!
//! With `--workers 1,2,4`, the tick runs once per count, each time on a fresh database, with
//! that many `sbm worker` processes (no `sbm serve`: the benchmark fires the tick itself) and
//! their database pools split from one budget. Each process posts to its own path of the fake
//! Message Sender, which so counts the share each took; duplicates are counted across all.
//! With `--global-rate R`, every sbm process runs with `SBM_GLOBAL_SEND_RATE_LIMIT=R`, and the
//! run reports the rate the Message Sender saw against R (from one second after the first
//! outbound to the last, and per 10 s).
//!
//!     cargo bench --bench tick -- --backend postgres --n 100000 --workers 1,2,4
//!     cargo bench --bench tick -- --backend postgres --n 60000 --workers 3 --global-rate 1000

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use sbm::model::content::{MessageFields, MessageSetFields, ScheduleFields};
use sbm::store::{Db, PoolSettings};
use serde_json::{json, Value};
use sqlx::Connection;

struct Options {
    backend: String,
    n: i64,
    concurrency: usize,
    postgres_admin: String,
    callback_batch: Option<i32>,
    integration_group: bool,
    zones: usize,
    /// Leave the PostgreSQL database behind for inspection (docs/scaling.md measures its
    /// tables' sizes after a tick).
    keep_db: bool,
    /// `sbm worker` process counts to run the tick with, one run each; empty: one `sbm serve`.
    workers: Vec<usize>,
    global_rate: Option<f64>,
    /// `SBM_TICK_PART_SIZE` for the tick fired here (`--part-size`; default sbm's).
    part_size: u64,
}

/// Most worker processes of a run (each has its own counter at the fake Message Sender).
const MAX_WORKERS: usize = 16;

/// Ten zones of both hemispheres, none of them UTC, for `--zones`.
const BENCH_ZONES: [&str; 10] = [
    "Africa/Johannesburg",
    "Africa/Lagos",
    "Africa/Nairobi",
    "America/Sao_Paulo",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Jakarta",
    "Australia/Sydney",
    "Europe/London",
    "Pacific/Auckland",
];

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    Options {
        backend: value("--backend").unwrap_or_else(|| "postgres".into()),
        n: value("--n")
            .map(|v| v.replace('_', "").parse().expect("--n takes a number"))
            .unwrap_or(100_000),
        concurrency: value("--concurrency")
            .map(|v| v.parse().expect("--concurrency takes a number"))
            .unwrap_or(256),
        callback_batch: value("--callback-batch")
            .map(|v| v.parse().expect("--callback-batch takes a number")),
        integration_group: args.iter().any(|a| a == "--integration-group"),
        keep_db: args.iter().any(|a| a == "--keep-db"),
        zones: value("--zones")
            .map(|v| v.parse().expect("--zones takes a number from 1 to 10"))
            .unwrap_or(0)
            .min(BENCH_ZONES.len()),
        workers: value("--workers")
            .map(|v| {
                v.split(',')
                    .map(|w| w.trim().parse().expect("--workers takes counts like 1,2,4"))
                    .inspect(|w| assert!((1..=MAX_WORKERS).contains(w), "1 to 16 workers"))
                    .collect()
            })
            .unwrap_or_default(),
        global_rate: value("--global-rate")
            .map(|v| v.parse().expect("--global-rate takes sends per second")),
        part_size: value("--part-size")
            .map(|v| {
                v.replace('_', "")
                    .parse()
                    .expect("--part-size takes a number")
            })
            .unwrap_or(sbm::config::DEFAULT_TICK_PART_SIZE),
        postgres_admin: std::env::var("SBM_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    }
}

/// What the fake Message Sender saw.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    duplicates: AtomicU64,
    recipients: Mutex<HashSet<String>>,
    events: AtomicU64,
    duplicate_events: AtomicU64,
    event_ids: Mutex<HashSet<String>>,
    /// Outbounds per sbm process (by the path it posts to).
    per_process: [AtomicU64; MAX_WORKERS],
    /// When the first and the last outbound arrived, and outbounds per second since the first.
    arrivals: Mutex<Arrivals>,
}

#[derive(Default)]
struct Arrivals {
    first: Option<Instant>,
    last: Option<Instant>,
    per_second: Vec<u64>,
}

impl Arrivals {
    fn note(&mut self, at: Instant) {
        let first = *self.first.get_or_insert(at);
        self.last = Some(at);
        let second = (at - first).as_secs() as usize;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }
}

/// The fast receiver: takes one event or a batch, notes each id.
async fn receive_events(
    State(received): State<Arc<Received>>,
    Json(body): Json<Value>,
) -> StatusCode {
    let events = match body {
        Value::Array(events) => events,
        event => vec![event],
    };
    let mut ids = received.event_ids.lock().unwrap();
    for event in &events {
        if !ids.insert(event["id"].as_str().unwrap_or_default().to_string()) {
            received.duplicate_events.fetch_add(1, Ordering::Relaxed);
        }
    }
    received
        .events
        .fetch_add(events.len() as u64, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

async fn outbound(
    State(received): State<Arc<Received>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    note_outbound(&received, 0, body)
}

/// The Message Sender of worker process `k` (`--workers`).
async fn worker_outbound(
    State(received): State<Arc<Received>>,
    axum::extract::Path(k): axum::extract::Path<usize>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    note_outbound(&received, k, body)
}

fn note_outbound(received: &Received, k: usize, body: Value) -> (StatusCode, Json<Value>) {
    received.per_process[k.min(MAX_WORKERS - 1)].fetch_add(1, Ordering::Relaxed);
    received.arrivals.lock().unwrap().note(Instant::now());
    let recipient = body["to_identity"].as_str().unwrap_or_default().to_string();
    if !received.recipients.lock().unwrap().insert(recipient) {
        received.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    let n = received.count.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::CREATED,
        Json(json!({"id": format!("outbound-{n}")})),
    )
}

async fn address() -> Json<Value> {
    Json(
        json!({"count": 1, "next": null, "previous": null, "results": [{"address": "+27820000000"}]}),
    )
}

async fn start_fakes(received: Arc<Received>) -> String {
    let app = Router::new()
        .route(
            "/identity/api/v1/identities/{id}/addresses/msisdn",
            get(address),
        )
        .route("/sender/api/v1/outbound/", post(outbound))
        .route("/sender/{k}/api/v1/outbound/", post(worker_outbound))
        .route("/receiver", post(receive_events))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn create_database(o: &Options) -> (String, Option<tempfile_dir::Dir>) {
    if o.backend == "sqlite" {
        let dir = tempfile_dir::Dir::new();
        (format!("sqlite://{}/bench.db", dir.path()), Some(dir))
    } else {
        let mut admin = sqlx::PgConnection::connect(&o.postgres_admin)
            .await
            .expect("PostgreSQL reachable");
        let name = format!("sbm_bench_{}", std::process::id());
        sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut url = url::Url::parse(&o.postgres_admin).unwrap();
        url.set_path(&name);
        (url.to_string(), None)
    }
}

/// A temporary directory without another dependency: removed on drop.
mod tempfile_dir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let path = std::env::temp_dir().join(format!("sbm-bench-{}", std::process::id()));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
        pub fn path(&self) -> String {
            self.0.display().to_string()
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One every-minute schedule, three text sets with two messages in two languages each.
async fn seed_content(db: &Db) -> (i64, Vec<i64>) {
    let effects = sbm::effects::Effects {
        jobs: sbm::jobs::JobSettings::from(&sbm::config::WorkerConfig::default()),
        scheduler_mode: false,
        go_metrics: false,
        public_origin: "http://127.0.0.1:8000".into(),
        next_due: sbm::scheduling::local::next_due,
    };
    let mut tx = db.begin().await.unwrap();
    let schedule = sbm::content::create_schedule(&mut tx, &effects, &ScheduleFields::default())
        .await
        .unwrap();
    let mut sets = Vec::new();
    for name in ["prebirth", "postbirth", "child"] {
        let fields = MessageSetFields {
            short_name: name.into(),
            default_schedule_id: schedule.id,
            ..Default::default()
        };
        let set = sbm::content::create_message_set(&mut tx, &effects, &fields)
            .await
            .unwrap();
        for lang in ["eng_ZA", "zul_ZA"] {
            for n in 1..=2 {
                let text = format!("{name} {lang} message {n}");
                let fields = MessageFields {
                    message_set_id: set.id,
                    sequence_number: n,
                    lang: lang.into(),
                    text_content: Some(text),
                    ..Default::default()
                };
                sbm::content::create_message(&mut tx, &effects, &fields)
                    .await
                    .unwrap();
            }
        }
        sets.push(set.id);
    }
    tx.commit().await.unwrap();
    (schedule.id, sets)
}

/// N subscriptions in one statement; with `zones` > 0 they name that many zones in turn.
async fn seed_subscriptions(db: &Db, schedule: i64, sets: &[i64], n: i64, zones: usize) {
    let now = sbm::store::now();
    let names: Vec<String> = BENCH_ZONES[..zones].iter().map(|z| z.to_string()).collect();
    // The zone of subscription i, as SQL both engines read: null, or a CASE over i % zones.
    let zone_of = if zones == 0 {
        "null".to_string()
    } else {
        let arms: String = names
            .iter()
            .enumerate()
            .map(|(k, name)| format!(" when {k} then '{name}'"))
            .collect();
        format!("case i % {zones}{arms} end")
    };
    match db {
        Db::Postgres(pool) => {
            sqlx::query(&format!(
                "insert into subscription (id, identity, version, message_set_id, next_sequence_number, \
                 initial_sequence_number, lang, active, completed, schedule_id, process_status, metadata, created_at, updated_at, timezone) \
                 select gen_random_uuid(), gen_random_uuid(), 1, ($3::bigint[])[1 + i % 3], 1, 1, \
                 case when i % 2 = 0 then 'eng_ZA' else 'zul_ZA' end, true, false, $2, 0, '{{}}'::jsonb, $4, $4, {zone_of} \
                 from generate_series(1, $1) as i",
            ))
            .bind(n)
            .bind(schedule)
            .bind(sets)
            .bind(now)
            .execute(pool)
            .await
            .unwrap();
            sqlx::query("analyze").execute(pool).await.unwrap();
        }
        Db::Sqlite(pool) => {
            sqlx::query(&format!(
                "with recursive seq(i) as (select 1 union all select i + 1 from seq where i < $1) \
                 insert into subscription (id, identity, version, message_set_id, next_sequence_number, \
                 initial_sequence_number, lang, active, completed, schedule_id, process_status, metadata, created_at, updated_at, timezone) \
                 select randomblob(16), randomblob(16), 1, case i % 3 when 0 then $3 when 1 then $4 else $5 end, 1, 1, \
                 case when i % 2 = 0 then 'eng_ZA' else 'zul_ZA' end, 1, 0, $2, 0, '{{}}', $6, $6, {zone_of} from seq",
            ))
            .bind(n)
            .bind(schedule)
            .bind(sets[0])
            .bind(sets[1])
            .bind(sets[2])
            .bind(now)
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

/// A callback on `send.*`, active as if verified (the benchmark measures delivery, not the
/// handshake, which the HTTP tests cover).
async fn subscribe_receiver(db: &Db, url: &str, batch: i32) {
    const SQL: &str =
        "insert into callback (id, topic, topic_prefix, callback_url, state, lease_seconds, \
        lease_expires_at, batch_size, created_at, updated_at) \
        values ($1, 'send.*', 'send', $2, 'active', 86400, $3, $4, $5, $5)";
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::days(1);
    let id = uuid::Uuid::new_v4();
    match db {
        Db::Postgres(pool) => sqlx::query(SQL)
            .bind(id)
            .bind(url)
            .bind(expires)
            .bind(batch)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()),
        Db::Sqlite(pool) => sqlx::query(SQL)
            .bind(id)
            .bind(url)
            .bind(expires)
            .bind(batch)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()),
    }
    .unwrap();
}

/// A poll integration group fed by `send.*`: every send also writes an integration message.
async fn add_integration_group(db: &Db) {
    const GROUP: &str = "insert into integration_group (name, method, title, description, \
        lease_seconds, format, minute, hour, day_of_week, day_of_month, month_of_year, \
        max_batch_size, skip_empty, instance, created_at, updated_at) \
        values ('bench', 'poll', 'Benchmark', '', 300, 'json', '0', '2', '*', '*', '*', 100, true, \
        'bench', $1, $1)";
    const TOPIC: &str = "insert into integration_group_topic (group_name, topic, topic_prefix) \
        values ('bench', 'send.*', 'send')";
    let now = chrono::Utc::now();
    match db {
        Db::Postgres(pool) => {
            sqlx::query(GROUP).bind(now).execute(pool).await.unwrap();
            sqlx::query(TOPIC).execute(pool).await.unwrap();
        }
        Db::Sqlite(pool) => {
            sqlx::query(GROUP).bind(now).execute(pool).await.unwrap();
            sqlx::query(TOPIC).execute(pool).await.unwrap();
        }
    }
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One sbm process of a run: `sbm serve` with its embedded worker (`None`), or worker process
/// `k` of `workers` (`--workers`), which posts to its own path of the fake Message Sender.
fn start_sbm(
    database_url: &str,
    fakes: &str,
    o: &Options,
    worker: Option<(usize, usize)>,
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sbm"));
    // One budget of connections, split between the processes (PostgreSQL allows 100).
    let connections = (o.concurrency / 2).clamp(4, 40);
    match worker {
        None => {
            command
                .args(["serve", "--no-migrate", "--bind", "127.0.0.1:0"])
                .env("MESSAGE_SENDER_URL", format!("{fakes}/sender/api/v1"))
                .env("SBM_DB_MAX_CONNECTIONS", connections.to_string());
        }
        Some((k, workers)) => {
            command
                .args(["worker", "--no-migrate"])
                .env("MESSAGE_SENDER_URL", format!("{fakes}/sender/{k}/api/v1"))
                .env(
                    "SBM_DB_MAX_CONNECTIONS",
                    (connections / workers).max(8).to_string(),
                );
        }
    }
    if let Some(rate) = o.global_rate {
        command.env("SBM_GLOBAL_SEND_RATE_LIMIT", rate.to_string());
    }
    command
        .env("DATABASE_URL", database_url)
        .env("IDENTITY_STORE_URL", format!("{fakes}/identity/api/v1"))
        .env("STAGE_BASED_MESSAGING_URL", "http://127.0.0.1:8000")
        .env("SBM_WORKER_CONCURRENCY", o.concurrency.to_string())
        .env("SBM_WORKER_POLL_MS", "20")
        // The benchmark fires its tick itself, to time it.
        .env("SBM_TICK_INTERVAL_SECS", "86400")
        .env("SBM_CALLBACK_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env("SECRET_KEY", "bench-secret-key")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the sbm binary starts")
}

async fn count(db: &Db, sql: &str) -> i64 {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// What one run found, for the summary of `--workers`.
struct Run {
    processes: usize,
    sends_per_second: f64,
    duplicates: u64,
    shares: Vec<u64>,
    /// The Message Sender's steady rate, with `--global-rate`.
    measured_rate: Option<f64>,
    exact: bool,
}

#[tokio::main]
async fn main() {
    let o = options();
    println!(
        "sbm tick benchmark: backend={} n={} concurrency={}{}",
        o.backend,
        o.n,
        o.concurrency,
        o.global_rate
            .map(|r| format!(" global-rate={r}"))
            .unwrap_or_default()
    );
    if o.workers.is_empty() {
        if !run(&o, None).await.exact {
            std::process::exit(1);
        }
        return;
    }
    let mut runs = Vec::new();
    for &workers in &o.workers {
        println!("\n## {workers} worker process(es)\n");
        runs.push(run(&o, Some(workers)).await);
    }
    println!("\n| worker processes | sends/s end to end | vs the first run | duplicates | share per process |{}", if o.global_rate.is_some() { " measured rate |" } else { "" });
    println!(
        "| --- | --- | --- | --- | --- |{}",
        if o.global_rate.is_some() {
            " --- |"
        } else {
            ""
        }
    );
    let base = runs[0].sends_per_second;
    for r in &runs {
        let total: u64 = r.shares.iter().sum::<u64>().max(1);
        let shares: Vec<String> = r
            .shares
            .iter()
            .map(|s| format!("{:.1} %", *s as f64 * 100.0 / total as f64))
            .collect();
        println!(
            "| {} | {:.0} | {:+.1} % | {} | {} |{}",
            r.processes,
            r.sends_per_second,
            (r.sends_per_second / base - 1.0) * 100.0,
            r.duplicates,
            shares.join(", "),
            r.measured_rate
                .map(|m| format!(" {m:.1} |"))
                .unwrap_or_default()
        );
    }
    if runs.iter().any(|r| !r.exact) {
        std::process::exit(1);
    }
}

/// One tick of N on a fresh database, with one `sbm serve` (`None`) or that many `sbm worker`
/// processes.
async fn run(o: &Options, workers: Option<usize>) -> Run {
    let (url, _dir) = create_database(o).await;
    let db = Db::connect(
        &url,
        &PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();
    // sbm starts before the schedule exists: its own scheduler's first look finds nothing due,
    // and the one tick of this benchmark is the one fired below.
    let received = Arc::new(Received::default());
    let fakes = start_fakes(received.clone()).await;
    let mut processes: Vec<Child> = match workers {
        None => vec![start_sbm(&url, &fakes, o, None)],
        Some(w) => (0..w)
            .map(|k| start_sbm(&url, &fakes, o, Some((k, w))))
            .collect(),
    };
    let pids: Vec<u32> = processes.iter().map(Child::id).collect();
    // The largest of the processes.
    let rss = |field: &str| {
        pids.iter()
            .map(|&pid| rss_kib(pid, field).unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (schedule, sets) = seed_content(&db).await;
    let started = Instant::now();
    seed_subscriptions(&db, schedule, &sets, o.n, o.zones).await;
    println!(
        "seeded {} subscriptions in {:.1} s",
        o.n,
        started.elapsed().as_secs_f64()
    );

    if let Some(batch) = o.callback_batch {
        subscribe_receiver(&db, &format!("{fakes}/receiver"), batch).await;
    }
    if o.integration_group {
        add_integration_group(&db).await;
    }
    let idle_rss = rss("VmRSS:");

    let tick_started = Instant::now();
    let minute = sbm::scheduling::minute_of(chrono::Utc::now());
    let settings = sbm::scheduling::ticker::TickSettings {
        max_attempts: 6,
        part_size: o.part_size,
    };
    let enqueued = sbm::scheduling::ticker::fire(&db, settings, schedule, minute)
        .await
        .unwrap()
        .unwrap_or(0);
    let enqueue_time = tick_started.elapsed();
    println!(
        "tick enqueued {enqueued} sends in {:.2} s",
        enqueue_time.as_secs_f64()
    );
    // A tick written in parts: when its last part has written its sends (each part adds its
    // count to the tick's row).
    let queued_sql =
        format!("select cast(coalesce(sum(enqueued), 0) as bigint) from schedule_tick where schedule_id = {schedule}");
    let all_queued = {
        let db = db.clone();
        let due = enqueued as i64;
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(3600);
            while count(&db, &queued_sql).await < due && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tick_started.elapsed()
        })
    };

    let mut peak_rss = idle_rss;
    let mut last_report = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(3600);
    while received.count.load(Ordering::Relaxed) < o.n as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(rss("VmRSS:"));
        if last_report.elapsed() > Duration::from_secs(10) {
            let sent = received.count.load(Ordering::Relaxed);
            println!(
                "  {sent} sent after {:.0} s, rss {} MiB",
                tick_started.elapsed().as_secs_f64(),
                peak_rss / 1024
            );
            last_report = Instant::now();
        }
    }
    let all_sent = tick_started.elapsed();
    // Every subscription advanced and no job is left.
    let advanced_sql = "select count(*) from subscription where next_sequence_number = 2";
    while count(&db, advanced_sql).await < o.n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end_to_end = tick_started.elapsed();
    let events_expected = if o.callback_batch.is_some() {
        o.n as u64
    } else {
        0
    };
    while received.events.load(Ordering::Relaxed) < events_expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak_rss = peak_rss.max(rss("VmRSS:"));
    }
    let events_delivered = tick_started.elapsed();
    peak_rss = peak_rss.max(rss("VmHWM:"));
    let advanced = count(&db, advanced_sql).await;
    let jobs_left = count(&db, "select count(*) from job").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = received.count.load(Ordering::Relaxed);
    let duplicates = received.duplicates.load(Ordering::Relaxed);
    for process in &mut processes {
        let _ = process.kill();
        let _ = process.wait();
    }
    let shares: Vec<u64> = (0..workers.unwrap_or(1))
        .map(|k| received.per_process[k].load(Ordering::Relaxed))
        .collect();

    println!();
    println!("| figure | value |");
    println!("| --- | --- |");
    println!("| backend | {} |", o.backend);
    println!("| subscriptions due (N) | {} |", o.n);
    println!("| worker concurrency | {} |", o.concurrency);
    println!(
        "| sbm processes | {} |",
        match workers {
            None => "1 (sbm serve with its worker)".to_string(),
            Some(w) => format!("{w} (sbm worker)"),
        }
    );
    println!(
        "| subscribers' time zones | {} |",
        if o.zones == 0 {
            "none (the schedule's, UTC)".to_string()
        } else {
            format!("{} ({})", o.zones, BENCH_ZONES[..o.zones].join(", "))
        }
    );
    println!(
        "| enqueue the tick (its own transaction) | {:.2} s |",
        enqueue_time.as_secs_f64()
    );
    let all_queued = all_queued.await.expect("the queued-sends watch ends");
    println!(
        "| every send of the tick queued (parts of {}) | {:.2} s after the tick |",
        o.part_size,
        all_queued.as_secs_f64()
    );
    let first_outbound = received.arrivals.lock().unwrap().first;
    if let Some(first) = first_outbound {
        println!(
            "| first outbound accepted | {:.2} s after the tick |",
            (first - tick_started).as_secs_f64()
        );
    }
    println!(
        "| last outbound accepted | {:.1} s after the tick |",
        all_sent.as_secs_f64()
    );
    println!(
        "| every subscription advanced | {:.1} s after the tick |",
        end_to_end.as_secs_f64()
    );
    println!(
        "| sends per second, end to end | {:.0} |",
        o.n as f64 / end_to_end.as_secs_f64()
    );
    println!(
        "| sbm RSS idle / peak | {} MiB / {} MiB |",
        idle_rss / 1024,
        peak_rss / 1024
    );
    println!(
        "| outbounds received | {sent} (duplicates: {duplicates}, missing: {}) |",
        (o.n as u64).saturating_sub(sent - duplicates)
    );
    if workers.is_some() {
        let total = shares.iter().sum::<u64>().max(1) as f64;
        let parts: Vec<String> = shares
            .iter()
            .map(|s| format!("{s} ({:.1} %)", *s as f64 * 100.0 / total))
            .collect();
        println!("| outbounds per process | {} |", parts.join(", "));
    }
    let measured_rate = o.global_rate.map(|limit| {
        let arrivals = received.arrivals.lock().unwrap();
        report_rate(&arrivals, limit)
    });
    println!("| subscriptions advanced | {advanced} |");
    println!("| jobs left | {jobs_left} |");
    let mut events_exact = true;
    if let Some(batch) = o.callback_batch {
        let events = received.events.load(Ordering::Relaxed);
        let duplicate_events = received.duplicate_events.load(Ordering::Relaxed);
        let undelivered = count(
            &db,
            "select count(*) from delivery where state <> 'succeeded'",
        )
        .await;
        println!("| callback on send.*, events per POST | {batch} |");
        println!(
            "| last send.succeeded event received | {:.1} s after the tick |",
            events_delivered.as_secs_f64()
        );
        println!(
            "| events received | {events} (duplicates: {duplicate_events}, deliveries not succeeded: {undelivered}) |"
        );
        events_exact = events == o.n as u64 && duplicate_events == 0 && undelivered == 0;
    }
    if o.integration_group {
        let messages = count(&db, "select count(*) from integration_message").await;
        let distinct = count(
            &db,
            "select count(distinct event_id) from integration_message",
        )
        .await;
        println!(
            "| integration group on send.* | messages {messages}, of distinct events {distinct} |"
        );
        events_exact &= messages == o.n && distinct == o.n;
    }
    let exact =
        sent == o.n as u64 && duplicates == 0 && advanced == o.n && jobs_left == 0 && events_exact;
    println!(
        "\n{}",
        if exact {
            "OK: exactly N messages, each subscription advanced once"
        } else {
            "MISMATCH"
        }
    );

    db.close().await;
    if o.keep_db && o.backend != "sqlite" {
        println!("kept database sbm_bench_{}", std::process::id());
    } else if o.backend != "sqlite" {
        let mut admin = sqlx::PgConnection::connect(&o.postgres_admin)
            .await
            .unwrap();
        let name = format!("sbm_bench_{}", std::process::id());
        let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut admin)
            .await;
    }
    Run {
        processes: workers.unwrap_or(1),
        sends_per_second: o.n as f64 / end_to_end.as_secs_f64(),
        duplicates,
        shares,
        measured_rate,
        exact,
    }
}

/// Prints the rate the Message Sender saw against the limit: from one second after the first
/// outbound to the start of the last (partial) second, and the slowest and fastest 10 s of it;
/// returns the first.
fn report_rate(arrivals: &Arrivals, limit: f64) -> f64 {
    let full = arrivals.per_second.len().saturating_sub(1);
    let steady = arrivals.per_second.get(1..full).unwrap_or_default();
    let rate = steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64;
    let tens: Vec<f64> = steady
        .chunks_exact(10)
        .map(|c| c.iter().sum::<u64>() as f64 / 10.0)
        .collect();
    let span = match (arrivals.first, arrivals.last) {
        (Some(first), Some(last)) => (last - first).as_secs_f64(),
        _ => 0.0,
    };
    println!("| global rate limit | {limit} sends/s |");
    println!(
        "| measured over {} s (second 1 to {full} after the first outbound) | {rate:.1} sends/s ({:+.2} %) |",
        steady.len(),
        (rate / limit - 1.0) * 100.0
    );
    if let (Some(min), Some(max)) = (
        tens.iter().copied().reduce(f64::min),
        tens.iter().copied().reduce(f64::max),
    ) {
        println!(
            "| slowest / fastest 10 s | {min:.1} / {max:.1} sends/s ({:+.2} % / {:+.2} %) |",
            (min / limit - 1.0) * 100.0,
            (max / limit - 1.0) * 100.0
        );
    }
    println!("| first to last outbound | {span:.1} s |");
    rate
}
