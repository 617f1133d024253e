//! What a delivery carries: routing by topic, the signature, batches.

use super::*;
use crate::on_both_backends;

on_both_backends!(
    each_event_goes_once_to_every_callback_whose_topic_matches,
    a_delivery_is_the_event_as_the_api_shows_it_signed_with_the_secret,
    a_whsec_secret_signs_with_its_base64_decoded_key,
    a_delivery_without_a_secret_carries_no_signature,
    a_callback_with_a_batch_size_gets_arrays_of_events_each_once,
    batch_size_must_be_between_1_and_100,
);

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
    quiet(&app).await;
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

async fn a_callback_with_a_batch_size_gets_arrays_of_events_each_once(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let id = hook_schedules(&app, &receiver).await;
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
    quiet(&app).await;
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
