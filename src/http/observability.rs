//! `/metrics` (Prometheus exposition), `/api/metrics/` (the original's Go Metrics helpers), and
//! the middleware that counts HTTP requests by route and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::User;
use super::{ApiResult, AppState};
use crate::store::jobs as jobs_sql;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(prometheus))
        .route("/api/metrics", get(available).post(fire_scheduled))
}

/// Counts every request by route template, method and status, and times it.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("sbm_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("sbm_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Sets `name{state}` for each queue state from (state, count) rows; a state without a row is 0.
fn set_state_gauges(name: &'static str, depth: &[(String, i64)]) {
    for state in ["pending", "running", "failed"] {
        let count = depth
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!(name, "state" => state).set(count as f64);
    }
}

/// Prometheus text exposition. Queue depth and age are read from the database at scrape time.
#[utoipa::path(get, path = "/metrics", tag = "helpers",
    responses((status = 200, body = String, content_type = "text/plain", description = "Prometheus text format 0.0.4")))]
#[tracing::instrument(skip_all)]
pub async fn prometheus(State(state): State<AppState>) -> Response {
    if let Ok(mut conn) = state.db.acquire().await {
        if let Ok(depth) = jobs_sql::queue_depth(conn.conn()).await {
            set_state_gauges("sbm_jobs", &depth);
        }
        if let Ok(depth) = crate::store::events::delivery_depth(conn.conn()).await {
            set_state_gauges("sbm_deliveries", &depth);
        }
        if let Ok((waiting, errors)) = crate::store::integrations::depth(conn.conn()).await {
            for (group, count) in waiting {
                metrics::gauge!("sbm_integration_messages_unsent", "group" => group)
                    .set(count as f64);
            }
            metrics::gauge!("sbm_integration_errors_unacknowledged").set(errors as f64);
        }
        if let Ok(oldest) = jobs_sql::oldest_pending(conn.conn()).await {
            let age = oldest.map_or(0.0, |t| {
                (crate::store::now() - t).num_milliseconds().max(0) as f64 / 1000.0
            });
            metrics::gauge!("sbm_job_oldest_pending_age_seconds").set(age);
        }
    }
    let body = crate::telemetry::prometheus().render();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsAvailableOut {
    pub metrics_available: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledMetricsOut {
    pub scheduled_metrics_initiated: bool,
}

/// `{"metrics_available": [...]}`: every metric this service pushes to the Go Metrics API.
#[utoipa::path(get, path = "/api/metrics/", tag = "helpers", responses((status = 200, body = MetricsAvailableOut)))]
#[tracing::instrument(skip_all)]
pub async fn available(
    State(state): State<AppState>,
    _: User,
) -> ApiResult<Json<MetricsAvailableOut>> {
    let metrics_available = crate::go_metrics::available(&state.db).await?;
    Ok(Json(MetricsAvailableOut { metrics_available }))
}

/// Computes and pushes the scheduled metrics now (as a job, retried if the push fails).
#[utoipa::path(post, path = "/api/metrics/", tag = "helpers", responses((status = 200, body = ScheduledMetricsOut)))]
#[tracing::instrument(skip_all)]
pub async fn fire_scheduled(
    State(state): State<AppState>,
    _: User,
) -> ApiResult<(StatusCode, Json<ScheduledMetricsOut>)> {
    let mut tx = state.begin().await?;
    let change = crate::effects::Change::ScheduledMetricsRequested;
    crate::effects::follow(&mut tx, &state.effects, change).await?;
    state.commit(tx).await?;
    Ok((
        StatusCode::OK,
        Json(ScheduledMetricsOut {
            scheduled_metrics_initiated: true,
        }),
    ))
}
