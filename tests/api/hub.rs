//! The WebSub hub and callback delivery (docs/events.md), black-box: a third party subscribes a
//! fake receiver through `POST /api/v1/hub`, and what the receiver gets and what the management
//! endpoints show are checked against the contract.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use reqwest::Method;
use sbm::config::ServeConfig;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{eventually, issue_token, spawn_app, spawn_app_with, Backend, Reply, TestApp};
use crate::on_both_backends;
use crate::receiver::{Answer, Receiver, Verify};

on_both_backends!(
    hub_requests_with_bad_fields_get_400_naming_the_field_and_write_nothing,
    hub_requests_that_are_not_forms_or_not_authenticated_are_refused,
    loopback_and_private_callbacks_are_refused_unless_their_network_is_allowed,
    unsubscribing_a_pair_never_subscribed_gets_404,
    a_verified_subscription_becomes_active_with_its_lease_and_a_hidden_secret,
    leases_default_to_ten_days_and_are_clamped,
    subscribing_again_renews_the_one_subscription,
    a_renewal_that_fails_verification_leaves_the_subscription_active,
    a_callback_that_answers_the_wrong_challenge_is_denied_and_told,
    a_callback_that_answers_404_to_verification_is_denied_and_told,
    a_callback_whose_lease_ended_gets_nothing_and_is_expired,
    an_unsubscribe_is_verified_and_stops_deliveries,
    each_event_goes_once_to_every_callback_whose_topic_matches,
    a_delivery_is_the_event_as_the_api_shows_it_signed_with_the_secret,
    a_whsec_secret_signs_with_its_base64_decoded_key,
    a_delivery_without_a_secret_carries_no_signature,
    a_failing_delivery_is_retried_until_it_succeeds_and_every_attempt_is_logged,
    a_delivery_that_fails_every_attempt_is_failed_and_can_be_retried_by_hand,
    retries_wait_as_the_schedule_says,
    a_redirect_is_a_failure_and_is_not_followed,
    a_410_ends_the_subscription_without_retries,
    retry_after_on_429_delays_the_next_attempt,
    retry_after_as_an_http_date_on_503_delays_the_next_attempt,
    retry_after_is_clamped_to_the_configured_maximum,
    a_callback_that_only_fails_for_the_disable_period_is_disabled_with_an_event,
    recover_requeues_the_failed_deliveries_of_a_time_range,
    a_callback_with_a_batch_size_gets_arrays_of_events_each_once,
    batch_size_must_be_between_1_and_100,
    callbacks_are_listed_read_and_deleted_by_their_owner_only,
);

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

/// Lets the spreader and the delivery worker run whatever is due, so that "nothing more was
/// delivered" can be asserted.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
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

// ---- validation ----

async fn hub_requests_with_bad_fields_get_400_naming_the_field_and_write_nothing(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook_url = receiver.url("/hook");
    let hook = hook_url.as_str();
    let long_secret = "s".repeat(201);
    let long_secret = long_secret.as_str();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("hub.topic", "*"), ("hub.callback", hook)], "hub.mode"),
        (
            vec![
                ("hub.mode", "publish"),
                ("hub.topic", "*"),
                ("hub.callback", hook),
            ],
            "hub.mode",
        ),
        (
            vec![("hub.mode", "subscribe"), ("hub.callback", hook)],
            "hub.topic",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", ""),
                ("hub.callback", hook),
            ],
            "hub.topic",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "a..b"),
                ("hub.callback", hook),
            ],
            "hub.topic",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "se*"),
                ("hub.callback", hook),
            ],
            "hub.topic",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "*.x"),
                ("hub.callback", hook),
            ],
            "hub.topic",
        ),
        (
            vec![("hub.mode", "subscribe"), ("hub.topic", "*")],
            "hub.callback",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "*"),
                ("hub.callback", "ftp://127.0.0.1/hook"),
            ],
            "hub.callback",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "*"),
                ("hub.callback", "not a url"),
            ],
            "hub.callback",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "*"),
                ("hub.callback", hook),
                ("hub.lease_seconds", "soon"),
            ],
            "hub.lease_seconds",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "*"),
                ("hub.callback", hook),
                ("hub.secret", long_secret),
            ],
            "hub.secret",
        ),
    ];
    for (fields, field) in cases {
        let reply = hub(&app, &fields).await;
        assert_eq!(reply.status, 400, "{fields:?}: {}", reply.text());
        field_errors(reply, field);
    }
    settle().await;
    assert_eq!(app.count("/api/v1/callbacks/").await, 0);
    assert!(receiver.requests().is_empty(), "{:?}", receiver.requests());

    // 200 bytes is still a valid secret.
    let secret = "s".repeat(200);
    subscribe_active(&app, "*", hook, &[("hub.secret", secret.as_str())]).await;
    assert_eq!(app.count("/api/v1/callbacks/").await, 1);
}

