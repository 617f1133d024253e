use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Backend};
use crate::on_both_backends;

on_both_backends!(
    malformed_json_gets_400_with_a_parse_error,
    a_body_that_is_not_an_object_gets_400,
    an_unsupported_content_type_gets_415,
    a_body_over_the_limit_gets_413,
    form_encoded_bodies_are_accepted_like_drf,
    unknown_paths_and_methods_get_drf_bodies,
    health_checks_the_database,
    the_openapi_document_describes_the_api,
);

fn raw(app: &crate::helpers::TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("Authorization", format!("Token {}", app.token))
}

async fn malformed_json_gets_400_with_a_parse_error(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let request = raw(&app, Method::POST, "/api/v1/schedule/")
        .header("Content-Type", "application/json")
        .body("{\"minute\": ");
    let reply = app.send(request).await.expect(400);
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error"));
    assert_eq!(app.count("/api/v1/schedule/").await, 0);
}

async fn a_body_that_is_not_an_object_gets_400(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app
        .post("/api/v1/messageset/", json!([1, 2]))
        .await
        .expect(400);
    assert_eq!(
        reply.json(),
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
    );
}

async fn an_unsupported_content_type_gets_415(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let request = raw(&app, Method::POST, "/api/v1/schedule/")
        .header("Content-Type", "text/plain")
        .body("minute=1");
    let reply = app.send(request).await.expect(415);
    assert_eq!(
        reply.json(),
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
}

async fn a_body_over_the_limit_gets_413(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.http.max_body_bytes = 100).await else {
        return;
    };
    let reply = app
        .post(
            "/api/v1/messageset/",
            json!({"short_name": "x", "notes": "n".repeat(500)}),
        )
        .await
        .expect(413);
    assert!(reply.json()["detail"].is_string());
    assert_eq!(app.count("/api/v1/messageset/").await, 0);
}

async fn form_encoded_bodies_are_accepted_like_drf(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let request =
        raw(&app, Method::POST, "/api/v1/schedule/").form(&[("minute", "5"), ("hour", "6")]);
    let created = app.send(request).await.expect(201).json();
    assert_eq!(
        (created["minute"].as_str(), created["hour"].as_str()),
        (Some("5"), Some("6"))
    );
}

async fn unknown_paths_and_methods_get_drf_bodies(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    assert_eq!(
        app.get("/api/v1/nothing-here/").await.expect(404).json(),
        json!({"detail": "Not found."})
    );
    let reply = app
        .call(Method::PATCH, "/api/v1/schedule/", Some(json!({})))
        .await
        .expect(405);
    assert_eq!(
        reply.json(),
        json!({"detail": "Method \"PATCH\" not allowed."})
    );
}

async fn health_checks_the_database(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let health = app.get("/api/health/").await.expect(200).json();
    assert_eq!(
        health,
        json!({"up": true, "result": {"database": "Accessible"}})
    );
    app.send(app.client.get(app.url("/healthz")))
        .await
        .expect(200);
    app.db.close().await;
    let health = app.get("/healthz").await.expect(503).json();
    assert_eq!(health["up"], false);
}

async fn the_openapi_document_describes_the_api(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let doc = app
        .send(app.client.get(app.url("/api/openapi.json")))
        .await
        .expect(200)
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/schedule/",
        "/api/v1/messageset/{id}/",
        "/api/v1/message/{id}/content/",
        "/api/v1/binarycontent/",
        "/api/v1/user/token/",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["MessageSetOut"].is_object());
}
