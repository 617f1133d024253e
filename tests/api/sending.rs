//! The send pipeline end to end: subscription → Seed Scheduler schedule → POST-back → Identity
//! Store → Message Sender → advance → complete → next set, with the peers as fake HTTP servers.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    eventually, spawn_app_with, use_peers, worker_for, Backend, TestApp, INBOUND_TOKEN,
};
use crate::on_both_backends;
use crate::peers::FakePeers;

on_both_backends!(
    a_subscription_is_sent_each_message_once_then_completes_and_moves_to_the_next_set,
    audio_messages_go_out_as_absolute_voice_urls,
    a_prepended_text_goes_out_once_and_is_cleared,
    duplicate_post_backs_produce_one_message,
    a_scheduler_that_fails_at_first_still_gets_the_schedule,
    a_failing_message_sender_is_retried_and_the_message_goes_out_once,
    a_peer_down_past_every_retry_leaves_a_failed_task_that_can_be_requeued,
    an_identity_without_an_address_marks_the_subscription_and_sends_nothing,
    a_missing_message_marks_the_subscription_and_sends_nothing,
    resend_sends_the_current_message_again_without_advancing,
    deactivating_or_deleting_a_subscription_disables_its_scheduler_schedule,
    the_send_endpoint_takes_the_scheduler_token_and_refuses_unknown_subscriptions,
    a_job_left_by_a_dead_worker_is_finished_by_another_after_its_lease,
    a_send_that_lands_behind_the_workers_place_in_the_queue_still_goes_out,
    two_workers_on_one_database_never_send_a_message_twice,
    a_worker_process_killed_mid_send_leaves_the_send_to_another_worker,
    a_worker_paused_past_its_lease_has_its_late_outcome_discarded,
);

pub const IDENTITY: &str = "3f4b1c2e-7a1d-4c55-9d3e-0a1b2c3d4e5f";
const MSISDN: &str = "+27820000123";

pub struct World {
    pub app: TestApp,
    pub peers: FakePeers,
}

pub async fn world(backend: Backend) -> Option<World> {
    world_with(backend, |_| {}).await
}

pub async fn world_with(
    backend: Backend,
    adjust: impl FnOnce(&mut sbm::config::ServeConfig),
) -> Option<World> {
    let peers = FakePeers::start().await;
    let app = spawn_app_with(backend, |config| {
        use_peers(config, &peers);
        adjust(config);
    })
    .await?;
    peers.add_address(IDENTITY, MSISDN);
    Some(World { app, peers })
}

impl World {
    /// A text message set with `count` messages in eng_ZA ("Message 1", ...).
    pub async fn text_set(&self, name: &str, count: i64) -> i64 {
        let set = self.app.create_message_set(name, "text").await;
        for n in 1..=count {
            self.app
                .create_message(set, n, "eng_ZA", &format!("Message {n}"))
                .await;
        }
        set
    }

    pub async fn subscribe(&self, body: Value) -> String {
        let mut full = json!({"identity": IDENTITY, "lang": "eng_ZA"});
        for (k, v) in body.as_object().unwrap() {
            full[k] = v.clone();
        }
        let created = self
            .app
            .post("/api/v1/subscriptions/", full)
            .await
            .expect(201)
            .json();
        created["id"].as_str().unwrap().to_string()
    }

    pub async fn subscription(&self, id: &str) -> Value {
        self.app
            .get(&format!("/api/v1/subscriptions/{id}/"))
            .await
            .expect(200)
            .json()
    }

