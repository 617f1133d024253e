//! Lifecycle events (docs/events.md "Events"): which changes write which events, what they carry,
//! and how `GET /api/v1/events/` lists and filters them.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::quiet;
use crate::helpers::{eventually, spawn_app, spawn_app_with, use_peers, Backend, TestApp};
use crate::hub::{plain, time};
use crate::on_both_backends;
use crate::peers::FakePeers;
use crate::receiver::{Answer, Receiver};

on_both_backends!(
    a_schedules_create_update_and_delete_are_events_in_sequence,
    message_set_message_and_binary_content_changes_are_events_with_the_api_representation,
    a_refused_change_writes_no_event,
    subscription_changes_write_subscription_events,
    a_send_accepted_by_the_message_sender_writes_send_succeeded,
    completing_a_set_writes_completed_and_creates_the_next_sets_subscription,
    an_identity_without_an_address_writes_send_errored,
    a_send_that_fails_every_attempt_writes_send_failed_once,
    events_filter_by_type_topic_object_and_time,
    events_are_listed_oldest_first_in_pages,
    one_event_is_read_by_its_id,
);

const IDENTITY: &str = "3f4b1c2e-7a1d-4c55-9d3e-0a1b2c3d4e5f";
const MSISDN: &str = "+27820000123";

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Every event matching `query`, oldest first.
async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let list = app
        .get(&format!("/api/v1/events/?limit=1000&{query}"))
        .await
        .expect(200)
        .json();
    list["results"].as_array().cloned().unwrap_or_default()
}

async fn events_of(app: &TestApp, object_type: &str, object_id: &str) -> Vec<Value> {
    events(
        app,
        &format!("object_type={object_type}&object_id={}", encode(object_id)),
    )
    .await
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// The event's data without the `changed` list that updates add.
fn without_changed(data: &Value) -> Value {
    let mut data = data.clone();
    if let Some(object) = data.as_object_mut() {
        object.remove("changed");
    }
    data
}

fn changed(event: &Value) -> Vec<&str> {
    event["data"]["changed"]
        .as_array()
        .unwrap_or_else(|| panic!("changed is a list: {event}"))
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect()
}

/// Checks what every event has, whatever its type.
fn assert_well_formed(event: &Value) {
    let id = event["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id: {event}"));
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{event}");
    let timestamp = event["timestamp"].as_str().unwrap();
    time(&event["timestamp"]);
    let fraction = timestamp
        .split_once('.')
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).count());
    assert_eq!(fraction, Some(6), "microseconds: {timestamp}");
    assert!(event["object"]["type"].is_string(), "{event}");
    assert!(
        event["object"]["id"].is_string(),
        "the object id is a string: {event}"
    );
    assert!(
        event["sequence"].as_i64().is_some_and(|s| s >= 1),
        "{event}"
    );
    assert!(event["data"].is_object(), "{event}");
}

/// The events of one object are numbered 1, 2, 3… in the order they are listed.
fn assert_sequenced(events: &[Value]) {
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    assert_eq!(sequences, expected, "{events:?}");
}

// ---- content ----

