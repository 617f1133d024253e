//! `/api/v1/message/`: the messages of each set, per sequence number and language, and
//! `/api/v1/message/{id}/content/`, the content itself.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::User;
use super::body::Body;
use super::links::BaseUrl;
use super::query::{Filters, ListRequest, Paginated};
use super::schemas::{Bytes, PageParams};
use super::{ApiError, ApiResult, AppState, Id};
use crate::content::{self};
use crate::model::content::{Message, MessageFields};
use crate::store::{content as sql, Pooled};
use crate::validation::input::{set, Input, Mode, Text};
use crate::wire::content::media_url;
pub use crate::wire::content::MessageOut;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/message", get(list).post(create))
        .route(
            "/api/v1/message/{id}",
            get(retrieve).put(replace).patch(update).delete(destroy),
        )
        .route("/api/v1/message/{id}/content", get(message_content))
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct MessageIn {
    #[schema(minimum = 1)]
    messageset: i64,
    /// Unique per (messageset, lang).
    #[schema(minimum = 1)]
    sequence_number: i32,
    /// ISO 639-3, optionally with a country: `eng`, `eng_ZA`.
    #[schema(max_length = 6, pattern = "^[A-Za-z]{3}(_[A-Za-z]{2})?$")]
    lang: String,
    text_content: Option<String>,
    #[schema(minimum = 1)]
    binary_content: Option<i64>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// The binary content as nested in message views: its id and absolute URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct NestedBinaryOut {
    pub id: i64,
    pub content: String,
}

/// A message with its binary content nested, as the original's `MessageListSerializer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDetailOut {
    pub id: i64,
    pub messageset: i64,
    pub sequence_number: i32,
    pub lang: String,
    #[schema(required = true)]
    pub text_content: Option<String>,
    #[schema(required = true)]
    pub binary_content: Option<NestedBinaryOut>,
    #[schema(value_type = Option<Object>, required = true)]
    pub metadata: Option<Value>,
    #[serde(serialize_with = "super::wire::drf_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::wire::drf_time")]
    pub updated_at: DateTime<Utc>,
}

/// Messages with their binary content looked up in one query.
pub async fn nested_messages(
    conn: &mut Pooled,
    base: &BaseUrl,
    messages: Vec<Message>,
) -> ApiResult<Vec<MessageDetailOut>> {
    let ids: Vec<i64> = messages
        .iter()
        .filter_map(|m| m.binary_content_id)
        .collect();
    let urls: HashMap<i64, String> = sql::binary_contents_by_ids(conn.conn(), &ids)
        .await?
        .into_iter()
        .map(|b| (b.id, media_url(base, &b.path)))
        .collect();
    Ok(messages
        .into_iter()
        .map(|m| MessageDetailOut {
            binary_content: m.binary_content_id.and_then(|id| {
                urls.get(&id).map(|url| NestedBinaryOut {
                    id,
                    content: url.clone(),
                })
            }),
            id: m.id,
            messageset: m.message_set_id,
            sequence_number: m.sequence_number,
            lang: m.lang,
            text_content: m.text_content,
            metadata: m.metadata.map(|j| j.0),
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
        .collect())
}

pub(super) fn read_fields(body: &Value, mode: Mode, f: &mut MessageFields) -> ApiResult<()> {
    let mut input = Input::new(body, mode)?;
    set(&mut f.message_set_id, input.pk("messageset", true));
    let sequence = input.integer("sequence_number", true, Some(1));
    if let Some(n) = sequence {
        match i32::try_from(n) {
            Ok(n) => f.sequence_number = n,
            Err(_) => input.error(
                "sequence_number",
                "Ensure this value is less than or equal to 2147483647.",
            ),
        }
    }
    set(&mut f.lang, input.text("lang", Text::required().max(6)));
    set(
        &mut f.text_content,
        input.nullable_text("text_content", Text::optional()),
    );
    set(
        &mut f.binary_content_id,
        input.nullable_pk("binary_content"),
    );
    set(&mut f.metadata, input.nullable_object("metadata"));
    Ok(input.finish()?)
}

#[utoipa::path(get, path = "/api/v1/message/", tag = "content",
    params(("messageset" = Option<i64>, Query), ("lang" = Option<String>, Query),
           ("sequence_number" = Option<i64>, Query), PageParams),
    responses((status = 200, body = Paginated<MessageOut>)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: User,
    req: ListRequest,
) -> ApiResult<Json<Paginated<MessageOut>>> {
    let filters = Filters::new(&req.params)
        .integer("messageset", "message_set_id")
        .text("lang", "lang")
        .integer("sequence_number", "sequence_number")
        .finish()?;
    let mut conn = state.db.acquire().await?;
    let page = sql::list_messages(conn.conn(), &filters, req.slice).await?;
    Ok(Json(req.respond(page, MessageOut::from)))
}

#[utoipa::path(post, path = "/api/v1/message/", tag = "content", request_body = MessageIn,
    responses((status = 201, body = MessageOut), (status = 400, description = "Field errors")))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    _: User,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    let mut fields = MessageFields::default();
    read_fields(&body, Mode::Create, &mut fields)?;
    let mut tx = state.db.begin().await?;
    let message = content::create_message(&mut tx, &state.effects, &fields).await?;
    state.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(message.into())))
}

