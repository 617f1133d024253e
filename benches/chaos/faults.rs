//! Database connection faults, and the probe that watches the API answer through them.
//!
//! PostgreSQL: every few hundred milliseconds, `pg_terminate_backend` on every connection sbm
//! holds (they are told apart by `application_name`). SQLite: a write lock (`BEGIN
//! IMMEDIATE`) held from this process for longer than sbm's busy timeout, again and again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::Connection;

/// The `application_name` sbm's PostgreSQL connections carry in a run.
pub const APPLICATION_NAME: &str = "sbm-chaos";

/// sbm's SQLite busy timeout (src/store/dialect.rs); a lock is held longer than this.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct FaultFigures {
    pub terminated_backends: u64,
    pub lock_holds: u64,
}

/// Runs faults until `stop`; returns what was done.
pub async fn run(database_url: String, postgres: bool, stop: Arc<AtomicBool>) -> FaultFigures {
    let mut figures = FaultFigures::default();
    if postgres {
        let mut conn = sqlx::PgConnection::connect(&database_url).await.unwrap();
        let database = url::Url::parse(&database_url).unwrap().path()[1..].to_string();
        while !stop.load(Ordering::Relaxed) {
            let killed: i64 = sqlx::query_scalar(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = $1 and application_name = $2) as t",
            )
            .bind(&database)
            .bind(APPLICATION_NAME)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            figures.terminated_backends += killed as u64;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&database_url)
            .await
            .unwrap();
        while !stop.load(Ordering::Relaxed) {
            sqlx::query("begin immediate")
                .execute(&mut conn)
                .await
                .unwrap();
            figures.lock_holds += 1;
            tokio::time::sleep(SQLITE_BUSY_TIMEOUT + Duration::from_secs(2)).await;
            sqlx::query("commit").execute(&mut conn).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    figures
}

/// What the API answered while it was probed, by outcome.
#[derive(Default)]
pub struct Probe {
    pub outcomes: Mutex<BTreeMap<String, u64>>,
}

impl Probe {
    fn note(&self, outcome: String) {
        *self.outcomes.lock().unwrap().entry(outcome).or_default() += 1;
    }

    /// Answers the probe must never see: a 5xx other than 503, a 503 without Retry-After, a
    /// request that did not get an answer in time.
    pub fn bad(&self) -> u64 {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                k.starts_with("5") && k.as_str() != "503 with Retry-After"
                    || k.as_str() == "no answer"
            })
            .map(|(_, v)| v)
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.outcomes.lock().unwrap().values().sum()
    }
}

/// Reads and writes through the API until `stop`: a list of subscriptions and the creation of
/// a schedule that is never due.
pub async fn probe(api: String, token: String, probe: Arc<Probe>, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let auth = format!("Token {token}");
    let never_due =
        serde_json::json!({"minute": "0", "hour": "0", "day_of_month": "30", "month_of_year": "2"});
    let mut write = false;
    while !stop.load(Ordering::Relaxed) {
        let request = if write {
            client
                .post(format!("{api}/api/v1/schedule/"))
                .json(&never_due)
        } else {
            client.get(format!("{api}/api/v1/subscriptions/?limit=1"))
        };
        write = !write;
        let outcome = match request.header("Authorization", &auth).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                if status == 503 && response.headers().contains_key("retry-after") {
                    "503 with Retry-After".to_string()
                } else if status < 300 {
                    "2xx".to_string()
                } else {
                    status.to_string()
                }
            }
            Err(err) if err.is_timeout() => "no answer".to_string(),
            Err(_) => "connection error".to_string(),
        };
        probe.note(outcome);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
