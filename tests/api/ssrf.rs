//! SSRF at delivery time, black-box: a callback host name whose DNS answer changes to a refused
//! address after the subscription was verified (DNS rebinding) is not contacted.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sbm::callbacks::ssrf::{BoxFuture, Lookup};
use sbm::callbacks::{CallbackSettings, Hub};
use sbm::runtime::{JobContext, Worker};

use crate::helpers::{serve_config, spawn_app_with, Backend, TestApp};
use crate::hub::{attempt_log, callback_in_state, deliveries_of, delivery, plain, subscribe};
use crate::on_both_backends;
use crate::receiver::Receiver;

on_both_backends!(a_callback_whose_name_rebinds_to_a_refused_address_is_not_contacted);

/// What a rebinding DNS server answers for every name: one address.
#[derive(Debug)]
struct Answer(IpAddr);

impl Lookup for Answer {
    fn lookup(&self, _host: String) -> BoxFuture<std::io::Result<Vec<IpAddr>>> {
        let ip = self.0;
        Box::pin(async move { Ok(vec![ip]) })
    }
}

/// A worker's context against the app's database, whose host names all resolve to `ip`.
fn context_resolving_to(app: &TestApp, ip: &str) -> Arc<JobContext> {
    let mut config = serve_config(std::env::temp_dir());
    config.events.callback_allowed_networks = vec!["127.0.0.1/32".into()];
    config.events.retry_schedule_secs = vec![0, 0, 0];
    config.events.retry_jitter = 0.0;
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut ctx = sbm::app::job_context(
        app.db.clone(),
        &config.peers,
        &config.worker,
        &config.metrics,
        &config.events,
        app.address.clone(),
        wake,
    )
    .expect("worker context");
    let mut settings = CallbackSettings::from_config(&config.events).unwrap();
    settings.lookup = Arc::new(Answer(ip.parse().unwrap()));
    ctx.hub = Arc::new(Hub::new(settings));
    Arc::new(ctx)
}

/// Counts the connections made to 127.0.0.2 on `port`: a loopback address the policy refuses.
async fn count_connections_to_refused_address(port: u16) -> Arc<AtomicUsize> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.2", port))
        .await
        .expect("bind 127.0.0.2");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    count
}

async fn a_callback_whose_name_rebinds_to_a_refused_address_is_not_contacted(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.no_worker = true).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let port = url::Url::parse(&receiver.url("/")).unwrap().port().unwrap();
    let refused_hits = count_connections_to_refused_address(port).await;
    let callback = format!("http://rebind.example.com:{port}/hook");

    // Verified while the name resolves to the permitted 127.0.0.1.
    subscribe(&app, "schedule.*", &callback, &[])
        .await
        .expect(202);
    let permitted = context_resolving_to(&app, "127.0.0.1");
    Worker::new(permitted.clone()).drain().await.unwrap();
    let callback_row = callback_in_state(&app, "schedule.*", &callback, "active").await;
    let id = plain(&callback_row["id"]);
    assert_eq!(receiver.verifications().len(), 1);

    // Then the name answers 127.0.0.2, where something listens, but the policy refuses it.
    app.create_schedule().await;
    let rebound = context_resolving_to(&app, "127.0.0.2");
    sbm::runtime::delivery_pass(&rebound, "rebound")
        .await
        .unwrap();
    let list = deliveries_of(&app, &id, "").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let log = attempt_log(&delivery(&app, &list[0]["id"]).await);
    assert_eq!(log.len(), 1, "{log:?}");
    let error = log[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("disallowed"), "{:?}", log[0]);
    assert_eq!(
        refused_hits.load(Ordering::SeqCst),
        0,
        "the refused address was contacted"
    );
    assert!(receiver.deliveries().is_empty());

    // Once the name resolves to a permitted address again, the retry is delivered.
    sbm::runtime::delivery_pass(&permitted, "permitted")
        .await
        .unwrap();
    assert_eq!(receiver.deliveries().len(), 1);
    assert_eq!(refused_hits.load(Ordering::SeqCst), 0);
}
