//! Real requests to the event, callback, integration and helper operations, each answer
//! checked against the OpenAPI document by `openapi::Contract` (see `openapi_samples.rs`).

use serde_json::json;

use crate::helpers::{eventually, TestApp};
use crate::openapi::Contract;
use crate::openapi_samples::{subscription_body, Content};
use crate::receiver::Receiver;

pub async fn callbacks_and_events(app: &TestApp, c: &mut Contract, content: &Content) {
    let receiver = Receiver::start().await;
    let callback_url = receiver.url("/cb");
    let subscribe = [
        ("hub.mode", "subscribe"),
        ("hub.topic", "subscription"),
        ("hub.callback", callback_url.as_str()),
        ("hub.secret", "s3cret"),
    ];
    c.check(
        "post",
        "/api/v1/hub",
        crate::hub::hub(app, &subscribe).await.expect(202),
    );
    c.check(
        "post",
        "/api/v1/hub",
        crate::hub::hub(app, &[("hub.mode", "x")]).await.expect(400),
    );
    let json_body = app.post("/api/v1/hub", json!({})).await.expect(415);
    c.check("post", "/api/v1/hub", json_body);
    let callback =
        crate::hub::callback_in_state(app, "subscription", &callback_url, "active").await;
    let cid = callback["id"].as_str().unwrap().to_string();
    let at = format!("/api/v1/callbacks/{cid}/");
    c.check(
        "get",
        "/api/v1/callbacks/",
        app.get("/api/v1/callbacks/?state=active").await,
    );
    c.check("get", "/api/v1/callbacks/{id}/", app.get(&at).await);
    let rotated = app
        .post(
            &format!("{at}rotate-secret/"),
            json!({"secret": "n3w-secret", "grace_seconds": 60}),
        )
        .await
        .expect(200);
    c.check("post", "/api/v1/callbacks/{id}/rotate-secret/", rotated);
    c.check(
        "patch",
        "/api/v1/callbacks/{id}/",
        app.patch(&at, json!({"batch_size": 5})).await.expect(200),
    );
    c.check(
        "patch",
        "/api/v1/callbacks/{id}/",
        app.patch(&at, json!({"batch_size": 0})).await.expect(400),
    );

    app.post("/api/v1/subscriptions/", subscription_body(content))
        .await
        .expect(201);
    let delivery = crate::hub::only_delivery_in_state(app, &cid, "succeeded").await;
    let did = delivery["id"].as_i64().unwrap();
    c.check(
        "get",
        "/api/v1/callbacks/{id}/deliveries/",
        app.get(&format!("{at}deliveries/")).await,
    );
    c.check(
        "get",
        "/api/v1/deliveries/{id}/",
        app.get(&format!("/api/v1/deliveries/{did}/")).await,
    );
    let retry = format!("/api/v1/deliveries/{did}/retry/");
    c.check(
        "post",
        "/api/v1/deliveries/{id}/retry/",
        app.post(&retry, json!({})).await.expect(202),
    );
    let again = app.post(&retry, json!({})).await;
    if again.status.as_u16() == 409 {
        c.check("post", "/api/v1/deliveries/{id}/retry/", again);
    }
    let recover = json!({"since": "2000-01-01T00:00:00Z"});
    c.check(
        "post",
        "/api/v1/callbacks/{id}/recover/",
        app.post(&format!("{at}recover/"), recover)
            .await
            .expect(202),
    );
    c.check(
        "post",
        "/api/v1/callbacks/{id}/recover/",
        app.post(&format!("{at}recover/"), json!({}))
            .await
            .expect(400),
    );

    let events = c
        .check(
            "get",
            "/api/v1/events/",
            app.get("/api/v1/events/?topic=subscription").await,
        )
        .json();
    let event = events["results"][0]["id"].as_str().unwrap().to_string();
    c.check(
        "get",
        "/api/v1/events/",
        app.get("/api/v1/events/?since=never").await.expect(400),
    );
    c.check(
        "get",
        "/api/v1/events/{id}/",
        app.get(&format!("/api/v1/events/{event}/")).await,
    );
    c.check(
        "get",
        "/api/v1/events/{id}/deliveries/",
        app.get(&format!("/api/v1/events/{event}/deliveries/"))
            .await,
    );

    let unsubscribe = [
        ("hub.mode", "unsubscribe"),
        ("hub.topic", "send.*"),
        ("hub.callback", callback_url.as_str()),
    ];
    c.check(
        "post",
        "/api/v1/hub",
        crate::hub::hub(app, &unsubscribe).await,
    );
    c.check(
        "delete",
        "/api/v1/callbacks/{id}/",
        app.delete(&at).await.expect(204),
    );
}

