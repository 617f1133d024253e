//! `/api/v1/subscriptions/`: each person's subscription to a message set, the project hub's
//! registration webhook, the Seed Scheduler's send POST-back, and resend.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{SendCaller, User};
use super::body::Body;
use super::links::BaseUrl;
use super::query::{Filters, ListRequest, Paginated};
use super::schemas::{Accepted, PageParams};
use super::{ApiError, ApiResult, AppState, UuidId};
use crate::model::subscriptions::{Subscription, SubscriptionFields};
use crate::store::filter::{Op, Value as FilterValue};
use crate::store::subscriptions as sql;
use crate::subscriptions::{self, Requester, SendRequest};
use crate::validation::input::{field, set, Input, Mode, Text};
use crate::validation::FieldErrors;
pub use crate::wire::subscriptions::SubscriptionOut;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/subscriptions", get(list).post(create))
        .route("/api/v1/subscriptions/request", post(hub_request))
        .route(
            "/api/v1/subscriptions/{id}",
            get(retrieve).put(replace).patch(update).delete(destroy),
        )
        .route("/api/v1/subscriptions/{id}/send", post(send))
        .route("/api/v1/subscriptions/{id}/resend", post(resend))
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct SubscriptionIn {
    identity: Uuid,
    #[schema(minimum = 1)]
    messageset: i64,
    #[schema(max_length = 6, pattern = "^[A-Za-z]{3}(_[A-Za-z]{2})?$")]
    lang: String,
    /// Default: the message set's default schedule.
    #[serde(default)]
    #[schema(minimum = 1)]
    schedule: i64,
    /// Default 1.
    #[serde(default)]
    #[schema(minimum = 1)]
    next_sequence_number: i32,
    /// Default: next_sequence_number.
    #[schema(minimum = 1)]
    initial_sequence_number: Option<i32>,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    completed: bool,
    /// -2, -1 error; 0 ready; 1 sending; 2 completed.
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    process_status: i16,
    /// `prepend_next_delivery` is sent before the next message, then cleared.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// An IANA time zone name; null (default) means the schedule's zone. Only UTC when a Seed
    /// Scheduler is configured.
    timezone: Option<String>,
}

/// The project hub's registration webhook: the subscription is in `data` (its `hook` and the
/// hub's own `id`, `url` and timestamps are ignored).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct HubRegistrationIn {
    data: SubscriptionIn,
}

/// The answer to a send request: `accepted`, and why not when it was not (or, for a repeat,
/// that it was one).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct SendAnswer {
    accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn narrow<T: TryFrom<i64>>(input: &mut Input, name: &str, value: Option<i64>) -> Option<T> {
    let value = value?;
    match T::try_from(value) {
        Ok(v) => Some(v),
        Err(_) => {
            input.error(name, "Ensure this value is within range.");
            None
        }
    }
}

pub(super) fn read_fields(body: &Value, mode: Mode, f: &mut SubscriptionFields) -> ApiResult<()> {
    let mut input = Input::new(body, mode)?;
    set(&mut f.identity, input.uuid("identity", true));
    set(&mut f.message_set_id, input.pk("messageset", true));
    set(&mut f.lang, input.text("lang", Text::required().max(6)));
    if let Some(schedule) = input.pk("schedule", false) {
        f.schedule_id = Some(schedule);
    }
    let next = input.integer("next_sequence_number", false, Some(1));
    set(
        &mut f.next_sequence_number,
        narrow(&mut input, "next_sequence_number", next),
    );
    if let Some(initial) = input.nullable_integer("initial_sequence_number", Some(1)) {
        f.initial_sequence_number = match initial {
            Some(n) => narrow(&mut input, "initial_sequence_number", Some(n)),
            None => None,
        };
    }
    let version = input.integer("version", false, None);
    set(&mut f.version, narrow(&mut input, "version", version));
    set(&mut f.active, input.boolean("active", false));
    set(&mut f.completed, input.boolean("completed", false));
    let process_status = input.integer("process_status", false, None);
    set(
        &mut f.process_status,
        narrow(&mut input, "process_status", process_status),
    );
    set(&mut f.metadata, input.nullable_object("metadata"));
    set(
        &mut f.timezone,
        input.nullable_text("timezone", Text::optional().not_blank().max(64)),
    );
    Ok(input.finish()?)
}

