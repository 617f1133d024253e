//! `GET /api/health/` (the original's, behind auth) and `GET /healthz` (open, for load
//! balancers and orchestrators): both check that the database answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::auth::User;
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/healthz", get(liveness))
}

async fn check(state: &AppState) -> (StatusCode, Json<Value>) {
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"up": true, "result": {"database": "Accessible"}})),
        ),
        Err(err) => {
            tracing::warn!(error = ?err, "health check: database not accessible");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"up": false, "result": {"database": "Not accessible"}})),
            )
        }
    }
}

#[utoipa::path(get, path = "/api/health/", tag = "helpers",
    responses((status = 200, description = "Database accessible"), (status = 503, description = "Database not accessible")))]
pub async fn health(State(state): State<AppState>, _: User) -> (StatusCode, Json<Value>) {
    check(&state).await
}

#[utoipa::path(get, path = "/healthz", tag = "helpers",
    responses((status = 200, description = "Database accessible"), (status = 503, description = "Database not accessible")))]
pub async fn liveness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    check(&state).await
}
