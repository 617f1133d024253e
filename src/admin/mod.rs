//! The admin web UI at `/admin/`: server-rendered pages (maud, escaped by default) with plain
//! forms, for the staff who edit content and look after subscriptions. Every change goes through
//! the same domain functions as the API. Sessions and CSRF: [`session`], [`form`].

mod callbacks;
mod dashboard;
mod error;
mod failed_tasks;
mod form;
mod grid;
mod integrations;
mod layout;
mod message_sets;
mod messages;
mod schedules;
mod session;
mod staff;
mod subscriptions;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http::AppState;
pub use error::AdminError;

/// Scripts only from this origin (there are none yet), nothing inline, no framing, forms post
/// only back here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; media-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

const STYLESHEET: &str = include_str!("admin.css");

/// Every admin route, for `http::router` to merge.
pub fn router(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/static/admin.css", get(stylesheet))
        .merge(session::router())
        .merge(message_sets::router())
        .merge(grid::router())
        .merge(messages::router().layer(DefaultBodyLimit::max(upload_limit)))
        .merge(schedules::router())
        .merge(subscriptions::router())
        .merge(failed_tasks::router())
        .merge(callbacks::router())
        .merge(integrations::router())
        .layer(axum::middleware::from_fn(security_headers))
}

#[tracing::instrument(skip_all)]
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ];
    for (name, value) in set {
        headers.insert(name, value);
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
