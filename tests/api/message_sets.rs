use serde_json::json;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(
    a_message_set_is_created_read_updated_and_deleted,
    short_names_are_unique,
    message_set_references_and_choices_are_validated,
    message_sets_filter_by_short_name_and_content_type,
    a_message_set_with_messages_or_followers_cannot_be_deleted,
    the_messages_view_nests_every_message_with_its_binary_content,
    messageset_languages_lists_the_languages_of_each_set,
);

async fn a_message_set_is_created_read_updated_and_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let schedule = app.create_schedule().await;
    let body = json!({"short_name": "pregnancy", "notes": "weekly", "default_schedule": schedule, "content_type": "audio", "channel": "voice"});
    let created = app
        .post("/api/v1/messageset/", body)
        .await
        .expect(201)
        .json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["short_name"], "pregnancy");
    assert_eq!(created["content_type"], "audio");
    assert_eq!(created["next_set"], json!(null));
    assert_eq!(created["default_schedule"], schedule);
    assert_eq!(created["label"], "");

    let follow = app.create_message_set("baby", "text").await;
    let path = format!("/api/v1/messageset/{id}/");
    let patched = app
        .patch(&path, json!({"next_set": follow}))
        .await
        .expect(200)
        .json();
    assert_eq!(patched["next_set"], follow);
    assert_eq!(patched["notes"], "weekly");

    let put = app
        .put(
            &path,
            json!({"short_name": "pregnancy2", "default_schedule": schedule}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(put["short_name"], "pregnancy2");
    assert_eq!(
        put["content_type"], "audio",
        "absent optional fields keep their values on PUT"
    );

    app.patch(&path, json!({"next_set": null}))
        .await
        .expect(200);
    app.delete(&path).await.expect(204);
    app.get(&path).await.expect(404);
}

async fn short_names_are_unique(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.create_message_set("momconnect", "text").await;
    let schedule = app.create_schedule().await;
    let reply = app
        .post(
            "/api/v1/messageset/",
            json!({"short_name": "momconnect", "default_schedule": schedule}),
        )
        .await
        .expect(400);
    assert_eq!(
        reply.json(),
        json!({"short_name": ["message set with this short name already exists."]})
    );
    assert_eq!(app.count("/api/v1/messageset/").await, 1);

    let other = app.create_message_set("other", "text").await;
    app.patch(
        &format!("/api/v1/messageset/{other}/"),
        json!({"short_name": "momconnect"}),
    )
    .await
    .expect(400);
}

async fn message_set_references_and_choices_are_validated(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let schedule = app.create_schedule().await;
    let cases = [
        (
            json!({}),
            json!({"short_name": ["This field is required."], "default_schedule": ["This field is required."]}),
        ),
        (
            json!({"short_name": "a", "default_schedule": 999}),
            json!({"default_schedule": ["Invalid pk \"999\" - object does not exist."]}),
        ),
        (
            json!({"short_name": "a", "default_schedule": "x"}),
            json!({"default_schedule": ["Incorrect type. Expected pk value, received str."]}),
        ),
        (
            json!({"short_name": "a", "default_schedule": schedule, "next_set": 999}),
            json!({"next_set": ["Invalid pk \"999\" - object does not exist."]}),
        ),
        (
            json!({"short_name": "a", "default_schedule": schedule, "content_type": "video"}),
            json!({"content_type": ["\"video\" is not a valid choice."]}),
        ),
        (
            json!({"short_name": "", "default_schedule": schedule}),
            json!({"short_name": ["This field may not be blank."]}),
        ),
        (
            json!({"short_name": "x".repeat(101), "default_schedule": schedule}),
            json!({"short_name": ["Ensure this field has no more than 100 characters."]}),
        ),
    ];
    for (body, errors) in cases {
        let reply = app
            .post("/api/v1/messageset/", body.clone())
            .await
            .expect(400);
        assert_eq!(reply.json(), errors, "{body}");
    }
    assert_eq!(app.count("/api/v1/messageset/").await, 0);

    let id = app.create_message_set("self", "text").await;
    let reply = app
        .patch(
            &format!("/api/v1/messageset/{id}/"),
            json!({"next_set": id}),
        )
        .await
        .expect(400);
    assert!(reply.json()["next_set"].is_array());
}

async fn message_sets_filter_by_short_name_and_content_type(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let text = app.create_message_set("text_set", "text").await;
    let audio = app.create_message_set("audio_set", "audio").await;
    let by_name = app
        .get("/api/v1/messageset/?short_name=audio_set")
        .await
        .expect(200)
        .json();
    assert_eq!(by_name["count"], 1);
    assert_eq!(by_name["results"][0]["id"], audio);
    let by_type = app
        .get("/api/v1/messageset/?content_type=text")
        .await
        .expect(200)
        .json();
    assert_eq!(by_type["count"], 1);
    assert_eq!(by_type["results"][0]["id"], text);
    assert_eq!(
        app.get("/api/v1/messageset/?short_name=nope").await.json()["count"],
        0
    );
}

async fn a_message_set_with_messages_or_followers_cannot_be_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("with_messages", "text").await;
    let message = app.create_message(set, 1, "eng_ZA", "Hello").await;
    let reply = app
        .delete(&format!("/api/v1/messageset/{set}/"))
        .await
        .expect(409);
    assert!(reply.json()["detail"].as_str().unwrap().contains("message"));
    assert_eq!(
        app.count("/api/v1/message/").await,
        1,
        "no message was lost"
    );

    let first = app.create_message_set("first", "text").await;
    let second = app.create_message_set("second", "text").await;
    app.patch(
        &format!("/api/v1/messageset/{first}/"),
        json!({"next_set": second}),
    )
    .await
    .expect(200);
    app.delete(&format!("/api/v1/messageset/{second}/"))
        .await
        .expect(409);

    app.delete(&format!("/api/v1/message/{message}/"))
        .await
        .expect(204);
    app.delete(&format!("/api/v1/messageset/{set}/"))
        .await
        .expect(204);
}

async fn the_messages_view_nests_every_message_with_its_binary_content(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("voice", "audio").await;
    let audio = app.upload_audio("week1.mp3", b"ID3 fake audio").await;
    let body = json!({"messageset": set, "sequence_number": 1, "lang": "eng_ZA", "binary_content": audio["id"]});
    app.post("/api/v1/message/", body).await.expect(201);
    app.create_message(set, 2, "eng_ZA", "text too").await;

    let view = app
        .get(&format!("/api/v1/messageset/{set}/messages/"))
        .await
        .expect(200)
        .json();
    assert_eq!(view["id"], set);
    assert_eq!(view["short_name"], "voice");
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0]["binary_content"],
        json!({"id": audio["id"], "content": audio["content"]})
    );
    assert_eq!(messages[1]["binary_content"], json!(null));
    app.get("/api/v1/messageset/999/messages/")
        .await
        .expect(404);
}

async fn messageset_languages_lists_the_languages_of_each_set(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let first = app.create_message_set("first", "text").await;
    let empty = app.create_message_set("empty", "text").await;
    app.create_message(first, 1, "zul_ZA", "Sawubona").await;
    app.create_message(first, 1, "eng_ZA", "Hello").await;
    app.create_message(first, 2, "eng_ZA", "Hello again").await;
    let languages = app
        .get("/api/v1/messageset_languages/")
        .await
        .expect(200)
        .json();
    assert_eq!(
        languages,
        json!({first.to_string(): ["eng_ZA", "zul_ZA"], empty.to_string(): []})
    );
}
