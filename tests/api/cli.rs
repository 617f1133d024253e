//! The `sbm` binary itself: first start, migrate, and token administration from the shell.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestDatabase};
use crate::on_both_backends;

on_both_backends!(
    first_serve_on_an_empty_database_prints_a_working_admin_token,
    tokens_created_and_revoked_from_the_shell_work_against_the_api,
    integration_groups_created_from_the_shell_are_polled_with_their_token,
);

fn sbm(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sbm"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .env("SBM_AUTH_CACHE_MS", "0")
        .env("SECRET_KEY", "cli-test-secret-key");
    command
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("sbm runs");
    assert!(
        output.status.success(),
        "sbm failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Starts `sbm serve` on port 0 and returns the child, its address and everything it printed
/// until it said it was listening.
fn serve(database_url: &str, media: &std::path::Path) -> (std::process::Child, String, String) {
    let mut child = sbm(database_url)
        .args(["serve", "--bind", "127.0.0.1:0", "--media-root"])
        .arg(media)
        .stderr(Stdio::piped())
        .spawn()
        .expect("sbm serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut printed = String::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let Some(Ok(line)) = lines.next() else { break };
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("sbm listening") {
            let address = line
                .split("address=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next());
            let Some(address) = address else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no address in {line:?}");
            };
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, format!("http://{address}"), printed);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("sbm serve did not start:\n{printed}");
}

async fn first_serve_on_an_empty_database_prints_a_working_admin_token(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let media = tempfile::tempdir().unwrap();
    let (mut child, address, printed) = serve(database.url(), media.path());
    let token = printed
        .split_whitespace()
        .find(|w| w.len() == 40 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no token printed:\n{printed}"))
        .to_string();
    let client = reqwest::Client::new();
    let reply = client
        .post(format!("{address}/api/v1/user/token/"))
        .header("Authorization", format!("Token {token}"))
        .json(&serde_json::json!({"email": "ops@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201, "the printed token is an admin's");
    let _ = child.kill();
    let _ = child.wait();

    // A second start does not create another admin or print a token.
    let (mut child, _, printed) = serve(database.url(), media.path());
    let _ = child.kill();
    let _ = child.wait();
    assert!(!printed.contains("shown only this once"), "{printed}");
}

async fn tokens_created_and_revoked_from_the_shell_work_against_the_api(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let url = database.url().to_string();
    assert!(run(sbm(&url).arg("migrate")).contains("migrations applied"));
    run(sbm(&url).args(["user", "create", "--email", "Hub@Example.org"]));
    let token = run(sbm(&url).args(["token", "create", "--email", "hub@example.org"]))
        .trim()
        .to_string();
    assert_eq!(token.len(), 40);
    assert!(run(sbm(&url).args(["token", "list"])).contains(&token[..8]));
    assert!(!run(sbm(&url).args(["token", "list"])).contains(&token));

    let media = tempfile::tempdir().unwrap();
    let (mut child, address, _) = serve(&url, media.path());
    let client = reqwest::Client::new();
    let get = || {
        client
            .get(format!("{address}/api/v1/schedule/"))
            .header("Authorization", format!("Token {token}"))
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    run(sbm(&url).args(["token", "revoke", &token[..8]]));
    assert_eq!(get().await.unwrap().status(), 401);
    let _ = child.kill();
    let _ = child.wait();
}

async fn integration_groups_created_from_the_shell_are_polled_with_their_token(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let url = database.url().to_string();
    run(sbm(&url).arg("migrate"));
    let created = run(sbm(&url).args([
        "integration-group",
        "create",
        "--name",
        "records",
        "--method",
        "poll",
        "--title",
        "Records system",
        "--event-type",
        "schedule.*",
    ]));
    assert!(created.contains("records"), "{created}");
    // The API's rules hold on the command line too: a send group needs a target.
    let refused = sbm(&url)
        .args([
            "integration-group",
            "create",
            "--name",
            "dw",
            "--method",
            "send",
            "--title",
            "Warehouse",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("target_url"));
    let listed = run(sbm(&url).args(["integration-group", "list"]));
    assert!(listed.contains("records\tpoll"), "{listed}");
    assert!(!listed.contains("dw"), "{listed}");
    let token = run(sbm(&url).args(["integration-group", "token", "records"]))
        .trim()
        .to_string();
    let unknown = sbm(&url)
        .args(["integration-group", "token", "nope"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());

    let media = tempfile::tempdir().unwrap();
    let (mut child, address, _) = serve(&url, media.path());
    let client = reqwest::Client::new();
    let fetch = client
        .get(format!(
            "{address}/api/haplo-integration-messages/poll/records/fetch"
        ))
        .basic_auth("haplo", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(fetch.status(), 200);
    let body: serde_json::Value = fetch.json().await.unwrap();
    assert_eq!(body["version"], 0);
    assert_eq!(body["unreadCount"], 0);
    let elsewhere = client
        .get(format!("{address}/api/v1/schedule/"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
    run(sbm(&url).args(["integration-group", "delete", "records"]));
    assert!(!run(sbm(&url).args(["integration-group", "list"])).contains("records"));
    let _ = child.kill();
    let _ = child.wait();
}
