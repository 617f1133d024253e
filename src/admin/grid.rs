//! A message set's content as editors think of it: sequence number × language, gaps marked,
//! each cell's message (text or an audio player) with add, edit and delete, audio uploaded in
//! the cell's form, and a preview of what a subscriber receives and when.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::{AdminError, AdminResult};
use super::form::{check_csrf, csrf_field, FormData, Posted, CSRF_FIELD};
use super::layout::{form_errors, input, notice, page, textarea, time};
use super::message_sets::urlencode;
use super::schedules::{describe, invalid, next_due};
use super::session::Staff;
use crate::content::model::{Message, MessageFields, MessageSet, ScheduleFields, StoredFile};
use crate::http::AppState;
use crate::store::{content as sql, Pooled};
use crate::validation::FieldErrors;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/message-sets/{id}", get(show))
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
pub struct ShowQuery {
    lang: Option<String>,
    notice: Option<String>,
}

/// The grid's rows (1 to the highest sequence number) and columns (languages in use).
pub struct Grid<'a> {
    pub languages: Vec<&'a str>,
    pub last: i32,
    cells: HashMap<(i32, &'a str), &'a Message>,
}

impl<'a> Grid<'a> {
    pub fn new(messages: &'a [Message]) -> Self {
        let languages: BTreeSet<&str> = messages.iter().map(|m| m.lang.as_str()).collect();
        Grid {
            languages: languages.into_iter().collect(),
            last: messages
                .iter()
                .map(|m| m.sequence_number)
                .max()
                .unwrap_or(0),
            cells: messages
                .iter()
                .map(|m| ((m.sequence_number, m.lang.as_str()), m))
                .collect(),
        }
    }

    pub fn cell(&self, sequence: i32, lang: &str) -> Option<&'a Message> {
        self.cells.get(&(sequence, lang)).copied()
    }

    /// `(sequence number, language)` of every missing message.
    pub fn gaps(&self) -> Vec<(i32, &'a str)> {
        (1..=self.last)
            .flat_map(|s| self.languages.iter().map(move |l| (s, *l)))
            .filter(|(s, l)| self.cell(*s, l).is_none())
            .collect()
    }
}

async fn load_set(conn: &mut Pooled, id: i64) -> AdminResult<MessageSet> {
    sql::get_message_set(conn.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)
}

/// Media paths of the messages' binary content, by id.
async fn audio_paths(conn: &mut Pooled, messages: &[Message]) -> AdminResult<HashMap<i64, String>> {
    let ids: Vec<i64> = messages
        .iter()
        .filter_map(|m| m.binary_content_id)
        .collect();
    Ok(sql::binary_contents_by_ids(conn.conn(), &ids)
        .await?
        .into_iter()
        .map(|b| (b.id, format!("/media/{}", b.path)))
        .collect())
}

fn cell_content(m: &Message, audio: &HashMap<i64, String>) -> Markup {
    html! {
        @if let Some(text) = &m.text_content { p.text { (text) } }
        @if let Some(src) = m.binary_content_id.and_then(|id| audio.get(&id)) {
            audio controls preload="none" src=(src) { a href=(src) { "Download the audio" } }
        }
    }
}