    /// Waits for the subscription's Scheduler schedule and returns its id.
    pub async fn scheduler_id(&self, id: &str) -> String {
        eventually("the scheduler schedule id is stored", || async {
            self.subscription(id).await["metadata"]["scheduler_schedule_id"].is_string()
        })
        .await;
        self.subscription(id).await["metadata"]["scheduler_schedule_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn outbound_count_becomes(&self, n: usize) {
        eventually(&format!("{n} outbound messages"), || async {
            self.peers.outbounds().len() == n
        })
        .await;
    }

    pub async fn next_sequence_becomes(&self, id: &str, n: i64) {
        eventually(&format!("next_sequence_number is {n}"), || async {
            self.subscription(id).await["next_sequence_number"] == n
        })
        .await;
    }

    pub async fn failed_tasks(&self) -> Value {
        self.app
            .get("/api/v1/failed-tasks/")
            .await
            .expect(200)
            .json()
    }

    /// Waits until the worker is idle, so that "nothing more happened" can be asserted.
    pub async fn settle(&self) {
        crate::helpers::quiet(&self.app).await;
    }
}

async fn a_subscription_is_sent_each_message_once_then_completes_and_moves_to_the_next_set(
    backend: Backend,
) {
    let Some(w) = world(backend).await else {
        return;
    };
    let baby = w.text_set("baby", 1).await;
    let pregnancy = w.text_set("pregnancy", 2).await;
    w.app
        .patch(
            &format!("/api/v1/messageset/{pregnancy}/"),
            json!({"next_set": baby}),
        )
        .await
        .expect(200);

    let id = w.subscribe(json!({"messageset": pregnancy})).await;
    let scheduler_id = w.scheduler_id(&id).await;
    let created = w.peers.requests("POST", "/schedule/");
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].authorization.as_deref(),
        Some("Token scheduler-token")
    );
    assert_eq!(created[0].body["cron_definition"], "0 8 * * 1,4");
    assert_eq!(created[0].body["frequency"], json!(null));
    assert_eq!(created[0].body["auth_token"], INBOUND_TOKEN);
    assert_eq!(
        created[0].body["endpoint"],
        w.app.url(&format!("/api/v1/subscriptions/{id}/send"))
    );

    assert_eq!(
        w.peers.fire(&scheduler_id).await,
        (201, json!({"accepted": true}))
    );
    w.outbound_count_becomes(1).await;
    w.next_sequence_becomes(&id, 2).await;
    let first = &w.peers.requests("POST", "/outbound/")[0];
    assert_eq!(first.authorization.as_deref(), Some("Token sender-token"));
    assert_eq!(first.body["to_addr"], MSISDN);
    assert_eq!(first.body["to_identity"], IDENTITY);
    assert_eq!(first.body["content"], "Message 1");
    assert!(first.body["metadata"]["sbm_send_id"].is_string());
    let lookup = &w.peers.requests("GET", "/identities/")[0];
    assert_eq!(
        lookup.path,
        format!("/identities/{IDENTITY}/addresses/msisdn")
    );
    assert_eq!(
        lookup.query.get("default").map(String::as_str),
        Some("True")
    );
    assert_eq!(
        lookup
            .query
            .get("use_communicate_through")
            .map(String::as_str),
        Some("True")
    );
    assert_eq!(
        lookup.authorization.as_deref(),
        Some("Token identity-token")
    );

    assert_eq!(w.peers.fire(&scheduler_id).await.0, 201);
    w.outbound_count_becomes(2).await;
    eventually("the subscription completes", || async {
        w.subscription(&id).await["completed"] == true
    })
    .await;
    let done = w.subscription(&id).await;
    assert_eq!(
        (
            done["active"].as_bool(),
            done["process_status"].as_i64(),
            done["next_sequence_number"].as_i64()
        ),
        (Some(false), Some(2), Some(2))
    );
    assert_eq!(w.peers.outbounds()[1]["content"], "Message 2");
    eventually("the scheduler schedule is disabled", || async {
        w.peers
            .schedule(&scheduler_id)
            .is_some_and(|s| s["enabled"] == false)
    })
    .await;

    let next = w
        .app
        .get(&format!(
            "/api/v1/subscriptions/?identity={IDENTITY}&messageset={baby}"
        ))
        .await
        .json();
    assert_eq!(next["count"], 1);
    let next = &next["results"][0];
    assert_eq!(
        (
            next["next_sequence_number"].as_i64(),
            next["active"].as_bool()
        ),
        (Some(1), Some(true))
    );
    let next_id = next["id"].as_str().unwrap().to_string();
    let next_scheduler_id = w.scheduler_id(&next_id).await;
    assert_ne!(next_scheduler_id, scheduler_id);

    // As the 2017 original: accepted (the Scheduler retries any 4xx), nothing sent.
    let (status, body) = w.peers.fire(&scheduler_id).await;
    assert_eq!((status, body["accepted"].as_bool()), (201, Some(true)));
    w.settle().await;
    assert_eq!(
        w.peers.outbounds().len(),
        2,
        "a completed subscription gets nothing more"
    );
}

