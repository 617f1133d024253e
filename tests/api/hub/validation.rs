//! The hub's answers to bad, unauthenticated and disallowed requests.

use super::*;
use crate::on_both_backends;

on_both_backends!(
    hub_requests_with_bad_fields_get_400_naming_the_field_and_write_nothing,
    hub_requests_that_are_not_forms_or_not_authenticated_are_refused,
    loopback_and_private_callbacks_are_refused_unless_their_network_is_allowed,
    unsubscribing_a_pair_never_subscribed_gets_404,
);

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
    quiet(&app).await;
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
    quiet(&app).await;
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
    quiet(&app).await;
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
