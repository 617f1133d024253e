use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(
    a_message_is_created_read_updated_and_deleted,
    messages_are_unique_per_set_sequence_and_language,
    invalid_messages_are_refused_and_nothing_is_written,
    messages_filter_by_messageset_lang_and_sequence_number,
    message_content_serves_text_or_the_audio_bytes,
);

async fn a_message_is_created_read_updated_and_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let body = json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA", "text_content": "Week 1", "metadata": {"tag": "a"}});
    let created = app.post("/api/v1/message/", body).await.expect(201).json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["messageset"], set);
    assert_eq!(created["binary_content"], json!(null));
    assert_eq!(created["metadata"], json!({"tag": "a"}));

    let path = format!("/api/v1/message/{id}/");
    assert_eq!(
        app.get(&path).await.expect(200).json()["text_content"],
        "Week 1"
    );
    let patched = app
        .patch(&path, json!({"text_content": "Week one"}))
        .await
        .expect(200)
        .json();
    assert_eq!(patched["text_content"], "Week one");
    assert_eq!(patched["lang"], "eng_ZA");
    let put = app
        .put(
            &path,
            json!({"messageset": set, "sequence_number": 2, "lang": "zul_ZA", "text_content": "x"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        (put["sequence_number"].as_i64(), put["lang"].as_str()),
        (Some(2), Some("zul_ZA"))
    );
    app.put(&path, json!({"text_content": "only"}))
        .await
        .expect(400);

    app.delete(&path).await.expect(204);
    app.get(&path).await.expect(404);
}

async fn messages_are_unique_per_set_sequence_and_language(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    app.create_message(set, 1, "eng_ZA", "Hello").await;
    let body =
        json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA", "text_content": "Again"});
    let reply = app.post("/api/v1/message/", body).await.expect(400);
    assert_eq!(
        reply.json(),
        json!({"non_field_errors": ["The fields messageset, sequence_number, lang must make a unique set."]})
    );
    // Another language or sequence number is fine.
    app.create_message(set, 1, "zul_ZA", "Sawubona").await;
    let second = app.create_message(set, 2, "eng_ZA", "Hello 2").await;
    app.patch(
        &format!("/api/v1/message/{second}/"),
        json!({"sequence_number": 1}),
    )
    .await
    .expect(400);
    assert_eq!(app.count("/api/v1/message/").await, 3);
}

async fn invalid_messages_are_refused_and_nothing_is_written(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let cases = [
        (
            json!({"messageset": set, "sequence_number": 0, "lang": "eng_ZA", "text_content": "x"}),
            "sequence_number",
        ),
        (
            json!({"messageset": set, "sequence_number": "one", "lang": "eng_ZA", "text_content": "x"}),
            "sequence_number",
        ),
        (
            json!({"messageset": set, "sequence_number": 1, "lang": "english", "text_content": "x"}),
            "lang",
        ),
        (
            json!({"messageset": set, "sequence_number": 1, "lang": "en", "text_content": "x"}),
            "lang",
        ),
        (
            json!({"messageset": 999, "sequence_number": 1, "lang": "eng_ZA", "text_content": "x"}),
            "messageset",
        ),
        (
            json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA", "binary_content": 999}),
            "binary_content",
        ),
        (
            json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA"}),
            "non_field_errors",
        ),
        (
            json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA", "text_content": "x", "metadata": [1]}),
            "metadata",
        ),
        (
            json!({"sequence_number": 1, "lang": "eng_ZA", "text_content": "x"}),
            "messageset",
        ),
    ];
    for (body, field) in cases {
        let errors = app
            .post("/api/v1/message/", body.clone())
            .await
            .expect(400)
            .json();
        assert!(errors[field].is_array(), "{body} -> {errors}");
    }
    assert_eq!(app.count("/api/v1/message/").await, 0);
}

async fn messages_filter_by_messageset_lang_and_sequence_number(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let first = app.create_message_set("first", "text").await;
    let second = app.create_message_set("second", "text").await;
    let wanted = app.create_message(first, 2, "eng_ZA", "a").await;
    app.create_message(first, 1, "eng_ZA", "b").await;
    app.create_message(first, 2, "zul_ZA", "c").await;
    app.create_message(second, 2, "eng_ZA", "d").await;

    let page = app
        .get(&format!(
            "/api/v1/message/?messageset={first}&lang=eng_ZA&sequence_number=2"
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["id"], wanted);
    assert_eq!(
        app.get(&format!("/api/v1/message/?messageset={second}"))
            .await
            .json()["count"],
        1
    );
    assert_eq!(
        app.get("/api/v1/message/?lang=zul_ZA").await.json()["count"],
        1
    );
    let reply = app.get("/api/v1/message/?messageset=abc").await.expect(400);
    assert!(reply.json()["messageset"].is_array());
}

async fn message_content_serves_text_or_the_audio_bytes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("set", "text").await;
    let text = app.create_message(set, 1, "eng_ZA", "Hello mum").await;
    let reply = app
        .get(&format!("/api/v1/message/{text}/content/?format=raw"))
        .await
        .expect(200);
    assert_eq!(reply.text(), "Hello mum");
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));

    let voice = app.create_message_set("voice", "audio").await;
    let audio_bytes = b"RIFF....WAVEfmt fake".to_vec();
    let audio = app
        .upload(
            Method::POST,
            "/api/v1/binarycontent/",
            "week1.wav",
            audio_bytes.clone(),
            "audio/wav",
        )
        .await
        .expect(201)
        .json();
    let body = json!({"messageset": voice, "sequence_number": 1, "lang": "eng_ZA", "binary_content": audio["id"]});
    let message = app.post("/api/v1/message/", body).await.expect(201).json()["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .get(&format!("/api/v1/message/{message}/content?format=raw"))
        .await
        .expect(200);
    assert_eq!(reply.bytes, audio_bytes);
    assert_eq!(reply.headers["content-type"], "audio/wav");

    let request = app
        .client
        .get(app.url(&format!("/api/v1/message/{message}/content/")))
        .header("Authorization", format!("Token {}", app.token))
        .header("Accept", "application/json");
    let json = app.send(request).await.expect(200).json();
    assert_eq!(json["binary_content"]["content"], audio["content"]);
    app.get("/api/v1/message/999/content/").await.expect(404);
}
