//! The HTTP API: routes, extractors, wire formats. One module per resource group; the wire
//! structs live next to their handlers because their field names belong to the Django contract.

pub mod auth;
pub mod body;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod links;
pub mod query;
mod schemas;
pub mod server;
/// Old path of [`crate::wire::time`], kept while the step-7 branches merge.
pub use crate::wire::time as wire;

mod binary_content;
mod callbacks;
pub mod creations;
mod events;
mod failed_tasks;
mod health;
mod integration_poll;
mod integration_wire;
pub mod integrations;
mod local_time;
mod media;
mod message_sets;
mod messages;
mod observability;
mod openapi;
mod openapi_rules;
#[cfg(test)]
mod openapi_tests;
mod schedules;
mod security;
mod subscriptions;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::Method;
use axum::Router;

use tokio::sync::Notify;

use crate::content::media::MediaStore;
use crate::effects::Effects;
use crate::store::Db;
pub use error::{ApiError, ApiResult};

/// Settings the HTTP layer reads on every request.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Origin of the configured public URL, if any (see [`links::public_origin`]).
    pub public_origin: Option<String>,
    pub use_ssl: bool,
    pub max_body_bytes: usize,
    pub max_upload_bytes: usize,
    pub page_size: i64,
    pub max_page_size: i64,
    /// How long an admin UI session may stay unused.
    pub admin_session_idle: Duration,
    /// How long a request's body may take to arrive, counted from the request's start.
    pub body_timeout: Duration,
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<HttpSettings>,
    pub media: MediaStore,
    pub effects: Arc<Effects>,
    /// The token the Seed Scheduler presents on POST-backs.
    pub scheduler_inbound_token: Option<String>,
    /// A second send request within this long of the previous one is a duplicate.
    pub send_dedupe_window: Duration,
    /// Tells this process's worker that jobs were written.
    pub wake: Arc<Notify>,
    /// Tokens that authenticated recently.
    pub tokens: Arc<crate::auth::cache::TokenCache>,
    /// Lease and address rules of the WebSub hub.
    pub hub: Arc<crate::callbacks::Hub>,
    /// This instance's name, the default `instance` of new integration groups.
    pub instance_name: String,
    /// Quiet hours of message sets that have none of their own (SBM_SEND_WINDOW).
    pub send_window: Option<crate::content::zone::SendWindow>,
    /// Subscription creations of concurrent requests, batched into transactions.
    pub creations: creations::Creations,
}

impl AppState {
    /// Starts the transaction of a write.
    pub async fn begin(&self) -> ApiResult<crate::store::Tx> {
        Ok(self.db.begin().await?)
    }

    /// Commits a write that may have written jobs, and wakes the local worker for them.
    pub async fn commit(&self, tx: crate::store::Tx) -> ApiResult<()> {
        tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// Every route of the API, and `uploading_surfaces` (the admin UI, mounted by the app so that
/// `http` never imports it) under the same limits and middleware. Paths are written without their
/// trailing slash: the app trims it before routing, so `/api/v1/schedule/` and `/api/v1/schedule`
/// both work, as clients use both.
pub fn router(state: AppState, uploading_surfaces: Router<AppState>) -> Router {
    let upload_limit = state.settings.max_upload_bytes;
    let declared_at_most = |limit: usize| {
        axum::middleware::from_fn_with_state(limit, limits::refuse_declared_oversize)
    };
    let api = Router::new()
        .merge(schedules::router())
        .merge(message_sets::router())
        .merge(messages::router())
        .merge(subscriptions::router())
        .merge(local_time::router())
        .merge(failed_tasks::router())
        .merge(events::router())
        .merge(callbacks::router())
        .merge(integrations::router())
        .merge(users::router())
        .merge(health::router())
        .merge(observability::router())
        .merge(openapi::router())
        .merge(security::router())
        .layer(declared_at_most(state.settings.max_body_bytes));
    let uploads = binary_content::router()
        .layer(DefaultBodyLimit::max(upload_limit))
        .merge(uploading_surfaces)
        .layer(declared_at_most(upload_limit));
    Router::new()
        .merge(api)
        .merge(uploads)
        .nest_service(
            "/media",
            tower::ServiceBuilder::new()
                .map_response(media::guard)
                .service(tower_http::services::ServeDir::new(state.media.root())),
        )
        .route_layer(axum::middleware::from_fn(observability::track))
        .layer(axum::middleware::from_fn_with_state(
            state.settings.body_timeout,
            limits::body_deadline,
        ))
        .layer(axum::middleware::from_fn(limits::refuse_long_query))
        .layer(axum::middleware::from_fn(refuse_nul_in_path))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// A path with a NUL in it names nothing any engine could store (PostgreSQL refuses NUL in
/// text), so it is not found, before any handler looks it up.
async fn refuse_nul_in_path(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.uri().path().contains("%00") {
        return ApiError::NotFound.into_response();
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// A record id from the path. Anything that is not a positive integer cannot name a record,
/// so it gets the same 404 as a missing one (Django's URL patterns answered the same).
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Id(id)),
            _ => Err(ApiError::NotFound),
        }
    }
}

/// A UUID record id from the path; anything else gets 404.
pub struct UuidId(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for UuidId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        uuid::Uuid::parse_str(&raw)
            .map(UuidId)
            .map_err(|_| ApiError::NotFound)
    }
}
