//! The WebSub hub (`/api/v1/hub`), callback management and the delivery log (docs/events.md).

use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::User;
use super::body::{content_type, essence, parse_form, read_limited, Body};
use super::error::{ApiError, ApiResult};
use super::query::{parse_time, Filters, ListRequest, Paginated};
use super::schemas::{CallbackOut, CallbackState, DeliveryState, PageParams, TopicText};
use super::{AppState, Id, UuidId};
use crate::callbacks::{self, hub};
use crate::events::timestamp as time;
use crate::model::auth::Caller;
use crate::store::events::{self as sql, AttemptRow, CallbackRow, DeliveryView};
use crate::store::filter::{Condition, Op, Value as FilterValue};
use crate::store::Conn;
use crate::validation::input::field;
use crate::validation::FieldErrors;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/hub", post(subscribe))
        .route("/api/v1/callbacks", get(list))
        .route(
            "/api/v1/callbacks/{id}",
            get(retrieve).patch(update).delete(destroy),
        )
        .route("/api/v1/callbacks/{id}/deliveries", get(deliveries))
        .route("/api/v1/callbacks/{id}/recover", post(recover))
        .route("/api/v1/deliveries/{id}", get(delivery))
        .route("/api/v1/deliveries/{id}/retry", post(retry))
}

/// A hub request's form fields.
pub struct Form(pub Vec<(String, String)>);

impl<S> FromRequest<S> for Form
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = AppState::from_ref(state).settings.max_body_bytes;
        let content_type = content_type(&req);
        if essence(&content_type) != "application/x-www-form-urlencoded" {
            return Err(ApiError::UnsupportedMediaType(content_type));
        }
        let bytes = read_limited(req, limit).await?;
        let pairs = parse_form(&bytes)?;
        crate::validation::refuse_nul_pairs(&pairs).map_err(ApiError::Invalid)?;
        Ok(Form(pairs))
    }
}

/// A WebSub subscription request's form fields (unknown fields are ignored, as WebSub asks).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct HubForm {
    #[serde(rename = "hub.mode")]
    mode: HubMode,
    /// `send.*`, `subscription`, `*`, an event type (docs/events.md).
    #[serde(rename = "hub.topic")]
    #[schema(value_type = TopicText)]
    topic: String,
    /// The receiver's http(s) URL; it must answer the verification of intent.
    #[serde(rename = "hub.callback")]
    #[schema(
        format = "uri",
        max_length = 2000,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://"
    )]
    callback: String,
    /// Asked-for lease; the hub grants it within its bounds.
    #[serde(rename = "hub.lease_seconds", default)]
    #[schema(minimum = 1)]
    lease_seconds: i64,
    /// Signs deliveries (`X-Hub-Signature`); at most 200 bytes.
    #[serde(rename = "hub.secret", default)]
    #[schema(max_length = 200)]
    secret: String,
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum HubMode {
    Subscribe,
    Unsubscribe,
}

/// WebSub subscribe/unsubscribe. 202: the request is recorded and its verification of intent
/// queued.
#[utoipa::path(post, path = "/api/v1/hub", tag = "events",
    request_body(content = HubForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 202, description = "Accepted; verification follows"),
        (status = 404, description = "Unsubscribe of a pair never subscribed")))]
#[tracing::instrument(skip_all, fields(user_id = caller.user_id))]
pub async fn subscribe(
    State(state): State<AppState>,
    User(caller): User,
    Form(form): Form,
) -> ApiResult<StatusCode> {
    let request = hub::parse(&form, &state.hub.settings.policy).map_err(ApiError::Invalid)?;
    let mut tx = state.begin().await?;
    hub::request(
        &mut tx,
        &state.effects,
        &state.hub.settings,
        request,
        caller.user_id,
    )
    .await?;
    state.commit(tx).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn visible_callback(conn: Conn<'_>, caller: &Caller, id: Uuid) -> ApiResult<CallbackRow> {
    Ok(callbacks::manage::visible(conn, caller, id).await?)
}

#[utoipa::path(get, path = "/api/v1/callbacks/", tag = "events",
    params(("state" = Option<CallbackState>, Query), ("topic" = Option<TopicText>, Query), PageParams),
    responses((status = 200, body = Paginated<CallbackOut>, description = "Callbacks: yours, or every one for an admin")))]
#[tracing::instrument(skip_all, fields(user_id = caller.user_id))]
pub async fn list(
    State(state): State<AppState>,
    User(caller): User,
    req: ListRequest,
) -> ApiResult<Json<Paginated<Value>>> {
    let mut conditions = Filters::new(&req.params)
        .text("state", "state")
        .text("topic", "topic")
        .finish()?;
    if !caller.is_admin {
        conditions.push(Condition::eq(
            "created_by",
            FilterValue::Int(caller.user_id),
        ));
    }
    let mut conn = state.db.acquire().await?;
    let page = sql::list_callbacks(conn.conn(), &conditions, req.slice).await?;
    let origin = state.effects.public_origin.clone();
    Ok(Json(req.respond(page, |row| {
        callbacks::representation(&origin, &row)
    })))
}