#[utoipa::path(get, path = "/api/v1/subscriptions/", tag = "subscriptions",
    params(("identity" = Option<Uuid>, Query), ("active" = Option<bool>, Query), ("completed" = Option<bool>, Query),
           ("messageset" = Option<i64>, Query), ("schedule" = Option<i64>, Query), ("lang" = Option<String>, Query),
           ("process_status" = Option<i16>, Query),
           ("created_after" = Option<DateTime<Utc>>, Query), ("created_before" = Option<DateTime<Utc>>, Query),
           ("metadata_has_key" = Option<String>, Query), ("metadata_not_has_key" = Option<String>, Query),
           PageParams),
    responses((status = 200, body = Paginated<SubscriptionOut>)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    req: ListRequest,
) -> ApiResult<Json<Paginated<SubscriptionOut>>> {
    let mut filters = Filters::new(&req.params)
        .boolean("active", "active")
        .boolean("completed", "completed")
        .integer("messageset", "message_set_id")
        .integer("schedule", "schedule_id")
        .text("lang", "lang")
        .integer("process_status", "process_status")
        .time("created_after", "created_at", Op::AtLeast)
        .time("created_before", "created_at", Op::AtMost);
    for (param, op) in [
        ("metadata_has_key", Op::HasKey),
        ("metadata_not_has_key", Op::LacksKey),
    ] {
        if let Some(key) = req.params.get(param) {
            filters.conditions.push(crate::store::filter::Condition {
                column: "metadata",
                op,
                value: FilterValue::Text(key.to_string()),
            });
        }
    }
    let mut conditions = filters.finish()?;
    if let Some(identity) = req.params.get("identity") {
        let identity = Uuid::parse_str(identity.trim()).map_err(|_| {
            ApiError::Invalid(FieldErrors::single("identity", "Enter a valid UUID."))
        })?;
        conditions.push(crate::store::filter::Condition::eq(
            "identity",
            FilterValue::Uuid(identity),
        ));
    }
    let mut conn = state.db.acquire().await?;
    let page = sql::list_subscriptions(conn.conn(), &conditions, req.slice).await?;
    Ok(Json(req.respond(page, |s| SubscriptionOut::new(&base, s))))
}

async fn create_from(state: &AppState, user: i64, body: &Value) -> ApiResult<Subscription> {
    let mut fields = SubscriptionFields::default();
    read_fields(body, Mode::Create, &mut fields)?;
    state.creations.create(fields, user).await
}

#[utoipa::path(post, path = "/api/v1/subscriptions/", tag = "subscriptions", request_body = SubscriptionIn,
    responses((status = 201, body = SubscriptionOut), (status = 400, description = "Field errors")))]
#[tracing::instrument(skip_all, fields(user_id = caller.user_id))]
pub async fn create(
    State(state): State<AppState>,
    User(caller): User,
    base: BaseUrl,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<SubscriptionOut>)> {
    let created = create_from(&state, caller.user_id, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionOut::new(&base, created)),
    ))
}

/// The project hub's webhook: `{"hook": {...}, "data": {<subscription>}}`.
#[utoipa::path(post, path = "/api/v1/subscriptions/request", tag = "subscriptions", request_body = HubRegistrationIn,
    responses((status = 201, body = Accepted)))]
#[tracing::instrument(skip_all, fields(user_id = caller.user_id))]
pub async fn hub_request(
    State(state): State<AppState>,
    User(caller): User,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let data = registration_data(&body)?;
    create_from(&state, caller.user_id, &data).await?;
    Ok((StatusCode::CREATED, Json(Accepted { accepted: true })))
}

/// The subscription of a hub registration, without the fields that are the hub's own.
pub(super) fn registration_data(body: &Value) -> ApiResult<Value> {
    let mut data = match field(body, "data") {
        Some(data @ Value::Object(_)) => data.clone(),
        Some(Value::Null) | None => {
            return Err(ApiError::Invalid(FieldErrors::single(
                "data",
                "This field is required.",
            )))
        }
        Some(_) => {
            return Err(ApiError::Invalid(FieldErrors::single(
                "data",
                "Expected a JSON object.",
            )))
        }
    };
    // The hub's own id and timestamps are not ours; its absent metadata means an empty one.
    if let Value::Object(map) = &mut data {
        for read_only in [
            "id",
            "url",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
        ] {
            map.remove(read_only);
        }
    }
    Ok(data)
}

