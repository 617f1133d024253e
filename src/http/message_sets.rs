//! `/api/v1/messageset/`: sets of messages sent in sequence, plus the set-with-messages view
//! and `/api/v1/messageset_languages/`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::User;
use super::body::Body;
use super::links::BaseUrl;
use super::messages::{nested_messages, MessageDetailOut};
use super::query::{Filters, ListRequest, Paginated};
use super::schemas::{ContentType, PageParams};
use super::{ApiError, ApiResult, AppState, Id};
use crate::content::{self};
use crate::model::content::{MessageSetFields, CONTENT_TYPES};
use crate::store::content as sql;
use crate::validation::input::{set, Input, Mode, Text};
pub use crate::wire::content::MessageSetOut;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/messageset", get(list).post(create))
        .route(
            "/api/v1/messageset/{id}",
            get(retrieve).put(replace).patch(update).delete(destroy),
        )
        .route("/api/v1/messageset/{id}/messages", get(with_messages))
        .route("/api/v1/messageset_languages", get(languages))
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct MessageSetIn {
    /// Unique.
    #[schema(max_length = 100, pattern = r"\S")]
    short_name: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    label: String,
    /// Default `text`.
    #[serde(default)]
    #[schema(value_type = ContentType)]
    content_type: String,
    notes: Option<String>,
    /// The message set a subscription moves on to when it completes this one.
    #[schema(minimum = 1)]
    next_set: Option<i64>,
    #[schema(minimum = 1)]
    default_schedule: i64,
    /// The Message Sender channel messages of this set go out on, if not the default.
    #[schema(max_length = 64)]
    channel: Option<String>,
    /// `HH:MM` in the subscribers' local time; give both ends or neither (default: none, or
    /// SBM_SEND_WINDOW when configured).
    send_window_start: Option<String>,
    send_window_end: Option<String>,
}

pub(super) fn read_fields(
    body: &serde_json::Value,
    mode: Mode,
    f: &mut MessageSetFields,
) -> ApiResult<()> {
    let mut input = Input::new(body, mode)?;
    set(
        &mut f.short_name,
        input.text("short_name", Text::required().max(100)),
    );
    set(&mut f.label, input.text("label", Text::optional().max(100)));
    set(
        &mut f.content_type,
        input.choice("content_type", false, CONTENT_TYPES),
    );
    set(&mut f.notes, input.nullable_text("notes", Text::optional()));
    set(
        &mut f.channel,
        input.nullable_text("channel", Text::optional().max(64)),
    );
    set(&mut f.next_set_id, input.nullable_pk("next_set"));
    set(
        &mut f.default_schedule_id,
        input.pk("default_schedule", true),
    );
    let window_end = Text::optional().max(16);
    set(
        &mut f.send_window_start,
        input.nullable_text("send_window_start", window_end),
    );
    set(
        &mut f.send_window_end,
        input.nullable_text("send_window_end", window_end),
    );
    Ok(input.finish()?)
}

#[utoipa::path(get, path = "/api/v1/messageset/", tag = "content",
    params(("short_name" = Option<String>, Query), ("content_type" = Option<ContentType>, Query),
           PageParams),
    responses((status = 200, body = Paginated<MessageSetOut>)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: User,
    req: ListRequest,
) -> ApiResult<Json<Paginated<MessageSetOut>>> {
    let filters = Filters::new(&req.params)
        .text("short_name", "short_name")
        .text("content_type", "content_type")
        .finish()?;
    let mut conn = state.db.acquire().await?;
    let page = sql::list_message_sets(conn.conn(), &filters, req.slice).await?;
    Ok(Json(req.respond(page, MessageSetOut::from)))
}

#[utoipa::path(post, path = "/api/v1/messageset/", tag = "content", request_body = MessageSetIn,
    responses((status = 201, body = MessageSetOut), (status = 400, description = "Field errors")))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    _: User,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<MessageSetOut>)> {
    let mut fields = MessageSetFields::default();
    read_fields(&body, Mode::Create, &mut fields)?;
    let mut tx = state.db.begin().await?;
    let set = content::create_message_set(&mut tx, &state.effects, &fields).await?;
    state.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(set.into())))
}

