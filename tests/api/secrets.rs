//! Secrets at rest and signing-secret rotation (docs/security.md, docs/events.md), black-box:
//! what the database holds, what receivers get, and what the command line does with keys.

use std::process::Command;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Method;
use sbm::secrets::{Keyring, Purpose};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{
    eventually, issue_token, output_of, Backend, TestApp, TestDatabase, TEST_SECRET_KEY,
};
use crate::hub::{plain, spawn_hub_app, subscribe_active};
use crate::on_both_backends;
use crate::receiver::{Received, Receiver};

on_both_backends!(
    callback_secrets_and_auth_headers_are_stored_sealed_and_still_used,
    a_rotated_secret_signs_beside_the_old_one_until_the_grace_period_ends,
    rotating_a_secret_checks_its_fields_and_who_asks,
    plaintext_secrets_from_before_encryption_still_sign_and_rotate_seals_them,
    the_command_line_needs_a_key_on_postgres_and_generates_one_beside_sqlite,
    secrets_rotate_reseals_values_of_a_fallback_key_with_the_current_one,
);

fn signature(secret: &str, d: &Received) -> String {
    let id = d.header("webhook-id").unwrap();
    let ts = d.header("webhook-timestamp").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&d.body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{b64}")
}

async fn stored_callback_secret(app: &TestApp) -> String {
    let mut conn = app.db.acquire().await.unwrap();
    let rows = sbm::store::secrets::callback_secrets(conn.conn())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].1.clone()
}

fn test_keys() -> Keyring {
    Keyring::new(TEST_SECRET_KEY, &[])
}

/// Subscribes a receiver with `secret`, fires one event and returns (app, receiver, callback id).
async fn delivered_with_secret(
    backend: Backend,
    secret: &str,
) -> Option<(TestApp, Receiver, String)> {
    let app = spawn_hub_app(backend, |_| {}).await?;
    let receiver = Receiver::start().await;
    let callback = subscribe_active(
        &app,
        "schedule.*",
        &receiver.url("/hook"),
        &[("hub.secret", secret)],
    )
    .await;
    app.create_schedule().await;
    delivered(&receiver, 1).await;
    Some((app, receiver, plain(&callback["id"])))
}

async fn delivered(receiver: &Receiver, n: usize) -> Received {
    eventually(&format!("{n} deliveries"), || async {
        receiver.deliveries().len() >= n
    })
    .await;
    receiver.deliveries()[n - 1].clone()
}

async fn callback_secrets_and_auth_headers_are_stored_sealed_and_still_used(backend: Backend) {
    let Some((app, receiver, _)) = delivered_with_secret(backend, "s3cr3t-value").await else {
        return;
    };
    let stored = stored_callback_secret(&app).await;
    assert!(stored.starts_with("sbm:v1:"), "{stored}");
    assert!(!stored.contains("s3cr3t"), "{stored}");
    assert_eq!(
        test_keys().open(Purpose::CallbackSecret, &stored).unwrap(),
        "s3cr3t-value"
    );
    let d = delivered(&receiver, 1).await;
    assert_eq!(
        d.header("webhook-signature").unwrap(),
        signature("s3cr3t-value", &d)
    );

    let group = json!({"name": "dw", "method": "send", "title": "DW", "event_types": ["schedule.*"],
        "target_url": receiver.url("/dw"), "auth_header": "Bearer sekrit-header"});
    app.post("/api/v1/integration-groups/", group)
        .await
        .expect(201);
    app.patch(
        "/api/v1/integration-groups/dw/",
        json!({"title": "Data warehouse"}),
    )
    .await
    .expect(200);
    let mut conn = app.db.acquire().await.unwrap();
    let headers = sbm::store::secrets::integration_auth_headers(conn.conn())
        .await
        .unwrap();
    drop(conn);
    assert_eq!(headers.len(), 1);
    assert!(!headers[0].1.contains("sekrit"), "{headers:?}");
    assert_eq!(
        test_keys()
            .open(Purpose::IntegrationAuthHeader, &headers[0].1)
            .unwrap(),
        "Bearer sekrit-header",
        "a PATCH without auth_header keeps it, sealed once"
    );
    app.create_schedule().await;
    app.post("/api/v1/integration-groups/dw/send/", json!({}))
        .await;
    eventually("the push arrives", || async {
        !receiver.deliveries_to("/dw").is_empty()
    })
    .await;
    let push = &receiver.deliveries_to("/dw")[0];
    assert_eq!(push.header("authorization"), Some("Bearer sekrit-header"));
}