#[utoipa::path(get, path = "/api/v1/callbacks/{id}/", tag = "events", params(("id" = Uuid, Path)),
    responses((status = 200, body = CallbackOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn retrieve(
    State(state): State<AppState>,
    User(caller): User,
    UuidId(id): UuidId,
) -> ApiResult<Json<Value>> {
    let mut conn = state.db.acquire().await?;
    let callback = visible_callback(conn.conn(), &caller, id).await?;
    Ok(Json(callbacks::representation(
        &state.effects.public_origin,
        &callback,
    )))
}

/// What a callback's PATCH may change.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CallbackPatch {
    /// Events per POST.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    batch_size: i32,
}

pub(super) fn read_batch_size(body: &Value) -> ApiResult<Option<i32>> {
    match field(body, "batch_size") {
        None => Ok(None),
        // A whole number, also when written as a float (`49.0`), as DRF's IntegerField takes it.
        Some(value) => match value.as_i64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        }) {
            Some(n) if (1..=100).contains(&n) => Ok(Some(n as i32)),
            _ => Err(ApiError::Invalid(FieldErrors::single(
                "batch_size",
                "Ensure this value is an integer from 1 to 100.",
            ))),
        },
    }
}

/// Changes how the callback is delivered to: `{"batch_size": n}`, 1 to 100 events per POST.
#[utoipa::path(patch, path = "/api/v1/callbacks/{id}/", tag = "events", params(("id" = Uuid, Path)),
    request_body = CallbackPatch, responses((status = 200, body = CallbackOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn update(
    State(state): State<AppState>,
    User(caller): User,
    UuidId(id): UuidId,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let batch_size = read_batch_size(&body)?;
    let mut tx = state.begin().await?;
    let callback = callbacks::manage::update_as(&mut tx, &caller, id, batch_size).await?;
    state.commit(tx).await?;
    Ok(Json(callbacks::representation(
        &state.effects.public_origin,
        &callback,
    )))
}

/// Removes the callback at once (no verification, unlike a hub unsubscribe) with its log.
#[utoipa::path(delete, path = "/api/v1/callbacks/{id}/", tag = "events", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn destroy(
    State(state): State<AppState>,
    User(caller): User,
    UuidId(id): UuidId,
) -> ApiResult<StatusCode> {
    let mut tx = state.begin().await?;
    callbacks::manage::delete_as(&mut tx, &caller, id).await?;
    state.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    /// The event's id.
    pub event: Uuid,
    pub event_type: String,
    pub callback: Uuid,
    #[schema(value_type = DeliveryState)]
    pub state: String,
    /// Attempts since the delivery was created or last retried by hand.
    pub attempts: i32,
    /// When a pending delivery is next tried.
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
    #[schema(required = true)]
    pub last_status_code: Option<i32>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime, required = true)]
    pub delivered_at: Option<String>,
}

