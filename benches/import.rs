//! The import benchmark: `sbm import django` of N subscriptions with 10 message sets × 2
//! languages × 100 messages, from a PostgreSQL source made from the 0.13.1 fixture
//! (tests/fixtures/django) into a fresh sbm database.
//!
//! Reports the import's wall time, rows per second, the peak RSS of this process (the importer
//! runs in it) and the verification result; then runs a delta with nothing changed.
//!
//!     cargo bench --bench import -- --n 1000000 [--backend postgres|sqlite]

use std::time::{Duration, Instant};

use sbm::importer::{self, Options};
use sbm::store::{Db, PoolSettings};
use sqlx::{Connection, PgConnection};

const FIXTURE: &str = include_str!("../tests/fixtures/django/sbm-0.13.1.sql");

const SEED: &str = "
insert into auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
  values (1, '!', true, 'hub', '', '', 'hub@example.org', true, true, now());
insert into authtoken_token (key, created, user_id) values (md5('token'), now(), 1);
insert into contentstore_schedule (id, minute, hour, day_of_week, day_of_month, month_of_year)
  select g, '0', '8', '1,4', '*', '*' from generate_series(1, 10) g;
insert into contentstore_messageset (id, short_name, label, notes, channel, next_set_id, default_schedule_id, content_type, created_at, updated_at)
  select g, 'set' || g, 'Set ' || g, null, null, case when g < 10 then g + 1 end, g, 'text', now(), now()
  from generate_series(1, 10) g;
insert into contentstore_message (id, sequence_number, lang, text_content, created_at, updated_at, binary_content_id, messageset_id, metadata)
  select row_number() over (), seq, lang, 'Message ' || seq || ' of set ' || s, now(), now(), null, s, '{}'
  from generate_series(1, 10) s, generate_series(1, 100) seq, unnest(array['eng_ZA', 'zul_ZA']) lang;
";

fn subscriptions_sql(n: i64) -> String {
    format!(
        "insert into subscriptions_subscription (id, identity, version, next_sequence_number, lang, active, completed, schedule_id, process_status, metadata, created_at, updated_at, created_by_id, updated_by_id, messageset_id, initial_sequence_number)
         select md5('s' || g)::uuid, md5('i' || g)::uuid::text, 1, g % 100 + 1,
                case when g % 2 = 0 then 'eng_ZA' else 'zul_ZA' end, true, false, g % 10 + 1, 0,
                jsonb_build_object('scheduler_schedule_id', md5('x' || g)::uuid::text),
                now() - interval '1 day', now(), 1, 1, g % 10 + 1, 1
         from generate_series(1, {n}) g"
    )
}

fn arg(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

async fn fresh_postgres(admin_url: &str, name: &str) -> String {
    let mut admin = PgConnection::connect(admin_url).await.expect("postgres");
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(name);
    url.to_string()
}

async fn drop_postgres(admin_url: &str, name: &str) {
    if let Ok(mut admin) = PgConnection::connect(admin_url).await {
        let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut admin)
            .await;
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn build_source(url: &str, n: i64) -> Duration {
    let started = Instant::now();
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(FIXTURE).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(SEED).execute(&mut conn).await.unwrap();
    sqlx::raw_sql(&subscriptions_sql(n))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql("analyze").execute(&mut conn).await.unwrap();
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let n: i64 = arg("--n")
        .map(|v| v.replace('_', "").parse().expect("--n takes a number"))
        .unwrap_or(100_000);
    let backend = arg("--backend").unwrap_or_else(|| "postgres".into());
    let admin = std::env::var("SBM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let source_url = fresh_postgres(&admin, "sbm_bench_import_source").await;
    let built = build_source(&source_url, n).await;
    eprintln!(
        "source: {n} subscriptions, 10 sets x 2 languages x 100 messages, built in {built:.1?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let target_url = match backend.as_str() {
        "sqlite" => format!("sqlite://{}", dir.path().join("sbm.db").display()),
        _ => fresh_postgres(&admin, "sbm_bench_import_target").await,
    };
    let pool = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
    };
    let db = Db::connect(&target_url, &pool).await.unwrap();
    db.migrate().await.unwrap();
    let options = Options {
        from: source_url.clone(),
        media_root: None,
        target_media_root: dir.path().join("media"),
        dry_run: false,
        strict: false,
        emit_events: None,
        quiet: false,
    };

    let started = Instant::now();
    let report = importer::run(&db, &options).await.expect("import");
    let took = started.elapsed();
    let subs = report.get("subscriptions_subscription").unwrap();
    println!(
        "import {backend}: {} subscriptions written in {:.1} s ({:.0} subscriptions/s), verified: {}, peak RSS {:.0} MiB",
        subs.written(),
        took.as_secs_f64(),
        subs.written() as f64 / took.as_secs_f64(),
        report.verified(),
        peak_rss_mib()
    );
    let started = Instant::now();
    let delta = importer::run(&db, &options).await.expect("delta");
    let subs = delta.get("subscriptions_subscription").unwrap();
    println!(
        "delta with nothing changed: {} unchanged, {} written, in {:.1} s, verified: {}",
        subs.unchanged,
        subs.written(),
        started.elapsed().as_secs_f64(),
        delta.verified()
    );
    db.close().await;
    drop_postgres(&admin, "sbm_bench_import_source").await;
    if backend != "sqlite" {
        drop_postgres(&admin, "sbm_bench_import_target").await;
    }
}