async fn a_rotated_secret_signs_beside_the_old_one_until_the_grace_period_ends(backend: Backend) {
    let Some((app, receiver, id)) = delivered_with_secret(backend, "old-secret").await else {
        return;
    };
    let path = format!("/api/v1/callbacks/{id}/rotate-secret/");
    let rotated = app
        .post(
            &path,
            json!({"secret": "new-secret", "grace_seconds": 3600}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(rotated["has_secret"], true);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    assert!(rotated.get("secret").is_none(), "{rotated}");
    app.create_schedule().await;
    let d = delivered(&receiver, 2).await;
    let expected = format!(
        "{} {}",
        signature("new-secret", &d),
        signature("old-secret", &d)
    );
    assert_eq!(d.header("webhook-signature").unwrap(), expected);
    let hub_sig = d.header("x-hub-signature").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"new-secret").unwrap();
    mac.update(&d.body);
    assert_eq!(
        hub_sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );

    // A rotation with no grace period: only the newest signs from now on.
    let ended = app
        .post(
            &path,
            json!({"secret": "newest-secret", "grace_seconds": 0}),
        )
        .await
        .expect(200)
        .json();
    assert!(ended["previous_secret_expires_at"].is_null(), "{ended}");
    app.create_schedule().await;
    let d = delivered(&receiver, 3).await;
    assert_eq!(
        d.header("webhook-signature").unwrap(),
        signature("newest-secret", &d)
    );
}

async fn rotating_a_secret_checks_its_fields_and_who_asks(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let callback = subscribe_active(&app, "schedule.*", &receiver.url("/hook"), &[]).await;
    let path = format!(
        "/api/v1/callbacks/{}/rotate-secret/",
        plain(&callback["id"])
    );
    let cases: &[(Value, &str)] = &[
        (json!({}), "secret"),
        (json!({"secret": ""}), "secret"),
        (json!({"secret": 5}), "secret"),
        (json!({"secret": "x".repeat(201)}), "secret"),
        (
            json!({"secret": "ok", "grace_seconds": -1}),
            "grace_seconds",
        ),
        (
            json!({"secret": "ok", "grace_seconds": 2_592_001}),
            "grace_seconds",
        ),
        (
            json!({"secret": "ok", "grace_seconds": "soon"}),
            "grace_seconds",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post(&path, body.clone()).await.expect(400);
        assert!(reply.json()[field].is_array(), "{body}: {}", reply.text());
    }
    let mut conn = app.db.acquire().await.unwrap();
    let none = sbm::store::secrets::callback_secrets(conn.conn())
        .await
        .unwrap();
    drop(conn);
    assert!(none.is_empty(), "nothing written: {none:?}");

    let stranger = issue_token(&app.db, "stranger@example.org", false).await;
    let request = app
        .client
        .post(app.url(&path))
        .header("Authorization", format!("Token {stranger}"))
        .json(&json!({"secret": "mine-now"}));
    app.send(request).await.expect(404);
    let anonymous = app
        .client
        .post(app.url(&path))
        .json(&json!({"secret": "x"}));
    app.send(anonymous).await.expect(401);

    // A callback without a secret gets its first one, with nothing to keep.
    let first = app
        .post(&path, json!({"secret": "first"}))
        .await
        .expect(200)
        .json();
    assert_eq!(first["has_secret"], true);
    assert!(first["previous_secret_expires_at"].is_null(), "{first}");
    app.call(Method::GET, "/api/v1/callbacks/", None)
        .await
        .expect(200);
}

async fn plaintext_secrets_from_before_encryption_still_sign_and_rotate_seals_them(
    backend: Backend,
) {
    let Some((app, receiver, id)) = delivered_with_secret(backend, "any").await else {
        return;
    };
    // As a database migrated from before encryption holds it.
    let stored = stored_callback_secret(&app).await;
    let mut conn = app.db.acquire().await.unwrap();
    let id: uuid::Uuid = id.parse().unwrap();
    assert!(
        sbm::store::secrets::replace_callback_secret(conn.conn(), id, &stored, "legacy-plain")
            .await
            .unwrap()
    );
    drop(conn);
    app.create_schedule().await;
    let d = delivered(&receiver, 2).await;
    assert_eq!(
        d.header("webhook-signature").unwrap(),
        signature("legacy-plain", &d)
    );

    let done = sbm::keys::rotate(&app.db, &test_keys(), &sbm::audit::Actor::cli())
        .await
        .unwrap();
    assert_eq!((done.resealed, done.current, done.unreadable), (1, 0, 0));
    let resealed = stored_callback_secret(&app).await;
    assert!(resealed.starts_with("sbm:v1:"), "{resealed}");
    assert_eq!(
        test_keys()
            .open(Purpose::CallbackSecret, &resealed)
            .unwrap(),
        "legacy-plain"
    );
    let again = sbm::keys::rotate(&app.db, &test_keys(), &sbm::audit::Actor::cli())
        .await
        .unwrap();
    assert_eq!((again.resealed, again.current), (0, 1));
}

/// The sbm binary with only the database and the given variables.
fn sbm(database_url: &str, vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sbm"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.args(args);
    command
}

async fn the_command_line_needs_a_key_on_postgres_and_generates_one_beside_sqlite(
    backend: Backend,
) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let url = database.url().to_string();
    let output = output_of(sbm(&url, &[], &["secrets", "rotate"])).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    match backend {
        Backend::Postgres => {
            assert!(!output.status.success());
            assert!(stderr.contains("SECRET_KEY is not set"), "{stderr}");
            let serve = output_of(sbm(&url, &[], &["serve", "--bind", "127.0.0.1:0"])).await;
            assert!(!serve.status.success());
            let stderr = String::from_utf8_lossy(&serve.stderr);
            assert!(stderr.contains("SECRET_KEY is not set"), "{stderr}");
        }
        Backend::Sqlite => {
            assert!(output.status.success(), "{stderr}");
            assert!(stderr.contains("generated one into"), "{stderr}");
            let file = format!("{}.secret-key", url.trim_start_matches("sqlite://"));
            let key = std::fs::read_to_string(&file).unwrap();
            assert_eq!(key.len(), 64);
            let again = output_of(sbm(&url, &[], &["secrets", "rotate"])).await;
            assert!(again.status.success());
            let stderr = String::from_utf8_lossy(&again.stderr);
            assert!(!stderr.contains("generated"), "{stderr}");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), key);
        }
    }
}

