//! The crash campaign: one tick of N subscriptions with a `send.*` callback and a push
//! integration group, while `sbm worker` processes are killed with SIGKILL at seeded random
//! moments and restarted, and the fake peers answer with a seeded mix of 2xx, 500, 429 +
//! Retry-After, late answers (timeouts) and dropped connections. At the end the run is judged
//! by identity (see check.rs) and fails unless the end state is exact. docs/reliability.md has
//! the figures.
//!
//!     cargo bench --bench chaos -- --backend postgres --n 2000 --kills 10
//!     cargo bench --bench chaos -- --backend sqlite --n 2000 --kills 10 --db-faults --lease-edge
//!     cargo bench --bench chaos -- --backend postgres --n 20000 --kills 100 --db-faults --lease-edge
//!
//! The tick is written in parts of N/8 (`--part-size`), four chains of two parts each, so the
//! kills and faults also land on the jobs that write the sends.
//!
//! `--db-faults`: the database goes away during the kills (PostgreSQL: `pg_terminate_backend`
//! on sbm's connections in a loop; SQLite: a write lock held past the busy timeout), while a
//! probe reads and writes through the API and must only see 2xx or 503 with Retry-After.
//! `--lease-edge`: twice during the run a worker is paused with SIGSTOP past its job lease, so
//! that another takes its jobs over, then resumed; its late outcome must be discarded (counted
//! by its log line).

mod check;
mod faults;
mod peers;
mod procs;
mod setup;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sbm::store::{Db, PoolSettings};

use crate::setup::count;

/// The log line of a worker whose outcome was discarded because it had lost the job's lease.
pub const DISCARDED: &str = "lost its lease";

struct Options {
    backend: String,
    n: i64,
    kills: u32,
    seed: u64,
    workers: usize,
    fault_rate: f64,
    db_faults: bool,
    lease_edge: bool,
    lease_secs: u64,
    /// The tick is written in parts of this many (`--part-size`, default N/8), so that the
    /// kills also land on the `EnqueueSendPart` jobs.
    part_size: u64,
    postgres_admin: String,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.replace('_', ""))
    };
    let number = |flag: &str, default: u64| {
        value(flag).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} takes a number"))
        })
    };
    Options {
        backend: value("--backend").unwrap_or_else(|| "postgres".into()),
        n: number("--n", 2000) as i64,
        kills: number("--kills", 10) as u32,
        seed: number("--seed", 1),
        workers: number("--workers", 2) as usize,
        fault_rate: value("--fault-rate").map_or(0.3, |v| v.parse().expect("--fault-rate")),
        db_faults: args.iter().any(|a| a == "--db-faults"),
        lease_edge: args.iter().any(|a| a == "--lease-edge"),
        lease_secs: number("--lease-secs", 3),
        part_size: number("--part-size", (number("--n", 2000) / 8).max(1)),
        postgres_admin: std::env::var("SBM_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    }
}

#[derive(Default)]
struct DriverFigures {
    kills: u32,
    restarts: u32,
    pauses: u32,
}

/// Kills workers at seeded random moments (mean one a second) and restarts them; with
/// `lease_edge`, pauses one past its lease at a third and at two thirds of the kills.
async fn drive(
    o: &Options,
    settings: &procs::Settings,
    workers: &mut [std::process::Child],
    poke: impl Fn() -> tokio::task::JoinHandle<()>,
) -> DriverFigures {
    let mut rng = StdRng::seed_from_u64(o.seed ^ 0x6b696c6c);
    let mut figures = DriverFigures::default();
    let pause_at = [o.kills / 3, 2 * o.kills / 3];
    while figures.kills < o.kills {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1700))).await;
        poke();
        let slot = rng.gen_range(0..workers.len());
        procs::kill(&mut workers[slot]);
        figures.kills += 1;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..500))).await;
        workers[slot] = procs::start_worker(settings, slot);
        figures.restarts += 1;
        if o.lease_edge && pause_at.contains(&figures.kills) && workers.len() > 1 {
            let paused = (slot + 1) % workers.len();
            procs::signal(&workers[paused], "STOP");
            tokio::time::sleep(Duration::from_secs(o.lease_secs + 3)).await;
            procs::signal(&workers[paused], "CONT");
            figures.pauses += 1;
        }
    }
    figures
}