async fn hub_requests_that_are_not_forms_or_not_authenticated_are_refused(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook");
    let as_json = app
        .client
        .post(app.url("/api/v1/hub"))
        .header("Authorization", format!("Token {}", app.token))
        .json(&json!({"hub.mode": "subscribe", "hub.topic": "*", "hub.callback": hook}));
    app.send(as_json).await.expect(415);
    let anonymous = app.client.post(app.url("/api/v1/hub")).form(&[
        ("hub.mode", "subscribe"),
        ("hub.topic", "*"),
        ("hub.callback", hook.as_str()),
    ]);
    app.send(anonymous).await.expect(401);
    let bad_token = app
        .client
        .post(app.url("/api/v1/hub"))
        .header(
            "Authorization",
            "Token 0123456789abcdef0123456789abcdef01234567",
        )
        .form(&[
            ("hub.mode", "subscribe"),
            ("hub.topic", "*"),
            ("hub.callback", hook.as_str()),
        ]);
    app.send(bad_token).await.expect(401);
    settle().await;
    assert_eq!(app.count("/api/v1/callbacks/").await, 0);
    assert!(receiver.requests().is_empty());
}

async fn loopback_and_private_callbacks_are_refused_unless_their_network_is_allowed(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    for callback in [
        receiver.url("/hook"),
        "http://10.1.2.3/hook".to_string(),
        "http://192.168.0.10/hook".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://[::1]/hook".to_string(),
    ] {
        let reply = subscribe(&app, "*", &callback, &[]).await;
        assert_eq!(reply.status, 400, "{callback}: {}", reply.text());
        field_errors(reply, "hub.callback");
    }
    settle().await;
    assert_eq!(app.count("/api/v1/callbacks/").await, 0);
    assert!(receiver.requests().is_empty(), "sbm never called it");
}

async fn unsubscribing_a_pair_never_subscribed_gets_404(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook");
    let unsubscribe = [
        ("hub.mode", "unsubscribe"),
        ("hub.topic", "schedule.*"),
        ("hub.callback", hook.as_str()),
    ];
    hub(&app, &unsubscribe).await.expect(404);

    // Subscribed to another topic: still not this pair.
    subscribe_active(&app, "messageset.*", &hook, &[]).await;
    hub(&app, &unsubscribe).await.expect(404);
    assert_eq!(app.count("/api/v1/callbacks/").await, 1);
    assert_eq!(
        receiver
            .verifications()
            .iter()
            .filter(|v| v.param("hub.mode") == Some("unsubscribe"))
            .count(),
        0
    );
}

// ---- verification of intent and leases ----

async fn a_verified_subscription_becomes_active_with_its_lease_and_a_hidden_secret(
    backend: Backend,
) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook?source=test");
    let reply = subscribe(
        &app,
        "schedule.*",
        &hook,
        &[
            ("hub.lease_seconds", "7200"),
            ("hub.secret", "s3cr3t-value"),
            ("hub.ignored", "WebSub says other fields are ignored"),
        ],
    )
    .await
    .expect(202);
    assert!(
        reply.bytes.is_empty(),
        "202 has an empty body: {}",
        reply.text()
    );

    let callback = callback_in_state(&app, "schedule.*", &hook, "active").await;
    let verifications = receiver.verifications();
    assert_eq!(verifications.len(), 1);
    let v = &verifications[0];
    assert_eq!(v.path, "/hook");
    assert_eq!(v.param("hub.mode"), Some("subscribe"));
    assert_eq!(v.param("hub.topic"), Some("schedule.*"));
    assert_eq!(v.param("hub.lease_seconds"), Some("7200"));
    assert!(
        v.param("hub.challenge").is_some_and(|c| c.len() >= 8),
        "a random challenge: {:?}",
        v.query
    );
    assert_eq!(
        v.param("source"),
        Some("test"),
        "the callback's own query is kept"
    );
    assert!(receiver.denials().is_empty());

    let expires = time(&callback["lease_expires_at"]);
    let expected = Utc::now() + chrono::Duration::seconds(7200);
    assert!(
        (seconds_between(expires, expected)).abs() < 60.0,
        "lease_expires_at {expires} is about now + 7200 s"
    );
    assert_eq!(callback["has_secret"], true);
    assert!(callback.get("secret").is_none(), "{callback}");
    assert!(!callback.to_string().contains("s3cr3t-value"), "{callback}");
    let id = plain(&callback["id"]);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{callback}");
    let one = app
        .get(&format!("/api/v1/callbacks/{id}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(one, callback);

    // A second challenge, for a second subscription, is not the first one again.
    let other = receiver.url("/other");
    subscribe_active(&app, "schedule.*", &other, &[]).await;
    let challenges: Vec<_> = receiver
        .verifications()
        .iter()
        .map(|v| v.param("hub.challenge").unwrap().to_string())
        .collect();
    assert_ne!(challenges[0], challenges[1]);
    assert_eq!(
        find_callback(&app, "schedule.*", &other).await.unwrap()["has_secret"],
        false
    );
}

async fn leases_default_to_ten_days_and_are_clamped(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let cases = [
        ("/default", None, "864000"),
        ("/short", Some("10"), "3600"),
        ("/long", Some("999999999"), "31536000"),
    ];
    for (path, asked, granted) in cases {
        let hook = receiver.url(path);
        let extra: Vec<(&str, &str)> = asked
            .map(|s| ("hub.lease_seconds", s))
            .into_iter()
            .collect();
        let callback = subscribe_active(&app, "*", &hook, &extra).await;
        let v = receiver
            .verifications()
            .into_iter()
            .find(|v| v.path == path)
            .unwrap();
        assert_eq!(v.param("hub.lease_seconds"), Some(granted), "{path}");
        let expires = time(&callback["lease_expires_at"]);
        let expected = Utc::now() + chrono::Duration::seconds(granted.parse().unwrap());
        assert!(
            seconds_between(expires, expected).abs() < 60.0,
            "{path}: lease_expires_at {expires}, expected about {expected}"
        );
    }
}

async fn subscribing_again_renews_the_one_subscription(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook");
    let first = subscribe_active(&app, "schedule.*", &hook, &[("hub.lease_seconds", "7200")]).await;
    assert_eq!(first["has_secret"], false);
    subscribe(
        &app,
        "schedule.*",
        &hook,
        &[("hub.lease_seconds", "86400"), ("hub.secret", "new-secret")],
    )
    .await
    .expect(202);
    eventually("the renewal is verified", || async {
        receiver.verifications().len() == 2
            && find_callback(&app, "schedule.*", &hook)
                .await
                .is_some_and(|c| c["has_secret"] == true && c["state"] == "active")
    })
    .await;
    let list = callbacks(&app).await;
    assert_eq!(
        list.len(),
        1,
        "one (topic, callback) pair is one subscription"
    );
    let renewed = &list[0];
    assert_eq!(renewed["id"], first["id"]);
    assert!(
        time(&renewed["lease_expires_at"])
            > time(&first["lease_expires_at"]) + chrono::Duration::hours(12),
        "a new lease: {renewed}"
    );

    // One delivery per event, signed with the new secret.
    let schedule = app.create_schedule().await;
    eventually("the event is delivered", || async {
        receiver.deliveries().len() == 1
    })
    .await;
    settle().await;
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(d.json["object"]["id"], schedule.to_string());
    assert_eq!(
        d.header("x-hub-signature").unwrap(),
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(b"new-secret", &d.body))
        )
    );
}