async fn audio_messages_go_out_as_absolute_voice_urls(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.app.create_message_set("voice", "audio").await;
    let audio = w.app.upload_audio("week1.mp3", b"ID3 audio").await;
    let body = json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA", "binary_content": audio["id"]});
    w.app.post("/api/v1/message/", body).await.expect(201);
    w.app.create_message(set, 2, "eng_ZA", "unused").await;
    let id = w.subscribe(json!({"messageset": set})).await;
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.fire(&scheduler_id).await;
    w.outbound_count_becomes(1).await;
    let outbound = &w.peers.outbounds()[0];
    assert!(outbound.get("content").is_none());
    let url = outbound["metadata"]["voice_speech_url"].as_str().unwrap();
    assert_eq!(url, audio["content"].as_str().unwrap());
    assert_eq!(
        w.app.send(w.app.client.get(url)).await.expect(200).bytes,
        b"ID3 audio"
    );
}

async fn a_prepended_text_goes_out_once_and_is_cleared(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set, "metadata": {"prepend_next_delivery": "Welcome!", "source": "clinic"}})).await;
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.fire(&scheduler_id).await;
    w.outbound_count_becomes(1).await;
    w.next_sequence_becomes(&id, 2).await;
    assert_eq!(w.peers.outbounds()[0]["content"], "Welcome!\nMessage 1");
    let metadata = &w.subscription(&id).await["metadata"];
    assert!(
        metadata.get("prepend_next_delivery").is_none(),
        "{metadata}"
    );
    assert_eq!(metadata["source"], "clinic");
    w.peers.fire(&scheduler_id).await;
    w.outbound_count_becomes(2).await;
    assert_eq!(w.peers.outbounds()[1]["content"], "Message 2");
}

async fn duplicate_post_backs_produce_one_message(backend: Backend) {
    let Some(w) = world_with(backend, |c| c.send.dedupe_window_secs = 60).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.fail_sends(&[503]); // keep the first send busy while the repeats arrive
    let mut firing = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let peers = w.peers.clone();
        let scheduler_id = scheduler_id.clone();
        firing.spawn(async move { peers.fire(&scheduler_id).await.0 });
    }
    while let Some(status) = firing.join_next().await {
        assert_eq!(
            status.unwrap(),
            201,
            "every delivery is acknowledged, so the Scheduler stops retrying"
        );
    }
    w.outbound_count_becomes(1).await;
    w.next_sequence_becomes(&id, 2).await;
    w.settle().await;
    assert_eq!(w.peers.outbounds().len(), 1);
    assert_eq!(w.subscription(&id).await["next_sequence_number"], 2);

    // A late redelivery, after the send went out, is still inside the window: acknowledged, not
    // sent, and the answer says why.
    let (status, body) = w.peers.fire(&scheduler_id).await;
    assert_eq!((status, &body["accepted"]), (201, &json!(true)));
    assert!(
        body["reason"].as_str().unwrap().contains("repeat"),
        "{body}"
    );
    w.settle().await;
    assert_eq!(w.peers.outbounds().len(), 1);
    assert_eq!(w.subscription(&id).await["next_sequence_number"], 2);
}

async fn a_scheduler_that_fails_at_first_still_gets_the_schedule(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    w.peers.fail_scheduler(&[500, 503]);
    let set = w.text_set("set", 1).await;
    let id = w.subscribe(json!({"messageset": set})).await;
    let scheduler_id = w.scheduler_id(&id).await;
    assert!(w.peers.schedule(&scheduler_id).is_some());
    assert_eq!(w.peers.requests("POST", "/schedule/").len(), 1);
}

async fn a_failing_message_sender_is_retried_and_the_message_goes_out_once(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.fail_sends(&[500, 0]); // 0: no answer before the peer timeout
    w.peers.fire(&scheduler_id).await;
    w.outbound_count_becomes(1).await;
    w.next_sequence_becomes(&id, 2).await;
    assert_eq!(w.failed_tasks().await["count"], 0);
    assert_eq!(w.subscription(&id).await["process_status"], 0);
}

