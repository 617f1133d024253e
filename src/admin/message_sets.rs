//! Message sets: list with search, create, edit, delete (refused while still in use, as in the
//! API).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::{AdminError, AdminResult};
use super::form::{csrf_field, FormData, Posted};
use super::layout::{form_errors, input, notice, page, pager, select, slice, textarea};
use super::schedules::{describe, invalid};
use super::session::Staff;
use crate::http::AppState;
use crate::model::content::{MessageSet, MessageSetFields, CONTENT_TYPES};
use crate::store::{admin as admin_sql, content as sql, ticks, Pooled, Slice};
use crate::validation::FieldErrors;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/message-sets", get(list).post(create))
        .route("/admin/message-sets/new", get(new))
        .route("/admin/message-sets/{id}/edit", get(edit).post(update))
        .route(
            "/admin/message-sets/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<i64>,
    notice: Option<String>,
}

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> AdminResult<Markup> {
    let search = q.q.as_deref().unwrap_or("").trim().to_string();
    let mut conn = state.db.acquire().await?;
    let sets = admin_sql::search_message_sets(conn.conn(), &search, slice(q.page)).await?;
    let query = format!("&q={}", urlencode(&search));
    let body = html! {
        form.search method="get" action="/admin/message-sets" role="search" {
            label for="q" { "Search short name or label" }
            input #q type="search" name="q" value=(search);
            button type="submit" { "Search" }
        }
        p { a.button href="/admin/message-sets/new" { "New message set" } }
        table {
            thead { tr {
                th scope="col" { "Short name" } th scope="col" { "Label" } th scope="col" { "Content" }
                th scope="col" { "Default schedule" } th scope="col" { "Next set" } th scope="col" { "Actions" }
            } }
            tbody {
                @for set in &sets.rows {
                    tr {
                        td { a href={"/admin/message-sets/" (set.id)} { (set.short_name) } }
                        td { (set.label) }
                        td { (set.content_type) }
                        td { a href={"/admin/schedules/" (set.default_schedule_id)} { (set.default_schedule_id) } }
                        td { @if let Some(next) = set.next_set_id { a href={"/admin/message-sets/" (next)} { (next) } } @else { "—" } }
                        td.actions {
                            a href={"/admin/message-sets/" (set.id)} { "Messages" }
                            a href={"/admin/message-sets/" (set.id) "/edit"} { "Edit" }
                            a href={"/admin/message-sets/" (set.id) "/delete"} { "Delete" }
                        }
                    }
                }
            }
        }
        (pager("/admin/message-sets", &query, q.page, sets.count))
    };
    Ok(page(
        "Message sets",
        &staff,
        notice(q.notice.as_deref()),
        body,
    ))
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Options for the schedule and next-set selects.
struct Choices {
    schedules: Vec<(String, String)>,
    sets: Vec<(String, String)>,
}

async fn choices(conn: &mut Pooled, except: Option<i64>) -> AdminResult<Choices> {
    let schedules = ticks::all_schedules(conn.conn())
        .await?
        .iter()
        .map(|s| {
            let f = crate::model::content::ScheduleFields::from(s);
            (s.id.to_string(), format!("{}: {}", s.id, describe(&f)))
        })
        .collect();
    let all = Slice {
        limit: 10_000,
        offset: 0,
    };
    let mut sets = vec![(String::new(), "— none —".to_string())];
    sets.extend(
        sql::list_message_sets(conn.conn(), &[], all)
            .await?
            .rows
            .into_iter()
            .filter(|s| Some(s.id) != except)
            .map(|s| (s.id.to_string(), s.short_name)),
    );
    Ok(Choices { schedules, sets })
}

fn form(
    staff: &Staff,
    action: &str,
    f: &MessageSetFields,
    errors: &FieldErrors,
    choices: &Choices,
    submit: &str,
) -> Markup {
    let types: Vec<(String, String)> = CONTENT_TYPES
        .iter()
        .map(|t| (t.to_string(), t.to_string()))
        .collect();
    let schedule = f.default_schedule_id.to_string();
    let next = f.next_set_id.map(|n| n.to_string()).unwrap_or_default();
    html! {
        (form_errors(errors))
        form.card method="post" action=(action) {
            (csrf_field(staff))
            (input("short_name", "Short name (unique)", &f.short_name, errors))
            (input("label", "Label", &f.label, errors))
            (textarea("notes", "Notes", f.notes.as_deref().unwrap_or(""), errors))
            (input("channel", "Message Sender channel (blank for the default)", f.channel.as_deref().unwrap_or(""), errors))
            (select("content_type", "Content type", &types, &f.content_type, errors))
            (select("default_schedule", "Default schedule", &choices.schedules, &schedule, errors))
            (select("next_set", "Next set (after this one completes)", &choices.sets, &next, errors))
            button type="submit" { (submit) }
        }
    }
}

/// The form's fields over `f`; the length and required checks the API's input layer makes.
fn read_form(form: &FormData, f: &mut MessageSetFields) -> FieldErrors {
    let mut errors = FieldErrors::new();
    f.short_name = form.text("short_name").unwrap_or_default();
    if f.short_name.is_empty() {
        errors.add("short_name", "This field is required.");
    }
    f.label = form.text("label").unwrap_or_default();
    f.notes = form.text("notes");
    f.channel = form.text("channel");
    for (name, value, max) in [
        ("short_name", &f.short_name, 100),
        ("label", &f.label, 100),
        ("channel", &f.channel.clone().unwrap_or_default(), 64),
    ] {
        if value.chars().count() > max {
            errors.add(
                name,
                format!("Ensure this field has no more than {max} characters."),
            );
        }
    }
    f.content_type = form.text("content_type").unwrap_or_else(|| "text".into());
    match form.text("default_schedule").map(|s| s.parse::<i64>()) {
        Some(Ok(id)) => f.default_schedule_id = id,
        _ => errors.add("default_schedule", "This field is required."),
    }
    f.next_set_id = match form.text("next_set").map(|s| s.parse::<i64>()) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            errors.add("next_set", "Choose a message set.");
            None
        }
        None => None,
    };
    errors
}

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
async fn new(State(state): State<AppState>, staff: Staff) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let choices = choices(&mut conn, None).await?;
    let mut f = MessageSetFields::default();
    if let Some((id, _)) = choices.schedules.first() {
        f.default_schedule_id = id.parse().unwrap_or_default();
    }
    let body = form(
        &staff,
        "/admin/message-sets",
        &f,
        &FieldErrors::new(),
        &choices,
        "Create",
    );
    Ok(page("New message set", &staff, None, body))
}

