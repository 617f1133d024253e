use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Backend};
use crate::on_both_backends;

on_both_backends!(
    an_upload_is_stored_and_served_at_its_absolute_url,
    uploads_without_a_file_are_refused,
    an_upload_over_the_limit_gets_413_and_nothing_is_written,
    put_replaces_the_file_and_patch_without_a_file_changes_nothing,
    binary_content_used_by_a_message_cannot_be_deleted,
    links_use_the_configured_public_url,
);

async fn an_upload_is_stored_and_served_at_its_absolute_url(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let created = app.upload_audio("Welcome.MP3", b"ID3 audio bytes").await;
    let url = created["content"].as_str().unwrap();
    assert!(url.starts_with(&app.address), "{url}");
    assert!(url.ends_with(".mp3"), "{url}");
    // The Message Sender fetches audio without a token.
    let served = app.send(app.client.get(url)).await.expect(200);
    assert_eq!(served.bytes, b"ID3 audio bytes");

    let id = created["id"].as_i64().unwrap();
    let got = app
        .get(&format!("/api/v1/binarycontent/{id}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(got["content"], created["content"]);
    assert_eq!(app.count("/api/v1/binarycontent/").await, 1);
}

async fn uploads_without_a_file_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app
        .post("/api/v1/binarycontent/", json!({"content": "not a file"}))
        .await
        .expect(400);
    assert!(reply.json()["content"].is_array());
    let form = reqwest::multipart::Form::new().text("other", "x");
    let request = app
        .client
        .post(app.url("/api/v1/binarycontent/"))
        .header("Authorization", format!("Token {}", app.token))
        .multipart(form);
    assert_eq!(
        app.send(request).await.expect(400).json(),
        json!({"content": ["No file was submitted."]})
    );
    let reply = app
        .upload(
            Method::POST,
            "/api/v1/binarycontent/",
            "empty.mp3",
            Vec::new(),
            "audio/mpeg",
        )
        .await
        .expect(400);
    assert!(reply.json()["content"].is_array());
    assert_eq!(app.count("/api/v1/binarycontent/").await, 0);
}

async fn an_upload_over_the_limit_gets_413_and_nothing_is_written(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.http.max_upload_bytes = 1000).await else {
        return;
    };
    app.upload(
        Method::POST,
        "/api/v1/binarycontent/",
        "big.mp3",
        vec![7u8; 5000],
        "audio/mpeg",
    )
    .await
    .expect(413);
    assert_eq!(app.count("/api/v1/binarycontent/").await, 0);
    let files: Vec<_> = std::fs::read_dir(&app.media_root)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "no file left behind: {files:?}");
}

async fn put_replaces_the_file_and_patch_without_a_file_changes_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let created = app.upload_audio("one.mp3", b"first").await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/binarycontent/{id}/");
    let replaced = app
        .upload(
            Method::PUT,
            &path,
            "two.ogg",
            b"second".to_vec(),
            "audio/ogg",
        )
        .await
        .expect(200)
        .json();
    let new_url = replaced["content"].as_str().unwrap();
    assert_ne!(new_url, created["content"].as_str().unwrap());
    assert_eq!(
        app.send(app.client.get(new_url)).await.expect(200).bytes,
        b"second"
    );
    app.send(app.client.get(created["content"].as_str().unwrap()))
        .await
        .expect(404);

    let form = reqwest::multipart::Form::new().text("note", "nothing");
    let request = app
        .client
        .patch(app.url(&path))
        .header("Authorization", format!("Token {}", app.token))
        .multipart(form);
    assert_eq!(
        app.send(request).await.expect(200).json()["content"],
        replaced["content"]
    );
}

async fn binary_content_used_by_a_message_cannot_be_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("voice", "audio").await;
    let audio = app.upload_audio("a.mp3", b"audio").await;
    let id = audio["id"].as_i64().unwrap();
    let body =
        json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA", "binary_content": id});
    let message = app.post("/api/v1/message/", body).await.expect(201).json()["id"]
        .as_i64()
        .unwrap();
    app.delete(&format!("/api/v1/binarycontent/{id}/"))
        .await
        .expect(409);
    app.get(&format!("/api/v1/message/{message}/"))
        .await
        .expect(200);

    app.delete(&format!("/api/v1/message/{message}/"))
        .await
        .expect(204);
    app.delete(&format!("/api/v1/binarycontent/{id}/"))
        .await
        .expect(204);
    app.send(app.client.get(audio["content"].as_str().unwrap()))
        .await
        .expect(404);
}

async fn links_use_the_configured_public_url(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.http.public_url = Some("https://sbm.example.org/api/v1/subscriptions".into())
    })
    .await
    else {
        return;
    };
    let created = app.upload_audio("a.mp3", b"audio").await;
    assert!(
        created["content"]
            .as_str()
            .unwrap()
            .starts_with("https://sbm.example.org/media/"),
        "{created}"
    );
    app.create_schedule().await;
    app.create_schedule().await;
    let page = app.get("/api/v1/schedule/?limit=1").await.json();
    assert_eq!(
        page["next"],
        "https://sbm.example.org/api/v1/schedule/?limit=1&offset=1"
    );
}
