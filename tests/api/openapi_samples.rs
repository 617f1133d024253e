//! Real requests to every operation, each answer checked against the OpenAPI document by
//! `openapi::Contract`: successes, and a sample of the errors (400, 404, 409).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{eventually, TestApp};
use crate::openapi::Contract;
use crate::receiver::Receiver;

/// The records the later samples use.
pub struct Content {
    pub schedule: i64,
    pub message_set: i64,
    pub binary: i64,
    pub message: i64,
}

fn id(reply_json: &Value) -> i64 {
    reply_json["id"].as_i64().expect("an id")
}

async fn upload(app: &TestApp, method: Method, path: &str) -> crate::helpers::Reply {
    app.upload(
        method,
        path,
        "hello.mp3",
        b"ID3 audio".to_vec(),
        "audio/mpeg",
    )
    .await
}

pub async fn content(app: &TestApp, c: &mut Contract) -> Content {
    const S: &str = "/api/v1/schedule/";
    const SI: &str = "/api/v1/schedule/{id}/";
    let schedule = id(&c
        .check(
            "post",
            S,
            app.post(S, json!({"minute": "0", "hour": "8"})).await,
        )
        .json());
    let at = format!("{S}{schedule}/");
    c.check("get", S, app.get(S).await);
    c.check(
        "get",
        S,
        app.get("/api/v1/schedule/?limit=x").await.expect(400),
    );
    c.check("get", SI, app.get(&at).await);
    c.check(
        "get",
        SI,
        app.get("/api/v1/schedule/999999/").await.expect(404),
    );
    c.check("put", SI, app.put(&at, json!({"minute": "5"})).await);
    c.check("patch", SI, app.patch(&at, json!({"hour": "9"})).await);
    c.check(
        "post",
        S,
        app.post(S, json!({"minute": ""})).await.expect(400),
    );
    let send = app.post(&format!("{at}send/"), json!({})).await.expect(202);
    c.check("post", "/api/v1/schedule/{id}/send/", send);

    const M: &str = "/api/v1/messageset/";
    const MI: &str = "/api/v1/messageset/{id}/";
    let body =
        json!({"short_name": "openapi", "content_type": "audio", "default_schedule": schedule});
    let message_set = id(&c.check("post", M, app.post(M, body.clone()).await).json());
    let at = format!("{M}{message_set}/");
    c.check("get", M, app.get(&format!("{M}?content_type=audio")).await);
    c.check("get", MI, app.get(&at).await);
    c.check("put", MI, app.put(&at, body).await);
    c.check("patch", MI, app.patch(&at, json!({"notes": "n"})).await);
    c.check("post", M, app.post(M, json!({})).await.expect(400));

    const B: &str = "/api/v1/binarycontent/";
    const BI: &str = "/api/v1/binarycontent/{id}/";
    let created = c
        .check("post", B, upload(app, Method::POST, B).await)
        .json();
    let binary = id(&created);
    let at = format!("{B}{binary}/");
    c.check("get", B, app.get(B).await);
    c.check("get", BI, app.get(&at).await);
    c.check("put", BI, upload(app, Method::PUT, &at).await.expect(200));
    let patched = c.check(
        "patch",
        BI,
        upload(app, Method::PATCH, &at).await.expect(200),
    );
    let url = patched.json()["content"].as_str().unwrap().to_string();
    let media_path = &url[url.find("/media/").unwrap()..];
    c.check(
        "get",
        "/media/{path}",
        app.send(app.client.get(app.url(media_path))).await,
    );
    c.check(
        "get",
        "/media/{path}",
        app.send(app.client.get(app.url("/media/none.mp3"))).await,
    );
    c.check("post", B, app.post(B, json!({})).await.expect(400));

    const G: &str = "/api/v1/message/";
    const GI: &str = "/api/v1/message/{id}/";
    let body = json!({"messageset": message_set, "sequence_number": 1, "lang": "eng_ZA",
        "text_content": "Hello", "binary_content": binary, "metadata": {"a": 1}});
    let message = id(&c.check("post", G, app.post(G, body.clone()).await).json());
    let at = format!("{G}{message}/");
    c.check(
        "get",
        G,
        app.get(&format!("{G}?messageset={message_set}")).await,
    );
    c.check(
        "get",
        G,
        app.get(&format!("{G}?messageset=x")).await.expect(400),
    );
    c.check("get", GI, app.get(&at).await);
    c.check("put", GI, app.put(&at, body).await);
    c.check(
        "patch",
        GI,
        app.patch(&at, json!({"text_content": "Hi"})).await,
    );
    c.check(
        "post",
        G,
        app.post(G, json!({"sequence_number": 0})).await.expect(400),
    );
    let content_path = format!("{at}content/");
    let as_json = app
        .client
        .get(app.url(&content_path))
        .header("Authorization", format!("Token {}", app.token))
        .header("Accept", "application/json");
    let view = c.check(
        "get",
        "/api/v1/message/{id}/content/",
        app.send(as_json).await.expect(200),
    );
    assert_eq!(view.json()["binary_content"]["id"], binary);
    let raw = app
        .client
        .get(app.url(&format!("{content_path}?format=raw")))
        .header("Authorization", format!("Token {}", app.token))
        .header("Accept", "audio/mpeg");
    let raw = c.check(
        "get",
        "/api/v1/message/{id}/content/",
        app.send(raw).await.expect(200),
    );
    assert_eq!(raw.bytes, b"ID3 audio");

    let sets = c.check(
        "get",
        "/api/v1/messageset/{id}/messages/",
        app.get(&format!("{M}{message_set}/messages/")).await,
    );
    assert_eq!(sets.json()["messages"][0]["id"], message);
    c.check(
        "get",
        "/api/v1/messageset_languages/",
        app.get("/api/v1/messageset_languages/").await,
    );
    Content {
        schedule,
        message_set,
        binary,
        message,
    }
}