/// Writes the set (new when `id` is `None`) through the domain, or shows the form again.
async fn save(state: &AppState, posted: &Posted, id: Option<i64>) -> AdminResult<Response> {
    let mut tx = state.db.begin().await?;
    let mut fields = match id {
        Some(id) => MessageSetFields::from(
            &sql::get_message_set(tx.conn(), id)
                .await?
                .ok_or(AdminError::NotFound)?,
        ),
        None => MessageSetFields::default(),
    };
    let mut errors = read_form(&posted.form, &mut fields);
    if errors.is_empty() {
        let written = match id {
            Some(id) => {
                crate::content::update_message_set(&mut tx, &state.effects, id, &fields).await
            }
            None => crate::content::create_message_set(&mut tx, &state.effects, &fields).await,
        };
        match written {
            Ok(set) => {
                tx.commit().await?;
                state.wake.notify_one();
                let code = if id.is_some() { "saved" } else { "created" };
                return Ok(
                    Redirect::to(&format!("/admin/message-sets/{}?notice={code}", set.id))
                        .into_response(),
                );
            }
            Err(crate::domain::Error::Invalid(more)) => errors.merge(more),
            Err(other) => return Err(other.into()),
        }
    }
    drop(tx);
    let mut conn = state.db.acquire().await?;
    let choices = choices(&mut conn, id).await?;
    let (title, action, submit) = match id {
        Some(id) => (
            "Edit message set".to_string(),
            format!("/admin/message-sets/{id}/edit"),
            "Save",
        ),
        None => (
            "New message set".to_string(),
            "/admin/message-sets".to_string(),
            "Create",
        ),
    };
    let body = form(&posted.staff, &action, &fields, &errors, &choices, submit);
    Ok(invalid(page(&title, &posted.staff, None, body)))
}

#[tracing::instrument(skip_all, fields(user_id = posted.staff.user_id))]
async fn create(State(state): State<AppState>, posted: Posted) -> AdminResult<Response> {
    save(&state, &posted, None).await
}

async fn load(conn: &mut Pooled, id: i64) -> AdminResult<MessageSet> {
    sql::get_message_set(conn.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn edit(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let set = load(&mut conn, id).await?;
    let choices = choices(&mut conn, Some(id)).await?;
    let action = format!("/admin/message-sets/{id}/edit");
    let f = MessageSetFields::from(&set);
    let body = form(&staff, &action, &f, &FieldErrors::new(), &choices, "Save");
    Ok(page(
        &format!("Edit {}", set.short_name),
        &staff,
        None,
        body,
    ))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = posted.staff.user_id))]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted,
) -> AdminResult<Response> {
    save(&state, &posted, Some(id)).await
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn confirm_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let set = load(&mut conn, id).await?;
    let body = html! {
        p { "Delete the message set " strong { (set.short_name) } "? This cannot be undone." }
        form.inline method="post" action={"/admin/message-sets/" (id) "/delete"} {
            (csrf_field(&staff))
            button.danger type="submit" { "Yes, delete it" }
        }
        a href="/admin/message-sets" { "Cancel" }
    };
    Ok(page("Delete message set", &staff, None, body))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = posted.staff.user_id))]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted,
) -> AdminResult<Response> {
    let mut tx = state.db.begin().await?;
    match crate::content::delete_message_set(&mut tx, &state.effects, id).await {
        Ok(()) => {
            tx.commit().await?;
            state.wake.notify_one();
            Ok(Redirect::to("/admin/message-sets?notice=deleted").into_response())
        }
        Err(crate::domain::Error::InUse(text)) => {
            let body = html! {
                p.notice.error role="alert" { (text) }
                p { a href={"/admin/message-sets/" (id)} { "Back to the message set" } }
            };
            Ok((
                axum::http::StatusCode::CONFLICT,
                page("Cannot delete", &posted.staff, None, body),
            )
                .into_response())
        }
        Err(other) => Err(other.into()),
    }
}
