//! Real requests to every operation, each answer checked against the OpenAPI document by
//! `openapi::Contract`: successes, and a sample of the errors (400, 404, 409).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::openapi::Contract;

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

pub fn subscription_body(content: &Content) -> Value {
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
    let forecast = app.get(&format!("{S}{id}/forecast/?n=2")).await.expect(200);
    c.check("get", "/api/v1/subscriptions/{id}/forecast/", forecast);
    let audit = app.get("/api/v1/audit/").await.expect(200);
    c.check("get", "/api/v1/audit/", audit);
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
