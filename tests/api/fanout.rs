//! Event fan-out under races and hostile callers (step 6): a callback gets only events
//! committed after it became active, a stored value too deep to parse stops nothing, deliveries
//! are their callback owner's, and a WebSub subscription belongs to the user who made it.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::quiet;
use crate::helpers::{eventually, issue_token, nested, serve_config, Backend, TestApp};
use crate::hub::{callback_in_state, hub_as, spawn_hub_app, subscribe_active};
use crate::on_both_backends;
use crate::receiver::Receiver;

on_both_backends!(
    events_committed_before_a_callback_became_active_never_reach_it,
    a_stored_value_too_deep_to_parse_stops_no_list_delivery_or_fetch,
    an_events_deliveries_are_shown_to_their_callbacks_owner_only,
    a_websub_subscription_belongs_to_the_user_who_made_it,
);

/// A worker of the test's own, so that it decides when verification and fan-out happen.
fn own_worker(app: &TestApp) -> Arc<sbm::runtime::JobContext> {
    let mut config = serve_config(std::env::temp_dir());
    crate::hub::allow_loopback(&mut config);
    Arc::new(
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
    )
}

async fn create_schedule_at(app: &TestApp, hour: u32) -> i64 {
    app.post(
        "/api/v1/schedule/",
        json!({"minute": "0", "hour": hour.to_string()}),
    )
    .await
    .expect(201)
    .json()["id"]
        .as_i64()
        .unwrap()
}

async fn events_committed_before_a_callback_became_active_never_reach_it(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.no_worker = true).await else {
        return;
    };
    let ctx = own_worker(&app);
    let jobs = sbm::runtime::Worker::new(ctx.clone());
    let receiver = Receiver::start().await;
    for round in 0..5 {
        let path = format!("/hook{round}");
        let url = receiver.url(&path);
        crate::hub::subscribe(&app, "schedule.*", &url, &[])
            .await
            .expect(202);
        // Committed while the subscription waits for its verification; not yet fanned out.
        let before = create_schedule_at(&app, 1).await;
        eventually("the subscription is verified", || async {
            jobs.drain().await.unwrap();
            crate::hub::find_callback(&app, "schedule.*", &url)
                .await
                .is_some_and(|c| c["state"] == "active")
        })
        .await;
        let after = create_schedule_at(&app, 2).await;
        eventually("the event after activation is delivered", || async {
            sbm::callbacks::delivery::spread(&app.db).await.unwrap();
            sbm::runtime::delivery_pass(&ctx, "test").await.unwrap();
            !receiver.deliveries_to(&path).is_empty()
        })
        .await;
        sbm::callbacks::delivery::spread(&app.db).await.unwrap();
        sbm::runtime::delivery_pass(&ctx, "test").await.unwrap();
        let ids: Vec<Value> = receiver
            .deliveries_to(&path)
            .iter()
            .map(|d| d.json["data"]["id"].clone())
            .collect();
        assert_eq!(ids, [json!(after)], "round {round}: not {before}");
    }
}

