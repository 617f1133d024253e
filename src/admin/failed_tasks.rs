//! Failed tasks: jobs that gave up, with their reason and attempts; re-queue one or all through
//! the same domain function as the API's `POST /api/v1/failed-tasks/`.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::AdminResult;
use super::form::Posted;
use super::layout::{notice, page, pager, post_button, slice, time, time_opt};
use super::session::Staff;
use crate::http::AppState;
use crate::jobs::failed::{requeue, Requeue};
use crate::store::jobs as sql;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/failed-tasks", get(list))
        .route("/admin/failed-tasks/requeue", post(requeue_all))
        .route("/admin/failed-tasks/{id}/requeue", post(requeue_one))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<i64>,
    notice: Option<String>,
}

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let failed = sql::list_failed_jobs(conn.conn(), slice(q.page)).await?;
    let body = html! {
        @if failed.count > 0 {
            (post_button(&staff, "/admin/failed-tasks/requeue", "Re-queue all", "danger"))
        } @else { p { "No failed tasks." } }
        table {
            thead { tr {
                th scope="col" { "Id" } th scope="col" { "Task" } th scope="col" { "Subscription" }
                th scope="col" { "Started" } th scope="col" { "Failed" } th scope="col" { "Attempts" }
                th scope="col" { "Reason" } th scope="col" { "Action" }
            } }
            tbody {
                @for job in &failed.rows {
                    tr {
                        td { (job.id) }
                        td { code { (job.kind) } }
                        td { @if let Some(s) = job.subscription_id { a href={"/admin/subscriptions/" (s)} { code { (s) } } } @else { "—" } }
                        td { (time(&job.created_at)) }
                        td { (time_opt(&job.failed_at)) }
                        td.num { (job.attempts) }
                        td.reason { (job.last_error.as_deref().unwrap_or("")) }
                        td { (post_button(&staff, &format!("/admin/failed-tasks/{}/requeue", job.id), "Re-queue", "")) }
                    }
                }
            }
        }
        (pager("/admin/failed-tasks", "", q.page, failed.count))
    };
    Ok(page(
        "Failed tasks",
        &staff,
        notice(q.notice.as_deref()),
        body,
    ))
}

async fn run(state: &AppState, which: Requeue) -> AdminResult<Response> {
    let mut tx = state.db.begin().await?;
    let count = requeue(&mut tx, which).await?;
    tx.commit().await?;
    state.wake.notify_one();
    let code = if count > 0 { "requeued" } else { "nothing" };
    Ok(Redirect::to(&format!("/admin/failed-tasks?notice={code}")).into_response())
}

#[tracing::instrument(skip_all)]
async fn requeue_all(State(state): State<AppState>, _posted: Posted) -> AdminResult<Response> {
    run(&state, Requeue::All).await
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn requeue_one(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    _posted: Posted,
) -> AdminResult<Response> {
    run(&state, Requeue::One(id)).await
}