#[utoipa::path(get, path = "/api/v1/message/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = MessageOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn retrieve(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
) -> ApiResult<Json<MessageOut>> {
    let mut conn = state.db.acquire().await?;
    let message = sql::get_message(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(message.into()))
}

async fn write(state: AppState, id: i64, body: Value, mode: Mode) -> ApiResult<Json<MessageOut>> {
    let mut tx = state.db.begin().await?;
    let existing = sql::get_message(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut fields = MessageFields::from(&existing);
    read_fields(&body, mode, &mut fields)?;
    let message = content::update_message(&mut tx, &state.effects, id, &fields).await?;
    state.commit(tx).await?;
    Ok(Json(message.into()))
}

#[utoipa::path(put, path = "/api/v1/message/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    request_body = MessageIn, responses((status = 200, body = MessageOut)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn replace(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
    Body(body): Body,
) -> ApiResult<Json<MessageOut>> {
    write(state, id, body, Mode::Replace).await
}

#[utoipa::path(patch, path = "/api/v1/message/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    request_body = MessageIn, responses((status = 200, body = MessageOut)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn update(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
    Body(body): Body,
) -> ApiResult<Json<MessageOut>> {
    write(state, id, body, Mode::Partial).await
}

#[utoipa::path(delete, path = "/api/v1/message/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn destroy(State(state): State<AppState>, _: User, Id(id): Id) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    content::delete_message(&mut tx, &state.effects, id).await?;
    state.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?format=raw`: the message's content itself.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RawFormat {
    Raw,
}

/// Whether the client asked for the content itself rather than the original's JSON view: with
/// `?format=raw`, or with an `Accept` that names an audio or text type and not JSON. Plain HTTP
/// clients (`*/*`, no `Accept`) get the JSON view, which is what existing callers parse.
fn wants_raw(query: Option<&str>, headers: &HeaderMap) -> bool {
    let format = query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().rev().find(|(k, _)| k == "format"))
        .map(|(_, v)| v);
    match format.as_deref() {
        Some("raw") => return true,
        Some(_) => return false,
        None => {}
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let types: Vec<String> = accept.split(',').map(super::body::essence).collect();
    let names_json = types
        .iter()
        .any(|t| t == "application/json" || t.ends_with("+json"));
    let names_media = types
        .iter()
        .any(|t| t.starts_with("audio/") || t.starts_with("text/"));
    names_media && !names_json
}

/// The message: by default the original's JSON view (the message with its binary content
/// nested); with `?format=raw` or an `Accept` naming an audio or text type (and not JSON), the
/// binary file's bytes with its media type when it has one (audio), else its text as
/// `text/plain`.
#[utoipa::path(get, path = "/api/v1/message/{id}/content/", tag = "content",
    description = "The original's JSON view of the message (`MessageDetailOut`, its `binary_content` nested) by default, whatever `Accept` a plain client sends (`*/*`, none). The content itself only when asked for explicitly: with `?format=raw`, or an `Accept` that names an audio or text type and not JSON; then the audio file's bytes with its media type, or the text as `text/plain`.",
    params(("id" = i64, Path, minimum = 1), ("format" = Option<RawFormat>, Query, description = "`raw`: the content itself rather than the JSON view")),
    responses((status = 200, description = "The JSON view, or the content itself when asked for",
        content((MessageDetailOut = "application/json"), (Bytes = "audio/*"), (String = "text/plain"))),
              (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn message_content(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Id(id): Id,
) -> ApiResult<Response> {
    let mut conn = state.db.acquire().await?;
    let message = sql::get_message(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !wants_raw(uri.query(), &headers) {
        let detail = nested_messages(&mut conn, &base, vec![message])
            .await?
            .remove(0);
        return Ok(Json(detail).into_response());
    }
    if let Some(binary_id) = message.binary_content_id {
        if let Some(binary) = sql::get_binary_content(conn.conn(), binary_id).await? {
            drop(conn);
            let bytes = state.media.read(&binary.path).await.map_err(|e| {
                ApiError::internal(
                    anyhow::Error::new(e).context(format!("reading media file {}", binary.path)),
                )
            })?;
            let mut response = ([(header::CONTENT_TYPE, binary.media_type)], bytes).into_response();
            super::media::protect(response.headers_mut());
            return Ok(response);
        }
    }
    let text = message.text_content.unwrap_or_default();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; charset=utf-8".to_string(),
        )],
        text,
    )
        .into_response())
}