async fn a_peer_down_past_every_retry_leaves_a_failed_task_that_can_be_requeued(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.sender_down(Some(500));
    w.peers.fire(&scheduler_id).await;
    eventually("the send is a failed task", || async {
        w.failed_tasks().await["count"] == 1
    })
    .await;
    let failed = w.failed_tasks().await;
    let task = &failed["results"][0];
    assert_eq!(task["task"], "send_message");
    assert_eq!(task["subscription"], id.as_str());
    assert_eq!(task["attempts"], 3);
    assert!(task["reason"].as_str().unwrap().contains("500"), "{task}");
    let s = w.subscription(&id).await;
    assert_eq!(
        (
            s["next_sequence_number"].as_i64(),
            s["process_status"].as_i64()
        ),
        (Some(1), Some(0))
    );
    assert!(w.peers.outbounds().is_empty());

    w.peers.sender_down(None);
    let reply = w
        .app
        .call(Method::POST, "/api/v1/failed-tasks/", None)
        .await
        .expect(201)
        .json();
    assert_eq!(reply["requeued_failed_tasks"], true);
    w.outbound_count_becomes(1).await;
    w.next_sequence_becomes(&id, 2).await;
    assert_eq!(w.failed_tasks().await["count"], 0);
    assert_eq!(w.peers.outbounds()[0]["content"], "Message 1");
}

async fn an_identity_without_an_address_marks_the_subscription_and_sends_nothing(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let nobody = "00000000-0000-4000-8000-0000000000aa";
    let id = w
        .subscribe(json!({"messageset": set, "identity": nobody}))
        .await;
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.fire(&scheduler_id).await;
    eventually("process_status is -1", || async {
        w.subscription(&id).await["process_status"] == -1
    })
    .await;
    let failed = w.failed_tasks().await;
    assert_eq!(failed["count"], 1);
    assert!(
        failed["results"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no msisdn"),
        "{failed}"
    );
    assert_eq!(
        failed["results"][0]["attempts"], 1,
        "no retries: the address will not appear by waiting"
    );
    assert!(w.peers.outbounds().is_empty());
    assert_eq!(w.subscription(&id).await["next_sequence_number"], 1);
}

async fn a_missing_message_marks_the_subscription_and_sends_nothing(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 2).await;
    let id = w
        .subscribe(json!({"messageset": set, "lang": "zul_ZA"}))
        .await;
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.fire(&scheduler_id).await;
    eventually("process_status is -2", || async {
        w.subscription(&id).await["process_status"] == -2
    })
    .await;
    let failed = w.failed_tasks().await;
    assert!(
        failed["results"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no message 1 in zul_ZA"),
        "{failed}"
    );
    assert!(w.peers.outbounds().is_empty());
}

async fn resend_sends_the_current_message_again_without_advancing(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.fire(&scheduler_id).await;
    w.next_sequence_becomes(&id, 2).await;
    let reply = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/subscriptions/{id}/resend"),
            None,
        )
        .await
        .expect(202);
    assert_eq!(reply.json(), json!({"accepted": true}));
    w.outbound_count_becomes(2).await;
    let outbounds = w.peers.outbounds();
    assert_eq!(outbounds[1]["content"], "Message 1");
    assert_eq!(outbounds[1]["resend"], "true");
    assert_ne!(
        outbounds[0]["metadata"]["sbm_send_id"],
        outbounds[1]["metadata"]["sbm_send_id"]
    );
    w.settle().await;
    assert_eq!(w.subscription(&id).await["next_sequence_number"], 2);
    w.app
        .call(
            Method::POST,
            "/api/v1/subscriptions/00000000-0000-4000-8000-000000000000/resend",
            None,
        )
        .await
        .expect(404);
}