fn subscription_body(content: &Content) -> Value {
    json!({"identity": uuid::Uuid::new_v4(), "messageset": content.message_set, "lang": "eng_ZA",
        "metadata": {"source": "openapi"}})
}

pub async fn subscriptions(app: &TestApp, c: &mut Contract, content: &Content) {
    const S: &str = "/api/v1/subscriptions/";
    const SI: &str = "/api/v1/subscriptions/{id}/";
    let created = c
        .check("post", S, app.post(S, subscription_body(content)).await)
        .json();
    let id = created["id"].as_str().unwrap().to_string();
    let at = format!("{S}{id}/");
    c.check(
        "get",
        S,
        app.get(&format!(
            "{S}?active=True&messageset={}",
            content.message_set
        ))
        .await,
    );
    c.check(
        "get",
        S,
        app.get(&format!("{S}?identity=nope")).await.expect(400),
    );
    c.check("get", SI, app.get(&at).await);
    c.check("put", SI, app.put(&at, subscription_body(content)).await);
    c.check(
        "patch",
        SI,
        app.patch(&at, json!({"next_sequence_number": 1})).await,
    );
    c.check(
        "post",
        S,
        app.post(S, json!({"identity": "x"})).await.expect(400),
    );
    let hub = json!({"hook": {"id": 1}, "data": subscription_body(content)});
    c.check(
        "post",
        "/api/v1/subscriptions/request",
        app.post("/api/v1/subscriptions/request", hub).await,
    );
    c.check(
        "post",
        "/api/v1/subscriptions/request",
        app.post("/api/v1/subscriptions/request", json!({}))
            .await
            .expect(400),
    );
    let send = app
        .post(&format!("{S}{id}/send"), json!({}))
        .await
        .expect(201);
    c.check("post", "/api/v1/subscriptions/{id}/send", send);
    let refused = app
        .post("/api/v1/subscriptions/nope/send", json!({}))
        .await
        .expect(400);
    c.check("post", "/api/v1/subscriptions/{id}/send", refused);
    let resend = app
        .post(&format!("{S}{id}/resend"), json!({}))
        .await
        .expect(202);
    c.check("post", "/api/v1/subscriptions/{id}/resend", resend);
}

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

pub async fn deletions(app: &TestApp, c: &mut Contract, content: &Content) {
    let in_use = app
        .delete(&format!("/api/v1/schedule/{}/", content.schedule))
        .await;
    c.check("delete", "/api/v1/schedule/{id}/", in_use.expect(409));
    let in_use = app
        .delete(&format!("/api/v1/binarycontent/{}/", content.binary))
        .await;
    c.check("delete", "/api/v1/binarycontent/{id}/", in_use.expect(409));
    let message = format!("/api/v1/message/{}/", content.message);
    c.check(
        "delete",
        "/api/v1/message/{id}/",
        app.delete(&message).await.expect(204),
    );
    let binary = format!("/api/v1/binarycontent/{}/", content.binary);
    c.check(
        "delete",
        "/api/v1/binarycontent/{id}/",
        app.delete(&binary).await.expect(204),
    );

    let subscription = app.get("/api/v1/subscriptions/").await.json()["results"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let at = format!("/api/v1/subscriptions/{subscription}/");
    c.check(
        "delete",
        "/api/v1/subscriptions/{id}/",
        app.delete(&at).await.expect(204),
    );

    let schedule = app.create_schedule().await;
    let body = json!({"short_name": "spare", "default_schedule": schedule});
    let set = app
        .post("/api/v1/messageset/", body)
        .await
        .expect(201)
        .json()["id"]
        .clone();
    c.check(
        "delete",
        "/api/v1/messageset/{id}/",
        app.delete(&format!("/api/v1/messageset/{set}/"))
            .await
            .expect(204),
    );
    c.check(
        "delete",
        "/api/v1/schedule/{id}/",
        app.delete(&format!("/api/v1/schedule/{schedule}/"))
            .await
            .expect(204),
    );
}
