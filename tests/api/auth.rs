use reqwest::Method;
use serde_json::json;

use crate::helpers::{issue_token, spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(
    a_request_without_credentials_gets_401_not_provided,
    an_unknown_token_gets_401_invalid_token,
    malformed_token_headers_get_401_with_the_reason,
    a_revoked_token_is_refused,
    basic_auth_with_the_token_as_password_is_accepted,
    user_token_creates_a_user_whose_token_works,
    user_token_for_an_existing_email_issues_a_new_working_token,
    user_token_is_refused_to_non_admins,
    user_token_refuses_missing_or_invalid_email,
    tokens_are_stored_hashed,
);

async fn a_request_without_credentials_gets_401_not_provided(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for path in ["/api/v1/schedule/", "/api/v1/messageset/1/", "/api/health/"] {
        let reply = app.send(app.client.get(app.url(path))).await.expect(401);
        assert_eq!(
            reply.json(),
            json!({"detail": "Authentication credentials were not provided."})
        );
        assert!(reply.headers.contains_key("www-authenticate"));
    }
}

async fn an_unknown_token_gets_401_invalid_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let request = app.client.get(app.url("/api/v1/schedule/")).header(
        "Authorization",
        "Token 0123456789abcdef0123456789abcdef01234567",
    );
    let reply = app.send(request).await.expect(401);
    assert_eq!(reply.json(), json!({"detail": "Invalid token."}));
}

async fn malformed_token_headers_get_401_with_the_reason(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for (header, detail) in [
        ("Token", "Invalid token header. No credentials provided."),
        (
            "Token a b",
            "Invalid token header. Token string should not contain spaces.",
        ),
    ] {
        let request = app
            .client
            .get(app.url("/api/v1/schedule/"))
            .header("Authorization", header);
        assert_eq!(
            app.send(request).await.expect(401).json(),
            json!({"detail": detail})
        );
    }
    let request = app
        .client
        .get(app.url("/api/v1/schedule/"))
        .header("Authorization", "Bearer x");
    assert_eq!(
        app.send(request).await.expect(401).json()["detail"],
        "Authentication credentials were not provided."
    );
}

async fn a_revoked_token_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = issue_token(&app.db, "hub@example.org", false).await;
    let get = || {
        app.client
            .get(app.url("/api/v1/schedule/"))
            .header("Authorization", format!("Token {token}"))
    };
    app.send(get()).await.expect(200);

    let mut tx = app.db.begin().await.unwrap();
    assert_eq!(sbm::auth::revoke(&mut tx, &token[..8]).await.unwrap(), 1);
    tx.commit().await.unwrap();

    assert_eq!(
        app.send(get()).await.expect(401).json(),
        json!({"detail": "Invalid token."})
    );
}

async fn basic_auth_with_the_token_as_password_is_accepted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let request = app
        .client
        .get(app.url("/api/v1/schedule/"))
        .basic_auth("admin@example.org", Some(&app.token));
    app.send(request).await.expect(200);
    let request = app
        .client
        .get(app.url("/api/v1/schedule/"))
        .basic_auth("admin@example.org", Some("wrong"));
    app.send(request).await.expect(401);
}

async fn user_token_creates_a_user_whose_token_works(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app
        .post("/api/v1/user/token/", json!({"email": "bob@example.org"}))
        .await
        .expect(201);
    let token = reply.json()["token"].as_str().expect("token").to_string();
    assert_eq!(token.len(), 40);
    let request = app
        .client
        .get(app.url("/api/v1/messageset/"))
        .header("Authorization", format!("Token {token}"));
    app.send(request).await.expect(200);
    // The new user is not an admin.
    let request = app
        .client
        .post(app.url("/api/v1/user/token/"))
        .header("Authorization", format!("Token {token}"))
        .json(&json!({"email": "eve@example.org"}));
    app.send(request).await.expect(403);
}

async fn user_token_for_an_existing_email_issues_a_new_working_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let first = app
        .post("/api/v1/user/token/", json!({"email": "bob@example.org"}))
        .await
        .expect(201)
        .json();
    let second = app
        .post("/api/v1/user/token/", json!({"email": "Bob@Example.org"}))
        .await
        .expect(201)
        .json();
    assert_ne!(first["token"], second["token"]);
    for token in [&first["token"], &second["token"]] {
        let request = app.client.get(app.url("/api/v1/schedule/")).header(
            "Authorization",
            format!("Token {}", token.as_str().unwrap()),
        );
        app.send(request).await.expect(200);
    }
    let mut conn = app.db.acquire().await.unwrap();
    let users = sbm::store::users::list_users(conn.conn()).await.unwrap();
    assert_eq!(
        users
            .iter()
            .filter(|u| u.email == "bob@example.org")
            .count(),
        1
    );
}

async fn user_token_is_refused_to_non_admins(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = issue_token(&app.db, "hub@example.org", false).await;
    let request = app
        .client
        .post(app.url("/api/v1/user/token/"))
        .header("Authorization", format!("Token {token}"))
        .json(&json!({"email": "x@example.org"}));
    let reply = app.send(request).await.expect(403);
    assert_eq!(
        reply.json(),
        json!({"detail": "You do not have permission to perform this action."})
    );
}

async fn user_token_refuses_missing_or_invalid_email(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app.post("/api/v1/user/token/", json!({})).await.expect(400);
    assert_eq!(reply.json(), json!({"email": ["This field is required."]}));
    let reply = app
        .post("/api/v1/user/token/", json!({"email": "not-an-email"}))
        .await
        .expect(400);
    assert_eq!(
        reply.json(),
        json!({"email": ["Enter a valid email address."]})
    );
    let reply = app
        .call(Method::POST, "/api/v1/user/token/", None)
        .await
        .expect(400);
    assert_eq!(reply.json(), json!({"email": ["This field is required."]}));
}

async fn tokens_are_stored_hashed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app
        .post("/api/v1/user/token/", json!({"email": "bob@example.org"}))
        .await
        .expect(201);
    let token = reply.json()["token"].as_str().unwrap().to_string();
    let hashes: Vec<String> = match &app.db {
        sbm::store::Db::Postgres(pool) => sqlx::query_scalar("select token_hash from api_token")
            .fetch_all(pool)
            .await
            .unwrap(),
        sbm::store::Db::Sqlite(pool) => sqlx::query_scalar("select token_hash from api_token")
            .fetch_all(pool)
            .await
            .unwrap(),
    };
    assert!(hashes.contains(&sbm::auth::hash_token(&token)));
    assert!(!hashes.contains(&token));
}