async fn a_renewal_that_fails_verification_leaves_the_subscription_active(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook");
    let first = subscribe_active(&app, "schedule.*", &hook, &[]).await;
    receiver.verify_with(Verify::NotFound);
    subscribe(&app, "schedule.*", &hook, &[("hub.secret", "new")])
        .await
        .expect(202);
    eventually("the renewal is attempted", || async {
        receiver.verifications().len() == 2
    })
    .await;
    settle().await;
    let after = find_callback(&app, "schedule.*", &hook).await.unwrap();
    assert_eq!(after["state"], "active");
    assert_eq!(
        after["has_secret"], false,
        "the old subscription, as it was"
    );
    assert_eq!(after["lease_expires_at"], first["lease_expires_at"]);

    app.create_schedule().await;
    eventually("it still gets events", || async {
        receiver.deliveries().len() == 1
    })
    .await;
    assert!(receiver.deliveries()[0].header("x-hub-signature").is_none());
}

async fn denied_and_told(backend: Backend, verify: Verify) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.verify_with(verify);
    let hook = receiver.url("/hook");
    subscribe(&app, "schedule.*", &hook, &[]).await.expect(202);
    let callback = callback_in_state(&app, "schedule.*", &hook, "denied").await;
    assert_eq!(callback["state"], "denied");
    eventually("the callback is told it was denied", || async {
        receiver.denials().len() == 1
    })
    .await;
    let denial = &receiver.denials()[0];
    assert_eq!(denial.path, "/hook");
    assert_eq!(denial.param("hub.topic"), Some("schedule.*"));
    assert!(denial.param("hub.reason").is_some(), "{:?}", denial.query);

    app.create_schedule().await;
    settle().await;
    assert!(
        receiver.deliveries().is_empty(),
        "a denied callback gets no events"
    );
    let id = plain(&callback["id"]);
    assert!(deliveries_of(&app, &id, "").await.is_empty());
}

async fn a_callback_that_answers_the_wrong_challenge_is_denied_and_told(backend: Backend) {
    denied_and_told(backend, Verify::WrongEcho).await;
}

async fn a_callback_that_answers_404_to_verification_is_denied_and_told(backend: Backend) {
    denied_and_told(backend, Verify::NotFound).await;
}

async fn a_callback_whose_lease_ended_gets_nothing_and_is_expired(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.lease_min_secs = 1).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook");
    let callback = subscribe_active(&app, "schedule.*", &hook, &[("hub.lease_seconds", "1")]).await;
    assert_eq!(
        receiver.verifications()[0].param("hub.lease_seconds"),
        Some("1")
    );
    let expires = time(&callback["lease_expires_at"]);
    let wait = expires - Utc::now() + chrono::Duration::milliseconds(300);
    if let Ok(wait) = wait.to_std() {
        tokio::time::sleep(wait).await;
    }

    app.create_schedule().await;
    let id = plain(&callback["id"]);
    eventually("the callback is expired", || async {
        callback_state(&app, &id).await == "expired"
    })
    .await;
    settle().await;
    assert!(
        receiver.deliveries().is_empty(),
        "no event after the lease ended"
    );
    assert!(deliveries_of(&app, &id, "").await.is_empty());
}

