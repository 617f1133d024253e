//! Local time: schedules and subscribers in time zones, each zone's tick at its own local due
//! minute, quiet hours deferring a send, the forecast, and compatible mode refusing zones.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::helpers::{serve_config, spawn_app_with, use_peers, Backend, TestApp};
use crate::on_both_backends;
use crate::peers::FakePeers;

on_both_backends!(
    subscribers_in_three_zones_are_each_sent_once_at_their_own_local_eight_oclock,
    a_retry_outside_the_send_window_waits_past_midnight_for_it_to_open,
    compatible_mode_refuses_zones_other_than_utc,
    zone_names_and_send_windows_are_validated,
);

pub struct World {
    pub app: TestApp,
    pub peers: FakePeers,
}

/// Built-in mode (no Seed Scheduler), no embedded worker: the tests run ticks and workers.
pub async fn world(backend: Backend) -> Option<World> {
    let peers = FakePeers::start().await;
    let app = spawn_app_with(backend, |c| {
        use_peers(c, &peers);
        c.peers.scheduler_url = None;
        c.no_worker = true;
    })
    .await?;
    Some(World { app, peers })
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn identity(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

impl World {
    pub async fn schedule(&self, body: Value) -> i64 {
        self.app
            .post("/api/v1/schedule/", body)
            .await
            .expect(201)
            .json()["id"]
            .as_i64()
            .unwrap()
    }

    /// A text set on `schedule` with `count` messages in eng_ZA ("<name> 1", ...).
    pub async fn set(&self, name: &str, schedule: i64, count: i64, extra: Value) -> i64 {
        let mut body = json!({"short_name": name, "default_schedule": schedule});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let set = self
            .app
            .post("/api/v1/messageset/", body)
            .await
            .expect(201)
            .json()["id"]
            .as_i64()
            .unwrap();
        for n in 1..=count {
            self.app
                .create_message(set, n, "eng_ZA", &format!("{name} {n}"))
                .await;
        }
        set
    }

    pub async fn subscribe(&self, n: usize, set: i64, timezone: Option<&str>) -> String {
        self.peers
            .add_address(&identity(n), &format!("+2782{n:07}"));
        let body = json!({"identity": identity(n), "messageset": set, "lang": "eng_ZA",
            "timezone": timezone});
        self.app
            .post("/api/v1/subscriptions/", body)
            .await
            .expect(201)
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A worker of the test's own; `retry_base_ms` sets how long a failed send waits.
    pub fn worker(&self, retry_base_ms: u64) -> sbm::runtime::Worker {
        let mut config = serve_config(std::env::temp_dir());
        use_peers(&mut config, &self.peers);
        config.peers.scheduler_url = None;
        config.worker.retry_base_ms = retry_base_ms;
        config.worker.retry_max_ms = retry_base_ms;
        let ctx = sbm::app::job_context(
            self.app.db.clone(),
            &config.peers,
            &config.worker,
            &config.metrics,
            &config.events,
            self.app.address.clone(),
            std::sync::Arc::new(tokio::sync::Notify::new()),
        )
        .expect("worker context");
        sbm::runtime::Worker::new(std::sync::Arc::new(ctx))
    }

    pub async fn execute(&self, sql: &str) {
        match &self.app.db {
            sbm::store::Db::Postgres(pool) => drop(sqlx::query(sql).execute(pool).await.unwrap()),
            sbm::store::Db::Sqlite(pool) => drop(sqlx::query(sql).execute(pool).await.unwrap()),
        }
    }

    /// The subscription's send job: (attempts, run_at, deferred_reason).
    pub async fn send_job(
        &self,
        subscription: &str,
    ) -> Option<(i32, DateTime<Utc>, Option<String>)> {
        let id = uuid::Uuid::parse_str(subscription).unwrap();
        const SQL: &str = "select attempts, run_at, deferred_reason from job \
            where kind = 'send_message' and subscription_id = $1";
        match &self.app.db {
            sbm::store::Db::Postgres(pool) => sqlx::query_as(SQL)
                .bind(id)
                .fetch_optional(pool)
                .await
                .unwrap(),
            sbm::store::Db::Sqlite(pool) => sqlx::query_as(SQL)
                .bind(id)
                .fetch_optional(pool)
                .await
                .unwrap(),
        }
    }

    pub fn recipients(&self) -> Vec<String> {
        let mut to: Vec<String> = self
            .peers
            .outbounds()
            .iter()
            .map(|o| o["to_identity"].as_str().unwrap().to_string())
            .collect();
        to.sort();
        to
    }
}

const CATCH_UP: Duration = Duration::from_secs(15 * 60);

async fn subscribers_in_three_zones_are_each_sent_once_at_their_own_local_eight_oclock(
    backend: Backend,
) {
    let Some(w) = world(backend).await else {
        return;
    };
    let body = json!({"minute": "0", "hour": "8", "timezone": "Africa/Johannesburg"});
    let schedule = w.schedule(body).await;
    let set = w.set("daily", schedule, 3, json!({})).await;
    // In the schedule's zone: no zone of its own, or the schedule's named.
    w.subscribe(0, set, None).await;
    w.subscribe(1, set, Some("Africa/Johannesburg")).await;
    w.subscribe(2, set, Some("Europe/London")).await;
    w.subscribe(3, set, Some("America/Sao_Paulo")).await;
    w.execute("update schedule set created_at = '2027-01-01T00:00:00Z'")
        .await;

    // A controllable clock: every minute of 12 January 2027 from 05:50 to 11:10 UTC.
    let mut fired = Vec::new();
    let mut minute = at("2027-01-12T05:50:00Z");
    while minute <= at("2027-01-12T11:10:00Z") {
        let now = minute + chrono::Duration::seconds(20);
        for f in sbm::scheduling::ticker::tick(&w.app.db, 3, now, CATCH_UP)
            .await
            .unwrap()
        {
            w.worker(10).drain().await.unwrap();
            fired.push((f.timezone.clone(), f.minute, f.enqueued, w.recipients()));
        }
        minute += chrono::Duration::minutes(1);
    }
    let expected = vec![
        // 08:00 SAST (+02:00), both Johannesburg subscribers in one statement.
        (
            "Africa/Johannesburg".to_string(),
            at("2027-01-12T06:00:00Z"),
            2,
            vec![identity(0), identity(1)],
        ),
        // 08:00 GMT.
        (
            "Europe/London".to_string(),
            at("2027-01-12T08:00:00Z"),
            1,
            vec![identity(0), identity(1), identity(2)],
        ),
        // 08:00 BRT (-03:00).
        (
            "America/Sao_Paulo".to_string(),
            at("2027-01-12T11:00:00Z"),
            1,
            vec![identity(0), identity(1), identity(2), identity(3)],
        ),
    ];
    assert_eq!(fired, expected);
    // Ticking the same minutes again (another worker, a restart) fires nothing.
    for time in [
        "2027-01-12T06:00:30Z",
        "2027-01-12T08:00:30Z",
        "2027-01-12T11:00:30Z",
    ] {
        assert!(
            sbm::scheduling::ticker::tick(&w.app.db, 3, at(time), CATCH_UP)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(w.peers.outbounds().len(), 4, "one message each");
}

/// A fixed-offset zone in which it is now 22:xx, whatever the time of day the test runs.
fn zone_at_ten_in_the_evening(now: DateTime<Utc>) -> Tz {
    let mut offset = 22 - now.hour() as i32;
    if offset > 14 {
        offset -= 24;
    }
    // IANA's Etc zones count the other way: Etc/GMT-3 is UTC+03:00.
    let name = match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    name.parse().unwrap()
}

async fn a_retry_outside_the_send_window_waits_past_midnight_for_it_to_open(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let zone = zone_at_ten_in_the_evening(Utc::now());
    let schedule = w.schedule(json!({})).await;
    let set = w.set("nightly", schedule, 2, json!({})).await;
    let subscription = w.subscribe(0, set, Some(zone.name())).await;

    // The first attempt fails (Message Sender outage); its retry is an hour away.
    w.peers.fail_sends(&[500]);
    sbm::scheduling::ticker::fire(&w.app.db, 3, schedule, Utc::now())
        .await
        .unwrap();
    w.worker(3_600_000).drain().await.unwrap();
    let (attempts, _, deferred) = w.send_job(&subscription).await.expect("a retry waits");
    assert_eq!((attempts, deferred), (1, None));

    // Meanwhile the set gets quiet hours; at 22:xx local the retry comes due.
    let window = json!({"send_window_start": "07:00", "send_window_end": "20:00"});
    w.app
        .patch(&format!("/api/v1/messageset/{set}/"), window)
        .await
        .expect(200);
    w.execute("update job set run_at = '2000-01-01T00:00:00Z'")
        .await;
    w.worker(3_600_000).drain().await.unwrap();

    // It waits for 07:00 the next local day, without counting an attempt, and says why.
    let tomorrow = Utc::now()
        .with_timezone(&zone)
        .date_naive()
        .succ_opt()
        .unwrap();
    let opening = zone
        .from_local_datetime(&tomorrow.and_time(NaiveTime::from_hms_opt(7, 0, 0).unwrap()))
        .unwrap()
        .with_timezone(&Utc);
    let (attempts, run_at, deferred) = w.send_job(&subscription).await.expect("still waiting");
    assert_eq!((attempts, run_at), (1, opening));
    let deferred = deferred.expect("a reason");
    assert!(
        deferred.contains("outside the send window 07:00-20:00") && deferred.contains(zone.name()),
        "{deferred}"
    );
    assert!(w.peers.outbounds().is_empty(), "nothing went out at night");

    // The subscription's history says so: one `send.deferred`, with the run time and reason.
    let history = w
        .app
        .get(&format!(
            "/api/v1/events/?object_type=subscription&object_id={subscription}&type=send.deferred"
        ))
        .await
        .expect(200)
        .json();
    let deferrals = history["results"].as_array().expect("a page of events");
    assert_eq!(deferrals.len(), 1, "{history}");
    let data = &deferrals[0]["data"];
    assert_eq!(data["reason"], json!(deferred));
    assert_eq!(
        data["run_at"],
        json!(sbm::wire::format_time(&opening)),
        "{data}"
    );
    assert_eq!(data["subscription"]["id"], json!(subscription));

    // The forecast shows the waiting send, leaving at the opening.
    let forecast = w
        .app
        .get(&format!(
            "/api/v1/subscriptions/{subscription}/forecast/?n=1"
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(forecast["pending_send"]["deferred_reason"], json!(deferred));
    assert_eq!(
        forecast["sends"][0]["sends_at"]["utc"],
        json!(crate::forecast::format_utc(opening))
    );
    assert_eq!(forecast["sends"][0]["sequence_number"], 1);

    // When the window opens (here: the window is lifted) it goes out once, as the first message.
    let no_window = json!({"send_window_start": null, "send_window_end": null});
    w.app
        .patch(&format!("/api/v1/messageset/{set}/"), no_window)
        .await
        .expect(200);
    w.execute("update job set run_at = '2000-01-01T00:00:00Z'")
        .await;
    w.worker(3_600_000).drain().await.unwrap();
    assert_eq!(w.recipients(), vec![identity(0)]);
    assert!(w.send_job(&subscription).await.is_none());
    let s = w
        .app
        .get(&format!("/api/v1/subscriptions/{subscription}/"))
        .await
        .json();
    assert_eq!(s["next_sequence_number"], 2);
}

async fn compatible_mode_refuses_zones_other_than_utc(backend: Backend) {
    let peers = FakePeers::start().await;
    let Some(app) = spawn_app_with(backend, |c| use_peers(c, &peers)).await else {
        return;
    };
    let reply = app
        .post(
            "/api/v1/schedule/",
            json!({"hour": "8", "timezone": "Africa/Johannesburg"}),
        )
        .await
        .expect(400);
    let message = reply.json()["timezone"][0].as_str().unwrap().to_string();
    assert!(
        message.contains("Seed Scheduler") && message.contains("UTC"),
        "{message}"
    );
    let schedule = app
        .post("/api/v1/schedule/", json!({"hour": "8", "timezone": "UTC"}))
        .await
        .expect(201)
        .json();
    let id = schedule["id"].as_i64().unwrap();
    app.patch(
        &format!("/api/v1/schedule/{id}/"),
        json!({"timezone": "Europe/London"}),
    )
    .await
    .expect(400);
    let set = app
        .post(
            "/api/v1/messageset/",
            json!({"short_name": "s", "default_schedule": id}),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    let body = json!({"identity": identity(1), "messageset": set, "lang": "eng_ZA",
        "timezone": "America/Sao_Paulo"});
    let reply = app.post("/api/v1/subscriptions/", body).await.expect(400);
    assert_eq!(reply.json()["timezone"][0], json!(message));
    let body = json!({"identity": identity(1), "messageset": set, "lang": "eng_ZA"});
    let created = app
        .post("/api/v1/subscriptions/", body)
        .await
        .expect(201)
        .json();
    assert_eq!(created["timezone"], Value::Null);
}

async fn zone_names_and_send_windows_are_validated(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let app = &w.app;
    // Unchanged for clients that know nothing of zones: UTC.
    let schedule = app
        .post("/api/v1/schedule/", json!({}))
        .await
        .expect(201)
        .json();
    assert_eq!(schedule["timezone"], "UTC");
    let id = schedule["id"].as_i64().unwrap();
    for bad in ["Mars/Olympus_Mons", "europe/london", "+02:00", "GMT+2"] {
        let reply = app
            .post("/api/v1/schedule/", json!({"timezone": bad}))
            .await
            .expect(400);
        let message = reply.json()["timezone"][0].as_str().unwrap().to_string();
        assert!(message.contains("IANA"), "{bad}: {message}");
    }
    app.post("/api/v1/schedule/", json!({"timezone": ""}))
        .await
        .expect(400);
    app.post("/api/v1/schedule/", json!({"timezone": 2}))
        .await
        .expect(400);
    let moved = app
        .patch(
            &format!("/api/v1/schedule/{id}/"),
            json!({"timezone": "Australia/Sydney"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(moved["timezone"], "Australia/Sydney");
    assert_eq!(
        app.count("/api/v1/schedule/").await,
        1,
        "nothing partial was written"
    );

    let set = w.set("s", id, 1, json!({})).await;
    let reply = app
        .post(
            "/api/v1/subscriptions/",
            json!({"identity": identity(1), "messageset": set, "lang": "eng_ZA", "timezone": "Europe/Londn"}),
        )
        .await
        .expect(400);
    assert!(reply.json()["timezone"][0]
        .as_str()
        .unwrap()
        .contains("IANA"));
    let subscription = w.subscribe(1, set, Some("Europe/London")).await;
    let path = format!("/api/v1/subscriptions/{subscription}/");
    let cleared = app
        .patch(&path, json!({"timezone": null}))
        .await
        .expect(200)
        .json();
    assert_eq!(cleared["timezone"], Value::Null);

    let set_path = format!("/api/v1/messageset/{set}/");
    let shown = app.get(&set_path).await.expect(200).json();
    assert_eq!(
        (
            shown["send_window_start"].clone(),
            shown["send_window_end"].clone()
        ),
        (Value::Null, Value::Null)
    );
    let cases = [
        (
            json!({"send_window_start": "25:00", "send_window_end": "07:00"}),
            "send_window_start",
        ),
        (
            json!({"send_window_start": "20:00", "send_window_end": "7:00"}),
            "send_window_end",
        ),
        (json!({"send_window_start": "20:00"}), "send_window_end"),
        (json!({"send_window_end": "20:00"}), "send_window_start"),
        (
            json!({"send_window_start": "08:00", "send_window_end": "08:00"}),
            "send_window_end",
        ),
    ];
    for (body, field) in cases {
        let reply = app.patch(&set_path, body.clone()).await.expect(400);
        assert!(reply.json()[field].is_array(), "{body}: {}", reply.text());
    }
    let night = json!({"send_window_start": "20:00", "send_window_end": "07:00"});
    let updated = app.patch(&set_path, night).await.expect(200).json();
    assert_eq!(
        (
            updated["send_window_start"].clone(),
            updated["send_window_end"].clone()
        ),
        (json!("20:00"), json!("07:00"))
    );
}
