//! The built-in scheduler (no Seed Scheduler configured): ticks enqueue the sends of every ready
//! subscription on a schedule, once per (schedule, minute), whatever races or restarts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{eventually, spawn_app_with, use_peers, Backend, TestApp};
use crate::on_both_backends;
use crate::peers::FakePeers;

on_both_backends!(
    a_tick_fires_once_however_many_workers_race_for_it,
    after_downtime_a_missed_tick_fires_once_and_older_ones_are_skipped,
    ticks_and_requests_together_never_send_a_message_twice,
    the_per_schedule_send_endpoint_sends_every_ready_subscription,
    the_running_scheduler_sends_without_any_post_back,
    a_large_tick_is_written_in_parts_that_send_each_subscriber_once,
    a_schedule_sent_on_request_in_parts_sends_each_ready_subscriber_once,
);

struct Bulk {
    app: TestApp,
    peers: FakePeers,
    schedule: i64,
    subscriptions: Vec<String>,
}

/// `count` subscribers with addresses on one every-minute schedule, in built-in mode.
async fn bulk(
    backend: Backend,
    count: usize,
    adjust: impl FnOnce(&mut sbm::config::ServeConfig),
) -> Option<Bulk> {
    let peers = FakePeers::start().await;
    let app = spawn_app_with(backend, |c| {
        use_peers(c, &peers);
        c.peers.scheduler_url = None;
        adjust(c);
    })
    .await?;
    let schedule = app
        .post("/api/v1/schedule/", json!({}))
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    let body = json!({"short_name": "set", "default_schedule": schedule});
    let set = app
        .post("/api/v1/messageset/", body)
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    app.create_message(set, 1, "eng_ZA", "Message 1").await;
    app.create_message(set, 2, "eng_ZA", "Message 2").await;
    let mut subscriptions = Vec::new();
    for n in 0..count {
        let identity = format!("00000000-0000-4000-8000-{n:012}");
        peers.add_address(&identity, &format!("+2782{n:07}"));
        let body = json!({"identity": identity, "messageset": set, "lang": "eng_ZA"});
        subscriptions.push(
            app.post("/api/v1/subscriptions/", body)
                .await
                .expect(201)
                .json()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    Some(Bulk {
        app,
        peers,
        schedule,
        subscriptions,
    })
}

impl Bulk {
    async fn pending_sends(&self) -> i64 {
        self.count("select count(*) from job where kind = 'send_message'")
            .await
    }

    async fn count(&self, sql: &str) -> i64 {
        match &self.app.db {
            sbm::store::Db::Postgres(pool) => {
                sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
            }
            sbm::store::Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }

    async fn backdate_schedule(&self, to: DateTime<Utc>) {
        const SQL: &str = "update schedule set created_at = $1 where id = $2";
        match &self.app.db {
            sbm::store::Db::Postgres(pool) => drop(
                sqlx::query(SQL)
                    .bind(to)
                    .bind(self.schedule)
                    .execute(pool)
                    .await
                    .unwrap(),
            ),
            sbm::store::Db::Sqlite(pool) => drop(
                sqlx::query(SQL)
                    .bind(to)
                    .bind(self.schedule)
                    .execute(pool)
                    .await
                    .unwrap(),
            ),
        }
    }

    fn worker(&self) -> sbm::runtime::Worker {
        crate::helpers::worker_for(&self.app, &self.peers, false)
    }

    /// Every subscriber got exactly one message.
    fn assert_one_message_each(&self) {
        let outbounds = self.peers.outbounds();
        let mut recipients: Vec<&str> = outbounds
            .iter()
            .map(|o| o["to_identity"].as_str().unwrap())
            .collect();
        recipients.sort();
        recipients.dedup();
        assert_eq!(
            (outbounds.len(), recipients.len()),
            (self.subscriptions.len(), self.subscriptions.len())
        );
    }
}

const CATCH_UP: Duration = Duration::from_secs(15 * 60);

async fn a_tick_fires_once_however_many_workers_race_for_it(backend: Backend) {
    let Some(b) = bulk(backend, 20, |c| c.no_worker = true).await else {
        return;
    };
    let now = Utc::now();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let db = b.app.db.clone();
        racers.spawn(async move {
            sbm::scheduling::ticker::tick(&db, 3, now, CATCH_UP)
                .await
                .unwrap()
        });
    }
    let mut fired = Vec::new();
    while let Some(result) = racers.join_next().await {
        fired.extend(result.unwrap());
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].enqueued, 20);
    assert_eq!(b.pending_sends().await, 20);
    // The same minute again, later: nothing.
    assert!(sbm::scheduling::ticker::tick(&b.app.db, 3, now, CATCH_UP)
        .await
        .unwrap()
        .is_empty());

    b.worker().drain().await.unwrap();
    b.assert_one_message_each();
    for id in &b.subscriptions {
        assert_eq!(
            b.app
                .get(&format!("/api/v1/subscriptions/{id}/"))
                .await
                .json()["next_sequence_number"],
            2
        );
    }
}

async fn after_downtime_a_missed_tick_fires_once_and_older_ones_are_skipped(backend: Backend) {
    let Some(b) = bulk(backend, 5, |c| c.no_worker = true).await else {
        return;
    };
    let now = Utc::now();
    b.backdate_schedule(now - chrono::Duration::days(1)).await;
    // The last tick was 40 minutes ago; the every-minute schedule missed 39 minutes since.
    let last = sbm::scheduling::minute_of(now) - chrono::Duration::minutes(40);
    sbm::scheduling::ticker::fire(&b.app.db, 3, b.schedule, last)
        .await
        .unwrap();
    b.worker().drain().await.unwrap();
    assert_eq!(b.peers.outbounds().len(), 5);

    let fired = sbm::scheduling::ticker::tick(&b.app.db, 3, now, CATCH_UP)
        .await
        .unwrap();
    assert_eq!(fired.len(), 1, "one catch-up tick, not 40: {fired:?}");
    assert_eq!(fired[0].minute, sbm::scheduling::minute_of(now));
    assert!(sbm::scheduling::ticker::tick(&b.app.db, 3, now, CATCH_UP)
        .await
        .unwrap()
        .is_empty());
    b.worker().drain().await.unwrap();
    assert_eq!(b.peers.outbounds().len(), 10, "one more message each");

    // Down again for half an hour, with a 30 s window: only the current minute fires.
    let later = now + chrono::Duration::minutes(30);
    let fired = sbm::scheduling::ticker::tick(&b.app.db, 3, later, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        fired.iter().map(|f| f.minute).collect::<Vec<_>>(),
        vec![sbm::scheduling::minute_of(later)]
    );
}

async fn ticks_and_requests_together_never_send_a_message_twice(backend: Backend) {
    let Some(b) = bulk(backend, 10, |c| c.no_worker = true).await else {
        return;
    };
    let now = Utc::now();
    sbm::scheduling::ticker::tick(&b.app.db, 3, now, CATCH_UP)
        .await
        .unwrap();
    sbm::scheduling::ticker::tick(&b.app.db, 3, now, CATCH_UP)
        .await
        .unwrap();
    for _ in 0..2 {
        b.app
            .call(
                Method::POST,
                &format!("/api/v1/schedule/{}/send/", b.schedule),
                None,
            )
            .await
            .expect(202);
    }
    for id in &b.subscriptions {
        b.app
            .call(
                Method::POST,
                &format!("/api/v1/subscriptions/{id}/send"),
                Some(json!({})),
            )
            .await
            .expect(201);
    }
    b.worker().drain().await.unwrap();

    // A manual send is a deliberate extra tick, so some subscribers may already be on their
    // second message; none ever gets the same message twice, and each advanced once per message.
    let outbounds = b.peers.outbounds();
    let mut sent: Vec<(String, String)> = outbounds
        .iter()
        .map(|o| {
            (
                o["to_identity"].as_str().unwrap().into(),
                o["content"].as_str().unwrap().into(),
            )
        })
        .collect();
    sent.sort();
    let total = sent.len();
    sent.dedup();
    assert_eq!(sent.len(), total, "a message went out twice: {outbounds:?}");
    assert!(
        sent.iter()
            .filter(|(_, content)| content == "Message 1")
            .count()
            == 10
    );
    for id in &b.subscriptions {
        let s = b
            .app
            .get(&format!("/api/v1/subscriptions/{id}/"))
            .await
            .json();
        let identity = s["identity"].as_str().unwrap();
        let received = sent.iter().filter(|(to, _)| to == identity).count() as i64;
        let expected_next = if s["completed"] == true {
            received
        } else {
            received + 1
        };
        assert_eq!(
            s["next_sequence_number"].as_i64(),
            Some(expected_next),
            "{s}"
        );
    }
}

async fn the_per_schedule_send_endpoint_sends_every_ready_subscription(backend: Backend) {
    let Some(b) = bulk(backend, 6, |_| {}).await else {
        return;
    };
    // One subscriber stopped, one in error: neither is sent to.
    b.app
        .patch(
            &format!("/api/v1/subscriptions/{}/", b.subscriptions[0]),
            json!({"active": false}),
        )
        .await
        .expect(200);
    b.app
        .patch(
            &format!("/api/v1/subscriptions/{}/", b.subscriptions[1]),
            json!({"process_status": -1}),
        )
        .await
        .expect(200);
    let reply = b
        .app
        .call(
            Method::POST,
            &format!("/api/v1/schedule/{}/send/", b.schedule),
            None,
        )
        .await
        .expect(202);
    assert_eq!(reply.json(), json!({}));
    eventually("4 messages", || async { b.peers.outbounds().len() == 4 }).await;
    b.app
        .call(Method::POST, "/api/v1/schedule/999/send/", None)
        .await
        .expect(404);
}

async fn the_running_scheduler_sends_without_any_post_back(backend: Backend) {
    let Some(mut b) = bulk(backend, 0, |c| c.worker.tick_interval_secs = 1).await else {
        return;
    };
    // Subscribe everyone on a schedule that is not due (another month), then make it due: a
    // tick firing halfway through the subscribing would rightly leave the rest for the next
    // due minute, a minute later.
    use chrono::Datelike;
    let other_month = (Utc::now().month() % 12 + 1).to_string();
    let body = json!({"month_of_year": other_month});
    let schedule = b
        .app
        .post("/api/v1/schedule/", body)
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    let body = json!({"short_name": "later", "default_schedule": schedule});
    let set = b
        .app
        .post("/api/v1/messageset/", body)
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    b.app.create_message(set, 1, "eng_ZA", "Message 1").await;
    for n in 0..3 {
        let identity = format!("00000000-0000-4000-8000-{n:012}");
        b.peers.add_address(&identity, &format!("+2782{n:07}"));
        let body = json!({"identity": identity, "messageset": set, "lang": "eng_ZA"});
        let created = b
            .app
            .post("/api/v1/subscriptions/", body)
            .await
            .expect(201)
            .json();
        b.subscriptions
            .push(created["id"].as_str().unwrap().to_string());
    }
    let path = format!("/api/v1/schedule/{schedule}/");
    b.app
        .patch(&path, json!({"month_of_year": "*"}))
        .await
        .expect(200);
    eventually("every subscriber gets its first message", || async {
        b.peers.outbounds().len() == 3
    })
    .await;
    b.assert_one_message_each();
    assert!(
        b.peers.requests("POST", "/schedule/").is_empty(),
        "no Seed Scheduler in built-in mode"
    );
}

/// Parts of 7 for 40 subscribers: six parts in four chains.
const SMALL_PARTS: sbm::scheduling::ticker::TickSettings = sbm::scheduling::ticker::TickSettings {
    max_attempts: 3,
    part_size: 7,
};

async fn a_large_tick_is_written_in_parts_that_send_each_subscriber_once(backend: Backend) {
    let Some(b) = bulk(backend, 40, |c| c.no_worker = true).await else {
        return;
    };
    let now = Utc::now();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let db = b.app.db.clone();
        racers.spawn(async move {
            sbm::scheduling::ticker::tick(&db, SMALL_PARTS, now, CATCH_UP)
                .await
                .unwrap()
        });
    }
    let mut fired = Vec::new();
    while let Some(result) = racers.join_next().await {
        fired.extend(result.unwrap());
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!((fired[0].enqueued, fired[0].parts), (40, 4));
    // The tick's own transaction wrote the first part of each chain, not the sends.
    assert_eq!(b.pending_sends().await, 0);
    let parts = "select count(*) from job where kind = 'enqueue_send_part'";
    assert_eq!(b.count(parts).await, 4);

    b.worker().drain().await.unwrap();
    b.assert_one_message_each();
    assert_eq!(b.count(parts).await, 0);
    assert_eq!(b.count("select count(*) from job").await, 0);
    // Each part added its sends to the tick's count.
    let enqueued = format!(
        "select enqueued from schedule_tick where schedule_id = {}",
        b.schedule
    );
    assert_eq!(b.count(&enqueued).await, 40);
    for id in &b.subscriptions {
        let s = b
            .app
            .get(&format!("/api/v1/subscriptions/{id}/"))
            .await
            .json();
        assert_eq!(s["next_sequence_number"], 2, "{s}");
    }
}

async fn a_schedule_sent_on_request_in_parts_sends_each_ready_subscriber_once(backend: Backend) {
    let Some(b) = bulk(backend, 12, |c| c.worker.tick_part_size = 5).await else {
        return;
    };
    // One subscriber stopped: it is not sent to.
    b.app
        .patch(
            &format!("/api/v1/subscriptions/{}/", b.subscriptions[0]),
            json!({"active": false}),
        )
        .await
        .expect(200);
    b.app
        .call(
            Method::POST,
            &format!("/api/v1/schedule/{}/send/", b.schedule),
            None,
        )
        .await
        .expect(202);
    eventually("11 messages", || async { b.peers.outbounds().len() == 11 }).await;
    eventually("the queue empties", || async {
        b.count("select count(*) from job").await == 0
    })
    .await;
    let outbounds = b.peers.outbounds();
    let mut recipients: Vec<&str> = outbounds
        .iter()
        .map(|o| o["to_identity"].as_str().unwrap())
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!((outbounds.len(), recipients.len()), (11, 11));
}
