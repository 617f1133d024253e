//! Integration groups: list with unsent counts and errors, a group's errors with acknowledge,
//! and "send now" for push groups — through `integrations::manage`, as the API.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::{AdminError, AdminResult};
use super::form::Posted;
use super::layout::{notice, page, pager, post_button, slice, time, time_opt};
use super::session::Staff;
use crate::http::AppState;
use crate::integrations::manage;
use crate::store::filter::{Condition, Value as FilterValue};
use crate::store::integrations::{self as sql, ErrorRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/integrations", get(list))
        .route("/admin/integrations/{name}", get(show))
        .route("/admin/integrations/{name}/send", post(send_now))
        .route(
            "/admin/integration-errors/{id}/acknowledge",
            post(acknowledge),
        )
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<i64>,
    all: Option<String>,
    notice: Option<String>,
}

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let groups = sql::list_groups(conn.conn(), slice(q.page)).await?;
    let mut rows = Vec::with_capacity(groups.rows.len());
    for group in groups.rows {
        let counts = sql::group_counts(conn.conn(), &group.name).await?;
        rows.push((group, counts));
    }
    let body = html! {
        table {
            thead { tr {
                th scope="col" { "Group" } th scope="col" { "Method" } th scope="col" { "Unsent" }
                th scope="col" { "Open errors" } th scope="col" { "Last push" } th scope="col" { "Next push" } th scope="col" { "Action" }
            } }
            tbody {
                @for (g, counts) in &rows {
                    tr {
                        td { a href={"/admin/integrations/" (g.name)} { (g.name) } br; span.hint { (g.title) } }
                        td { (g.method) }
                        td.num { (counts.unsent) }
                        td.num { @if counts.unacknowledged_errors > 0 { strong.bad { (counts.unacknowledged_errors) } } @else { "0" } }
                        td { (time_opt(&g.last_push_at)) }
                        td { (time_opt(&g.next_push_at)) }
                        td { @if g.method == "send" {
                            (post_button(&staff, &format!("/admin/integrations/{}/send", g.name), "Send now", ""))
                        } }
                    }
                }
            }
        }
        (pager("/admin/integrations", "", q.page, groups.count))
    };
    Ok(page(
        "Integration groups",
        &staff,
        notice(q.notice.as_deref()),
        body,
    ))
}

#[tracing::instrument(skip_all, fields(name = %name, user_id = staff.user_id))]
async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let g = sql::get_group(conn.conn(), &name)
        .await?
        .ok_or(AdminError::NotFound)?;
    let counts = sql::group_counts(conn.conn(), &name).await?;
    let topics = sql::group_topics(conn.conn(), &name).await?;
    let all = q.all.is_some();
    let mut conditions = vec![Condition::eq("group_name", FilterValue::Text(name.clone()))];
    if !all {
        conditions.push(Condition::eq("acknowledged", FilterValue::Bool(false)));
    }
    let errors = sql::list_errors(conn.conn(), &conditions, slice(q.page)).await?;
    let here = format!(
        "/admin/integrations/{}",
        super::message_sets::urlencode(&name)
    );
    let body = html! {
        dl.facts {
            dt { "Title" } dd { (g.title) }
            dt { "Method" } dd { (g.method) @if let Some(url) = &g.target_url { " to " code { (url) } } }
            dt { "Event types" } dd { @for t in &topics { code { (t) } " " } }
            dt { "Unsent messages" } dd { (counts.unsent) }
            dt { "Last push" } dd { (time_opt(&g.last_push_at)) }
            dt { "Next push" } dd { (time_opt(&g.next_push_at)) }
        }
        @if g.method == "send" {
            (post_button(&staff, &format!("{here}/send"), "Send now", ""))
        }
        h2 { @if all { "All errors" } @else { "Open errors" } }
        p { @if all { a href=(here) { "Show open errors only" } } @else { a href={(here) "?all=1"} { "Show acknowledged errors too" } } }
        (errors_table(&staff, &errors.rows))
        (pager(&here, if all { "&all=1" } else { "" }, q.page, errors.count))
    };
    Ok(page(
        &format!("Integration group {}", g.name),
        &staff,
        notice(q.notice.as_deref()),
        body,
    ))
}

fn errors_table(staff: &Staff, errors: &[ErrorRow]) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "When" } th scope="col" { "Source" } th scope="col" { "Message" } th scope="col" { "Acknowledged" }
            } }
            tbody {
                @for e in errors {
                    tr {
                        td { (time(&e.occurred_at)) }
                        td { (e.source) }
                        td.reason { (e.message) }
                        td {
                            @if let Some(at) = &e.acknowledged_at {
                                (time(at)) @if let Some(by) = &e.acknowledged_by_email { " by " (by) }
                            } @else {
                                (post_button(staff, &format!("/admin/integration-errors/{}/acknowledge", e.id), "Acknowledge", ""))
                            }
                        }
                    }
                }
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(name = %name))]
async fn send_now(
    State(state): State<AppState>,
    Path(name): Path<String>,
    _posted: Posted,
) -> AdminResult<Response> {
    let mut tx = state.db.begin().await?;
    manage::send_now(&mut tx, &state.effects, &name).await?;
    tx.commit().await?;
    state.wake.notify_one();
    let to = format!(
        "/admin/integrations/{}?notice=done",
        super::message_sets::urlencode(&name)
    );
    Ok(Redirect::to(&to).into_response())
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = posted.staff.user_id))]
async fn acknowledge(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted,
) -> AdminResult<Response> {
    let mut tx = state.db.begin().await?;
    let error = manage::acknowledge_error(&mut tx, id, posted.staff.user_id).await?;
    tx.commit().await?;
    let to = format!(
        "/admin/integrations/{}?notice=done",
        super::message_sets::urlencode(&error.group_name)
    );
    Ok(Redirect::to(&to).into_response())
}
