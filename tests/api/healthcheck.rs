//! `sbm healthcheck`, the probe the container image's HEALTHCHECK runs.

use std::process::{Command, Output};

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(healthcheck_succeeds_against_a_running_server,);

/// Runs `sbm healthcheck` with `args` off the test's runtime, which serves the app meanwhile.
async fn healthcheck(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sbm"))
            .arg("healthcheck")
            .args(args)
            .env_remove("SBM_BIND")
            // As in the image, where DATABASE_URL is always set: it must not become the URL.
            .env("DATABASE_URL", "sqlite:///data/sbm.db")
            .output()
            .expect("sbm runs")
    })
    .await
    .unwrap()
}

async fn healthcheck_succeeds_against_a_running_server(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let output = healthcheck(&["--url", &app.url("/healthz")]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"up\":true"));
    // The same port by SBM_BIND's rule: a server bound to every address is asked on loopback.
    let bind = format!("0.0.0.0:{}", app.address.rsplit(':').next().unwrap());
    assert!(healthcheck(&["--bind", &bind]).await.status.success());
}

#[tokio::test]
async fn healthcheck_fails_when_nothing_answers() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let output = healthcheck(&["--url", &url, "--timeout-secs", "2"]).await;
    assert!(!output.status.success());
}

#[tokio::test]
async fn healthcheck_fails_on_an_answer_other_than_200() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/healthz",
        axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let output = healthcheck(&["--url", &format!("http://{address}/healthz")]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("503"));
}
