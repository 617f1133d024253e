//! Errors and panics reach Sentry, scrubbed (src/sentry_reporting.rs): a fake Sentry endpoint
//! receives the envelopes that sbm's own set-up (the one `main` uses) sends. A test binary of
//! its own, because the Sentry client and the tracing subscriber are per process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::Router;

const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

/// A fake Sentry: keeps the body of every envelope POSTed to it.
async fn fake_sentry() -> (String, Arc<Mutex<Vec<String>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = Router::new().route(
        "/api/{project}/envelope/",
        post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                store
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://public@127.0.0.1:{port}/1"), received)
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_and_panics_reach_sentry_with_their_job_and_without_secrets() {
    let (dsn, received) = fake_sentry().await;
    let guard = sbm::sentry_reporting::init(&dsn).unwrap();
    sbm::telemetry::init_with(true);

    // On threads started after the client, as the runtime's threads in `sbm serve` (a thread
    // that looked at its Sentry hub before `init` keeps an empty one; the test harness's does).
    std::thread::spawn(|| {
        let span = tracing::info_span!("job", id = 4242, kind = "send_message", attempt = 6);
        let _enter = span.enter();
        tracing::error!(
            authorization = %format!("Token {TOKEN}"),
            error = %format!("the Message Sender refused token {TOKEN}"),
            "job failed"
        );
    })
    .join()
    .unwrap();
    let panicked = std::thread::spawn(|| panic!("boom with Bearer s3cret-header-value"))
        .join()
        .is_err();
    assert!(panicked);
    sentry::Hub::main()
        .client()
        .expect("a bound client")
        .flush(Some(Duration::from_secs(5)));
    drop(guard);

    let envelopes = received.lock().unwrap().clone();
    let all = envelopes.join("\n");
    let job = envelopes
        .iter()
        .find(|e| e.contains("job failed"))
        .unwrap_or_else(|| panic!("no event for the error: {all}"));
    assert!(job.contains("4242"), "the job id is reported: {job}");
    assert!(job.contains("send_message"), "{job}");
    let panic = envelopes
        .iter()
        .find(|e| e.contains("boom with"))
        .unwrap_or_else(|| panic!("no event for the panic: {all}"));
    assert!(panic.contains("[Filtered]"), "{panic}");
    assert!(!all.contains(TOKEN), "a token reached Sentry: {all}");
    assert!(
        !all.contains("s3cret-header-value"),
        "a secret reached Sentry: {all}"
    );
}