/// Waits until nothing is left to do, poking pushes along; false at the deadline.
async fn settle(
    db: &Db,
    n: i64,
    deadline: Instant,
    poke: impl Fn() -> tokio::task::JoinHandle<()>,
) -> bool {
    const LEFT: &str = "select (select count(*) from job where state in ('pending', 'running')) \
        + (select count(*) from delivery where state in ('pending', 'running')) \
        + (select count(*) from event where spread_at is null) \
        + (select count(*) from integration_message where sent_at is null)";
    while Instant::now() < deadline {
        let advanced = count(
            db,
            "select count(*) from subscription where next_sequence_number = 2",
        )
        .await;
        if advanced >= n && count(db, LEFT).await == 0 {
            return true;
        }
        poke();
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    false
}

#[tokio::main]
async fn main() {
    peers::quiet_drop_panics();
    let o = options();
    let rate =
        ((o.n as f64 / (o.kills.max(1) as f64 * 0.9) / o.workers as f64).ceil() as u32).max(10);
    println!(
        "sbm crash campaign: backend={} n={} kills={} seed={} workers={} fault rate={} db faults={} lease edge={} ({} sends/s per worker)",
        o.backend, o.n, o.kills, o.seed, o.workers, o.fault_rate, o.db_faults, o.lease_edge, rate
    );
    let dir = std::env::temp_dir().join(format!("sbm-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = setup::create_database(&o.backend, &o.postgres_admin, &dir).await;
    let pool = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(60),
    };
    let db = Db::connect(&url, &pool).await.unwrap();
    db.migrate().await.unwrap();
    let (schedule, sets) = setup::seed_content(&db).await;
    setup::seed_subscriptions(&db, schedule, &sets, o.n).await;

    let (fakes, fake_state) = peers::start(peers::Fakes {
        seen: Default::default(),
        mix: Arc::new(peers::Mix::new(o.seed, o.fault_rate)),
        late: Duration::from_millis(1500),
    })
    .await;
    let sbm_url = if o.backend == "sqlite" {
        url.clone()
    } else {
        format!("{url}?application_name={}", faults::APPLICATION_NAME)
    };
    let settings = procs::Settings {
        database_url: sbm_url,
        fakes: fakes.clone(),
        logs: dir.clone(),
        lease_secs: o.lease_secs,
        rate_per_worker: rate,
    };
    let token = setup::admin_token(&url);
    let port = procs::free_port();
    let api = format!("http://127.0.0.1:{port}");
    let mut api_process = procs::start_api(&settings, port);
    let mut workers: Vec<_> = (0..o.workers)
        .map(|slot| procs::start_worker(&settings, slot))
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    setup::wait_for_api(&client, &api).await;
    setup::subscribe(&client, &api, &token, &fakes).await;
    let started = Instant::now();
    while count(&db, "select count(*) from callback where state = 'active'").await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the callback was not verified"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let minute = sbm::scheduling::minute_of(chrono::Utc::now());
    let tick_settings = sbm::scheduling::ticker::TickSettings {
        max_attempts: 60,
        part_size: o.part_size,
    };
    let enqueued = sbm::scheduling::ticker::fire(&db, tick_settings, schedule, minute)
        .await
        .unwrap()
        .unwrap_or(0);
    println!("tick enqueued {enqueued} sends");
    let tick_started = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let probe = Arc::new(faults::Probe::default());
    let fault_task = o.db_faults.then(|| {
        tokio::spawn(faults::run(
            url.clone(),
            o.backend != "sqlite",
            stop.clone(),
        ))
    });
    let probe_task = tokio::spawn(faults::probe(
        api.clone(),
        token.clone(),
        probe.clone(),
        stop.clone(),
    ));
    let poke = || {
        let (client, api, token) = (client.clone(), api.clone(), token.clone());
        tokio::spawn(async move { setup::push_now(&client, &api, &token).await })
    };
    let driven = drive(&o, &settings, &mut workers, poke).await;
    stop.store(true, Ordering::Relaxed);
    let fault_figures = match fault_task {
        Some(task) => task.await.unwrap(),
        None => faults::FaultFigures::default(),
    };
    probe_task.await.unwrap();
    println!(
        "faults over after {:.1} s; waiting for the work to settle",
        tick_started.elapsed().as_secs_f64()
    );
    let settled = settle(&db, o.n, Instant::now() + Duration::from_secs(600), poke).await;
    let elapsed = tick_started.elapsed();
    // Let late answers and the last acknowledgements land before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut verdict = check::Verdict {
        rows: Vec::new(),
        failures: Vec::new(),
    };
    if !settled {
        verdict
            .failures
            .push("the work did not settle within 600 s".into());
    }
    check::judge(&db, &fake_state.seen, o.n, &mut verdict).await;
    let discarded = procs::count_log_lines(&dir, DISCARDED);
    let panics = procs::count_log_lines(&dir, "panicked");
    if o.lease_edge && discarded == 0 {
        verdict
            .failures
            .push("no late outcome was discarded after a pause past the lease".into());
    }
    if panics > 0 {
        verdict
            .failures
            .push(format!("{panics} panics in sbm's logs"));
    }
    let bad_answers = probe.bad();
    if bad_answers > 0 {
        verdict.failures.push(format!(
            "{bad_answers} API answers other than 2xx or 503 with Retry-After"
        ));
    }

    for worker in &mut workers {
        procs::kill(worker);
    }
    procs::kill(&mut api_process);
    db.close().await;

    println!("\n| figure | value |\n| --- | --- |");
    println!("| backend, N, seed | {}, {}, {} |", o.backend, o.n, o.seed);
    println!(
        "| kills (SIGKILL) / restarts / pauses past the lease (SIGSTOP) | {} / {} / {} |",
        driven.kills, driven.restarts, driven.pauses
    );
    println!("| tick to settled | {:.1} s |", elapsed.as_secs_f64());
    println!(
        "| peer answers | {:?} |",
        fake_state.seen.answers.lock().unwrap()
    );
    for (name, value) in &verdict.rows {
        println!("| {name} | {value} |");
    }
    if o.db_faults {
        println!("| database faults | {} backends terminated, {} write locks held past the busy timeout |", fault_figures.terminated_backends, fault_figures.lock_holds);
    }
    println!(
        "| API probe answers ({}) | {:?} |",
        probe.total(),
        probe.outcomes.lock().unwrap()
    );
    println!("| late outcomes discarded (log lines) | {discarded} |");
    println!("| panics in sbm's logs | {panics} |");

    // A failed run keeps its PostgreSQL database beside its logs, to be looked into.
    if verdict.failures.is_empty() {
        if o.backend != "sqlite" {
            setup::drop_database(&o.postgres_admin).await;
        }
        println!("\nOK: exact end state");
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("\nFAILED (logs kept in {}):", dir.display());
        if o.backend != "sqlite" {
            println!("  (database kept: {url}; drop it when done)");
        }
        for failure in &verdict.failures {
            println!("  - {failure}");
        }
        std::process::exit(1);
    }
}