async fn deactivating_or_deleting_a_subscription_disables_its_scheduler_schedule(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let first = w.subscribe(json!({"messageset": set})).await;
    let second = w.subscribe(json!({"messageset": set})).await;
    let first_schedule = w.scheduler_id(&first).await;
    let second_schedule = w.scheduler_id(&second).await;
    w.app
        .patch(
            &format!("/api/v1/subscriptions/{first}/"),
            json!({"active": false}),
        )
        .await
        .expect(200);
    w.app
        .delete(&format!("/api/v1/subscriptions/{second}/"))
        .await
        .expect(204);
    for schedule in [first_schedule, second_schedule] {
        eventually("the schedule is disabled", || async {
            w.peers
                .schedule(&schedule)
                .is_some_and(|s| s["enabled"] == false)
        })
        .await;
        let patches = w.peers.requests("PATCH", &format!("/schedule/{schedule}/"));
        assert_eq!(patches[0].body, json!({"enabled": false}));
    }
}

async fn the_send_endpoint_takes_the_scheduler_token_and_refuses_unknown_subscriptions(
    backend: Backend,
) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;
    let url = w.app.url(&format!("/api/v1/subscriptions/{id}/send"));
    w.app
        .send(w.app.client.post(&url).json(&json!({})))
        .await
        .expect(401);
    w.app
        .send(
            w.app
                .client
                .post(&url)
                .header("Authorization", "Token wrong")
                .json(&json!({})),
        )
        .await
        .expect(401);
    let with_inbound = w
        .app
        .client
        .post(&url)
        .header("Authorization", format!("Token {INBOUND_TOKEN}"))
        .json(&json!({}));
    assert_eq!(
        w.app.send(with_inbound).await.expect(201).json(),
        json!({"accepted": true})
    );
    for unknown in ["00000000-0000-4000-8000-000000000000", "not-a-uuid"] {
        let reply = w
            .app
            .call(
                Method::POST,
                &format!("/api/v1/subscriptions/{unknown}/send"),
                Some(json!({})),
            )
            .await
            .expect(400);
        assert_eq!(
            reply.json(),
            json!({"accepted": false, "reason": "Missing subscription in control"})
        );
    }
    w.app
        .patch(
            &format!("/api/v1/subscriptions/{id}/"),
            json!({"active": false}),
        )
        .await
        .expect(200);
    // An inactive subscription's send is accepted as the original accepted it, and sends nothing.
    let reply = w
        .app
        .call(
            Method::POST,
            &format!("/api/v1/subscriptions/{id}/send"),
            Some(json!({})),
        )
        .await
        .expect(201);
    assert_eq!(reply.json(), json!({"accepted": true}));
}

async fn a_job_left_by_a_dead_worker_is_finished_by_another_after_its_lease(backend: Backend) {
    let Some(w) = world_with(backend, |c| c.no_worker = true).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;
    let worker = worker_for(&w.app, &w.peers, true);
    worker.drain().await.unwrap(); // the Scheduler schedule
    let scheduler_id = w.scheduler_id(&id).await;
    w.peers.fire(&scheduler_id).await;

    // A worker claims the send and dies: its claim stays, with a lease that runs out.
    let now = sbm::store::now();
    let mut tx = w.app.db.begin().await.unwrap();
    let lease_end = now + chrono::Duration::milliseconds(500);
    let claimed = sbm::store::jobs::claim_jobs(tx.conn(), "dead-worker", now, lease_end, 10, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claimed.len(), 1);

    worker.drain().await.unwrap();
    assert!(
        w.peers.outbounds().is_empty(),
        "the job is not taken while the lease holds"
    );
    eventually("the dead worker's lease has run out", || async {
        sbm::store::now() > lease_end
    })
    .await;
    worker.drain().await.unwrap();
    assert_eq!(w.peers.outbounds().len(), 1);
    assert_eq!(w.subscription(&id).await["next_sequence_number"], 2);
}

