//! Spans over OTLP, black-box: an `sbm worker` process with `OTEL_EXPORTER_OTLP_ENDPOINT` set
//! exports its spans to a collector on loopback and sends the W3C trace context to the peers it
//! calls, so that the Message Sender's request and sbm's spans share one trace id. Without the
//! setting, no header is sent.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{eventually, worker_for, Backend};
use crate::on_both_backends;
use crate::sending::world_with;

on_both_backends!(a_worker_exports_its_spans_and_sends_the_trace_context_to_peers);

/// An OTLP/HTTP collector that keeps the bodies of the trace exports it receives.
struct Collector {
    url: String,
    exports: Arc<Mutex<Vec<(String, Bytes)>>>,
}

impl Collector {
    async fn start() -> Collector {
        let exports: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
        let kept = exports.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |headers: HeaderMap, body: Bytes| {
                let kept = kept.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    kept.lock().unwrap().push((content_type, body));
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { url, exports }
    }

    fn holds(&self, needle: &[u8]) -> bool {
        self.exports
            .lock()
            .unwrap()
            .iter()
            .any(|(_, body)| body.windows(needle.len()).any(|w| w == needle))
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

async fn a_worker_exports_its_spans_and_sends_the_trace_context_to_peers(backend: Backend) {
    let Some(w) = world_with(backend, |c| {
        c.no_worker = true;
        c.peers.scheduler_url = None;
    })
    .await
    else {
        return;
    };
    let collector = Collector::start().await;
    let set = w.text_set("set", 3).await;
    let id = w.subscribe(json!({"messageset": set})).await;

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sbm"));
    command
        .arg("worker")
        .env_clear()
        .env("DATABASE_URL", w.app.database_url())
        .env("SECRET_KEY", crate::helpers::TEST_SECRET_KEY)
        .env("IDENTITY_STORE_URL", w.peers.identity_store_url())
        .env("MESSAGE_SENDER_URL", w.peers.message_sender_url())
        .env("STAGE_BASED_MESSAGING_URL", &w.app.address)
        .env("SBM_WORKER_POLL_MS", "20")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "info");
    let mut child = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .expect("sbm worker starts");
    let send = format!("/api/v1/subscriptions/{id}/send");
    w.app
        .call(Method::POST, &send, Some(json!({})))
        .await
        .expect(201);
    eventually("the worker process sends", || async {
        w.peers.outbounds().len() == 1
    })
    .await;
    let outbound = w.peers.requests("POST", "/outbound/").remove(0);
    let traceparent = outbound.traceparent.expect("a traceparent on the outbound");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00", "{traceparent}");
    assert_eq!(parts[1].len(), 32, "{traceparent}");
    assert_eq!(parts[2].len(), 16, "{traceparent}");
    assert_ne!(parts[1], "0".repeat(32), "{traceparent}");
    // The Identity Store lookup of the same send is in the same trace.
    let lookups = w.peers.requests("GET", "/identities/");
    assert!(
        lookups.iter().any(|r| r
            .traceparent
            .as_deref()
            .is_some_and(|t| t.contains(parts[1]))),
        "{lookups:?}"
    );
    // sbm's spans of that trace reach the collector (protobuf keeps the id as 16 raw bytes).
    let trace_id = hex_bytes(parts[1]);
    eventually("the spans of the send are exported", || async {
        collector.holds(&trace_id)
    })
    .await;
    assert!(collector.holds(b"sbm"), "the service name is sbm");
    assert!(collector
        .exports
        .lock()
        .unwrap()
        .iter()
        .all(|(t, _)| t == "application/x-protobuf"));
    // The worker process has recorded its send (else the kill could leave its job running under
    // a lease, and the next send would queue behind it).
    let subscription = format!("/api/v1/subscriptions/{id}/");
    eventually("the worker process records the send", || async {
        w.app.get(&subscription).await.json()["next_sequence_number"] == 2
    })
    .await;
    child.kill().await.unwrap();

    // A worker without the setting sends no trace context.
    w.app
        .call(Method::POST, &send, Some(json!({})))
        .await
        .expect(201);
    let worker = worker_for(&w.app, &w.peers, false);
    eventually("the in-process worker sends", || async {
        worker.drain().await.unwrap();
        w.peers.outbounds().len() == 2
    })
    .await;
    let second = w.peers.requests("POST", "/outbound/").remove(1);
    assert_eq!(second.traceparent, None);
}