#[utoipa::path(get, path = "/api/v1/subscriptions/{id}/", tag = "subscriptions", params(("id" = Uuid, Path)),
    responses((status = 200, body = SubscriptionOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn retrieve(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    UuidId(id): UuidId,
) -> ApiResult<Json<SubscriptionOut>> {
    let mut conn = state.db.acquire().await?;
    let subscription = sql::get_subscription(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(SubscriptionOut::new(&base, subscription)))
}

async fn write(
    state: AppState,
    user: i64,
    base: BaseUrl,
    id: Uuid,
    body: Value,
    mode: Mode,
) -> ApiResult<Json<SubscriptionOut>> {
    let mut tx = state.begin().await?;
    let before = subscriptions::lock(&mut tx, id).await?;
    let mut fields = SubscriptionFields::from(&before);
    read_fields(&body, mode, &mut fields)?;
    let after = subscriptions::update(&mut tx, &state.effects, &before, fields, Some(user)).await?;
    state.commit(tx).await?;
    Ok(Json(SubscriptionOut::new(&base, after)))
}

#[utoipa::path(put, path = "/api/v1/subscriptions/{id}/", tag = "subscriptions", params(("id" = Uuid, Path)),
    request_body = SubscriptionIn, responses((status = 200, body = SubscriptionOut)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn replace(
    State(state): State<AppState>,
    User(caller): User,
    base: BaseUrl,
    UuidId(id): UuidId,
    Body(body): Body,
) -> ApiResult<Json<SubscriptionOut>> {
    write(state, caller.user_id, base, id, body, Mode::Replace).await
}

#[utoipa::path(patch, path = "/api/v1/subscriptions/{id}/", tag = "subscriptions", params(("id" = Uuid, Path)),
    request_body = SubscriptionIn, responses((status = 200, body = SubscriptionOut)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn update(
    State(state): State<AppState>,
    User(caller): User,
    base: BaseUrl,
    UuidId(id): UuidId,
    Body(body): Body,
) -> ApiResult<Json<SubscriptionOut>> {
    write(state, caller.user_id, base, id, body, Mode::Partial).await
}

#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}/", tag = "subscriptions", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn destroy(
    State(state): State<AppState>,
    _: User,
    UuidId(id): UuidId,
) -> ApiResult<StatusCode> {
    let mut tx = state.begin().await?;
    subscriptions::delete(&mut tx, &state.effects, id).await?;
    state.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The Seed Scheduler's POST-back: send the subscription its next message. A subscription that
/// exists but takes no sends answers 201 as the original did (the Scheduler retries every 4xx),
/// sends nothing and has its Scheduler schedule disabled. The Scheduler's repeats (it delivers
/// at least once) are accepted, say so, and add nothing; a user's every request is a message,
/// sent in turn after the one before it.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/send", tag = "subscriptions", params(("id" = Uuid, Path)),
    responses((status = 201, body = SendAnswer, description = "Accepted: also for an inactive or completed subscription (nothing is sent) and for a Scheduler repeat (with a `reason`)"),
        (status = 400, body = SendAnswer, description = "No such subscription: `{\"accepted\": false, \"reason\": …}`")))]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn send(
    State(state): State<AppState>,
    caller: SendCaller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let missing = || {
        Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"accepted": false, "reason": "Missing subscription in control"})),
        ))
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return missing();
    };
    let requester = match caller {
        SendCaller::Scheduler => Requester::Scheduler {
            window: state.send_dedupe_window,
        },
        SendCaller::User(_) => Requester::User,
    };
    let mut tx = state.begin().await?;
    let outcome = subscriptions::request_send(&mut tx, &state.effects, id, requester).await?;
    state.commit(tx).await?;
    let accepted = |body: Value| Ok((StatusCode::CREATED, Json(body)));
    match outcome {
        SendRequest::Accepted | SendRequest::Queued | SendRequest::NotLive(_) => {
            accepted(json!({"accepted": true}))
        }
        SendRequest::Duplicate => accepted(json!({
            "accepted": true,
            "reason": "A repeat of a send requested moments ago, or of one still waiting: nothing more was queued.",
        })),
        SendRequest::Missing => missing(),
    }
}

/// Sends the subscription's current message again.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/resend", tag = "subscriptions", params(("id" = Uuid, Path)),
    responses((status = 202, body = Accepted), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn resend(
    State(state): State<AppState>,
    _: User,
    UuidId(id): UuidId,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let mut tx = state.begin().await?;
    subscriptions::request_resend(&mut tx, &state.effects, id).await?;
    state.commit(tx).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted: true })))
}
