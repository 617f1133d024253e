//! Callbacks (WebSub subscriptions) and their deliveries: list with state and lease, a
//! callback's recent deliveries and a delivery's attempts; retry one delivery, recover a time
//! range, disable or delete a callback — through `callbacks::manage`, as the API.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::error::{AdminError, AdminResult};
use super::form::{csrf_field, Posted};
use super::layout::{notice, page, pager, post_button, slice, time, time_opt};
use super::message_sets::urlencode;
use super::session::Staff;
use crate::callbacks::manage;
use crate::http::query::parse_time;
use crate::http::AppState;
use crate::store::events::{self as sql, CallbackRow};
use crate::store::filter::{Condition, Value as FilterValue};
use crate::store::Pooled;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/callbacks", get(list))
        .route("/admin/callbacks/{id}", get(show))
        .route("/admin/callbacks/{id}/recover", post(recover))
        .route("/admin/callbacks/{id}/disable", post(disable))
        .route(
            "/admin/callbacks/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/admin/deliveries/{id}", get(delivery))
        .route("/admin/deliveries/{id}/retry", post(retry))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    page: Option<i64>,
    notice: Option<String>,
}

const CALLBACK_STATES: &[&str] = &[
    "pending",
    "active",
    "denied",
    "expired",
    "disabled",
    "unsubscribed",
    "gone",
];
const DELIVERY_STATES: &[&str] = &["pending", "running", "succeeded", "failed"];

fn state_filter(action: &str, states: &[&str], chosen: &str) -> Markup {
    html! {
        form.search method="get" action=(action) {
            label for="state" { "State" }
            select #state name="state" {
                option value="" selected[chosen.is_empty()] { "any" }
                @for s in states { option value=(s) selected[*s == chosen] { (s) } }
            }
            button type="submit" { "Filter" }
        }
    }
}

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> AdminResult<Markup> {
    let chosen = q.state.clone().unwrap_or_default();
    let mut conditions = Vec::new();
    if !chosen.is_empty() {
        conditions.push(Condition::eq("state", FilterValue::Text(chosen.clone())));
    }
    let mut conn = state.db.acquire().await?;
    let callbacks = sql::list_callbacks(conn.conn(), &conditions, slice(q.page)).await?;
    let body = html! {
        (state_filter("/admin/callbacks", CALLBACK_STATES, &chosen))
        table {
            thead { tr {
                th scope="col" { "Topic" } th scope="col" { "Callback URL" } th scope="col" { "State" }
                th scope="col" { "Lease ends" } th scope="col" { "Failing since" }
            } }
            tbody {
                @for c in &callbacks.rows {
                    tr {
                        td { a href={"/admin/callbacks/" (c.id)} { code { (c.topic) } } }
                        td { code { (c.callback_url) } }
                        td { (c.state) @if let Some(r) = &c.state_reason { br; span.hint { (r) } } }
                        td { (time_opt(&c.lease_expires_at)) }
                        td { (time_opt(&c.failing_since)) }
                    }
                }
            }
        }
        (pager("/admin/callbacks", &format!("&state={}", urlencode(&chosen)), q.page, callbacks.count))
    };
    Ok(page("Callbacks", &staff, notice(q.notice.as_deref()), body))
}

async fn load(conn: &mut Pooled, id: &str) -> AdminResult<CallbackRow> {
    let id = Uuid::parse_str(id).map_err(|_| AdminError::NotFound)?;
    sql::get_callback(conn.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)
}

fn callback_actions(staff: &Staff, c: &CallbackRow) -> Markup {
    html! {
        section {
            h2 { "Recover failed deliveries" }
            form.card method="post" action={"/admin/callbacks/" (c.id) "/recover"} {
                (csrf_field(staff))
                p.hint { "Failed deliveries of events that occurred in this range (UTC) go back in the queue." }
                div.row {
                    div.field { label for="since" { "From (UTC)" } input #since type="datetime-local" name="since" required; }
                    div.field { label for="until" { "Until (UTC, optional)" } input #until type="datetime-local" name="until"; }
                }
                button type="submit" { "Recover" }
            }
            @if c.state != "disabled" {
                (post_button(staff, &format!("/admin/callbacks/{}/disable", c.id), "Disable deliveries", "danger"))
            }
            a.danger href={"/admin/callbacks/" (c.id) "/delete"} { "Delete this callback…" }
        }
    }
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let c = load(&mut conn, &id).await?;
    let chosen = q.state.clone().unwrap_or_default();
    let mut conditions = vec![Condition::eq("callback_id", FilterValue::Uuid(c.id))];
    if !chosen.is_empty() {
        conditions.push(Condition::eq("state", FilterValue::Text(chosen.clone())));
    }
    let deliveries = sql::list_deliveries(conn.conn(), &conditions, slice(q.page)).await?;
    let here = format!("/admin/callbacks/{}", c.id);
    let body = html! {
        dl.facts {
            dt { "Topic" } dd { code { (c.topic) } }
            dt { "Callback URL" } dd { code { (c.callback_url) } }
            dt { "State" } dd { (c.state) @if let Some(r) = &c.state_reason { " — " (r) } }
            dt { "Lease" } dd { (c.lease_seconds) " s, ends " (time_opt(&c.lease_expires_at)) }
            dt { "Events per POST" } dd { (c.batch_size) }
            dt { "Failing since" } dd { (time_opt(&c.failing_since)) }
            dt { "Created" } dd { (time(&c.created_at)) }
        }
        (callback_actions(&staff, &c))
        section {
            h2 { "Deliveries, newest first" }
            (state_filter(&here, DELIVERY_STATES, &chosen))
            table {
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { "Event" } th scope="col" { "State" }
                    th scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "Action" }
                } }
                tbody {
                    @for d in &deliveries.rows {
                        tr {
                            td { a href={"/admin/deliveries/" (d.delivery.id)} { (d.delivery.id) } }
                            td { code { (d.event_type) } }
                            td { (d.delivery.state) }
                            td.num { (d.delivery.attempts) }
                            td.reason {
                                @if let Some(code) = d.delivery.last_status_code { (code) " " }
                                (d.delivery.last_error.as_deref().unwrap_or(""))
                            }
                            td { @if d.delivery.state == "failed" || d.delivery.state == "succeeded" {
                                (post_button(&staff, &format!("/admin/deliveries/{}/retry", d.delivery.id), "Retry", ""))
                            } }
                        }
                    }
                }
            }
            (pager(&here, &format!("&state={}", urlencode(&chosen)), q.page, deliveries.count))
        }
    };
    Ok(page("Callback", &staff, notice(q.notice.as_deref()), body))
}

