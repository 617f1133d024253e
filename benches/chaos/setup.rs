//! A run's database and content: a fresh database, a never-due schedule with three message sets,
//! N subscriptions seeded in one statement, an admin token, a WebSub callback on `send.*` and a
//! push integration group on `send.*`, the last two set up through the API.

use std::time::{Duration, Instant};

use sbm::model::content::{MessageFields, MessageSetFields, ScheduleFields};
use sbm::store::Db;
use sqlx::Connection;

pub const GROUP: &str = "chaos";

pub async fn create_database(backend: &str, admin_url: &str, dir: &std::path::Path) -> String {
    if backend == "sqlite" {
        return format!("sqlite://{}/chaos.db", dir.display());
    }
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("PostgreSQL reachable");
    let name = database_name();
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&name);
    url.to_string()
}

pub fn database_name() -> String {
    format!("sbm_chaos_{}", std::process::id())
}

pub async fn drop_database(admin_url: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
        let name = database_name();
        let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut admin)
            .await;
    }
}

/// A schedule that is never due (30 February), so no worker's own scheduler ever fires it: the
/// run's one tick is the one it fires itself, however often workers restart.
pub async fn seed_content(db: &Db) -> (i64, Vec<i64>) {
    let effects = sbm::effects::Effects {
        jobs: sbm::jobs::JobSettings::from(&sbm::config::WorkerConfig::default()),
        scheduler_mode: false,
        go_metrics: false,
        public_origin: "http://127.0.0.1:8000".into(),
        next_due: sbm::scheduling::local::next_due,
    };
    let never = ScheduleFields {
        minute: "0".into(),
        hour: "0".into(),
        day_of_month: "30".into(),
        month_of_year: "2".into(),
        ..Default::default()
    };
    let mut tx = db.begin().await.unwrap();
    let schedule = sbm::content::create_schedule(&mut tx, &effects, &never)
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
                let fields = MessageFields {
                    message_set_id: set.id,
                    sequence_number: n,
                    lang: lang.into(),
                    text_content: Some(format!("{name} {lang} message {n}")),
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

/// N subscriptions at sequence number 1 in one statement.
pub async fn seed_subscriptions(db: &Db, schedule: i64, sets: &[i64], n: i64) {
    let now = sbm::store::now();
    match db {
        Db::Postgres(pool) => {
            sqlx::query(
                "insert into subscription (id, identity, version, message_set_id, next_sequence_number, \
                 initial_sequence_number, lang, active, completed, schedule_id, process_status, metadata, created_at, updated_at) \
                 select gen_random_uuid(), gen_random_uuid(), 1, ($3::bigint[])[1 + i % 3], 1, 1, \
                 case when i % 2 = 0 then 'eng_ZA' else 'zul_ZA' end, true, false, $2, 0, '{}'::jsonb, $4, $4 \
                 from generate_series(1, $1) as i",
            )
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
            sqlx::query(
                "with recursive seq(i) as (select 1 union all select i + 1 from seq where i < $1) \
                 insert into subscription (id, identity, version, message_set_id, next_sequence_number, \
                 initial_sequence_number, lang, active, completed, schedule_id, process_status, metadata, created_at, updated_at) \
                 select randomblob(16), randomblob(16), 1, case i % 3 when 0 then $3 when 1 then $4 else $5 end, 1, 1, \
                 case when i % 2 = 0 then 'eng_ZA' else 'zul_ZA' end, 1, 0, $2, 0, '{}', $6, $6 from seq",
            )
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

/// An admin token, issued with `sbm token create` as an operator would.
pub fn admin_token(database_url: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sbm"))
        .args(["token", "create", "--email", "chaos@example.org", "--admin"])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .output()
        .expect("sbm token create runs");
    assert!(output.status.success(), "sbm token create failed");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout.lines().last().unwrap().trim().to_string()
}

/// Waits for the API to answer.
pub async fn wait_for_api(client: &reqwest::Client, api: &str) {
    let started = Instant::now();
    while client
        .get(format!("{api}/healthz"))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sbm serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// WebSub subscription of the fake receiver to `send.*` through the hub, and the integration
/// group that pushes `send.*` events to the fake push target.
pub async fn subscribe(client: &reqwest::Client, api: &str, token: &str, fakes: &str) {
    let auth = format!("Token {token}");
    let hub = client
        .post(format!("{api}/api/v1/hub"))
        .header("Authorization", &auth)
        .form(&[
            ("hub.mode", "subscribe"),
            ("hub.topic", "send.*"),
            ("hub.callback", &format!("{fakes}/events")),
            ("hub.secret", "chaos-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(hub.status().as_u16(), 202, "{}", hub.text().await.unwrap());
    let group = serde_json::json!({
        "name": GROUP, "method": "send", "title": "Chaos", "event_types": ["send.*"],
        "target_url": format!("{fakes}/push"), "format": "json", "max_batch_size": 50,
        "minute": "*", "hour": "*", "instance": "chaos",
    });
    let created = client
        .post(format!("{api}/api/v1/integration-groups/"))
        .header("Authorization", &auth)
        .json(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status().as_u16(),
        201,
        "{}",
        created.text().await.unwrap()
    );
}

/// Asks for a push now (the workers' own cron enqueues one each minute too).
pub async fn push_now(client: &reqwest::Client, api: &str, token: &str) {
    let _ = client
        .post(format!("{api}/api/v1/integration-groups/{GROUP}/send/"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await;
}

pub async fn count(db: &Db, sql: &str) -> i64 {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}