/// The worker claims after the place its last claim reached (`jobs::ClaimCursor`); a job that
/// lands behind it (a transaction that took a lower id committing late, a job made due early)
/// is found by the full claim the worker makes once a second.
async fn a_send_that_lands_behind_the_workers_place_in_the_queue_still_goes_out(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let first = w.subscribe(json!({"messageset": set})).await;
    let scheduler_id = w.scheduler_id(&first).await;
    w.peers.fire(&scheduler_id).await;
    w.outbound_count_becomes(1).await;
    let identity = "00000000-0000-4000-8000-000000000002";
    w.peers.add_address(identity, "+27820000002");
    let second = w
        .subscribe(json!({"messageset": set, "identity": identity}))
        .await;
    w.scheduler_id(&second).await;
    w.settle().await;

    // A send due a day ago: behind every job the worker has claimed.
    let payload = json!({"kind": "send_message", "subscription_id": second, "resend": false});
    let now = sbm::store::now();
    let job = sbm::store::jobs::NewJob {
        kind: "send_message",
        payload: &payload,
        max_attempts: 5,
        run_at: now - chrono::Duration::days(1),
        dedupe_key: None,
        subscription_id: Some(second.parse().unwrap()),
    };
    let mut tx = w.app.db.begin().await.unwrap();
    assert!(sbm::store::jobs::insert_job(tx.conn(), &job, now)
        .await
        .unwrap());
    tx.commit().await.unwrap();

    w.outbound_count_becomes(2).await;
    assert_eq!(w.peers.outbounds()[1]["to_identity"], identity);
    w.next_sequence_becomes(&second, 2).await;
}

async fn two_workers_on_one_database_never_send_a_message_twice(backend: Backend) {
    let Some(w) = world_with(backend, |c| c.no_worker = true).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let mut ids = Vec::new();
    for n in 0..30 {
        let identity = format!("00000000-0000-4000-8000-{n:012}");
        w.peers.add_address(&identity, &format!("+2782{n:07}"));
        ids.push(
            w.subscribe(json!({"messageset": set, "identity": identity}))
                .await,
        );
    }
    for id in &ids {
        let send = w
            .app
            .call(
                Method::POST,
                &format!("/api/v1/subscriptions/{id}/send"),
                Some(json!({})),
            )
            .await;
        send.expect(201);
    }
    let first = worker_for(&w.app, &w.peers, true);
    let second = worker_for(&w.app, &w.peers, true);
    let (a, b) = tokio::join!(first.drain(), second.drain());
    a.unwrap();
    b.unwrap();
    let outbounds = w.peers.outbounds();
    let mut recipients: Vec<&str> = outbounds
        .iter()
        .map(|o| o["to_identity"].as_str().unwrap())
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!((outbounds.len(), recipients.len()), (30, 30));
    for id in &ids {
        assert_eq!(w.subscription(id).await["next_sequence_number"], 2);
    }
}

/// The job's state and holder, read straight from the database.
async fn send_job_state(w: &World) -> Option<(String, Option<String>)> {
    const SQL: &str = "select state, locked_by from job where kind = 'send_message'";
    match &w.app.db {
        sbm::store::Db::Postgres(pool) => sqlx::query_as(SQL).fetch_optional(pool).await.unwrap(),
        sbm::store::Db::Sqlite(pool) => sqlx::query_as(SQL).fetch_optional(pool).await.unwrap(),
    }
}

