//! Building and running the service: connect, migrate, bind, serve until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, ServiceExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::TraceLayer;

use crate::config::{DatabaseConfig, ServeConfig};
use crate::content::media::MediaStore;
use crate::http::{self, links, AppState, HttpSettings};
use crate::store::Db;

/// A bound, ready-to-run service.
pub struct App {
    listener: TcpListener,
    router: Router,
    db: Db,
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
        let http = &config.http;
        let settings = HttpSettings {
            public_origin: http.public_url.as_deref().map(links::public_origin),
            use_ssl: http.use_ssl,
            max_body_bytes: http.max_body_bytes,
            max_upload_bytes: http.max_upload_bytes,
            page_size: http.page_size.max(1),
            max_page_size: http.max_page_size.max(1),
        };
        let state = AppState {
            db: db.clone(),
            settings: Arc::new(settings),
            media: MediaStore::new(config.media.media_root.clone()),
        };
        let router = http::router(state)
            .layer(CatchPanicLayer::custom(|_| internal_error()))
            .layer(TraceLayer::new_for_http());
        let listener = TcpListener::bind(http.bind).await?;
        Ok(App {
            listener,
            router,
            db,
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
        axum::serve(
            self.listener,
            ServiceExt::<Request>::into_make_service(service),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
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
