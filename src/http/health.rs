//! `GET /api/health/` (the original's, behind auth) and `GET /healthz` (open, for load
//! balancers and orchestrators): both check that the database answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::User;
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/healthz", get(liveness))
}

/// `{"result": {"database": …}, "up": …}` (fields in alphabetical order, as the original's).
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    pub result: HealthResult,
    pub up: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResult {
    /// `Accessible` or `Not accessible`.
    #[schema(value_type = DatabaseHealth)]
    pub database: &'static str,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum DatabaseHealth {
    Accessible,
    #[serde(rename = "Not accessible")]
    NotAccessible,
}

fn health_out(up: bool, database: &'static str) -> Json<HealthOut> {
    Json(HealthOut {
        result: HealthResult { database },
        up,
    })
}

async fn check(state: &AppState) -> (StatusCode, Json<HealthOut>) {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, health_out(true, "Accessible")),
        Err(err) => {
            tracing::warn!(error = ?err, "health check: database not accessible");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                health_out(false, "Not accessible"),
            )
        }
    }
}

#[utoipa::path(get, path = "/api/health/", tag = "helpers",
    responses((status = 200, body = HealthOut, description = "Database accessible"),
        (status = 503, body = HealthOut, description = "Database not accessible")))]
#[tracing::instrument(skip_all)]
pub async fn health(State(state): State<AppState>, _: User) -> (StatusCode, Json<HealthOut>) {
    check(&state).await
}

#[utoipa::path(get, path = "/healthz", tag = "helpers",
    responses((status = 200, body = HealthOut, description = "Database accessible"),
        (status = 503, body = HealthOut, description = "Database not accessible")))]
#[tracing::instrument(skip_all)]
pub async fn liveness(State(state): State<AppState>) -> (StatusCode, Json<HealthOut>) {
    check(&state).await
}