async fn an_unsubscribe_is_verified_and_stops_deliveries(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook");
    subscribe_active(&app, "schedule.*", &hook, &[]).await;
    app.create_schedule().await;
    eventually("the first event is delivered", || async {
        receiver.deliveries().len() == 1
    })
    .await;

    hub(
        &app,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", "schedule.*"),
            ("hub.callback", hook.as_str()),
        ],
    )
    .await
    .expect(202);
    let callback = callback_in_state(&app, "schedule.*", &hook, "unsubscribed").await;
    let verification = receiver
        .verifications()
        .into_iter()
        .find(|v| v.param("hub.mode") == Some("unsubscribe"))
        .expect("the unsubscribe is verified with the callback");
    assert_eq!(verification.param("hub.topic"), Some("schedule.*"));
    assert!(verification.param("hub.challenge").is_some());
    assert_eq!(callback["state"], "unsubscribed");

    app.create_schedule().await;
    settle().await;
    assert_eq!(
        receiver.deliveries().len(),
        1,
        "nothing after unsubscribing"
    );
}

// ---- delivery ----

async fn each_event_goes_once_to_every_callback_whose_topic_matches(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let subscriptions = [
        ("schedule.*", "/schedules"),
        ("schedule.created", "/created"),
        ("*", "/everything"),
        ("messageset", "/sets"),
        // The same URL under a second topic is a second subscription of this user's; an event
        // both match still reaches the URL once.
        ("schedule.created", "/everything"),
    ];
    for (topic, path) in subscriptions {
        let secret = format!("secret-of-{topic}");
        subscribe_active(&app, topic, &receiver.url(path), &[("hub.secret", &secret)]).await;
    }
    assert_eq!(callbacks(&app).await.len(), 5);

    let schedule = app.create_schedule().await;
    app.patch(
        &format!("/api/v1/schedule/{schedule}/"),
        json!({"hour": "9"}),
    )
    .await
    .expect(200);
    app.post(
        "/api/v1/messageset/",
        json!({"short_name": "set", "content_type": "text", "default_schedule": schedule}),
    )
    .await
    .expect(201);

    eventually("every callback got its events", || async {
        receiver.deliveries().len() == 7
    })
    .await;
    settle().await;
    assert_eq!(
        receiver.delivered_types_to("/schedules"),
        ["schedule.created", "schedule.updated"]
    );
    assert_eq!(
        receiver.delivered_types_to("/created"),
        ["schedule.created"]
    );
    assert_eq!(receiver.delivered_types_to("/sets"), ["messageset.created"]);
    assert_eq!(
        receiver.delivered_types_to("/everything"),
        ["messageset.created", "schedule.created", "schedule.updated"]
    );
    // The oldest matching subscription ("*") signs what reaches its URL.
    let created = receiver
        .deliveries_to("/everything")
        .into_iter()
        .find(|d| d.json["type"] == "schedule.created")
        .expect("schedule.created delivered");
    let key = sbm::callbacks::signing::standard_webhooks_key("secret-of-*");
    let expected = sbm::callbacks::signing::standard_webhooks_signature(
        &key,
        created.header("webhook-id").unwrap(),
        created
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap(),
        &created.body,
    );
    assert!(
        created
            .header("webhook-signature")
            .unwrap()
            .contains(&expected),
        "signed with the oldest matching subscription's secret"
    );
    assert_eq!(
        receiver.deliveries().len(),
        7,
        "one delivery per (event, user's callback URL)"
    );
}

