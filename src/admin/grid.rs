//! A message set's content as editors think of it: sequence number × language, gaps marked,
//! each cell's message (text or an audio player) with add, edit and delete, audio uploaded in
//! the cell's form, and a preview of what a subscriber receives and when.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::{AdminError, AdminResult};
use super::form::csrf_field;
use super::layout::{notice, page, time};
use super::message_sets::urlencode;
use super::schedules::{describe, next_due};
use super::session::Staff;
use crate::http::AppState;
use crate::model::content::{Message, MessageSet, ScheduleFields};
use crate::store::{content as sql, Pooled};

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/message-sets/{id}", get(show))
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

pub async fn load_set(conn: &mut Pooled, id: i64) -> AdminResult<MessageSet> {
    sql::get_message_set(conn.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)
}

/// Media paths of the messages' binary content, by id.
pub async fn audio_paths(
    conn: &mut Pooled,
    messages: &[Message],
) -> AdminResult<HashMap<i64, String>> {
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

/// A small form in a cell that uploads (or replaces) the message's audio, keeping its text.
fn cell_upload(staff: &Staff, m: &Message) -> Markup {
    let id = format!("audio-{}", m.id);
    html! {
        form.cell-upload method="post" action={"/admin/messages/" (m.id)} enctype="multipart/form-data" {
            (csrf_field(staff))
            input type="hidden" name="sequence_number" value=(m.sequence_number);
            input type="hidden" name="lang" value=(m.lang);
            input type="hidden" name="text_content" value=(m.text_content.as_deref().unwrap_or(""));
            label.small for=(id) { "Audio for " (m.lang) " #" (m.sequence_number) }
            input id=(id) type="file" name="audio" accept="audio/*" required;
            button.small type="submit" { "Upload" }
        }
    }
}

fn grid_table(
    staff: &Staff,
    set: &MessageSet,
    grid: &Grid,
    audio: &HashMap<i64, String>,
) -> Markup {
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
                                        (cell_upload(staff, m))
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

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
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
            (grid_table(&staff, &set, &grid, &audio))
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
