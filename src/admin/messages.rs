//! Adding, editing and deleting one message of a set, with its audio uploaded in the same
//! form (multipart; the CSRF token is checked before anything is stored).

use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::{AdminError, AdminResult};
use super::form::{check_csrf, csrf_field, FormData, Posted, CSRF_FIELD};
use super::grid::{audio_paths, load_set};
use super::layout::{form_errors, input, page, textarea};
use super::schedules::invalid;
use super::session::Staff;
use crate::http::limits::MAX_MULTIPART_PARTS;
use crate::http::AppState;
use crate::model::content::{Message, MessageFields, StoredFile};
use crate::store::{content as sql, Pooled};
use crate::validation::FieldErrors;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/message-sets/{id}/messages",
            get(new_message).post(create_message),
        )
        .route(
            "/admin/messages/{id}",
            get(edit_message).post(update_message),
        )
        .route(
            "/admin/messages/{id}/delete",
            get(confirm_delete).post(delete_message),
        )
}

#[derive(Debug, Deserialize)]
pub struct NewQuery {
    seq: Option<i32>,
    lang: Option<String>,
}

fn message_form(
    staff: &Staff,
    action: &str,
    f: &MessageFields,
    errors: &FieldErrors,
    audio: Option<&str>,
) -> Markup {
    let seq = if f.sequence_number > 0 {
        f.sequence_number.to_string()
    } else {
        String::new()
    };
    html! {
        (form_errors(errors))
        form.card method="post" action=(action) enctype="multipart/form-data" {
            (csrf_field(staff))
            div.row {
                (input("sequence_number", "Sequence number", &seq, errors))
                (input("lang", "Language (e.g. eng_ZA)", &f.lang, errors))
            }
            (textarea("text_content", "Text", f.text_content.as_deref().unwrap_or(""), errors))
            @if let Some(src) = audio {
                p { "Current audio: " audio controls preload="none" src=(src) {} }
            }
            div.field {
                label for="audio" { @if audio.is_some() { "Replace the audio" } @else { "Audio file" } }
                input #audio type="file" name="audio" accept="audio/*";
            }
            button type="submit" { "Save" }
        }
    }
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn new_message(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(q): Query<NewQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let set = load_set(&mut conn, id).await?;
    let f = MessageFields {
        message_set_id: id,
        sequence_number: q.seq.unwrap_or(0),
        lang: q.lang.unwrap_or_default(),
        ..MessageFields::default()
    };
    let action = format!("/admin/message-sets/{id}/messages");
    let body = message_form(&staff, &action, &f, &FieldErrors::new(), None);
    Ok(page(
        &format!("New message in {}", set.short_name),
        &staff,
        None,
        body,
    ))
}

/// A message form as posted: its fields and the uploaded audio file, if one was chosen.
struct MessageUpload {
    form: FormData,
    file: Option<(Option<String>, Option<String>, axum::body::Bytes)>,
}

async fn read_upload(mut multipart: Multipart) -> AdminResult<MessageUpload> {
    let bad = |e: axum::extract::multipart::MultipartError| AdminError::BadRequest(e.body_text());
    let mut upload = MessageUpload {
        form: FormData::default(),
        file: None,
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        if upload.form.0.len() + usize::from(upload.file.is_some()) >= MAX_MULTIPART_PARTS {
            return Err(AdminError::BadRequest(format!(
                "The form has more than {MAX_MULTIPART_PARTS} parts."
            )));
        }
        let name = field.name().unwrap_or("").to_string();
        if name == "audio" {
            let file_name = field.file_name().map(str::to_string);
            let media_type = field.content_type().map(str::to_string);
            let bytes = field.bytes().await.map_err(bad)?;
            if !bytes.is_empty() {
                upload.file = Some((file_name, media_type, bytes));
            }
        } else {
            let value = field.text().await.map_err(bad)?;
            upload.form.0.push((name, value));
        }
    }
    Ok(upload)
}

fn read_message(form: &FormData, f: &mut MessageFields) -> FieldErrors {
    let mut errors = FieldErrors::new();
    match form.text("sequence_number").map(|s| s.parse::<i32>()) {
        Some(Ok(n)) => f.sequence_number = n,
        Some(Err(_)) => errors.add("sequence_number", "A valid integer is required."),
        None => errors.add("sequence_number", "This field is required."),
    }
    f.lang = form.text("lang").unwrap_or_default();
    if f.lang.is_empty() {
        errors.add("lang", "This field is required.");
    }
    f.text_content = form
        .get("text_content")
        .map(|t| t.replace("\r\n", "\n"))
        .filter(|t| !t.trim().is_empty());
    errors
}

/// Stores the uploaded file and its binary content record, in the transaction.
async fn store_audio(
    state: &AppState,
    tx: &mut crate::store::Tx,
    file: &(Option<String>, Option<String>, axum::body::Bytes),
) -> AdminResult<(i64, StoredFile)> {
    let (name, media_type, bytes) = file;
    let kind = crate::content::media::accept_upload(name.as_deref(), media_type.as_deref())
        .map_err(AdminError::BadRequest)?;
    let stored = state.media.save(&kind, bytes).await.map_err(|e| {
        AdminError::Internal(anyhow::Error::new(e).context("writing uploaded audio"))
    })?;
    let record = crate::content::create_binary_content(tx, &state.effects, &stored).await?;
    Ok((record.id, stored))
}

/// Creates (`existing` `None`) or updates a message from an upload, or shows the form again.
async fn save_message(
    state: &AppState,
    staff: &Staff,
    upload: MessageUpload,
    set_id: i64,
    existing: Option<&Message>,
) -> AdminResult<Response> {
    let mut f = existing
        .map(MessageFields::from)
        .unwrap_or_else(|| MessageFields {
            message_set_id: set_id,
            ..MessageFields::default()
        });
    let mut errors = read_message(&upload.form, &mut f);
    let mut tx = state.db.begin().await?;
    let mut stored = None;
    if errors.is_empty() {
        if let Some(file) = &upload.file {
            let (id, file) = store_audio(state, &mut tx, file).await?;
            f.binary_content_id = Some(id);
            stored = Some(file);
        }
        let written = match existing {
            Some(m) => crate::content::update_message(&mut tx, &state.effects, m.id, &f).await,
            None => crate::content::create_message(&mut tx, &state.effects, &f).await,
        };
        match written {
            Ok(_) => {
                tx.commit().await?;
                state.wake.notify_one();
                let code = if existing.is_some() {
                    "saved"
                } else {
                    "created"
                };
                return Ok(
                    Redirect::to(&format!("/admin/message-sets/{set_id}?notice={code}"))
                        .into_response(),
                );
            }
            Err(crate::domain::Error::Invalid(more)) => errors.merge(more),
            Err(other) => {
                if let Some(file) = &stored {
                    state.media.remove(&file.path).await;
                }
                return Err(other.into());
            }
        }
    }
    drop(tx);
    if let Some(file) = &stored {
        state.media.remove(&file.path).await;
    }
    let action = match existing {
        Some(m) => format!("/admin/messages/{}", m.id),
        None => format!("/admin/message-sets/{set_id}/messages"),
    };
    let body = message_form(staff, &action, &f, &errors, None);
    Ok(invalid(page("Message", staff, None, body)))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn create_message(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    multipart: Multipart,
) -> AdminResult<Response> {
    let upload = read_upload(multipart).await?;
    check_csrf(&staff, upload.form.get(CSRF_FIELD))?;
    save_message(&state, &staff, upload, id, None).await
}

async fn load_message(conn: &mut Pooled, id: i64) -> AdminResult<Message> {
    sql::get_message(conn.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn edit_message(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let message = load_message(&mut conn, id).await?;
    let audio = audio_paths(&mut conn, std::slice::from_ref(&message)).await?;
    let src = message
        .binary_content_id
        .and_then(|b| audio.get(&b))
        .cloned();
    let action = format!("/admin/messages/{id}");
    let f = MessageFields::from(&message);
    let body = html! {
        (message_form(&staff, &action, &f, &FieldErrors::new(), src.as_deref()))
        p {
            a href={"/admin/message-sets/" (message.message_set_id)} { "Back to the set" } " · "
            a.danger href={"/admin/messages/" (id) "/delete"} { "Delete this message" }
        }
    };
    Ok(page(
        &format!("Message {} ({})", message.sequence_number, message.lang),
        &staff,
        None,
        body,
    ))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn update_message(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    multipart: Multipart,
) -> AdminResult<Response> {
    let upload = read_upload(multipart).await?;
    check_csrf(&staff, upload.form.get(CSRF_FIELD))?;
    let mut conn = state.db.acquire().await?;
    let message = load_message(&mut conn, id).await?;
    drop(conn);
    save_message(
        &state,
        &staff,
        upload,
        message.message_set_id,
        Some(&message),
    )
    .await
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn confirm_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let message = load_message(&mut conn, id).await?;
    let body = html! {
        p { "Delete message " (message.sequence_number) " (" (message.lang) ")?" }
        form.inline method="post" action={"/admin/messages/" (id) "/delete"} {
            (csrf_field(&staff))
            button.danger type="submit" { "Yes, delete it" }
        }
        a href={"/admin/messages/" (id)} { "Cancel" }
    };
    Ok(page("Delete message", &staff, None, body))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_message(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    _posted: Posted,
) -> AdminResult<Response> {
    let mut tx = state.db.begin().await?;
    let message = sql::get_message(tx.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)?;
    crate::content::delete_message(&mut tx, &state.effects, id).await?;
    tx.commit().await?;
    state.wake.notify_one();
    Ok(Redirect::to(&format!(
        "/admin/message-sets/{}?notice=deleted",
        message.message_set_id
    ))
    .into_response())
}