async fn a_stored_value_too_deep_to_parse_stops_no_list_delivery_or_fetch(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    subscribe_active(&app, "*", &receiver.url("/all"), &[]).await;
    app.post(
        "/api/v1/integration-groups/",
        json!({"name": "feed", "method": "poll", "title": "Feed", "event_types": ["*"]}),
    )
    .await
    .expect(201);
    // A value written before input was bounded: deeper than any JSON reader parses.
    let mut tx = app.db.begin().await.unwrap();
    let poison = sbm::events::Event::new("test.poison", "test", "1", nested(200));
    sbm::effects::record_events(&mut tx, vec![poison])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let later = app.create_schedule().await;

    let events = app.get("/api/v1/events/").await.expect(200).json();
    let types: Vec<&str> = events["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["test.poison", "schedule.created"]);
    assert!(events["results"][0]["data"]["sbm_error"].is_string());
    eventually("the later event is delivered", || async {
        receiver
            .deliveries_to("/all")
            .iter()
            .any(|d| d.json["data"]["id"] == later)
    })
    .await;
    let batch = app
        .get("/api/v1/integration-groups/feed/poll/fetch")
        .await
        .expect(200)
        .json();
    let messages = batch["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{batch}");
    assert!(messages[0]["sbm_error"].is_string(), "set aside, visibly");
    assert_eq!(messages[1]["type"], "schedule.created");
}

async fn an_events_deliveries_are_shown_to_their_callbacks_owner_only(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    subscribe_active(&app, "schedule.*", &receiver.url("/admins"), &[]).await;
    let other = issue_token(&app.db, "other@example.org", false).await;
    app.create_schedule().await;
    eventually("the delivery is made", || async {
        !receiver.deliveries().is_empty()
    })
    .await;
    let event = app.get("/api/v1/events/").await.expect(200).json()["results"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/events/{event}/deliveries/");
    assert_eq!(app.count(&path).await, 1, "an admin sees every delivery");
    let as_other = app
        .client
        .get(app.url(&path))
        .header("Authorization", format!("Token {other}"));
    let page = app.send(as_other).await.expect(200).json();
    assert_eq!(page["count"], 0, "{page}");
}

fn form<'a>(mode: &'a str, url: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("hub.mode", mode),
        ("hub.topic", "schedule.*"),
        ("hub.callback", url),
        ("hub.secret", secret),
    ]
}

async fn own_callbacks(app: &TestApp, token: &str) -> Vec<Value> {
    let request = app
        .client
        .get(app.url("/api/v1/callbacks/"))
        .header("Authorization", format!("Token {token}"));
    app.send(request).await.expect(200).json()["results"]
        .as_array()
        .cloned()
        .unwrap()
}

async fn a_websub_subscription_belongs_to_the_user_who_made_it(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let url = receiver.url("/shared");
    let alice = issue_token(&app.db, "alice@example.org", false).await;
    let bob = issue_token(&app.db, "bob@example.org", false).await;
    let carol = issue_token(&app.db, "carol@example.org", false).await;
    hub_as(&app, &alice, &form("subscribe", &url, "alice-secret"))
        .await
        .expect(202);
    callback_in_state(&app, "schedule.*", &url, "active").await;
    let alices = own_callbacks(&app, &alice).await;
    assert_eq!(alices.len(), 1);

    // Bob's request for the same pair is a subscription of his own.
    hub_as(&app, &bob, &form("subscribe", &url, "bob-secret"))
        .await
        .expect(202);
    eventually("bob's subscription is verified", || async {
        own_callbacks(&app, &bob)
            .await
            .first()
            .is_some_and(|c| c["state"] == "active")
    })
    .await;
    let bobs = own_callbacks(&app, &bob).await;
    assert_ne!(bobs[0]["id"], alices[0]["id"]);
    assert_eq!(
        own_callbacks(&app, &alice).await,
        alices,
        "alice's is unchanged"
    );

    // Each gets their own delivery, signed with their own secret.
    app.create_schedule().await;
    eventually("both deliveries are made", || async {
        receiver.deliveries_to("/shared").len() == 2
    })
    .await;
    let signatures: Vec<String> = receiver
        .deliveries_to("/shared")
        .iter()
        .map(|d| d.header("x-hub-signature").unwrap_or_default().to_string())
        .collect();
    assert_ne!(signatures[0], signatures[1]);

    // Someone else's pair answers an unsubscribe exactly as a pair never subscribed.
    let foreign = hub_as(&app, &carol, &form("unsubscribe", &url, ""))
        .await
        .expect(404);
    let unknown = hub_as(
        &app,
        &carol,
        &form("unsubscribe", "https://example.org/x", ""),
    )
    .await
    .expect(404);
    assert_eq!(foreign.json(), unknown.json());
    // Bob's unsubscribe ends his subscription only.
    hub_as(&app, &bob, &form("unsubscribe", &url, ""))
        .await
        .expect(202);
    eventually("bob's subscription ends", || async {
        own_callbacks(&app, &bob).await[0]["state"] == "unsubscribed"
    })
    .await;
    quiet(&app).await;
    assert_eq!(own_callbacks(&app, &alice).await[0]["state"], "active");
}