fn grid_table(set: &MessageSet, grid: &Grid, audio: &HashMap<i64, String>) -> Markup {
    html! {
        div.scroll {
            table.grid {
                caption { "Messages by sequence number (rows) and language (columns)" }
                thead { tr {
                    th scope="col" { "#" }
                    @for lang in &grid.languages { th scope="col" { (lang) } }
                } }
                tbody {
                    @for seq in 1..=grid.last {
                        tr {
                            th scope="row" { (seq) }
                            @for lang in &grid.languages {
                                @match grid.cell(seq, lang) {
                                    Some(m) => td.cell {
                                        (cell_content(m, audio))
                                        a.small href={"/admin/messages/" (m.id)} aria-label={"Edit message " (seq) " " (lang)} { "Edit" }
                                    },
                                    None => td.gap {
                                        strong { "Missing" }
                                        " "
                                        a.small href={"/admin/message-sets/" (set.id) "/messages?seq=" (seq) "&lang=" (urlencode(lang))} { "Add" }
                                    },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn preview(
    set: &MessageSet,
    schedule: &ScheduleFields,
    grid: &Grid,
    lang: &str,
    audio: &HashMap<i64, String>,
) -> Markup {
    let when = next_due(schedule, usize::try_from(grid.last).unwrap_or(0));
    html! {
        section {
            h2 { "Preview: what a new subscriber receives" }
            form.search method="get" action={"/admin/message-sets/" (set.id)} {
                label for="lang" { "Language" }
                select #lang name="lang" {
                    @for l in &grid.languages { option value=(l) selected[*l == lang] { (l) } }
                }
                button type="submit" { "Show" }
            }
            p { "On schedule " a href={"/admin/schedules/" (set.default_schedule_id)} { (set.default_schedule_id) } ": " (describe(schedule)) ". Starting now, in UTC:" }
            ol.preview {
                @for seq in 1..=grid.last {
                    li {
                        span.when { @if let Some(t) = when.get(usize::try_from(seq - 1).unwrap_or(0)) { (time(t)) } }
                        @match grid.cell(seq, lang) {
                            Some(m) => (cell_content(m, audio)),
                            None => span.gap { "Missing: this send would fail." },
                        }
                    }
                }
            }
        }
    }
}

async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(q): Query<ShowQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let set = load_set(&mut conn, id).await?;
    let messages = sql::messages_of_set(conn.conn(), id).await?;
    let audio = audio_paths(&mut conn, &messages).await?;
    let schedule = sql::get_schedule(conn.conn(), set.default_schedule_id)
        .await?
        .map(|s| ScheduleFields::from(&s))
        .unwrap_or_default();
    let grid = Grid::new(&messages);
    let gaps = grid.gaps();
    let lang = q
        .lang
        .clone()
        .filter(|l| grid.languages.contains(&l.as_str()))
        .or_else(|| grid.languages.first().map(|l| l.to_string()))
        .unwrap_or_default();
    let body = html! {
        p.meta {
            (set.label) " · " (set.content_type) " · "
            a href={"/admin/message-sets/" (id) "/edit"} { "Edit the set" }
        }
        @if let Some(notes) = &set.notes { p.notes { (notes) } }
        p { a.button href={"/admin/message-sets/" (id) "/messages"} { "Add a message" } }
        @if gaps.is_empty() {
            @if !messages.is_empty() { p.notice { "Every language has every sequence number." } }
        } @else {
            p.notice.error role="alert" {
                (gaps.len()) " missing: "
                @for (i, (seq, lang)) in gaps.iter().enumerate() { @if i > 0 { ", " } (lang) " #" (seq) }
                ". A subscriber in a language that misses a sequence number gets a failed send there."
            }
        }
        @if messages.is_empty() { p { "No messages yet." } } @else {
            (grid_table(&set, &grid, &audio))
            (preview(&set, &schedule, &grid, &lang, &audio))
        }
    };
    Ok(page(
        &set.short_name,
        &staff,
        notice(q.notice.as_deref()),
        body,
    ))
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
    let stored = state
        .media
        .save(name.as_deref(), media_type.as_deref(), bytes)
        .await
        .map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sequence_number: i32, lang: &str) -> Message {
        Message {
            id: i64::from(sequence_number),
            message_set_id: 1,
            sequence_number,
            lang: lang.into(),
            text_content: Some("hi".into()),
            binary_content_id: None,
            metadata: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_grid_finds_every_gap() {
        let messages = vec![
            message(1, "eng"),
            message(2, "eng"),
            message(1, "zul"),
            message(3, "zul"),
        ];
        let grid = Grid::new(&messages);
        assert_eq!(grid.languages, vec!["eng", "zul"]);
        assert_eq!(grid.last, 3);
        assert_eq!(grid.gaps(), vec![(2, "zul"), (3, "eng")]);
        assert!(Grid::new(&[]).gaps().is_empty());
    }
}