async fn a_delivery_is_the_event_as_the_api_shows_it_signed_with_the_secret(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let secret = "s3cr3t-value";
    subscribe_active(
        &app,
        "schedule.created",
        &receiver.url("/hook"),
        &[("hub.secret", secret)],
    )
    .await;
    let schedule = app.create_schedule().await;
    eventually("the event is delivered", || async {
        receiver.deliveries().len() == 1
    })
    .await;
    let d = &receiver.deliveries()[0];
    let now = Utc::now().timestamp();

    assert!(
        d.header("content-type")
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        d.headers
    );
    let event = &d.json;
    for field in ["id", "type", "timestamp", "object", "sequence", "data"] {
        assert!(event.get(field).is_some(), "{field} missing: {event}");
    }
    assert_eq!(event["type"], "schedule.created");
    assert_eq!(
        event["object"],
        json!({"type": "schedule", "id": schedule.to_string()})
    );
    assert_eq!(event["sequence"], 1);
    assert_eq!(event["data"]["id"], schedule);
    let id = event["id"].as_str().unwrap();
    let shown = app
        .get(&format!("/api/v1/events/{id}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(&shown, event, "the body is the event as the API shows it");

    assert_eq!(d.header("webhook-id"), Some(id));
    let timestamp = d.header("webhook-timestamp").expect("webhook-timestamp");
    let ts: i64 = timestamp.parse().expect("unix seconds");
    assert!(
        (now - ts).abs() <= 30,
        "timestamp {ts} is about now ({now})"
    );
    let expected = standard_webhooks_signature(secret.as_bytes(), id, timestamp, &d.body);
    let signatures = d.header("webhook-signature").expect("webhook-signature");
    assert!(
        signatures.split_whitespace().any(|s| s == expected),
        "{signatures} has {expected}"
    );
    assert_eq!(
        d.header("x-hub-signature"),
        Some(
            format!(
                "sha256={}",
                hex::encode(hmac_sha256(secret.as_bytes(), &d.body))
            )
            .as_str()
        )
    );
    let link = d.header("link").expect("Link header");
    assert!(
        link.contains(&format!("<{}>; rel=\"hub\"", app.url("/api/v1/hub"))),
        "{link}"
    );
    assert!(link.contains("rel=\"self\""), "{link}");
    assert!(link.contains("/api/v1/events/?topic="), "{link}");
}

async fn a_whsec_secret_signs_with_its_base64_decoded_key(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let key = b"0123456789abcdef-raw-key";
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    subscribe_active(
        &app,
        "schedule.*",
        &receiver.url("/hook"),
        &[("hub.secret", secret.as_str())],
    )
    .await;
    app.create_schedule().await;
    eventually("the event is delivered", || async {
        receiver.deliveries().len() == 1
    })
    .await;
    let d = &receiver.deliveries()[0];
    let expected = standard_webhooks_signature(
        key,
        d.header("webhook-id").unwrap(),
        d.header("webhook-timestamp").unwrap(),
        &d.body,
    );
    assert!(
        d.header("webhook-signature")
            .unwrap()
            .split_whitespace()
            .any(|s| s == expected),
        "{:?} has {expected}",
        d.header("webhook-signature")
    );
}

async fn a_delivery_without_a_secret_carries_no_signature(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    app.create_schedule().await;
    eventually("the event is delivered", || async {
        receiver.deliveries().len() == 1
    })
    .await;
    let d = &receiver.deliveries()[0];
    assert_eq!(d.header("webhook-id"), d.json["id"].as_str());
    assert!(d.header("webhook-timestamp").is_some());
    assert!(d.header("webhook-signature").is_none(), "{:?}", d.headers);
    assert!(d.header("x-hub-signature").is_none(), "{:?}", d.headers);
}

async fn a_failing_delivery_is_retried_until_it_succeeds_and_every_attempt_is_logged(
    backend: Backend,
) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0, 0]).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script([
        Answer::status(500).body("first failure"),
        Answer::status(500).body("second failure"),
    ]);
    let callback = subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let id = plain(&callback["id"]);
    app.create_schedule().await;
    let delivery = only_delivery_in_state(&app, &id, "succeeded").await;
    let log = attempt_log(&delivery);
    let statuses: Vec<_> = log.iter().map(|a| a["status_code"].as_i64()).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)], "{delivery}");
    assert!(
        log[0]["response_body"]
            .as_str()
            .unwrap_or_default()
            .contains("first failure"),
        "the response body is logged: {}",
        log[0]
    );
    for attempt in &log {
        assert!(attempt["duration_ms"].is_number(), "{attempt}");
        time(&attempt["attempted_at"]);
    }
    assert!(
        log[2]["next_attempt_at"].is_null(),
        "nothing more is due: {}",
        log[2]
    );

    let posts = receiver.deliveries();
    assert_eq!(posts.len(), 3);
    let ids: Vec<_> = posts.iter().map(|p| p.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same event id on every attempt"
    );
    assert!(posts.iter().all(|p| p.json == posts[0].json));
}

async fn a_delivery_that_fails_every_attempt_is_failed_and_can_be_retried_by_hand(
    backend: Backend,
) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0]).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.always(500);
    let callback = subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let id = plain(&callback["id"]);
    app.create_schedule().await;
    let failed = only_delivery_in_state(&app, &id, "failed").await;
    let log = attempt_log(&failed);
    assert_eq!(log.len(), 3, "first attempt and two retries: {failed}");
    assert!(log.iter().all(|a| a["status_code"] == 500));
    settle().await;
    assert_eq!(
        receiver.deliveries().len(),
        3,
        "nothing after the last retry"
    );
    assert_eq!(deliveries_of(&app, &id, "state=failed").await.len(), 1);
    assert_eq!(deliveries_of(&app, &id, "state=succeeded").await.len(), 0);

    // The event's own deliveries list it too.
    let event_id = receiver.deliveries()[0].json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let of_event = app
        .get(&format!("/api/v1/events/{event_id}/deliveries/"))
        .await
        .expect(200)
        .json();
    assert_eq!(of_event["count"], 1);
    assert_eq!(of_event["results"][0]["id"], failed["id"]);

    receiver.always(200);
    let path = format!("/api/v1/deliveries/{}/retry/", plain(&failed["id"]));
    let reply = app.call(Method::POST, &path, None).await;
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.text()
    );
    only_delivery_in_state(&app, &id, "succeeded").await;
    assert_eq!(receiver.deliveries().len(), 4);

    // A success can be replayed.
    let reply = app.call(Method::POST, &path, None).await;
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.text()
    );
    eventually("the success is replayed", || async {
        receiver.deliveries().len() == 5
    })
    .await;
    only_delivery_in_state(&app, &id, "succeeded").await;
    app.call(Method::POST, "/api/v1/deliveries/999999999/retry/", None)
        .await
        .expect(404);
}