async fn a_worker_process_killed_mid_send_leaves_the_send_to_another_worker(backend: Backend) {
    let Some(w) = world_with(backend, |c| {
        c.no_worker = true;
        c.peers.scheduler_url = None;
    })
    .await
    else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;

    // A separate `sbm worker` process, whose Message Sender call hangs.
    w.peers.fail_sends(&[0]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sbm"))
        .arg("worker")
        .env_clear()
        .env("SECRET_KEY", crate::helpers::TEST_SECRET_KEY)
        .env("DATABASE_URL", w.app.database_url())
        .env("SECRET_KEY", crate::helpers::TEST_SECRET_KEY)
        .env("IDENTITY_STORE_URL", w.peers.identity_store_url())
        .env("MESSAGE_SENDER_URL", w.peers.message_sender_url())
        .env("STAGE_BASED_MESSAGING_URL", &w.app.address)
        .env("SBM_PEER_TIMEOUT_MS", "20000")
        .env("SBM_JOB_LEASE_SECS", "1")
        .env("SBM_WORKER_POLL_MS", "20")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("sbm worker starts");
    w.app
        .call(
            Method::POST,
            &format!("/api/v1/subscriptions/{id}/send"),
            Some(json!({})),
        )
        .await
        .expect(201);
    let pid = child.id().to_string();
    eventually("the worker process holds the send", || async {
        send_job_state(&w).await.is_some_and(|(state, holder)| {
            state == "running" && holder.is_some_and(|h| h.contains(&pid))
        })
    })
    .await;
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(w.peers.outbounds().is_empty());

    // Another worker takes the send over once the dead one's lease has run out.
    let worker = worker_for(&w.app, &w.peers, true);
    eventually("another worker finishes the send", || async {
        worker.drain().await.unwrap();
        w.peers.outbounds().len() == 1
    })
    .await;
    assert_eq!(w.subscription(&id).await["next_sequence_number"], 2);
    assert_eq!(w.peers.outbounds()[0]["content"], "Message 1");
}

/// Found by the crash campaign (benches/chaos, `--lease-edge`): a worker paused past its lease
/// while its send was in flight recorded the send again when it resumed, writing a second
/// `send.succeeded` event (and integration message) for the one message.
async fn a_worker_paused_past_its_lease_has_its_late_outcome_discarded(backend: Backend) {
    // On SQLite a process stopped while it holds the one write lock (its ticker or spreader
    // may be mid-transaction at SIGSTOP) stops every other writer until it resumes: no worker
    // can take the job over, whatever sbm does. The takeover race is PostgreSQL's; the crash
    // campaign (`benches/chaos --lease-edge`) covers SQLite with its own timing.
    if backend == Backend::Sqlite {
        return;
    }
    let Some(w) = world_with(backend, |c| {
        c.no_worker = true;
        c.peers.scheduler_url = None;
    })
    .await
    else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;

    // A separate `sbm worker` process with a one-second lease, whose Message Sender call is
    // answered (accepted) two seconds late.
    w.peers.fail_sends(&[1]);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sbm"))
        .arg("worker")
        .env_clear()
        .env("SECRET_KEY", crate::helpers::TEST_SECRET_KEY)
        .env("DATABASE_URL", w.app.database_url())
        .env("IDENTITY_STORE_URL", w.peers.identity_store_url())
        .env("MESSAGE_SENDER_URL", w.peers.message_sender_url())
        .env("STAGE_BASED_MESSAGING_URL", &w.app.address)
        .env("SBM_PEER_TIMEOUT_MS", "20000")
        .env("SBM_JOB_LEASE_SECS", "1")
        .env("SBM_WORKER_POLL_MS", "20")
        .env("RUST_LOG", "warn")
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("sbm worker starts");
    let signal = |name: &str| {
        let pid = child.id().to_string();
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    w.app
        .call(
            Method::POST,
            &format!("/api/v1/subscriptions/{id}/send"),
            Some(json!({})),
        )
        .await
        .expect(201);
    let pid = child.id().to_string();
    eventually("the worker process holds the send", || async {
        send_job_state(&w).await.is_some_and(|(state, holder)| {
            state == "running" && holder.is_some_and(|h| h.contains(&pid))
        })
    })
    .await;
    signal("-STOP");

    // Its lease runs out; another worker takes the send over and records it.
    let worker = worker_for(&w.app, &w.peers, false);
    eventually("another worker sends and records the message", || async {
        worker.drain().await.unwrap();
        w.subscription(&id).await["next_sequence_number"] == 2
    })
    .await;

    // The paused worker resumes, gets its late 201 and must not record the send again.
    signal("-CONT");
    eventually("the late outcome is discarded with a log line", || async {
        std::fs::read_to_string(log.path()).is_ok_and(|text| text.contains("lost its lease"))
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    let outbounds = w.peers.outbounds();
    assert!(outbounds.len() >= 2, "both workers posted: {outbounds:?}");
    let send_id = &outbounds[0]["metadata"]["sbm_send_id"];
    assert!(
        outbounds
            .iter()
            .all(|o| &o["metadata"]["sbm_send_id"] == send_id),
        "one send id, so the Message Sender counts one message: {outbounds:?}"
    );
    let events = w
        .app
        .get("/api/v1/events/?type=send.succeeded")
        .await
        .expect(200)
        .json();
    assert_eq!(events["count"], 1, "{events}");
    let subscription = w.subscription(&id).await;
    assert_eq!(subscription["next_sequence_number"], 2);
}
