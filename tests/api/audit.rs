//! The audit log (docs/security.md), black-box: token, user and admin actions through the API
//! and the command line are recorded with who and when, and only admins read them.

use serde_json::{json, Value};

use crate::helpers::{issue_token, output_of, spawn_app_with, Backend, TestApp, TEST_SECRET_KEY};
use crate::hub::{hub_as, plain, spawn_hub_app};
use crate::on_both_backends;
use crate::receiver::Receiver;

on_both_backends!(
    api_actions_are_audited_with_who_and_when_and_only_admins_read_them,
    command_line_token_and_user_changes_are_audited,
);

async fn audit(app: &TestApp, query: &str) -> Value {
    app.get(&format!("/api/v1/audit/?{query}"))
        .await
        .expect(200)
        .json()
}

async fn actions(app: &TestApp) -> Vec<String> {
    audit(app, "limit=1000").await["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

async fn api_actions_are_audited_with_who_and_when_and_only_admins_read_them(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let issued = app
        .post("/api/v1/user/token/", json!({"email": "new@example.org"}))
        .await
        .expect(201)
        .json();
    let token = issued["token"].as_str().unwrap().to_string();
    let entries = audit(&app, "action=token.create").await;
    assert_eq!(entries["count"], 1, "{entries}");
    let entry = &entries["results"][0];
    assert_eq!(entry["actor"], "admin@example.org");
    assert!(entry["actor_id"].is_i64(), "{entry}");
    assert_eq!(entry["object_type"], "token");
    assert_eq!(entry["object_id"], &token[..8]);
    assert_eq!(entry["details"]["email"], "new@example.org");
    let at: chrono::DateTime<chrono::Utc> = entry["at"].as_str().unwrap().parse().unwrap();
    assert!(at >= before && at <= chrono::Utc::now(), "{at}");
    let everything = app.get("/api/v1/audit/?limit=1000").await.text();
    assert!(
        !everything.contains(&token),
        "the token itself is never recorded"
    );

    // A plain user's re-queue is recorded as theirs; they may not read the log.
    let user = issue_token(&app.db, "user@example.org", false).await;
    let as_user = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("Authorization", format!("Token {user}"))
    };
    app.send(as_user(reqwest::Method::POST, "/api/v1/failed-tasks/"))
        .await
        .expect(201);
    app.send(as_user(reqwest::Method::GET, "/api/v1/audit/"))
        .await
        .expect(403);
    app.send(app.client.get(app.url("/api/v1/audit/")))
        .await
        .expect(401);
    let requeue = audit(&app, "action=failed_tasks.requeue").await;
    assert_eq!(requeue["results"][0]["actor"], "user@example.org");

    // Integration group writes by an admin.
    let group = json!({"name": "g", "method": "poll", "title": "G", "event_types": ["schedule.*"]});
    app.post("/api/v1/integration-groups/", group)
        .await
        .expect(201);
    app.patch("/api/v1/integration-groups/g/", json!({"title": "G2"}))
        .await
        .expect(200);
    app.post("/api/v1/integration-groups/g/tokens/", json!({}))
        .await;
    app.delete("/api/v1/integration-groups/g/")
        .await
        .expect(204);

    // A user's own callback is theirs to change; an admin changing it is recorded.
    let receiver = Receiver::start().await;
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", "schedule.*"),
        ("hub.callback", &receiver.url("/hook")),
    ];
    hub_as(&app, &user, &fields).await.expect(202);
    let list = app.get("/api/v1/callbacks/").await.expect(200).json();
    let id = plain(&list["results"][0]["id"]);
    let path = format!("/api/v1/callbacks/{id}/");
    let own = as_user(reqwest::Method::PATCH, &path).json(&json!({"batch_size": 2}));
    app.send(own).await.expect(200);
    app.patch(&path, json!({"batch_size": 3})).await.expect(200);
    let rotate = format!("/api/v1/callbacks/{id}/rotate-secret/");
    app.post(&rotate, json!({"secret": "s"})).await.expect(200);
    app.delete(&path).await.expect(204);

    let all = actions(&app).await;
    for expected in [
        "token.create",
        "failed_tasks.requeue",
        "integration_group.create",
        "integration_group.update",
        "integration_group.token",
        "integration_group.delete",
        "callback.update",
        "callback.rotate_secret",
        "callback.delete",
    ] {
        assert_eq!(
            all.iter().filter(|a| *a == expected).count(),
            1,
            "{expected} in {all:?}"
        );
    }
    let callback_entries = audit(&app, &format!("object_type=callback&object_id={id}")).await;
    assert_eq!(callback_entries["count"], 3, "{callback_entries}");
    assert!(callback_entries["results"][0]["details"]["owner"].is_i64());

    // Paginated like the other lists.
    let page = audit(&app, "limit=2").await;
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert_eq!(page["count"].as_i64().unwrap() as usize, all.len());
    assert!(page["next"].is_string(), "{page}");
    app.get("/api/v1/audit/?actor_id=x").await.expect(400);
}

async fn command_line_token_and_user_changes_are_audited(backend: Backend) {
    // No worker in the test process: the command line has the SQLite file to itself.
    let Some(app) = spawn_app_with(backend, |c| c.no_worker = true).await else {
        return;
    };
    let database_url = app.database_url().to_string();
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sbm"));
        command
            .env_clear()
            .env("DATABASE_URL", &database_url)
            .env("SECRET_KEY", TEST_SECRET_KEY)
            .env("USER", "operator")
            .args(args);
        async move {
            let output = output_of(command).await;
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        }
    };
    run(&["user", "create", "--email", "ops@example.org", "--admin"]).await;
    let token = run(&["token", "create", "--email", "ops@example.org"]).await;
    run(&["token", "revoke", &token]).await;
    let log = audit(&app, "limit=1000").await;
    let results = log["results"].as_array().unwrap();
    let cli: Vec<&Value> = results
        .iter()
        .filter(|e| e["actor"] == "cli:operator")
        .collect();
    let actions: Vec<&str> = cli.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["user.create", "token.create", "token.revoke"],
        "{log}"
    );
    assert!(cli.iter().all(|e| e["actor_id"].is_null()));
    assert_eq!(cli[1]["object_id"], &token[..8]);
    assert_eq!(cli[2]["object_id"], &token[..8]);
    assert_eq!(cli[2]["details"]["revoked"], 1);
    assert!(!log.to_string().contains(&token));
}