async fn retries_wait_as_the_schedule_says(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![1, 2]).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.always(500);
    let callback = subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let id = plain(&callback["id"]);
    app.create_schedule().await;
    let failed = only_delivery_in_state(&app, &id, "failed").await;
    let log = attempt_log(&failed);
    assert_eq!(log.len(), 3, "{failed}");
    for (n, wanted) in [(0, 1.0), (1, 2.0)] {
        let planned = seconds_between(
            time(&log[n]["attempted_at"]),
            time(&log[n]["next_attempt_at"]),
        );
        assert!(
            (planned - wanted).abs() < 0.5,
            "attempt {n} planned the next after {planned} s, not {wanted} s: {failed}"
        );
        let waited = seconds_between(
            time(&log[n]["attempted_at"]),
            time(&log[n + 1]["attempted_at"]),
        );
        assert!(waited >= wanted - 0.1, "attempt {n}: waited {waited} s");
    }
    assert!(log[2]["next_attempt_at"].is_null(), "{failed}");
    let posts = receiver.deliveries();
    assert!(seconds_between(posts[0].at, posts[1].at) >= 0.9);
    assert!(seconds_between(posts[1].at, posts[2].at) >= 1.9);
}

async fn a_redirect_is_a_failure_and_is_not_followed(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let elsewhere = receiver.url("/elsewhere");
    receiver.answer_by_default(Answer::status(307).header("location", &elsewhere));
    let callback = subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let id = plain(&callback["id"]);
    app.create_schedule().await;
    let failed = only_delivery_in_state(&app, &id, "failed").await;
    assert!(
        attempt_log(&failed).iter().all(|a| a["status_code"] == 307),
        "{failed}"
    );
    assert!(receiver.deliveries_to("/elsewhere").is_empty());
    assert!(receiver.requests().iter().all(|r| r.path != "/elsewhere"));
}

async fn a_410_ends_the_subscription_without_retries(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0, 0]).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script_statuses(&[410]);
    let callback = subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let id = plain(&callback["id"]);
    app.create_schedule().await;
    eventually("the callback is gone", || async {
        callback_state(&app, &id).await == "gone"
    })
    .await;
    settle().await;
    assert_eq!(receiver.deliveries().len(), 1, "no retry after 410");
    let list = deliveries_of(&app, &id, "").await;
    let logged = delivery(&app, &list[0]["id"]).await;
    let log = attempt_log(&logged);
    assert_eq!(log.len(), 1, "{logged}");
    assert_eq!(log[0]["status_code"], 410);

    app.create_schedule().await;
    settle().await;
    assert_eq!(receiver.deliveries().len(), 1, "nothing more is sent to it");
}

/// Subscribes a receiver that first answers `first`, then 200; returns the seconds between the
/// two attempts, from the attempt log and from what the receiver saw.
async fn gap_after(app: &TestApp, first: Answer) -> (f64, f64) {
    let receiver = Receiver::start().await;
    receiver.script([first]);
    let callback = subscribe_active(app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let id = plain(&callback["id"]);
    app.create_schedule().await;
    let done = only_delivery_in_state(app, &id, "succeeded").await;
    let log = attempt_log(&done);
    assert_eq!(log.len(), 2, "{done}");
    let logged = seconds_between(time(&log[0]["attempted_at"]), time(&log[1]["attempted_at"]));
    let posts = receiver.deliveries();
    assert_eq!(posts.len(), 2);
    (logged, seconds_between(posts[0].at, posts[1].at))
}

async fn retry_after_on_429_delays_the_next_attempt(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0]).await
    else {
        return;
    };
    let (logged, seen) = gap_after(&app, Answer::status(429).header("retry-after", "1")).await;
    assert!(logged >= 0.95, "the log shows {logged} s between attempts");
    assert!(seen >= 0.9, "the receiver saw {seen} s between attempts");
}

async fn retry_after_as_an_http_date_on_503_delays_the_next_attempt(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0]).await
    else {
        return;
    };
    let when = (Utc::now() + chrono::Duration::seconds(3))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let (logged, seen) = gap_after(&app, Answer::status(503).header("retry-after", &when)).await;
    assert!(logged >= 0.95, "the log shows {logged} s between attempts");
    assert!(seen >= 0.9, "the receiver saw {seen} s between attempts");
}

async fn retry_after_is_clamped_to_the_configured_maximum(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| {
        c.events.retry_schedule_secs = vec![0, 0];
        c.events.retry_after_max_secs = 1;
    })
    .await
    else {
        return;
    };
    let (logged, seen) = gap_after(&app, Answer::status(429).header("retry-after", "3600")).await;
    assert!(
        (0.95..5.0).contains(&logged),
        "3600 s clamped to 1 s; the log shows {logged} s"
    );
    assert!(seen < 5.0, "the receiver saw {seen} s between attempts");
}

