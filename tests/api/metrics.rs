//! The original's metrics pushed to the Go Metrics API, the `/api/metrics/` helpers, and the
//! Prometheus exposition.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app_with, use_peers, Backend, TestApp};
use crate::on_both_backends;
use crate::peers::FakePeers;

on_both_backends!(
    creations_and_sends_are_pushed_as_the_original_named_them,
    a_failing_metrics_api_is_retried_and_never_holds_up_a_send,
    the_scheduled_metrics_are_listed_and_fired_on_request,
    prometheus_exposition_counts_requests_sends_and_jobs,
);

const IDENTITY: &str = "3f4b1c2e-7a1d-4c55-9d3e-0a1b2c3d4e5f";

async fn app_with_metrics(backend: Backend, basic: bool) -> Option<(TestApp, FakePeers)> {
    let peers = FakePeers::start().await;
    let app = spawn_app_with(backend, |c| {
        use_peers(c, &peers);
        c.peers.scheduler_url = None;
        c.metrics.metrics_url = Some(peers.metrics_url());
        c.metrics.flush_secs = 1;
        if basic {
            c.metrics.metrics_auth_user = Some("sbm".into());
            c.metrics.metrics_auth_password = Some("secret".into());
        } else {
            c.metrics.metrics_auth_token = Some("metrics-token".into());
        }
    })
    .await?;
    peers.add_address(IDENTITY, "+27820000123");
    Some((app, peers))
}

/// Sums each metric over every push so far.
fn pushed(peers: &FakePeers) -> serde_json::Map<String, Value> {
    let mut totals = serde_json::Map::new();
    for push in peers.metric_pushes() {
        for (name, value) in push.as_object().unwrap() {
            let entry = totals.entry(name.clone()).or_insert(json!(0.0));
            *entry = if name.ends_with(".last") {
                value.clone()
            } else {
                json!(entry.as_f64().unwrap() + value.as_f64().unwrap())
            };
        }
    }
    totals
}

async fn subscribe_and_send(app: &TestApp, name: &str) -> String {
    let set = app.create_message_set(name, "text").await;
    app.create_message(set, 1, "eng_ZA", "one").await;
    app.create_message(set, 2, "eng_ZA", "two").await;
    let body = json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA"});
    let id = app
        .post("/api/v1/subscriptions/", body)
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.call(
        Method::POST,
        &format!("/api/v1/subscriptions/{id}/send"),
        Some(json!({})),
    )
    .await
    .expect(201);
    id
}

async fn creations_and_sends_are_pushed_as_the_original_named_them(backend: Backend) {
    let Some((app, peers)) = app_with_metrics(backend, false).await else {
        return;
    };
    subscribe_and_send(&app, "momconnect.prebirth").await;
    eventually("the send is counted", || async {
        pushed(&peers).contains_key("message.text.sum")
    })
    .await;
    let totals = pushed(&peers);
    for (name, value) in [
        ("subscriptions.created.sum", 1.0),
        ("subscriptions.message_set.momconnect_prebirth.sum", 1.0),
        ("subscriptions.language.eng_ZA.sum", 1.0),
        ("subscriptions.message_format.text.sum", 1.0),
        ("message.text.sum", 1.0),
        ("message.text.momconnect_prebirth.sum", 1.0),
    ] {
        assert_eq!(
            totals.get(name).and_then(Value::as_f64),
            Some(value),
            "{name} in {totals:?}"
        );
    }
    assert_eq!(
        totals
            .get("subscriptions.message_set.momconnect_prebirth.total.last")
            .and_then(Value::as_f64),
        Some(1.0)
    );
    let request = &peers.requests("POST", "/metrics/")[0];
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer metrics-token")
    );
    // The fake refuses any name without an aggregator suffix, so every push above passed that.
}

async fn a_failing_metrics_api_is_retried_and_never_holds_up_a_send(backend: Backend) {
    let Some((app, peers)) = app_with_metrics(backend, true).await else {
        return;
    };
    peers.fail_metrics(&[500, 503]);
    let id = subscribe_and_send(&app, "set").await;
    eventually("the send goes out", || async {
        peers.outbounds().len() == 1
    })
    .await;
    eventually("the subscription advances", || async {
        app.get(&format!("/api/v1/subscriptions/{id}/"))
            .await
            .json()["next_sequence_number"]
            == 2
    })
    .await;
    eventually("the metrics arrive after the failures", || async {
        pushed(&peers).contains_key("message.text.sum")
    })
    .await;
    let totals = pushed(&peers);
    assert_eq!(
        totals["subscriptions.created.sum"].as_f64(),
        Some(1.0),
        "counted once, not once per try"
    );
    let expected = format!("Basic {}", base64_of("sbm:secret"));
    assert_eq!(
        peers.requests("POST", "/metrics/")[0]
            .authorization
            .as_deref(),
        Some(expected.as_str())
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn the_scheduled_metrics_are_listed_and_fired_on_request(backend: Backend) {
    let Some((app, peers)) = app_with_metrics(backend, false).await else {
        return;
    };
    subscribe_and_send(&app, "pregnancy").await;
    let available = app.get("/api/metrics/").await.expect(200).json();
    let names: Vec<&str> = available["metrics_available"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in [
        "subscriptions.active.last",
        "subscriptions.broken.last",
        "subscriptions.pregnancy.active.last",
        "subscriptions.send.estimate.0.last",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    app.send(app.client.get(app.url("/api/metrics/")))
        .await
        .expect(401);

    let reply = app
        .call(Method::POST, "/api/metrics/", None)
        .await
        .expect(200);
    assert_eq!(reply.json(), json!({"scheduled_metrics_initiated": true}));
    eventually("the scheduled metrics are pushed", || async {
        pushed(&peers).contains_key("subscriptions.active.last")
    })
    .await;
    let totals = pushed(&peers);
    assert_eq!(totals["subscriptions.active.last"].as_f64(), Some(1.0));
    assert_eq!(totals["subscriptions.created.last"].as_f64(), Some(1.0));
    assert_eq!(
        totals["subscriptions.pregnancy.active.last"].as_f64(),
        Some(1.0)
    );
    // The fixture schedule sends on Mondays (0) and Thursdays (3).
    assert_eq!(
        totals["subscriptions.send.estimate.0.last"].as_f64(),
        Some(1.0)
    );
    assert_eq!(
        totals["subscriptions.send.estimate.1.last"].as_f64(),
        Some(0.0)
    );
    assert_eq!(
        totals["subscriptions.send.estimate.3.last"].as_f64(),
        Some(1.0)
    );
}

async fn prometheus_exposition_counts_requests_sends_and_jobs(backend: Backend) {
    let Some((app, peers)) = app_with_metrics(backend, false).await else {
        return;
    };
    subscribe_and_send(&app, "set").await;
    eventually("the send goes out", || async {
        peers.outbounds().len() == 1
    })
    .await;
    eventually("the send is counted", || async {
        app.send(app.client.get(app.url("/metrics")))
            .await
            .text()
            .contains("outcome=\"ok\"")
    })
    .await;
    let text = app
        .send(app.client.get(app.url("/metrics")))
        .await
        .expect(200)
        .text();
    for needle in [
        "sbm_http_requests_total{",
        "route=\"/api/v1/subscriptions\"",
        "sbm_sends_total{",
        "outcome=\"ok\"",
        "sbm_jobs{state=\"pending\"}",
        "sbm_job_oldest_pending_age_seconds",
        "sbm_job_duration_seconds_bucket",
        "sbm_peer_request_duration_seconds_bucket",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
}
