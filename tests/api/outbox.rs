//! The event outbox under failure: a rolled-back change leaves no event, re-running the
//! spreader sends nothing twice, and a worker killed mid-delivery leaves the delivery to
//! another worker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::helpers::{eventually, serve_config, Backend, TestApp};
use crate::hub::{deliveries_of, spawn_hub_app, subscribe_active};
use crate::on_both_backends;
use crate::receiver::Receiver;

on_both_backends!(
    a_rolled_back_change_writes_no_event_and_a_committed_one_always_does,
    rerunning_the_spreader_sends_no_event_twice,
    a_delivery_held_by_a_killed_worker_is_delivered_by_another,
);

async fn event_count(app: &TestApp, query: &str) -> i64 {
    app.get(&format!("/api/v1/events/?{query}"))
        .await
        .expect(200)
        .json()["count"]
        .as_i64()
        .unwrap()
}

async fn a_rolled_back_change_writes_no_event_and_a_committed_one_always_does(backend: Backend) {
    let Some(app) = crate::helpers::spawn_app(backend).await else {
        return;
    };
    let effects = sbm::effects::Effects {
        jobs: sbm::jobs::JobSettings::from(&crate::helpers::fast_worker()),
        scheduler_mode: false,
        go_metrics: false,
        public_origin: app.address.clone(),
        next_due: sbm::scheduling::local::next_due,
    };
    let fields = sbm::model::content::ScheduleFields {
        minute: "0".into(),
        hour: "8".into(),
        day_of_week: "1".into(),
        day_of_month: "*".into(),
        month_of_year: "*".into(),
        timezone: "UTC".into(),
    };
    // The change and its event are written, then the transaction is dropped uncommitted.
    let mut tx = app.db.begin().await.unwrap();
    sbm::content::create_schedule(&mut tx, &effects, &fields)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(event_count(&app, "type=schedule.created").await, 0);
    assert_eq!(
        app.get("/api/v1/schedule/").await.expect(200).json()["count"],
        0
    );

    let mut tx = app.db.begin().await.unwrap();
    let schedule = sbm::content::create_schedule(&mut tx, &effects, &fields)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let events = app
        .get("/api/v1/events/?type=schedule.created")
        .await
        .expect(200)
        .json();
    assert_eq!(events["count"], 1);
    assert_eq!(
        events["results"][0]["object"]["id"],
        schedule.id.to_string()
    );
}

async fn rerunning_the_spreader_sends_no_event_twice(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let callback = subscribe_active(&app, "*", &receiver.url("/all"), &[]).await;
    // A second callback whose topic also matches: one delivery each, never more.
    let schedules = subscribe_active(&app, "schedule", &receiver.url("/schedules"), &[]).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    app.post(
        "/api/v1/schedule/",
        json!({"minute": "0", "hour": "8", "day_of_week": "1", "day_of_month": "*", "month_of_year": "*"}),
    )
    .await
    .expect(201);
    eventually("both callbacks got the event", || async {
        receiver.delivered_events().len() == 2
    })
    .await;

    // Spread everything again, twice, as a crashed spreader's successor would.
    for _ in 0..2 {
        let mut conn = app.db.acquire().await.unwrap();
        sbm::store::events::unspread_events(conn.conn(), since)
            .await
            .unwrap();
        drop(conn);
        sbm::callbacks::delivery::spread(&app.db).await.unwrap();
    }
    crate::helpers::quiet(&app).await;
    assert_eq!(receiver.delivered_events().len(), 2);
    for c in [&callback, &schedules] {
        let deliveries = deliveries_of(&app, c["id"].as_str().unwrap(), "").await;
        assert_eq!(deliveries.len(), 1, "{deliveries:?}");
        assert_eq!(deliveries[0]["state"], "succeeded");
    }
}

/// A receiver whose first POST never gets an answer in time.
#[derive(Clone, Default)]
struct SlowFirst {
    posts: Arc<AtomicUsize>,
    answered: Arc<Mutex<Vec<Value>>>,
}

async fn start_slow_first(state: SlowFirst) -> String {
    async fn verify(Query(q): Query<std::collections::HashMap<String, String>>) -> String {
        q.get("hub.challenge").cloned().unwrap_or_default()
    }
    async fn receive(State(state): State<SlowFirst>, Json(body): Json<Value>) -> &'static str {
        if state.posts.fetch_add(1, Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        state.answered.lock().unwrap().push(body);
        "ok"
    }
    let app = Router::new()
        .route("/hook", get(verify).post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn a_delivery_held_by_a_killed_worker_is_delivered_by_another(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.no_worker = true).await else {
        return;
    };
    let mut config = serve_config(std::env::temp_dir());
    crate::hub::allow_loopback(&mut config);
    let ctx = Arc::new(
        sbm::app::job_context(
            app.db.clone(),
            &config.peers,
            &config.worker,
            &config.metrics,
            &config.events,
            app.address.clone(),
            Arc::new(tokio::sync::Notify::new()),
        )
        .unwrap(),
    );
    let jobs = sbm::runtime::Worker::new(ctx.clone());

    let receiver = SlowFirst::default();
    let url = start_slow_first(receiver.clone()).await;
    crate::hub::subscribe(&app, "schedule.*", &url, &[])
        .await
        .expect(202);
    eventually("the subscription is verified", || async {
        jobs.drain().await.unwrap();
        crate::hub::callbacks(&app).await[0]["state"] == "active"
    })
    .await;
    let callback = crate::hub::callbacks(&app).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/api/v1/schedule/",
        json!({"minute": "0", "hour": "8", "day_of_week": "1", "day_of_month": "*", "month_of_year": "*"}),
    )
    .await
    .expect(201);

    // A separate `sbm worker` process takes the delivery; the receiver keeps it waiting.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sbm"))
        .arg("worker")
        .env_clear()
        .env("SECRET_KEY", crate::helpers::TEST_SECRET_KEY)
        .env("DATABASE_URL", app.database_url())
        .env("SECRET_KEY", crate::helpers::TEST_SECRET_KEY)
        .env("STAGE_BASED_MESSAGING_URL", &app.address)
        .env("SBM_CALLBACK_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env("SBM_DELIVERY_TIMEOUT_MS", "3000")
        .env("SBM_JOB_LEASE_SECS", "1")
        .env("SBM_WORKER_POLL_MS", "20")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("sbm worker starts");
    eventually("the worker process is delivering", || async {
        receiver.posts.load(Ordering::SeqCst) == 1
    })
    .await;
    let held = deliveries_of(&app, &callback, "").await;
    assert_eq!(held[0]["state"], "running");
    child.kill().unwrap(); // SIGKILL: no chance to record anything
    child.wait().unwrap();

    // Once the dead worker's lease (its timeout plus the job lease) has run out, another
    // worker claims the delivery and makes it.
    eventually("another worker delivers the event", || async {
        sbm::runtime::delivery_pass(&ctx, "second-worker")
            .await
            .unwrap();
        !receiver.answered.lock().unwrap().is_empty()
    })
    .await;
    let answered = receiver.answered.lock().unwrap().clone();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0]["type"], "schedule.created");
    let delivered = deliveries_of(&app, &callback, "").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["state"], "succeeded");
}