async fn a_callback_that_only_fails_for_the_disable_period_is_disabled_with_an_event(
    backend: Backend,
) {
    let Some(app) = spawn_hub_app(backend, |c| {
        c.events.disable_after_secs = 1;
        c.events.retry_schedule_secs = vec![1, 1, 1, 1];
    })
    .await
    else {
        return;
    };
    let failing = Receiver::start().await;
    failing.always(500);
    let watcher = Receiver::start().await;
    let hook = failing.url("/hook");
    let callback = subscribe_active(
        &app,
        "schedule.*",
        &hook,
        &[("hub.secret", "hidden-secret")],
    )
    .await;
    let id = plain(&callback["id"]);
    subscribe_active(&app, "callback.*", &watcher.url("/watch"), &[]).await;

    app.create_schedule().await;
    eventually("the callback is disabled", || async {
        callback_state(&app, &id).await == "disabled"
    })
    .await;
    let events = app
        .get("/api/v1/events/?type=callback.disabled")
        .await
        .expect(200)
        .json();
    assert_eq!(events["count"], 1, "{events}");
    let event = &events["results"][0];
    assert_eq!(event["object"], json!({"type": "callback", "id": id}));
    // data: the callback as the API shows it (so without its secret) and the reason.
    let disabled = &event["data"]["callback"];
    assert_eq!(disabled["id"], callback["id"], "{event}");
    assert_eq!(disabled["state"], "disabled", "{event}");
    assert_eq!(disabled["has_secret"], true, "{event}");
    assert!(disabled.get("secret").is_none(), "{event}");
    assert!(event["data"]["reason"].is_string(), "{event}");
    assert!(!event.to_string().contains("hidden-secret"), "{event}");

    eventually("the watcher hears of it", || async {
        watcher.delivered_events().iter().any(|e| {
            e["type"] == "callback.disabled" && e["data"]["callback"]["id"] == callback["id"]
        })
    })
    .await;

    // Its delivery waits, and nothing more is attempted while it is disabled.
    let attempts = failing.deliveries().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        failing.deliveries().len(),
        attempts,
        "a disabled callback is not called"
    );
    assert!(deliveries_of(&app, &id, "state=succeeded").await.is_empty());

    // Subscribing again re-activates it, and the waiting delivery goes out.
    failing.always(200);
    subscribe(&app, "schedule.*", &hook, &[]).await.expect(202);
    callback_in_state(&app, "schedule.*", &hook, "active").await;
    only_delivery_in_state(&app, &id, "succeeded").await;
}

/// The body of a successful (any 2xx) recover answer.
fn recovered(reply: Reply) -> Value {
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.text()
    );
    reply.json()
}

async fn recover_requeues_the_failed_deliveries_of_a_time_range(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.always(500);
    let callback = subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let id = plain(&callback["id"]);
    let before = Utc::now() - chrono::Duration::seconds(1);
    for _ in 0..3 {
        app.create_schedule().await;
    }
    eventually("three deliveries failed", || async {
        deliveries_of(&app, &id, "state=failed").await.len() == 3
    })
    .await;
    receiver.always(200);
    let recover = format!("/api/v1/callbacks/{id}/recover/");

    let earlier =
        json!({"since": rfc3339(before - chrono::Duration::hours(1)), "until": rfc3339(before)});
    assert_eq!(
        recovered(app.post(&recover, earlier).await),
        json!({"recovered": 0}),
        "no failed delivery of an event in that range"
    );
    settle().await;
    assert_eq!(deliveries_of(&app, &id, "state=failed").await.len(), 3);
    app.post(&recover, json!({"since": "yesterday"}))
        .await
        .expect(400);

    assert_eq!(
        recovered(app.post(&recover, json!({"since": rfc3339(before)})).await),
        json!({"recovered": 3})
    );
    eventually("every recovered delivery succeeds", || async {
        deliveries_of(&app, &id, "state=succeeded").await.len() == 3
    })
    .await;
    assert!(deliveries_of(&app, &id, "state=failed").await.is_empty());
    assert_eq!(receiver.deliveries().len(), 3 * 2 + 3);
}