#[utoipa::path(get, path = "/api/v1/messageset/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = MessageSetOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn retrieve(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
) -> ApiResult<Json<MessageSetOut>> {
    let mut conn = state.db.acquire().await?;
    let set = sql::get_message_set(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(set.into()))
}

async fn write(
    state: AppState,
    id: i64,
    body: serde_json::Value,
    mode: Mode,
) -> ApiResult<Json<MessageSetOut>> {
    let mut tx = state.db.begin().await?;
    let existing = sql::get_message_set(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut fields = MessageSetFields::from(&existing);
    read_fields(&body, mode, &mut fields)?;
    let set = content::update_message_set(&mut tx, &state.effects, id, &fields).await?;
    state.commit(tx).await?;
    Ok(Json(set.into()))
}

#[utoipa::path(put, path = "/api/v1/messageset/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    request_body = MessageSetIn, responses((status = 200, body = MessageSetOut)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn replace(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
    Body(body): Body,
) -> ApiResult<Json<MessageSetOut>> {
    write(state, id, body, Mode::Replace).await
}

#[utoipa::path(patch, path = "/api/v1/messageset/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    request_body = MessageSetIn, responses((status = 200, body = MessageSetOut)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn update(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
    Body(body): Body,
) -> ApiResult<Json<MessageSetOut>> {
    write(state, id, body, Mode::Partial).await
}

#[utoipa::path(delete, path = "/api/v1/messageset/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 204), (status = 404), (status = 409, description = "Still has messages or is another set's next_set")))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn destroy(State(state): State<AppState>, _: User, Id(id): Id) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    content::delete_message_set(&mut tx, &state.effects, id).await?;
    state.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message set with all its messages, as the original's `MessageSetMessagesSerializer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageSetWithMessagesOut {
    pub id: i64,
    pub short_name: String,
    #[schema(required = true)]
    pub notes: Option<String>,
    #[schema(required = true)]
    pub next_set: Option<i64>,
    pub default_schedule: i64,
    pub messages: Vec<MessageDetailOut>,
    #[serde(serialize_with = "super::wire::drf_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::wire::drf_time")]
    pub updated_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/v1/messageset/{id}/messages/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = MessageSetWithMessagesOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn with_messages(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    Id(id): Id,
) -> ApiResult<Json<MessageSetWithMessagesOut>> {
    let mut conn = state.db.acquire().await?;
    let set = sql::get_message_set(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let messages = sql::messages_of_set(conn.conn(), id).await?;
    let messages = nested_messages(&mut conn, &base, messages).await?;
    Ok(Json(MessageSetWithMessagesOut {
        id: set.id,
        short_name: set.short_name,
        notes: set.notes,
        next_set: set.next_set_id,
        default_schedule: set.default_schedule_id,
        messages,
        created_at: set.created_at,
        updated_at: set.updated_at,
    }))
}

/// `{"<message set id>": ["eng_ZA", "zul_ZA"]}`: the languages each set has messages in.
#[utoipa::path(get, path = "/api/v1/messageset_languages/", tag = "content",
    responses((status = 200, body = BTreeMap<String, Vec<String>>)))]
#[tracing::instrument(skip_all)]
pub async fn languages(
    State(state): State<AppState>,
    _: User,
) -> ApiResult<Json<BTreeMap<String, Vec<String>>>> {
    let mut conn = state.db.acquire().await?;
    let mut by_set: BTreeMap<String, Vec<String>> = sql::all_message_set_ids(conn.conn())
        .await?
        .into_iter()
        .map(|id| (id.to_string(), Vec::new()))
        .collect();
    for (set_id, lang) in sql::languages_by_message_set(conn.conn()).await? {
        by_set.entry(set_id.to_string()).or_default().push(lang);
    }
    Ok(Json(by_set))
}
