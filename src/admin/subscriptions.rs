//! Subscriptions: find one by identity or id, see it with its history (its events), and
//! deactivate, reactivate, change set / language / schedule / next sequence number or resend,
//! each after a confirmation step. Changes record the signed-in admin as `updated_by`.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::error::{AdminError, AdminResult};
use super::form::{csrf_field, FormData, Posted};
use super::layout::{notice, page, pager, slice, time};
use super::session::Staff;
use crate::http::AppState;
use crate::model::subscriptions::{Subscription, SubscriptionFields};
use crate::store::filter::{Condition, Value as FilterValue};
use crate::store::{events as events_sql, subscriptions as sql, Slice};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/subscriptions", get(find))
        .route("/admin/subscriptions/{id}", get(show))
        .route("/admin/subscriptions/{id}/confirm", post(confirm))
        .route("/admin/subscriptions/{id}/apply", post(apply))
}

#[derive(Debug, Deserialize)]
pub struct FindQuery {
    q: Option<String>,
    active: Option<String>,
    page: Option<i64>,
}

fn status_text(s: &Subscription) -> &'static str {
    match (s.active, s.completed) {
        (_, true) => "completed",
        (true, false) => "active",
        (false, false) => "inactive",
    }
}

fn rows(list: &[Subscription]) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "Subscription" } th scope="col" { "Identity" } th scope="col" { "Set" }
                th scope="col" { "Lang" } th scope="col" { "Next #" } th scope="col" { "State" }
            } }
            tbody {
                @for s in list {
                    tr {
                        td { a href={"/admin/subscriptions/" (s.id)} { code { (s.id) } } }
                        td { code { (s.identity) } }
                        td { a href={"/admin/message-sets/" (s.message_set_id)} { (s.message_set_id) } }
                        td { (s.lang) }
                        td.num { (s.next_sequence_number) }
                        td { (status_text(s)) }
                    }
                }
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
async fn find(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<FindQuery>,
) -> AdminResult<Response> {
    let search = q.q.as_deref().unwrap_or("").trim().to_string();
    let mut conditions = Vec::new();
    match q.active.as_deref() {
        Some("yes") => conditions.push(Condition::eq("active", FilterValue::Bool(true))),
        Some("no") => conditions.push(Condition::eq("active", FilterValue::Bool(false))),
        _ => {}
    }
    let mut message = None;
    let mut conn = state.db.acquire().await?;
    if !search.is_empty() {
        match Uuid::parse_str(&search) {
            Ok(uuid) => {
                if sql::get_subscription(conn.conn(), uuid).await?.is_some() {
                    return Ok(
                        Redirect::to(&format!("/admin/subscriptions/{uuid}")).into_response()
                    );
                }
                conditions.push(Condition::eq("identity", FilterValue::Uuid(uuid)));
            }
            Err(_) => message = Some("Enter an identity UUID or a subscription id."),
        }
    }
    let found = sql::list_subscriptions(conn.conn(), &conditions, slice(q.page)).await?;
    let active = q.active.clone().unwrap_or_default();
    let query = format!(
        "&q={}&active={}",
        super::message_sets::urlencode(&search),
        super::message_sets::urlencode(&active)
    );
    let body = html! {
        form.search method="get" action="/admin/subscriptions" role="search" {
            label for="q" { "Identity UUID or subscription id" }
            input #q type="search" name="q" value=(search);
            label for="active" { "State" }
            select #active name="active" {
                option value="" selected[active.is_empty()] { "any" }
                option value="yes" selected[active == "yes"] { "active" }
                option value="no" selected[active == "no"] { "inactive" }
            }
            button type="submit" { "Find" }
        }
        @if let Some(message) = message { p.notice.error role="alert" { (message) } }
        (rows(&found.rows))
        (pager("/admin/subscriptions", &query, q.page, found.count))
    };
    Ok(page("Subscriptions", &staff, None, body).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    notice: Option<String>,
}

/// The subscription's latest events, newest first.
async fn history(
    conn: &mut crate::store::Pooled,
    id: Uuid,
) -> AdminResult<Vec<events_sql::EventRow>> {
    let conditions = [
        Condition::eq("object_type", FilterValue::Text("subscription".into())),
        Condition::eq("object_id", FilterValue::Text(id.to_string())),
    ];
    let count = events_sql::list_events(
        conn.conn(),
        &conditions,
        Slice {
            limit: 0,
            offset: 0,
        },
    )
    .await?
    .count;
    let limit = 100;
    let page = events_sql::list_events(
        conn.conn(),
        &conditions,
        Slice {
            limit,
            offset: (count - limit).max(0),
        },
    )
    .await?;
    Ok(page.rows.into_iter().rev().collect())
}

fn action_form(staff: &Staff, id: Uuid, action: &str, label: &str, fields: Markup) -> Markup {
    html! {
        form.card.action method="post" action={"/admin/subscriptions/" (id) "/confirm"} {
            (csrf_field(staff))
            input type="hidden" name="action" value=(action);
            (fields)
            button type="submit" { (label) }
        }
    }
}

fn actions(staff: &Staff, s: &Subscription) -> Markup {
    let field = |name: &str, label: &str, value: String| {
        html! {
            div.field { label for={(name) "-new"} { (label) } input id={(name) "-new"} name=(name) value=(value); }
        }
    };
    html! {
        section.actions {
            h2 { "Change" }
            div.cards {
                @if s.active {
                    (action_form(staff, s.id, "deactivate", "Deactivate…", html! {}))
                } @else {
                    (action_form(staff, s.id, "reactivate", "Reactivate…", html! {}))
                }
                (action_form(staff, s.id, "resend", "Resend the current message…", html! {}))
                (action_form(staff, s.id, "messageset", "Change set…", field("messageset", "Message set id", s.message_set_id.to_string())))
                (action_form(staff, s.id, "lang", "Change language…", field("lang", "Language", s.lang.clone())))
                (action_form(staff, s.id, "schedule", "Change schedule…", field("schedule", "Schedule id", s.schedule_id.to_string())))
                (action_form(staff, s.id, "next_sequence_number", "Change next message…", field("next_sequence_number", "Next sequence number", s.next_sequence_number.to_string())))
            }
        }
    }
}

async fn load(conn: &mut crate::store::Pooled, id: &str) -> AdminResult<Subscription> {
    let id = Uuid::parse_str(id).map_err(|_| AdminError::NotFound)?;
    sql::get_subscription(conn.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let s = load(&mut conn, &id).await?;
    let events = history(&mut conn, s.id).await?;
    let body = html! {
        dl.facts {
            dt { "Identity" } dd { code { (s.identity) } }
            dt { "State" } dd { (status_text(&s)) " (process status " (s.process_status) ")" }
            dt { "Message set" } dd { a href={"/admin/message-sets/" (s.message_set_id)} { (s.message_set_id) } }
            dt { "Language" } dd { (s.lang) }
            dt { "Schedule" } dd { a href={"/admin/schedules/" (s.schedule_id)} { (s.schedule_id) } }
            dt { "Next sequence number" } dd { (s.next_sequence_number) }
            dt { "Created" } dd { (time(&s.created_at)) }
            dt { "Updated" } dd { (time(&s.updated_at)) @if let Some(by) = s.updated_by { " by user " (by) } }
        }
        (actions(&staff, &s))
        section {
            h2 { "History" }
            @if events.is_empty() { p { "No events." } }
            table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Details" } } }
                tbody {
                    @for e in &events {
                        tr {
                            td { (time(&e.occurred_at)) }
                            td { code { (e.event_type) } }
                            td { details { summary { "data" } pre { (serde_json::to_string_pretty(&e.data.0).unwrap_or_default()) } } }
                        }
                    }
                }
            }
        }
    };
    Ok(page(
        &format!("Subscription {}", s.id),
        &staff,
        notice(q.notice.as_deref()),
        body,
    ))
}

/// What the action would do, in words, and the fields to apply; `Err` for bad input.
fn describe(s: &Subscription, form: &FormData) -> Result<(String, Vec<(String, String)>), String> {
    let action = form.get("action").unwrap_or("");
    let mut fields = vec![("action".to_string(), action.to_string())];
    let text = match action {
        "deactivate" => "Deactivate this subscription: it gets no more messages.".to_string(),
        "reactivate" => {
            "Reactivate this subscription: it gets its next message on its schedule.".to_string()
        }
        "resend" => format!(
            "Send message {} again now.",
            crate::subscriptions::resend_sequence_number(s)
        ),
        "messageset" | "lang" | "schedule" | "next_sequence_number" => {
            let new = form
                .text(action)
                .ok_or_else(|| format!("Enter the new {action}."))?;
            let (what, now) = match action {
                "messageset" => ("message set", s.message_set_id.to_string()),
                "lang" => ("language", s.lang.clone()),
                "schedule" => ("schedule", s.schedule_id.to_string()),
                _ => ("next sequence number", s.next_sequence_number.to_string()),
            };
            fields.push((action.to_string(), new.clone()));
            format!("Change the {what} from {now} to {new}.")
        }
        _ => return Err("Unknown action.".into()),
    };
    Ok((text, fields))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = posted.staff.user_id))]
