//! The WebSub hub and callback delivery (docs/events.md), black-box: a third party subscribes a
//! fake receiver through `POST /api/v1/hub`, and what the receiver gets and what the management
//! endpoints show are checked against the contract.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use reqwest::Method;
use sbm::config::ServeConfig;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{
    eventually, issue_token, quiet, spawn_app, spawn_app_with, Backend, Reply, TestApp,
};
use crate::receiver::{Answer, Receiver, Verify};

mod delivery;
mod management;
mod retries;
mod validation;
mod verification;

// ---- shared helpers (also used by events.rs) ----

/// The configuration every test with a loopback receiver needs: loopback allowed, no jitter.
pub fn allow_loopback(config: &mut ServeConfig) {
    config.events.callback_allowed_networks = vec!["127.0.0.0/8".into()];
    config.events.retry_jitter = 0.0;
}

/// An app that may call back to loopback receivers, with the configuration adjusted further.
pub async fn spawn_hub_app(
    backend: Backend,
    adjust: impl FnOnce(&mut ServeConfig),
) -> Option<TestApp> {
    spawn_app_with(backend, |config| {
        allow_loopback(config);
        adjust(config);
    })
    .await
}

/// `POST /api/v1/hub` with a form body, as the holder of `token`.
pub async fn hub_as(app: &TestApp, token: &str, fields: &[(&str, &str)]) -> Reply {
    let request = app
        .client
        .post(app.url("/api/v1/hub"))
        .header("Authorization", format!("Token {token}"))
        .form(fields);
    app.send(request).await
}

/// `POST /api/v1/hub` with a form body, as the admin.
pub async fn hub(app: &TestApp, fields: &[(&str, &str)]) -> Reply {
    hub_as(app, &app.token, fields).await
}

/// Asks to subscribe `callback` to `topic` (plus any extra fields); returns the reply.
pub async fn subscribe(
    app: &TestApp,
    topic: &str,
    callback: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut fields = vec![
        ("hub.mode", "subscribe"),
        ("hub.topic", topic),
        ("hub.callback", callback),
    ];
    fields.extend_from_slice(extra);
    hub(app, &fields).await
}

/// Subscribes, waits until the subscription is verified and active, and returns the callback.
pub async fn subscribe_active(
    app: &TestApp,
    topic: &str,
    callback: &str,
    extra: &[(&str, &str)],
) -> Value {
    subscribe(app, topic, callback, extra).await.expect(202);
    callback_in_state(app, topic, callback, "active").await
}

/// Subscribes `receiver`'s `/hook` to `schedule.*`, waits until it is active, and returns the
/// callback's id as it goes in a path.
pub async fn hook_schedules(app: &TestApp, receiver: &Receiver) -> String {
    let callback = subscribe_active(app, "schedule.*", &receiver.url("/hook"), &[]).await;
    plain(&callback["id"])
}

/// Where a callback delivers to, as the management API shows it.
pub fn url_of(callback: &Value) -> &str {
    callback["callback"].as_str().unwrap_or_default()
}

/// Every callback the admin sees.
pub async fn callbacks(app: &TestApp) -> Vec<Value> {
    let list = app
        .get("/api/v1/callbacks/?limit=1000")
        .await
        .expect(200)
        .json();
    list["results"].as_array().cloned().unwrap_or_default()
}

/// The callback subscribed for (topic, callback URL), if any.
pub async fn find_callback(app: &TestApp, topic: &str, callback: &str) -> Option<Value> {
    callbacks(app)
        .await
        .into_iter()
        .find(|c| c["topic"] == topic && url_of(c) == callback)
}

/// Waits until the (topic, callback URL) subscription is in `state`, and returns it.
pub async fn callback_in_state(app: &TestApp, topic: &str, callback: &str, state: &str) -> Value {
    eventually(&format!("the callback for {topic} is {state}"), || async {
        find_callback(app, topic, callback)
            .await
            .is_some_and(|c| c["state"] == state)
    })
    .await;
    find_callback(app, topic, callback).await.unwrap()
}

pub async fn callback_state(app: &TestApp, id: &str) -> String {
    app.get(&format!("/api/v1/callbacks/{id}/"))
        .await
        .expect(200)
        .json()["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A callback's deliveries (newest first), with an optional query such as `state=failed`.
pub async fn deliveries_of(app: &TestApp, callback_id: &str, query: &str) -> Vec<Value> {
    let list = app
        .get(&format!(
            "/api/v1/callbacks/{callback_id}/deliveries/?limit=1000&{query}"
        ))
        .await
        .expect(200)
        .json();
    list["results"].as_array().cloned().unwrap_or_default()
}

/// One delivery with its attempt log.
pub async fn delivery(app: &TestApp, id: &Value) -> Value {
    app.get(&format!("/api/v1/deliveries/{}/", plain(id)))
        .await
        .expect(200)
        .json()
}

/// The attempts logged for a delivery, oldest first.
pub fn attempt_log(delivery: &Value) -> Vec<Value> {
    let mut log = delivery["log"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("a delivery has its attempt log: {delivery}"));
    log.sort_by_key(|a| time(&a["attempted_at"]));
    log
}

/// Waits until the callback has exactly one delivery and it is in `state`; returns it (with its
/// attempt log).
pub async fn only_delivery_in_state(app: &TestApp, callback_id: &str, state: &str) -> Value {
    eventually(&format!("the delivery is {state}"), || async {
        let list = deliveries_of(app, callback_id, "").await;
        list.len() == 1 && list[0]["state"] == state
    })
    .await;
    let list = deliveries_of(app, callback_id, "").await;
    delivery(app, &list[0]["id"]).await
}

/// A JSON id (number or string) as it goes in a path.
pub fn plain(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not a time: {value}")),
    )
    .unwrap_or_else(|e| panic!("not RFC 3339: {value}: {e}"))
    .with_timezone(&Utc)
}

pub fn seconds_between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> f64 {
    (later - earlier).num_milliseconds() as f64 / 1000.0
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The `webhook-signature` a receiver expects, per docs/events.md ("Verifying a delivery").
fn standard_webhooks_signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key, &signed))
    )
}

fn field_errors(reply: Reply, field: &str) -> Value {
    let body = reply.expect(400).json();
    assert!(
        body[field].is_array(),
        "expected a field error for {field}: {body}"
    );
    body
}