async fn a_schedules_create_update_and_delete_are_events_in_sequence(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = app.create_schedule().await;
    let path = format!("/api/v1/schedule/{id}/");
    let as_created = app.get(&path).await.expect(200).json();
    app.patch(&path, json!({"hour": "9"})).await.expect(200);
    let as_updated = app.get(&path).await.expect(200).json();
    app.delete(&path).await.expect(204);

    let list = events_of(&app, "schedule", &id.to_string()).await;
    assert_eq!(
        types(&list),
        ["schedule.created", "schedule.updated", "schedule.deleted"]
    );
    assert_sequenced(&list);
    for event in &list {
        assert_well_formed(event);
        assert_eq!(
            event["object"],
            json!({"type": "schedule", "id": id.to_string()})
        );
    }
    assert_eq!(list[0]["data"], as_created);
    assert_eq!(without_changed(&list[1]["data"]), as_updated);
    assert_eq!(list[2]["data"], as_updated, "the schedule as it was");
    let ids: HashSet<&str> = list.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "every event has its own id");
    let times: Vec<_> = list.iter().map(|e| time(&e["timestamp"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{list:?}");
}

async fn message_set_message_and_binary_content_changes_are_events_with_the_api_representation(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let set_path = format!("/api/v1/messageset/{set}/");
    let set_created = app.get(&set_path).await.expect(200).json();
    app.patch(&set_path, json!({"notes": "edited"}))
        .await
        .expect(200);
    let set_updated = app.get(&set_path).await.expect(200).json();

    let message = app.create_message(set, 1, "eng_ZA", "Week 1").await;
    let message_path = format!("/api/v1/message/{message}/");
    let message_created = app.get(&message_path).await.expect(200).json();
    app.patch(&message_path, json!({"text_content": "Week one"}))
        .await
        .expect(200);
    let message_updated = app.get(&message_path).await.expect(200).json();
    app.delete(&message_path).await.expect(204);
    app.delete(&set_path).await.expect(204);

    let audio = app.upload_audio("week1.mp3", b"ID3 audio").await;
    let audio_id = audio["id"].as_i64().unwrap();
    let audio_path = format!("/api/v1/binarycontent/{audio_id}/");
    let audio_shown = app.get(&audio_path).await.expect(200).json();
    app.delete(&audio_path).await.expect(204);

    let list = events_of(&app, "messageset", &set.to_string()).await;
    assert_eq!(
        types(&list),
        [
            "messageset.created",
            "messageset.updated",
            "messageset.deleted"
        ]
    );
    assert_sequenced(&list);
    assert_eq!(list[0]["data"], set_created);
    assert_eq!(without_changed(&list[1]["data"]), set_updated);
    assert_eq!(list[2]["data"], set_updated);

    let list = events_of(&app, "message", &message.to_string()).await;
    assert_eq!(
        types(&list),
        ["message.created", "message.updated", "message.deleted"]
    );
    assert_sequenced(&list);
    assert_eq!(list[0]["data"], message_created);
    assert_eq!(without_changed(&list[1]["data"]), message_updated);
    assert_eq!(list[2]["data"], message_updated);

    let list = events_of(&app, "binarycontent", &audio_id.to_string()).await;
    assert_eq!(
        types(&list),
        ["binarycontent.created", "binarycontent.deleted"]
    );
    assert_sequenced(&list);
    assert_eq!(list[0]["data"], audio_shown);
    assert_eq!(list[0]["data"], audio);
    assert_eq!(list[1]["data"], audio_shown);

    let all = events(&app, "").await;
    for event in &all {
        assert_well_formed(event);
    }
    let ids: HashSet<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "event ids are unique");
}

async fn a_refused_change_writes_no_event(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let schedule = app.get(&format!("/api/v1/messageset/{set}/")).await.json()["default_schedule"]
        .as_i64()
        .unwrap();
    let audio = app.upload_audio("a.mp3", b"ID3").await;
    app.post(
        "/api/v1/message/",
        json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA", "binary_content": audio["id"]}),
    )
    .await
    .expect(201);
    let before = events(&app, "").await;

    app.delete(&format!("/api/v1/schedule/{schedule}/"))
        .await
        .expect(409);
    app.delete(&format!("/api/v1/binarycontent/{}/", audio["id"]))
        .await
        .expect(409);
    app.post("/api/v1/schedule/", json!({"minute": "60"}))
        .await
        .expect(400);
    app.post(
        "/api/v1/message/",
        json!({"messageset": 999999, "sequence_number": 1, "lang": "eng_ZA", "text_content": "x"}),
    )
    .await
    .expect(400);
    app.patch(
        &format!("/api/v1/schedule/{schedule}/"),
        json!({"hour": "24"}),
    )
    .await
    .expect(400);
    app.post(
        "/api/v1/subscriptions/",
        json!({"identity": "nope", "messageset": set, "lang": "eng_ZA"}),
    )
    .await
    .expect(400);

    let after = events(&app, "").await;
    assert_eq!(after, before, "no event for a change that was refused");
    assert!(events(&app, "type=schedule.deleted").await.is_empty());
    assert!(events(&app, "type=binarycontent.deleted").await.is_empty());
}

// ---- subscriptions ----

async fn subscription_changes_write_subscription_events(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let created = app
        .post(
            "/api/v1/subscriptions/",
            json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA"}),
        )
        .await
        .expect(201)
        .json();
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/subscriptions/{id}/");
    let shown = app.get(&path).await.expect(200).json();

    let list = events_of(&app, "subscription", &id).await;
    assert_eq!(types(&list), ["subscription.created"]);
    assert_eq!(list[0]["data"], shown);
    assert_eq!(list[0]["object"], json!({"type": "subscription", "id": id}));

    app.patch(&path, json!({"lang": "zul_ZA"}))
        .await
        .expect(200);
    let relabelled = app.get(&path).await.expect(200).json();
    let list = events_of(&app, "subscription", &id).await;
    assert_eq!(
        types(&list),
        ["subscription.created", "subscription.updated"]
    );
    assert!(changed(&list[1]).contains(&"lang"), "{}", list[1]);
    assert!(!changed(&list[1]).contains(&"active"), "{}", list[1]);
    assert_eq!(without_changed(&list[1]["data"]), relabelled);

    app.patch(&path, json!({"active": false})).await.expect(200);
    let deactivated = app.get(&path).await.expect(200).json();
    let list = events_of(&app, "subscription", &id).await;
    assert_eq!(list.len(), 4, "{list:?}");
    let mut last_two = types(&list[2..]);
    last_two.sort();
    assert_eq!(
        last_two,
        ["subscription.deactivated", "subscription.updated"]
    );
    let updated = list[2..]
        .iter()
        .find(|e| e["type"] == "subscription.updated")
        .unwrap();
    assert!(changed(updated).contains(&"active"), "{updated}");
    assert_eq!(without_changed(&updated["data"]), deactivated);
    let deactivation = list[2..]
        .iter()
        .find(|e| e["type"] == "subscription.deactivated")
        .unwrap();
    assert_eq!(without_changed(&deactivation["data"]), deactivated);

    // Deactivating what is already inactive is no deactivation.
    app.patch(&path, json!({"active": false})).await.expect(200);
    assert_eq!(events(&app, "type=subscription.deactivated").await.len(), 1);

    let last_shown = app.get(&path).await.expect(200).json();
    app.delete(&path).await.expect(204);
    let list = events_of(&app, "subscription", &id).await;
    let deleted = list.last().unwrap();
    assert_eq!(deleted["type"], "subscription.deleted");
    assert_eq!(deleted["data"], last_shown, "the subscription as it was");
    assert_sequenced(&list);
    for event in &list {
        assert_well_formed(event);
    }
}

// ---- sends ----

struct Sending {
    app: TestApp,
    peers: FakePeers,
}

/// An app with the fake peers but without a Seed Scheduler: sends are asked for by POSTing to
/// the subscription's send endpoint.
async fn sending(
    backend: Backend,
    adjust: impl FnOnce(&mut sbm::config::ServeConfig),
) -> Option<Sending> {
    let peers = FakePeers::start().await;
    let app = spawn_app_with(backend, |config| {
        use_peers(config, &peers);
        config.peers.scheduler_url = None;
        adjust(config);
    })
    .await?;
    peers.add_address(IDENTITY, MSISDN);
    Some(Sending { app, peers })
}

impl Sending {
    async fn text_set(&self, name: &str, count: i64) -> i64 {
        let set = self.app.create_message_set(name, "text").await;
        for n in 1..=count {
            self.app
                .create_message(set, n, "eng_ZA", &format!("Message {n}"))
                .await;
        }
        set
    }

    async fn subscribe(&self, identity: &str, set: i64) -> String {
        self.app
            .post(
                "/api/v1/subscriptions/",
                json!({"identity": identity, "messageset": set, "lang": "eng_ZA"}),
            )
            .await
            .expect(201)
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn send(&self, id: &str) {
        self.app
            .call(
                Method::POST,
                &format!("/api/v1/subscriptions/{id}/send"),
                Some(json!({})),
            )
            .await
            .expect(201);
    }

    async fn one_event_of_type(&self, event_type: &str) -> Value {
        eventually(&format!("a {event_type} event"), || async {
            !events(&self.app, &format!("type={event_type}"))
                .await
                .is_empty()
        })
        .await;
        quiet(&self.app).await;
        let list = events(&self.app, &format!("type={event_type}")).await;
        assert_eq!(list.len(), 1, "{list:?}");
        list[0].clone()
    }
}

/// A message set in event data: its id, or the set itself.
fn set_id(value: &Value) -> Value {
    if value.is_object() {
        value["id"].clone()
    } else {
        value.clone()
    }
}

async fn a_send_accepted_by_the_message_sender_writes_send_succeeded(backend: Backend) {
    // The receiver stands in for the Message Sender, so the test knows the id it returns.
    let sender = Receiver::start().await;
    sender.answer_by_default(
        Answer::status(201)
            .header("content-type", "application/json")
            .body(r#"{"id": "ms-outbound-42", "attempts": 0}"#),
    );
    let sender_url = sender.url("/sender/api/v1");
    let Some(w) = sending(backend, |c| c.peers.message_sender_url = Some(sender_url)).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(IDENTITY, set).await;
    w.send(&id).await;
    let event = w.one_event_of_type("send.succeeded").await;
    assert_well_formed(&event);
    assert_eq!(event["object"], json!({"type": "subscription", "id": id}));

    let outbounds = sender.deliveries_to("/sender/api/v1/outbound/");
    assert_eq!(outbounds.len(), 1);
    let data = &event["data"];
    assert_eq!(data["outbound_id"], "ms-outbound-42");
    assert_eq!(
        data["send_id"],
        outbounds[0].json["metadata"]["sbm_send_id"]
    );
    assert_eq!(data["subscription"]["id"], id.as_str());
    assert_eq!(
        data["subscription"]["next_sequence_number"], 2,
        "the subscription as after the send"
    );
    assert_eq!(set_id(&data["messageset"]), set);
    assert_eq!(data["sequence_number"], 1);
    assert_eq!(data["resend"], false);

    // The advance is reported by send.succeeded itself (its subscription is as after the
    // send), not by a second event per send.
    let own = events_of(&w.app, "subscription", &id).await;
    assert_eq!(
        types(&own),
        ["subscription.created", "send.succeeded"],
        "{own:?}"
    );
    assert_sequenced(&own);
    assert!(
        w.peers.outbounds().is_empty(),
        "the fake Message Sender was not used"
    );
}

async fn completing_a_set_writes_completed_and_creates_the_next_sets_subscription(
    backend: Backend,
) {
    let Some(w) = sending(backend, |_| {}).await else {
        return;
    };
    let next = w.text_set("next", 2).await;
    let first = w.text_set("first", 1).await;
    w.app
        .patch(
            &format!("/api/v1/messageset/{first}/"),
            json!({"next_set": next}),
        )
        .await
        .expect(200);
    let id = w.subscribe(IDENTITY, first).await;
    w.send(&id).await;
    let completed = w.one_event_of_type("subscription.completed").await;
    assert_eq!(completed["object"]["id"], id.as_str());
    assert_eq!(completed["data"]["completed"], true);
    let created: Vec<Value> = events(&w.app, "type=subscription.created")
        .await
        .into_iter()
        .filter(|e| e["object"]["id"] != id.as_str())
        .collect();
    assert_eq!(created.len(), 1, "the next set's subscription: {created:?}");
    assert_eq!(created[0]["data"]["messageset"], next);
    assert_eq!(created[0]["data"]["identity"], IDENTITY);

    // The send, then the completion it caused, in that order.
    let own = events_of(&w.app, "subscription", &id).await;
    assert_eq!(
        types(&own),
        [
            "subscription.created",
            "send.succeeded",
            "subscription.completed"
        ],
        "{own:?}"
    );
    assert_sequenced(&own);
}

async fn an_identity_without_an_address_writes_send_errored(backend: Backend) {
    let Some(w) = sending(backend, |_| {}).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let nobody = "00000000-0000-4000-8000-0000000000aa";
    let id = w.subscribe(nobody, set).await;
    w.send(&id).await;
    let event = w.one_event_of_type("send.errored").await;
    assert_well_formed(&event);
    assert_eq!(event["object"], json!({"type": "subscription", "id": id}));
    let data = &event["data"];
    assert_eq!(data["reason"], "errored");
    assert_eq!(data["subscription"]["id"], id.as_str());
    assert!(
        data["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{data}"
    );
    let failed = w.app.get("/api/v1/failed-tasks/").await.expect(200).json();
    assert_eq!(data["task_id"], failed["results"][0]["task_id"], "{failed}");
    assert_eq!(data["attempts"], failed["results"][0]["attempts"]);
    assert!(events(&w.app, "type=send.succeeded").await.is_empty());
    assert!(events(&w.app, "type=send.failed").await.is_empty());
}

async fn a_send_that_fails_every_attempt_writes_send_failed_once(backend: Backend) {
    let Some(w) = sending(backend, |_| {}).await else {
        return;
    };
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(IDENTITY, set).await;
    w.peers.sender_down(Some(500));
    w.send(&id).await;
    let event = w.one_event_of_type("send.failed").await;
    assert_well_formed(&event);
    let data = &event["data"];
    assert_eq!(data["subscription"]["id"], id.as_str());
    assert_eq!(data["subscription"]["next_sequence_number"], 1);
    assert_eq!(data["reason"], "http_error.500");
    assert_eq!(data["attempts"], 3, "every attempt the worker makes");
    assert!(data["error"].is_string(), "{data}");
    let failed = w.app.get("/api/v1/failed-tasks/").await.expect(200).json();
    assert_eq!(failed["count"], 1);
    assert_eq!(data["task_id"], failed["results"][0]["task_id"]);
    assert!(events(&w.app, "type=send.succeeded").await.is_empty());
    assert!(events(&w.app, "type=send.errored").await.is_empty());
}

// ---- listing ----

async fn events_filter_by_type_topic_object_and_time(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await; // schedule.created, messageset.created
    let subscription = app
        .post(
            "/api/v1/subscriptions/",
            json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA"}),
        )
        .await
        .expect(201)
        .json();
    let id = subscription["id"].as_str().unwrap();
    app.patch(
        &format!("/api/v1/subscriptions/{id}/"),
        json!({"lang": "zul_ZA"}),
    )
    .await
    .expect(200);
    app.create_schedule().await;

    let all = events(&app, "").await;
    assert_eq!(
        types(&all),
        [
            "schedule.created",
            "messageset.created",
            "subscription.created",
            "subscription.updated",
            "schedule.created"
        ]
    );
    assert_eq!(app.count("/api/v1/events/").await, 5);

    assert_eq!(
        types(&events(&app, "type=subscription.created").await),
        ["subscription.created"]
    );
    assert!(
        events(&app, "type=subscription").await.is_empty(),
        "type is exact"
    );
    assert!(events(&app, "type=no.such.type").await.is_empty());
    for topic in ["subscription.*", "subscription", "subscription."] {
        assert_eq!(
            types(&events(&app, &format!("topic={}", encode(topic))).await),
            ["subscription.created", "subscription.updated"],
            "topic {topic}"
        );
    }
    assert_eq!(events(&app, "topic=*").await.len(), 5);
    assert_eq!(
        types(&events(&app, &format!("topic={}", encode("schedule.created"))).await),
        ["schedule.created", "schedule.created"]
    );
    app.get("/api/v1/events/?topic=a..b").await.expect(400);

    assert_eq!(
        types(&events_of(&app, "messageset", &set.to_string()).await),
        ["messageset.created"]
    );
    assert_eq!(events(&app, "object_type=schedule").await.len(), 2);
    assert_eq!(
        events(&app, &format!("object_type=subscription&object_id={id}"))
            .await
            .len(),
        2
    );

    // since ≤ timestamp < until
    let pivot = all[2]["timestamp"].as_str().unwrap();
    let pivot_time = time(&all[2]["timestamp"]);
    let since = events(&app, &format!("since={}", encode(pivot))).await;
    let expected_since = all
        .iter()
        .filter(|e| time(&e["timestamp"]) >= pivot_time)
        .count();
    assert_eq!(since.len(), expected_since);
    assert!(
        since.iter().any(|e| e["id"] == all[2]["id"]),
        "since is inclusive"
    );
    let until = events(&app, &format!("until={}", encode(pivot))).await;
    let expected_until = all
        .iter()
        .filter(|e| time(&e["timestamp"]) < pivot_time)
        .count();
    assert_eq!(until.len(), expected_until);
    assert!(
        until.iter().all(|e| e["id"] != all[2]["id"]),
        "until is exclusive"
    );
    assert_eq!(
        events(
            &app,
            "since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z"
        )
        .await
        .len(),
        0
    );
    assert_eq!(events(&app, "since=2000-01-01T00:00:00Z").await.len(), 5);
    let combined = events(
        &app,
        &format!("topic=subscription.*&since={}", encode(pivot)),
    )
    .await;
    assert!(combined
        .iter()
        .all(|e| e["type"].as_str().unwrap().starts_with("subscription.")));
    app.get("/api/v1/events/?since=yesterday").await.expect(400);
    app.get("/api/v1/events/?until=soon").await.expect(400);
    app.send(app.client.get(app.url("/api/v1/events/")))
        .await
        .expect(401);
}

async fn events_are_listed_oldest_first_in_pages(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut schedules = Vec::new();
    for _ in 0..5 {
        schedules.push(app.create_schedule().await.to_string());
    }
    let page = app.get("/api/v1/events/?limit=2").await.expect(200).json();
    assert_eq!(page["count"], 5);
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert!(page["next"].is_string(), "{page}");

    let mut walked = Vec::new();
    let mut next = Some(app.url("/api/v1/events/?limit=2"));
    while let Some(url) = next {
        let request = app
            .client
            .get(&url)
            .header("Authorization", format!("Token {}", app.token));
        let page = app.send(request).await.expect(200).json();
        walked.extend(page["results"].as_array().unwrap().iter().cloned());
        next = page["next"].as_str().map(str::to_string);
    }
    let objects: Vec<String> = walked
        .iter()
        .map(|e| e["object"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(objects, schedules, "oldest first, each once");

    let last = app
        .get("/api/v1/events/?limit=2&offset=4")
        .await
        .expect(200)
        .json();
    assert_eq!(last["results"].as_array().unwrap().len(), 1);
    assert!(last["next"].is_null());
    assert_eq!(last["results"][0], walked[4]);
}

async fn one_event_is_read_by_its_id(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.create_schedule().await;
    let listed = events(&app, "").await;
    let event = &listed[0];
    let id = plain(&event["id"]);
    let shown = app
        .get(&format!("/api/v1/events/{id}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(&shown, event);
    app.get(&format!("/api/v1/events/{id}")).await.expect(200);
    let deliveries = app
        .get(&format!("/api/v1/events/{id}/deliveries/"))
        .await
        .expect(200)
        .json();
    assert_eq!(deliveries["count"], 0, "no callback, no delivery");

    app.get("/api/v1/events/00000000-0000-4000-8000-000000000000/")
        .await
        .expect(404);
    app.get("/api/v1/events/not-a-uuid/").await.expect(404);
    app.get("/api/v1/events/00000000-0000-4000-8000-000000000000/deliveries/")
        .await
        .expect(404);
}