async fn a_callback_with_a_batch_size_gets_arrays_of_events_each_once(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let callback = subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let id = plain(&callback["id"]);
    let patched = app
        .patch(
            &format!("/api/v1/callbacks/{id}/"),
            json!({"batch_size": 10}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(patched["batch_size"], 10);

    let mut schedules = Vec::new();
    for _ in 0..5 {
        schedules.push(app.create_schedule().await.to_string());
    }
    eventually("five events are delivered", || async {
        receiver.delivered_events().len() >= 5
    })
    .await;
    settle().await;
    let posts = receiver.deliveries();
    for post in &posts {
        let batch = post
            .json
            .as_array()
            .unwrap_or_else(|| panic!("a JSON array: {}", post.text));
        assert!(!batch.is_empty() && batch.len() <= 10);
        let id = post.header("webhook-id").unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        let times: Vec<_> = batch.iter().map(|e| time(&e["timestamp"])).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "oldest first: {}",
            post.text
        );
        if batch.len() > 1 {
            assert!(
                batch.iter().all(|e| e["id"].as_str() != Some(id)),
                "a batch's id is its own"
            );
        }
    }
    let events = receiver.delivered_events();
    assert_eq!(events.len(), 5, "each event once");
    let mut objects: Vec<String> = events
        .iter()
        .map(|e| e["object"]["id"].as_str().unwrap().to_string())
        .collect();
    objects.sort();
    schedules.sort();
    assert_eq!(objects, schedules);
    let mut ids: Vec<_> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
}

async fn batch_size_must_be_between_1_and_100(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let callback = subscribe_active(&app, "*", &receiver.url("/hook"), &[]).await;
    let path = format!("/api/v1/callbacks/{}/", plain(&callback["id"]));
    for bad in [json!(0), json!(101), json!(-1), json!("ten"), json!(null)] {
        let reply = app.patch(&path, json!({"batch_size": bad})).await;
        assert_eq!(reply.status, 400, "batch_size {bad}: {}", reply.text());
        field_errors(reply, "batch_size");
    }
    assert_eq!(app.get(&path).await.expect(200).json()["batch_size"], 1);
    for good in [1, 100] {
        let reply = app
            .patch(&path, json!({"batch_size": good}))
            .await
            .expect(200);
        assert_eq!(reply.json()["batch_size"], good);
    }
}

async fn callbacks_are_listed_read_and_deleted_by_their_owner_only(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let mine = subscribe_active(&app, "schedule.*", &receiver.url("/admin"), &[]).await;
    let mine_id = plain(&mine["id"]);
    let user = issue_token(&app.db, "partner@example.org", false).await;
    let theirs_url = receiver.url("/partner");
    hub_as(
        &app,
        &user,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", "send.*"),
            ("hub.callback", theirs_url.as_str()),
        ],
    )
    .await
    .expect(202);
    let theirs = callback_in_state(&app, "send.*", &theirs_url, "active").await;
    let theirs_id = plain(&theirs["id"]);

    let as_user = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("Authorization", format!("Token {user}"))
    };
    let listed = app
        .send(as_user(Method::GET, "/api/v1/callbacks/"))
        .await
        .expect(200)
        .json();
    assert_eq!(
        listed["count"], 1,
        "a user sees only their callbacks: {listed}"
    );
    assert_eq!(listed["results"][0]["id"], theirs["id"]);
    assert_eq!(
        app.count("/api/v1/callbacks/").await,
        2,
        "an admin sees all"
    );
    assert_eq!(app.count("/api/v1/callbacks/?state=active").await, 2);
    assert_eq!(app.count("/api/v1/callbacks/?state=denied").await, 0);
    assert_eq!(app.count("/api/v1/callbacks/?topic=send.*").await, 1);

    let hidden = app
        .send(as_user(
            Method::GET,
            &format!("/api/v1/callbacks/{mine_id}/"),
        ))
        .await;
    assert!(
        [403, 404].contains(&hidden.status.as_u16()),
        "another's callback is not shown: {}",
        hidden.status
    );
    let refused = app
        .send(as_user(
            Method::DELETE,
            &format!("/api/v1/callbacks/{mine_id}/"),
        ))
        .await;
    assert!(
        [403, 404].contains(&refused.status.as_u16()),
        "{}",
        refused.status
    );
    app.get(&format!("/api/v1/callbacks/{mine_id}/"))
        .await
        .expect(200);
    app.send(as_user(
        Method::GET,
        &format!("/api/v1/callbacks/{theirs_id}/"),
    ))
    .await
    .expect(200);

    // Deleting removes the callback and its delivery log.
    app.create_schedule().await;
    let delivered = only_delivery_in_state(&app, &mine_id, "succeeded").await;
    app.delete(&format!("/api/v1/callbacks/{mine_id}/"))
        .await
        .expect(204);
    app.get(&format!("/api/v1/callbacks/{mine_id}/"))
        .await
        .expect(404);
    app.delete(&format!("/api/v1/callbacks/{mine_id}/"))
        .await
        .expect(404);
    app.get(&format!("/api/v1/deliveries/{}/", plain(&delivered["id"])))
        .await
        .expect(404);
    app.send(as_user(
        Method::DELETE,
        &format!("/api/v1/callbacks/{theirs_id}/"),
    ))
    .await
    .expect(204);
    assert_eq!(app.count("/api/v1/callbacks/").await, 0);

    app.get("/api/v1/callbacks/not-a-uuid/").await.expect(404);
    app.get("/api/v1/callbacks/00000000-0000-4000-8000-000000000000/")
        .await
        .expect(404);
    app.get("/api/v1/deliveries/999999999/").await.expect(404);
    app.send(app.client.get(app.url("/api/v1/callbacks/")))
        .await
        .expect(401);

    // Deleted: the next event goes nowhere.
    app.create_schedule().await;
    settle().await;
    assert_eq!(receiver.deliveries().len(), 1);
}