pub async fn integrations(app: &TestApp, c: &mut Contract) {
    const G: &str = "/api/v1/integration-groups/";
    const GI: &str = "/api/v1/integration-groups/{name}/";
    let poll =
        json!({"name": "crm", "method": "poll", "title": "CRM", "event_types": ["subscription.*"]});
    c.check("post", G, app.post(G, poll).await.expect(201));
    c.check(
        "post",
        G,
        app.post(G, json!({"name": "Bad Name"})).await.expect(400),
    );
    c.check("get", G, app.get(G).await);
    c.check("get", GI, app.get(&format!("{G}crm/")).await);
    c.check(
        "patch",
        GI,
        app.patch(&format!("{G}crm/"), json!({"title": "CRM 2"}))
            .await,
    );
    c.check("get", GI, app.get(&format!("{G}nope/")).await.expect(404));

    let messages = format!("{G}crm/messages/");
    let added = c.check(
        "post",
        "/api/v1/integration-groups/{name}/messages/",
        app.post(&messages, json!({"data": {"a": 1}}))
            .await
            .expect(201),
    );
    let mid = added.json()["id"].as_i64().unwrap();
    c.check(
        "get",
        "/api/v1/integration-groups/{name}/messages/",
        app.get(&format!("{messages}?sent=False")).await,
    );
    c.check(
        "get",
        "/api/v1/integration-groups/{name}/messages/{id}/",
        app.get(&format!("{messages}{mid}/")).await,
    );
    let token = c.check(
        "post",
        "/api/v1/integration-groups/{name}/tokens/",
        app.post(&format!("{G}crm/tokens/"), json!({}))
            .await
            .expect(201),
    );
    assert!(token.json()["token"].is_string());

    for (fetch, mark) in [
        (
            "/api/v1/integration-groups/{name}/poll/fetch",
            "/api/v1/integration-groups/{name}/poll/mark",
        ),
        (
            "/api/haplo-integration-messages/poll/{name}/fetch",
            "/api/haplo-integration-messages/poll/{name}/mark",
        ),
    ] {
        let fetch_at = fetch.replace("{name}", "crm");
        let mark_at = mark.replace("{name}", "crm");
        let batch = c
            .check(
                "get",
                fetch,
                app.get(&format!("{fetch_at}?limit=5")).await.expect(200),
            )
            .json();
        let batch_token = batch["token"].as_str().unwrap().to_string();
        c.check(
            "get",
            mark,
            app.get(&format!("{mark_at}?token={batch_token}"))
                .await
                .expect(200),
        );
        app.post(&format!("{messages}{mid}/unsend/"), json!({}))
            .await
            .expect(200);
        let batch = c
            .check(
                "post",
                fetch,
                app.post(&fetch_at, json!({})).await.expect(200),
            )
            .json();
        let body = json!({"token": batch["token"]});
        c.check("post", mark, app.post(&mark_at, body).await.expect(200));
        c.check(
            "get",
            fetch,
            app.get(&format!("{fetch_at}?limit=0")).await.expect(400),
        );
        app.post(&format!("{messages}{mid}/unsend/"), json!({}))
            .await
            .expect(200);
    }
    let unsend = app
        .post(&format!("{messages}{mid}/unsend/"), json!({}))
        .await
        .expect(200);
    c.check(
        "post",
        "/api/v1/integration-groups/{name}/messages/{id}/unsend/",
        unsend,
    );

    let failing = Receiver::start().await;
    failing.always(500);
    let push =
        json!({"name": "dw", "method": "send", "title": "DW", "target_url": failing.url("/dw")});
    c.check("post", G, app.post(G, push).await.expect(201));
    app.post(&format!("{G}dw/messages/"), json!({"data": {"b": 2}}))
        .await
        .expect(201);
    c.check(
        "post",
        "/api/v1/integration-groups/{name}/send/",
        app.post(&format!("{G}dw/send/"), json!({}))
            .await
            .expect(202),
    );
    c.check(
        "post",
        "/api/v1/integration-groups/{name}/send/",
        app.post(&format!("{G}crm/send/"), json!({}))
            .await
            .expect(400),
    );
    eventually("the failed push is recorded", || async {
        app.get("/api/v1/integration-errors/").await.json()["count"] == 1
    })
    .await;
    let errors = c
        .check(
            "get",
            "/api/v1/integration-errors/",
            app.get("/api/v1/integration-errors/?acknowledged=False")
                .await,
        )
        .json();
    let eid = errors["results"][0]["id"].as_i64().unwrap();
    c.check(
        "get",
        "/api/v1/integration-groups/{name}/errors/",
        app.get(&format!("{G}dw/errors/")).await,
    );
    let ack = format!("/api/v1/integration-errors/{eid}/acknowledge/");
    c.check(
        "post",
        "/api/v1/integration-errors/{id}/acknowledge/",
        app.post(&ack, json!({})).await.expect(200),
    );
    c.check(
        "delete",
        GI,
        app.delete(&format!("{G}dw/")).await.expect(204),
    );
}

pub async fn helpers_and_jobs(app: &TestApp, c: &mut Contract) {
    let token = app
        .post(
            "/api/v1/user/token/",
            json!({"email": "openapi@example.org"}),
        )
        .await;
    c.check("post", "/api/v1/user/token/", token.expect(201));
    c.check(
        "post",
        "/api/v1/user/token/",
        app.post("/api/v1/user/token/", json!({})).await.expect(400),
    );
    c.check(
        "get",
        "/api/v1/failed-tasks/",
        app.get("/api/v1/failed-tasks/").await,
    );
    c.check(
        "post",
        "/api/v1/failed-tasks/",
        app.post("/api/v1/failed-tasks/", json!({})).await,
    );
    c.check("get", "/api/health/", app.get("/api/health/").await);
    c.check(
        "get",
        "/healthz",
        app.send(app.client.get(app.url("/healthz"))).await,
    );
    c.check("get", "/api/metrics/", app.get("/api/metrics/").await);
    c.check(
        "post",
        "/api/metrics/",
        app.post("/api/metrics/", json!({})).await,
    );
    c.check(
        "get",
        "/metrics",
        app.send(app.client.get(app.url("/metrics"))).await,
    );
    c.check(
        "get",
        "/api/openapi.json",
        app.send(app.client.get(app.url("/api/openapi.json"))).await,
    );
}