pub fn delivery_out(view: DeliveryView) -> DeliveryOut {
    let d = view.delivery;
    DeliveryOut {
        id: d.id,
        event: view.event_uuid,
        event_type: view.event_type,
        callback: d.callback_id,
        next_attempt_at: (d.state == "pending").then(|| time(d.next_attempt_at)),
        state: d.state,
        attempts: d.attempts,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        created_at: time(d.created_at),
        updated_at: time(d.updated_at),
        delivered_at: d.delivered_at.map(time),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    /// 1 for the first attempt ever made, counting across retries by hand.
    pub attempt: usize,
    #[schema(format = DateTime)]
    pub attempted_at: String,
    #[schema(required = true)]
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    /// The start of the receiver's answer.
    #[schema(required = true)]
    pub response_body: Option<String>,
    #[schema(required = true)]
    pub error: Option<String>,
    /// When the next attempt was scheduled after this one, if any.
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetailOut {
    #[serde(flatten)]
    #[schema(inline)]
    pub delivery: DeliveryOut,
    pub log: Vec<AttemptOut>,
}

fn attempt_out((index, a): (usize, AttemptRow)) -> AttemptOut {
    AttemptOut {
        attempt: index + 1,
        attempted_at: time(a.attempted_at),
        status_code: a.status_code,
        duration_ms: a.duration_ms,
        response_body: a.response_body,
        error: a.error,
        next_attempt_at: a.next_attempt_at.map(time),
    }
}

#[utoipa::path(get, path = "/api/v1/callbacks/{id}/deliveries/", tag = "events", params(("id" = Uuid, Path),
        ("state" = Option<DeliveryState>, Query), ("since" = Option<DateTime<Utc>>, Query),
        ("until" = Option<DateTime<Utc>>, Query, description = "Exclusive"), PageParams),
    responses((status = 200, body = Paginated<DeliveryOut>), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn deliveries(
    State(state): State<AppState>,
    User(caller): User,
    UuidId(id): UuidId,
    req: ListRequest,
) -> ApiResult<Json<Paginated<DeliveryOut>>> {
    let mut conditions = Filters::new(&req.params)
        .text("state", "state")
        .time("since", "created_at", Op::AtLeast)
        .time("until", "created_at", Op::Below)
        .finish()?;
    let mut conn = state.db.acquire().await?;
    visible_callback(conn.conn(), &caller, id).await?;
    conditions.push(Condition::eq("callback_id", FilterValue::Uuid(id)));
    let page = sql::list_deliveries(conn.conn(), &conditions, req.slice).await?;
    Ok(Json(req.respond(page, delivery_out)))
}

/// A window of events' occurrence times, [since, until).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct RecoverIn {
    #[schema(pattern = r"^\d{4}-\d{2}-\d{2}")]
    since: DateTime<Utc>,
    /// Exclusive; default: now.
    #[schema(pattern = r"^\d{4}-\d{2}-\d{2}")]
    until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveredOut {
    /// Deliveries re-queued.
    pub recovered: u64,
}

pub(super) fn read_window(body: &Value) -> ApiResult<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    let mut errors = FieldErrors::new();
    let mut read = |name: &str, required: bool| match field(body, name) {
        None | Some(Value::Null) => {
            if required {
                errors.add(name, "This field is required.");
            }
            None
        }
        Some(value) => {
            let parsed = value.as_str().and_then(parse_time);
            if parsed.is_none() {
                errors.add(name, "Enter a valid date/time.");
            }
            parsed
        }
    };
    let since = read("since", true);
    let until = read("until", false);
    errors.into_result().map_err(ApiError::Invalid)?;
    Ok((since.expect("checked"), until))
}

/// Re-queues the callback's failed deliveries of events that occurred in [since, until).
#[utoipa::path(post, path = "/api/v1/callbacks/{id}/recover/", tag = "events", params(("id" = Uuid, Path)),
    request_body = RecoverIn, responses((status = 202, body = RecoveredOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn recover(
    State(state): State<AppState>,
    User(caller): User,
    UuidId(id): UuidId,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<RecoveredOut>)> {
    let (since, until) = read_window(&body)?;
    let mut tx = state.begin().await?;
    visible_callback(tx.conn(), &caller, id).await?;
    let recovered = callbacks::manage::recover(&mut tx, id, since, until).await?;
    state.commit(tx).await?;
    Ok((StatusCode::ACCEPTED, Json(RecoveredOut { recovered })))
}

async fn visible_delivery(
    conn: &mut crate::store::Pooled,
    caller: &Caller,
    id: i64,
) -> ApiResult<DeliveryView> {
    let view = sql::get_delivery(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    visible_callback(conn.conn(), caller, view.delivery.callback_id).await?;
    Ok(view)
}

#[utoipa::path(get, path = "/api/v1/deliveries/{id}/", tag = "events", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = DeliveryDetailOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id, user_id = caller.user_id))]
pub async fn delivery(
    State(state): State<AppState>,
    User(caller): User,
    Id(id): Id,
) -> ApiResult<Json<DeliveryDetailOut>> {
    let mut conn = state.db.acquire().await?;
    let view = visible_delivery(&mut conn, &caller, id).await?;
    let log = sql::list_attempts(conn.conn(), id).await?;
    Ok(Json(DeliveryDetailOut {
        delivery: delivery_out(view),
        log: log.into_iter().enumerate().map(attempt_out).collect(),
    }))
}

/// Sends one delivery again: a failed one, or a succeeded one to replay it.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/retry/", tag = "events", params(("id" = i64, Path, minimum = 1)),
    responses((status = 202, body = DeliveryOut), (status = 404), (status = 409, description = "Already pending or running")))]
#[tracing::instrument(skip_all, fields(id = id, user_id = caller.user_id))]
pub async fn retry(
    State(state): State<AppState>,
    User(caller): User,
    Id(id): Id,
) -> ApiResult<(StatusCode, Json<DeliveryOut>)> {
    let mut conn = state.db.acquire().await?;
    visible_delivery(&mut conn, &caller, id).await?;
    drop(conn);
    let mut tx = state.begin().await?;
    let view = callbacks::manage::retry_delivery(&mut tx, id).await?;
    state.commit(tx).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_out(view))))
}