async fn secrets_rotate_reseals_values_of_a_fallback_key_with_the_current_one(backend: Backend) {
    let Some((app, _receiver, _)) = delivered_with_secret(backend, "rotate-me").await else {
        return;
    };
    let old = stored_callback_secret(&app).await;
    let vars = [
        ("SECRET_KEY", "the-new-key"),
        ("SECRET_KEY_FALLBACKS", TEST_SECRET_KEY),
    ];
    let output = output_of(sbm(app.database_url(), &vars, &["secrets", "rotate"])).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("re-encrypted 1 secret(s)"), "{stdout}");
    let audited = app
        .get("/api/v1/audit/?action=secrets.rotate")
        .await
        .expect(200)
        .json();
    assert_eq!(audited["count"], 1, "{audited}");
    assert!(audited["results"][0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("cli:"));
    assert_eq!(audited["results"][0]["details"]["resealed"], 1, "{audited}");
    let new = stored_callback_secret(&app).await;
    assert_ne!(new, old);
    let new_only = Keyring::new("the-new-key", &[]);
    assert_eq!(
        new_only.open(Purpose::CallbackSecret, &new).unwrap(),
        "rotate-me"
    );
    assert!(test_keys().open(Purpose::CallbackSecret, &new).is_err());
    // Without the old key the unreadable value is reported, and left as it is.
    let lost = output_of(sbm(
        app.database_url(),
        &[("SECRET_KEY", "unrelated")],
        &["secrets", "rotate"],
    ))
    .await;
    assert!(!lost.status.success());
    assert_eq!(stored_callback_secret(&app).await, new);
}
