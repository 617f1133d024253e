//! `/api/v1/failed-tasks/`: jobs that exhausted their attempts (or could not succeed by
//! retrying), and re-queueing them, as the original's endpoints.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::User;
use super::query::{ListRequest, Paginated};
use super::schemas::PageParams;
use super::{ApiResult, AppState};
use crate::store::jobs::{self as sql, JobRow};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/failed-tasks", get(list).post(requeue))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailedTaskOut {
    pub id: i64,
    pub task_id: Uuid,
    /// What the job was doing: `send_message`, `scheduler_create`, ...
    pub task: String,
    #[schema(required = true)]
    pub subscription: Option<Uuid>,
    #[serde(serialize_with = "super::wire::drf_time")]
    pub initiated_at: DateTime<Utc>,
    #[schema(format = DateTime, required = true)]
    pub failed_at: Option<String>,
    pub attempts: i32,
    pub reason: String,
}

impl From<JobRow> for FailedTaskOut {
    fn from(row: JobRow) -> Self {
        FailedTaskOut {
            id: row.id,
            task_id: row.task_id,
            task: row.kind,
            subscription: row.subscription_id,
            initiated_at: row.created_at,
            failed_at: row.failed_at.as_ref().map(super::wire::format_time),
            attempts: row.attempts,
            reason: row.last_error.unwrap_or_default(),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/failed-tasks/", tag = "jobs",
    params(PageParams),
    responses((status = 200, body = Paginated<FailedTaskOut>)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: User,
    req: ListRequest,
) -> ApiResult<Json<Paginated<FailedTaskOut>>> {
    let mut conn = state.db.acquire().await?;
    let page = sql::list_failed_jobs(conn.conn(), req.slice).await?;
    Ok(Json(req.respond(page, FailedTaskOut::from)))
}

/// The answer to a re-queue. Fields in alphabetical order, as the original JSON had them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequeueOut {
    /// Jobs put back in the queue.
    pub count: u64,
    pub requeued_failed_tasks: bool,
}

/// Puts every failed job back in the queue with fresh attempts.
#[utoipa::path(post, path = "/api/v1/failed-tasks/", tag = "jobs",
    responses((status = 201, body = RequeueOut)))]
#[tracing::instrument(skip_all, fields(user_id = caller.user_id))]
pub async fn requeue(
    State(state): State<AppState>,
    User(caller): User,
) -> ApiResult<(StatusCode, Json<RequeueOut>)> {
    let mut tx = state.begin().await?;
    let count = crate::jobs::failed::requeue(&mut tx, crate::jobs::failed::Requeue::All).await?;
    let actor = crate::audit::Actor::user(&caller);
    let object = crate::audit::Object::new("failed_tasks", "all");
    crate::audit::record(
        &mut tx,
        &actor,
        "failed_tasks.requeue",
        object,
        serde_json::json!({"count": count}),
    )
    .await?;
    state.commit(tx).await?;
    Ok((
        StatusCode::CREATED,
        Json(RequeueOut {
            count,
            requeued_failed_tasks: true,
        }),
    ))
}