fn done(path: String) -> AdminResult<Response> {
    Ok(Redirect::to(&path).into_response())
}

/// A `datetime-local` value (no zone, read as UTC) or any time the API accepts.
fn form_time(value: Option<String>) -> Option<chrono::DateTime<chrono::Utc>> {
    let value = value?;
    let with_seconds = if value.len() == 16 {
        format!("{value}:00")
    } else {
        value
    };
    parse_time(&with_seconds)
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = posted.staff.user_id))]
async fn recover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> AdminResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| AdminError::NotFound)?;
    let since = form_time(posted.form.text("since"))
        .ok_or_else(|| AdminError::BadRequest("From: enter a valid date and time.".into()))?;
    let until =
        match posted.form.text("until") {
            None => None,
            some => Some(form_time(some).ok_or_else(|| {
                AdminError::BadRequest("Until: enter a valid date and time.".into())
            })?),
        };
    let mut tx = state.db.begin().await?;
    manage::recover(&mut tx, id, since, until).await?;
    tx.commit().await?;
    state.wake.notify_one();
    done(format!("/admin/callbacks/{id}?notice=requeued"))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = posted.staff.user_id))]
async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> AdminResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| AdminError::NotFound)?;
    let reason = format!("disabled by {} in the admin UI", posted.staff.email);
    let mut tx = state.db.begin().await?;
    manage::disable(&mut tx, &state.effects, id, &reason).await?;
    tx.commit().await?;
    state.wake.notify_one();
    done(format!("/admin/callbacks/{id}?notice=saved"))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn confirm_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let c = load(&mut conn, &id).await?;
    let body = html! {
        p { "Delete the callback to " code { (c.callback_url) } " for " code { (c.topic) } " with all its deliveries? This cannot be undone." }
        form.inline method="post" action={"/admin/callbacks/" (c.id) "/delete"} {
            (csrf_field(&staff))
            button.danger type="submit" { "Yes, delete it" }
        }
        a href={"/admin/callbacks/" (c.id)} { "Cancel" }
    };
    Ok(page("Delete callback", &staff, None, body))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _posted: Posted,
) -> AdminResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| AdminError::NotFound)?;
    let mut tx = state.db.begin().await?;
    manage::delete(&mut tx, id).await?;
    tx.commit().await?;
    done("/admin/callbacks?notice=deleted".into())
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn delivery(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let view = sql::get_delivery(conn.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)?;
    let attempts = sql::list_attempts(conn.conn(), id).await?;
    let d = &view.delivery;
    let body = html! {
        dl.facts {
            dt { "Callback" } dd { a href={"/admin/callbacks/" (d.callback_id)} { code { (d.callback_id) } } }
            dt { "Event" } dd { code { (view.event_type) } " " code { (view.event_uuid) } }
            dt { "State" } dd { (d.state) }
            dt { "Next attempt" } dd { @if d.state == "pending" { (time(&d.next_attempt_at)) } @else { "—" } }
            dt { "Delivered" } dd { (time_opt(&d.delivered_at)) }
        }
        @if d.state == "failed" || d.state == "succeeded" {
            (post_button(&staff, &format!("/admin/deliveries/{id}/retry"), "Retry", ""))
        }
        h2 { "Attempts" }
        table {
            thead { tr {
                th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Status" }
                th scope="col" { "Took" } th scope="col" { "Answer or error" }
            } }
            tbody {
                @for (i, a) in attempts.iter().enumerate() {
                    tr {
                        td { (i + 1) }
                        td { (time(&a.attempted_at)) }
                        td { @if let Some(code) = a.status_code { (code) } @else { "—" } }
                        td.num { (a.duration_ms) " ms" }
                        td.reason { (a.error.as_deref().or(a.response_body.as_deref()).unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(page(&format!("Delivery {id}"), &staff, None, body))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    _posted: Posted,
) -> AdminResult<Response> {
    let mut tx = state.db.begin().await?;
    let view = manage::retry_delivery(&mut tx, id).await?;
    tx.commit().await?;
    state.wake.notify_one();
    done(format!(
        "/admin/callbacks/{}?notice=requeued",
        view.delivery.callback_id
    ))
}