async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> AdminResult<Response> {
    let mut conn = state.db.acquire().await?;
    let s = load(&mut conn, &id).await?;
    let (text, fields) = describe(&s, &posted.form).map_err(AdminError::BadRequest)?;
    let body = html! {
        p.confirm { (text) }
        form.inline method="post" action={"/admin/subscriptions/" (s.id) "/apply"} {
            (csrf_field(&posted.staff))
            @for (name, value) in &fields { input type="hidden" name=(name) value=(value); }
            button.danger type="submit" { "Confirm" }
        }
        a href={"/admin/subscriptions/" (s.id)} { "Cancel" }
    };
    Ok(page("Confirm", &posted.staff, None, body).into_response())
}

fn parse_number<T: std::str::FromStr>(form: &FormData, name: &str) -> AdminResult<T> {
    form.text(name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AdminError::BadRequest(format!("{name}: a valid integer is required.")))
}

/// The fields after the action, or `None` for a resend.
fn changed(before: &Subscription, form: &FormData) -> AdminResult<Option<SubscriptionFields>> {
    let mut f = SubscriptionFields::from(before);
    match form.get("action").unwrap_or("") {
        "deactivate" => f.active = false,
        "reactivate" => f.active = true,
        "resend" => return Ok(None),
        "messageset" => f.message_set_id = parse_number(form, "messageset")?,
        "lang" => f.lang = form.text("lang").unwrap_or_default(),
        "schedule" => f.schedule_id = Some(parse_number(form, "schedule")?),
        "next_sequence_number" => {
            f.next_sequence_number = parse_number(form, "next_sequence_number")?
        }
        _ => return Err(AdminError::BadRequest("Unknown action.".into())),
    }
    Ok(Some(f))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = posted.staff.user_id))]
async fn apply(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> AdminResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| AdminError::NotFound)?;
    let mut tx = state.db.begin().await?;
    let before = crate::subscriptions::lock(&mut tx, id).await?;
    match changed(&before, &posted.form)? {
        Some(fields) => {
            crate::subscriptions::update(
                &mut tx,
                &state.effects,
                &before,
                fields,
                Some(posted.staff.user_id),
            )
            .await?;
        }
        None => {
            crate::subscriptions::request_resend(&mut tx, &state.effects, id).await?;
        }
    }
    tx.commit().await?;
    state.wake.notify_one();
    Ok(Redirect::to(&format!("/admin/subscriptions/{id}?notice=done")).into_response())
}
