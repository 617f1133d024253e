use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_subscription_is_created_with_the_originals_defaults,
    a_subscription_can_be_read_replaced_patched_and_deleted,
    invalid_subscriptions_are_refused_and_nothing_is_written,
    subscriptions_filter_as_real_clients_ask,
    the_hub_webhook_creates_a_subscription,
    the_hub_webhook_refuses_bad_envelopes,
    content_in_use_by_subscriptions_cannot_be_deleted,
    concurrent_creations_each_get_their_own_answer,
);

const IDENTITY: &str = "3f4b1c2e-7a1d-4c55-9d3e-0a1b2c3d4e5f";

async fn subscribe(app: &TestApp, messageset: i64, extra: Value) -> Value {
    let mut body = json!({"identity": IDENTITY, "messageset": messageset, "lang": "eng_ZA"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.post("/api/v1/subscriptions/", body)
        .await
        .expect(201)
        .json()
}

async fn a_subscription_is_created_with_the_originals_defaults(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let default_schedule =
        app.get(&format!("/api/v1/messageset/{set}/")).await.json()["default_schedule"].clone();
    let s = subscribe(&app, set, json!({})).await;
    let id = s["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(s["url"], app.url(&format!("/api/v1/subscriptions/{id}/")));
    assert_eq!(s["identity"], IDENTITY);
    assert_eq!(s["messageset"], set);
    assert_eq!(s["schedule"], default_schedule);
    assert_eq!(
        (
            s["next_sequence_number"].as_i64(),
            s["initial_sequence_number"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        (s["active"].as_bool(), s["completed"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        (s["process_status"].as_i64(), s["version"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(s["metadata"], json!({}));
    assert!(s["created_by"].is_i64());

    let s = subscribe(
        &app,
        set,
        json!({"next_sequence_number": 7, "metadata": null}),
    )
    .await;
    assert_eq!(s["initial_sequence_number"], 7, "initial defaults to next");
    assert_eq!(s["metadata"], json!(null));
}

async fn a_subscription_can_be_read_replaced_patched_and_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let s = subscribe(&app, set, json!({"metadata": {"source": "clinic"}})).await;
    let path = format!("/api/v1/subscriptions/{}/", s["id"].as_str().unwrap());
    assert_eq!(
        app.get(&path).await.expect(200).json()["metadata"],
        json!({"source": "clinic"})
    );

    let patched = app
        .patch(&path, json!({"active": false}))
        .await
        .expect(200)
        .json();
    assert_eq!(patched["active"], false);
    assert_eq!(patched["lang"], "eng_ZA");
    let patched = app
        .patch(
            &path,
            json!({"lang": "zul_ZA", "next_sequence_number": "4"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        (
            patched["lang"].as_str(),
            patched["next_sequence_number"].as_i64()
        ),
        (Some("zul_ZA"), Some(4))
    );

    let put = app
        .put(
            &path,
            json!({"identity": IDENTITY, "messageset": set, "lang": "xho_ZA"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(put["lang"], "xho_ZA");
    app.put(&path, json!({"lang": "xho_ZA"})).await.expect(400);

    app.delete(&path).await.expect(204);
    app.get(&path).await.expect(404);
    app.get("/api/v1/subscriptions/not-a-uuid/")
        .await
        .expect(404);
}

async fn invalid_subscriptions_are_refused_and_nothing_is_written(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let cases = [
        (json!({"messageset": set, "lang": "eng_ZA"}), "identity"),
        (
            json!({"identity": "nope", "messageset": set, "lang": "eng_ZA"}),
            "identity",
        ),
        (
            json!({"identity": IDENTITY, "lang": "eng_ZA"}),
            "messageset",
        ),
        (
            json!({"identity": IDENTITY, "messageset": 999, "lang": "eng_ZA"}),
            "messageset",
        ),
        (json!({"identity": IDENTITY, "messageset": set}), "lang"),
        (
            json!({"identity": IDENTITY, "messageset": set, "lang": "english"}),
            "lang",
        ),
        (
            json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA", "schedule": 999}),
            "schedule",
        ),
        (
            json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA", "next_sequence_number": 0}),
            "next_sequence_number",
        ),
        (
            json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA", "process_status": 5}),
            "process_status",
        ),
        (
            json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA", "active": "maybe"}),
            "active",
        ),
        (
            json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA", "metadata": "text"}),
            "metadata",
        ),
    ];
    for (body, field) in cases {
        let errors = app
            .post("/api/v1/subscriptions/", body.clone())
            .await
            .expect(400)
            .json();
        assert!(errors[field].is_array(), "{body} -> {errors}");
    }
    assert_eq!(app.count("/api/v1/subscriptions/").await, 0);
}

async fn subscriptions_filter_as_real_clients_ask(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let first = app.create_message_set("first", "text").await;
    let second = app.create_message_set("second", "text").await;
    let a = subscribe(
        &app,
        first,
        json!({"metadata": {"prepend_next_delivery": "hi"}}),
    )
    .await;
    subscribe(&app, second, json!({"active": false, "lang": "zul_ZA"})).await;
    let other = "9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4";
    app.post("/api/v1/subscriptions/", json!({"identity": other, "messageset": first, "lang": "eng_ZA", "completed": true, "process_status": 2}))
        .await
        .expect(201);

    let count = |query: String| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/subscriptions/?{query}"))
                .await
                .expect(200)
                .json()["count"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count(format!("identity={IDENTITY}")).await, 2);
    assert_eq!(count(format!("identity={IDENTITY}&active=True")).await, 1);
    assert_eq!(
        count(format!(
            "identity={IDENTITY}&active=true&messageset={first}"
        ))
        .await,
        1
    );
    assert_eq!(count("active=False".into()).await, 1);
    assert_eq!(count("active=0".into()).await, 1);
    assert_eq!(count("completed=True".into()).await, 1);
    assert_eq!(count("lang=zul_ZA".into()).await, 1);
    assert_eq!(count("process_status=2".into()).await, 1);
    assert_eq!(count(format!("messageset={second}")).await, 1);
    assert_eq!(
        count("metadata_has_key=prepend_next_delivery".into()).await,
        1
    );
    assert_eq!(
        count("metadata_not_has_key=prepend_next_delivery".into()).await,
        2
    );
    assert_eq!(count("created_after=2000-01-01T00:00:00Z".into()).await, 3);
    assert_eq!(count("created_before=2000-01-01T00:00:00Z".into()).await, 0);
    let created = a["created_at"].as_str().unwrap().replace('Z', "+00:00");
    assert!(count(format!("created_after={}", urlencode(&created))).await >= 1);

    app.get("/api/v1/subscriptions/?identity=nope")
        .await
        .expect(400);
    app.get("/api/v1/subscriptions/?active=maybe")
        .await
        .expect(400);
    app.get("/api/v1/subscriptions/?created_after=yesterday")
        .await
        .expect(400);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn the_hub_webhook_creates_a_subscription(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("momconnect_prebirth", "text").await;
    let schedule = app.create_schedule().await;
    let envelope = json!({
        "hook": {"id": 5, "event": "subscriptionrequest.added", "target": app.url("/api/v1/subscriptions/request")},
        "data": {
            "id": "5f0f7f3c-0000-4000-8000-000000000001",
            "identity": IDENTITY,
            "messageset": set,
            "next_sequence_number": 10,
            "lang": "eng_ZA",
            "schedule": schedule,
            "metadata": {"prepend_next_delivery": "Welcome to MomConnect"},
            "created_at": "2016-02-17T07:59:42.831533+00:00",
            "updated_at": "2016-02-17T07:59:42.831568+00:00"
        }
    });
    let reply = app
        .post("/api/v1/subscriptions/request", envelope)
        .await
        .expect(201);
    assert_eq!(reply.json(), json!({"accepted": true}));
    let list = app
        .get(&format!("/api/v1/subscriptions/?identity={IDENTITY}"))
        .await
        .json();
    let s = &list["results"][0];
    assert_eq!(list["count"], 1);
    assert_ne!(
        s["id"], "5f0f7f3c-0000-4000-8000-000000000001",
        "sbm makes its own id"
    );
    assert_eq!(
        (
            s["next_sequence_number"].as_i64(),
            s["initial_sequence_number"].as_i64()
        ),
        (Some(10), Some(10))
    );
    assert_eq!(s["schedule"], schedule);
    assert_eq!(
        s["metadata"]["prepend_next_delivery"],
        "Welcome to MomConnect"
    );

    let without_metadata = json!({"hook": {}, "data": {"identity": IDENTITY, "messageset": set, "next_sequence_number": 1, "lang": "eng_ZA", "schedule": schedule}});
    app.post("/api/v1/subscriptions/request", without_metadata)
        .await
        .expect(201);
    let list = app
        .get(&format!(
            "/api/v1/subscriptions/?identity={IDENTITY}&limit=1&offset=1"
        ))
        .await
        .json();
    assert_eq!(list["results"][0]["metadata"], json!({}));
}

async fn the_hub_webhook_refuses_bad_envelopes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app
        .post("/api/v1/subscriptions/request", json!({"hook": {}}))
        .await
        .expect(400);
    assert_eq!(reply.json(), json!({"data": ["This field is required."]}));
    let reply = app
        .post(
            "/api/v1/subscriptions/request",
            json!({"data": {"lang": "eng_ZA"}}),
        )
        .await
        .expect(400);
    assert_eq!(reply.json()["identity"], json!(["This field is required."]));
    app.post("/api/v1/subscriptions/request", json!({"data": [1]}))
        .await
        .expect(400);
    assert_eq!(app.count("/api/v1/subscriptions/").await, 0);
    let unauthenticated = app
        .client
        .post(app.url("/api/v1/subscriptions/request"))
        .json(&json!({"data": {}}));
    app.send(unauthenticated).await.expect(401);
}

async fn content_in_use_by_subscriptions_cannot_be_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let schedule = app.create_schedule().await;
    subscribe(&app, set, json!({"schedule": schedule})).await;
    let reply = app
        .delete(&format!("/api/v1/schedule/{schedule}/"))
        .await
        .expect(409);
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .contains("subscription"));
    app.delete(&format!("/api/v1/messageset/{set}/"))
        .await
        .expect(409);
    assert_eq!(app.count("/api/v1/subscriptions/").await, 1);
}

/// Concurrent creations share transactions (http::creations): each request must still get its
/// own answer, a refused one must write nothing, and each created one its one event.
async fn concurrent_creations_each_get_their_own_answer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let app = &app;
    let answers = futures_util::future::join_all((0..60).map(|n| async move {
        let mut body = json!({"identity": IDENTITY, "messageset": set, "lang": "eng_ZA",
            "metadata": {"n": n}});
        match n % 3 {
            0 => body["messageset"] = json!(999_999),
            1 => body["schedule"] = json!(999_999),
            _ => {}
        }
        let reply = app.post("/api/v1/subscriptions/", body).await;
        (n, reply.status.as_u16(), reply.json())
    }))
    .await;
    let mut created = Vec::new();
    for (n, status, body) in answers {
        match n % 3 {
            0 => {
                assert_eq!(status, 400, "{n}: {body}");
                assert_eq!(
                    body,
                    json!({"messageset": ["Invalid pk \"999999\" - object does not exist."]})
                );
            }
            1 => {
                assert_eq!(status, 400, "{n}: {body}");
                assert_eq!(
                    body,
                    json!({"schedule": ["Invalid pk \"999999\" - object does not exist."]})
                );
            }
            _ => {
                assert_eq!(status, 201, "{n}: {body}");
                assert_eq!(body["metadata"], json!({"n": n}), "its own row");
                created.push(body["id"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(created.len(), 20);
    assert_eq!(app.count("/api/v1/subscriptions/").await, 20);
    for id in &created {
        let path = format!("/api/v1/subscriptions/{id}/");
        app.get(&path).await.expect(200);
        let query = format!("/api/v1/events/?type=subscription.created&object_id={id}");
        assert_eq!(app.count(&query).await, 1, "one event for {id}");
    }
    assert_eq!(
        app.count("/api/v1/events/?type=subscription.created").await,
        20
    );
}
