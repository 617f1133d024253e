//! Verification of intent, leases, renewals, expiry and unsubscribing.

use super::*;
use crate::on_both_backends;

on_both_backends!(
    a_verified_subscription_becomes_active_with_its_lease_and_a_hidden_secret,
    leases_default_to_ten_days_and_are_clamped,
    subscribing_again_renews_the_one_subscription,
    a_renewal_that_fails_verification_leaves_the_subscription_active,
    a_callback_that_answers_the_wrong_challenge_is_denied_and_told,
    a_callback_that_answers_404_to_verification_is_denied_and_told,
    a_callback_whose_lease_ended_gets_nothing_and_is_expired,
    an_unsubscribe_is_verified_and_stops_deliveries,
);

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
    quiet(&app).await;
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
    quiet(&app).await;
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
    quiet(&app).await;
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
    eventually("the lease has ended", || async { Utc::now() > expires }).await;

    app.create_schedule().await;
    let id = plain(&callback["id"]);
    eventually("the callback is expired", || async {
        callback_state(&app, &id).await == "expired"
    })
    .await;
    quiet(&app).await;
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
    quiet(&app).await;
    assert_eq!(
        receiver.deliveries().len(),
        1,
        "nothing after unsubscribing"
    );
}
