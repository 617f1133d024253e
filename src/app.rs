//! Building and running the service: connect, migrate, bind, serve until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::TraceLayer;

use crate::config::{
    DatabaseConfig, EventsConfig, MetricsConfig, PeersConfig, ServeConfig, WorkerConfig,
};
use crate::content::media::MediaStore;
use crate::effects::Effects;
use crate::go_metrics::GoMetricsClient;
use crate::http::{self, links, AppState, HttpSettings};
use crate::jobs::JobSettings;
use crate::peers::Peers;
use crate::runtime::JobContext;
use crate::store::Db;

/// A bound, ready-to-run service.
pub struct App {
    listener: TcpListener,
    router: Router,
    db: Db,
    /// The embedded worker's context, unless `--no-worker`.
    jobs: Option<Arc<JobContext>>,
    header_timeout: Duration,
}

/// What the worker needs, from the parts of the configuration that concern it.
pub fn job_context(
    db: Db,
    peers: &PeersConfig,
    worker: &WorkerConfig,
    metrics: &MetricsConfig,
    events: &EventsConfig,
    public_origin: String,
    wake: Arc<Notify>,
) -> anyhow::Result<JobContext> {
    let go_metrics =
        GoMetricsClient::from_config(metrics, Duration::from_millis(peers.peer_timeout_ms));
    let peer_clients = Peers::from_config(peers);
    let effects = Effects {
        jobs: JobSettings::from(worker),
        scheduler_mode: peer_clients.scheduler.is_some(),
        go_metrics: go_metrics.is_some(),
        public_origin: public_origin.clone(),
        next_due: crate::scheduling::local::next_due,
    };
    let hub = Arc::new(crate::callbacks::Hub::new(
        crate::callbacks::CallbackSettings::from_config(events)?,
    ));
    let send_window = worker
        .send_window
        .as_deref()
        .map(crate::content::zone::SendWindow::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("SBM_SEND_WINDOW: {e}"))?;
    let send_rate = crate::sending::rate::RateLimiter::new(
        &db,
        worker.send_rate_limit,
        worker.global_send_rate_limit,
    );
    // Must be called inside the runtime: it starts the send committer task.
    let completer = crate::sending::completion::Completer::start(db.clone(), effects.clone());
    Ok(JobContext {
        db,
        hub,
        instance_name: events.instance_name.clone(),
        completer,
        effects,
        peers: peer_clients,
        public_origin,
        scheduler_inbound_token: peers
            .scheduler_inbound_api_token
            .clone()
            .filter(|t| !t.is_empty()),
        concurrency: worker.concurrency.max(1),
        poll: Duration::from_millis(worker.poll_ms.max(1)),
        wake,
        send_rate,
        tick_interval: Duration::from_secs(worker.tick_interval_secs.max(1)),
        catch_up: Duration::from_secs(worker.catch_up_secs),
        tick: crate::scheduling::ticker::TickSettings {
            max_attempts: worker.max_attempts.max(1),
            part_size: worker.tick_part_size.max(1),
        },
        go_metrics,
        metrics_flush: Duration::from_secs(metrics.flush_secs.max(1)),
        content: crate::sending::content_cache::ContentCache::new(Duration::from_millis(
            worker.content_cache_ms,
        )),
        send_window,
        retention: crate::retention::Policy::from_config(&worker.retention),
        prune_interval: (worker.retention.prune_interval_secs > 0)
            .then(|| Duration::from_secs(worker.retention.prune_interval_secs)),
    })
}

impl App {
    /// Connects to the database, applies migrations (unless disabled) and binds the listener.
    pub async fn build(database: &DatabaseConfig, config: &ServeConfig) -> anyhow::Result<App> {
        let db = Db::connect(database.url(), &database.pool()).await?;
        if !config.no_migrate {
            db.migrate().await?;
        }
        App::with_db(db, config).await
    }

    /// Binds the listener for an already connected and migrated database.
    pub async fn with_db(db: Db, config: &ServeConfig) -> anyhow::Result<App> {
        crate::telemetry::prometheus();
        let http = &config.http;
        let settings = HttpSettings {
            public_origin: http.public_url.as_deref().map(links::public_origin),
            use_ssl: http.use_ssl,
            max_body_bytes: http.max_body_bytes,
            max_upload_bytes: http.max_upload_bytes,
            page_size: http.page_size.max(1),
            max_page_size: http.max_page_size.max(1),
            admin_session_idle: Duration::from_secs(http.admin_session_idle_secs.max(1)),
            body_timeout: Duration::from_millis(http.body_timeout_ms.max(1)),
        };
        let listener = TcpListener::bind(http.bind).await?;
        let public_origin = match &settings.public_origin {
            Some(origin) => origin.clone(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let wake = Arc::new(Notify::new());
        let jobs = job_context(
            db.clone(),
            &config.peers,
            &config.worker,
            &config.metrics,
            &config.events,
            public_origin,
            wake.clone(),
        )?;
        let effects = Arc::new(jobs.effects.clone());
        let state = AppState {
            db: db.clone(),
            settings: Arc::new(settings),
            media: MediaStore::new(config.media.media_root.clone()),
            creations: http::creations::Creations::start(db.clone(), effects.clone(), wake.clone()),
            effects,
            scheduler_inbound_token: jobs.scheduler_inbound_token.clone(),
            send_dedupe_window: Duration::from_secs(config.send.dedupe_window_secs),
            tokens: Arc::new(crate::auth::cache::TokenCache::new(Duration::from_millis(
                http.auth_cache_ms,
            ))),
            wake,
            hub: jobs.hub.clone(),
            instance_name: jobs.instance_name.clone(),
            send_window: jobs.send_window,
        };
        let admin = crate::admin::router(state.settings.max_upload_bytes);
        let router = http::router(state, admin)
            .layer(CatchPanicLayer::custom(|_| internal_error()))
            .layer(TraceLayer::new_for_http());
        let jobs = (!config.no_worker).then(|| Arc::new(jobs));
        Ok(App {
            listener,
            router,
            db,
            jobs,
            header_timeout: Duration::from_millis(config.http.header_timeout_ms.max(1)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight requests and returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Trailing slashes are trimmed before routing, so that both `/api/v1/schedule/` and
        // `/api/v1/schedule` reach the same handler; that needs the layer around the router.
        let service = NormalizePathLayer::trim_trailing_slash().layer(self.router);
        let worker = self
            .jobs
            .map(|ctx| tokio::spawn(crate::runtime::run_background(ctx, shutdown.clone())));
        http::server::serve(
            self.listener,
            service,
            self.header_timeout,
            shutdown.clone(),
        )
        .await?;
        if let Some(worker) = worker {
            shutdown.cancel();
            let _ = worker.await;
        }
        self.db.close().await;
        Ok(())
    }
}

fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({"detail": "A server error occurred."})),
    )
        .into_response()
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
