use serde_json::json;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(
    a_schedule_is_created_with_defaults_for_absent_fields,
    a_schedule_can_be_read_replaced_patched_and_deleted,
    invalid_schedule_fields_are_refused_with_field_errors_and_nothing_is_written,
    a_schedule_in_use_by_a_message_set_cannot_be_deleted,
    missing_and_unparsable_ids_get_404,
    walking_next_links_visits_every_schedule_once,
);

async fn a_schedule_is_created_with_defaults_for_absent_fields(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = app
        .post("/api/v1/schedule/", json!({"hour": "8"}))
        .await
        .expect(201)
        .json();
    assert_eq!(body["minute"], "*");
    assert_eq!(body["hour"], "8");
    assert_eq!(body["day_of_week"], "*");
    assert_eq!(body["day_of_month"], "*");
    assert_eq!(body["month_of_year"], "*");
    assert!(body["id"].is_i64());
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["created_at"], body["updated_at"]);
}

async fn a_schedule_can_be_read_replaced_patched_and_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = app.create_schedule().await;
    let path = format!("/api/v1/schedule/{id}/");
    let got = app.get(&path).await.expect(200).json();
    assert_eq!(got["day_of_week"], "1,4");

    let put = app.put(&path, json!({"minute": "30", "hour": "9", "day_of_week": "7", "day_of_month": "1,15", "month_of_year": "12"})).await.expect(200).json();
    assert_eq!(
        (
            put["minute"].as_str(),
            put["day_of_week"].as_str(),
            put["month_of_year"].as_str()
        ),
        (Some("30"), Some("7"), Some("12"))
    );

    let patched = app
        .patch(&path, json!({"day_of_week": "0"}))
        .await
        .expect(200)
        .json();
    assert_eq!(patched["day_of_week"], "0");
    assert_eq!(patched["minute"], "30", "PATCH leaves other fields alone");

    // Without the slash too, as clients of the original sometimes call.
    app.get(&format!("/api/v1/schedule/{id}")).await.expect(200);

    app.delete(&path).await.expect(204);
    app.get(&path).await.expect(404);
    app.delete(&path).await.expect(404);
}

async fn invalid_schedule_fields_are_refused_with_field_errors_and_nothing_is_written(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let cases = [
        (json!({"minute": "60"}), "minute"),
        (json!({"hour": "24"}), "hour"),
        (json!({"day_of_week": "8"}), "day_of_week"),
        (json!({"day_of_month": "0"}), "day_of_month"),
        (json!({"month_of_year": "13"}), "month_of_year"),
        (json!({"minute": "*/5"}), "minute"),
        (json!({"minute": "1,,2"}), "minute"),
        (json!({"minute": ""}), "minute"),
        (json!({"minute": null}), "minute"),
        (json!({"minute": ["1"]}), "minute"),
        (json!({"minute": "x".repeat(65)}), "minute"),
    ];
    for (body, field) in cases {
        let reply = app
            .post("/api/v1/schedule/", body.clone())
            .await
            .expect(400);
        let errors = reply.json();
        assert!(errors[field].is_array(), "{body}: {errors}");
    }
    assert_eq!(app.count("/api/v1/schedule/").await, 0);

    let id = app.create_schedule().await;
    app.patch(&format!("/api/v1/schedule/{id}/"), json!({"hour": "25"}))
        .await
        .expect(400);
    assert_eq!(
        app.get(&format!("/api/v1/schedule/{id}/")).await.json()["hour"],
        "8"
    );
}

async fn a_schedule_in_use_by_a_message_set_cannot_be_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let set = app.create_message_set("momconnect", "text").await;
    let schedule = app.get(&format!("/api/v1/messageset/{set}/")).await.json()["default_schedule"]
        .as_i64()
        .unwrap();
    let reply = app
        .delete(&format!("/api/v1/schedule/{schedule}/"))
        .await
        .expect(409);
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .contains("message set"));
    app.get(&format!("/api/v1/schedule/{schedule}/"))
        .await
        .expect(200);
}

async fn missing_and_unparsable_ids_get_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for path in [
        "/api/v1/schedule/999/",
        "/api/v1/schedule/abc/",
        "/api/v1/schedule/-1/",
        "/api/v1/schedule/99999999999999999999/",
    ] {
        assert_eq!(
            app.get(path).await.expect(404).json(),
            json!({"detail": "Not found."})
        );
    }
    app.put("/api/v1/schedule/999/", json!({}))
        .await
        .expect(404);
}

async fn walking_next_links_visits_every_schedule_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(app.create_schedule().await);
    }
    let mut seen = Vec::new();
    let mut url = Some(app.url("/api/v1/schedule/?limit=3"));
    let mut pages = 0;
    while let Some(next) = url {
        let request = app
            .client
            .get(&next)
            .header("Authorization", format!("Token {}", app.token));
        let page = app.send(request).await.expect(200).json();
        assert_eq!(page["count"], 7);
        seen.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_i64().unwrap()),
        );
        url = page["next"].as_str().map(str::to_string);
        if let Some(next) = &url {
            assert!(
                next.starts_with("http://127.0.0.1:"),
                "absolute link: {next}"
            );
        }
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);

    let middle = app.get("/api/v1/schedule/?limit=3&offset=3").await.json();
    assert!(middle["previous"].as_str().unwrap().contains("limit=3"));
    assert!(
        !middle["previous"].as_str().unwrap().contains("offset"),
        "first page link has no offset"
    );
    let last = app.get("/api/v1/schedule/?limit=3&offset=6").await.json();
    assert!(last["next"].is_null());
    assert!(last["previous"].as_str().unwrap().contains("offset=3"));

    app.get("/api/v1/schedule/?limit=abc").await.expect(400);
    app.get("/api/v1/schedule/?offset=-1").await.expect(400);
}
