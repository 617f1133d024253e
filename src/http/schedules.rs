//! `/api/v1/schedule/`: the cron-like schedules messages are sent on.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::ToSchema;

use super::auth::User;
use super::body::Body;
use super::query::{ListRequest, Paginated};
use super::schemas::{Empty, PageParams};
use super::{ApiError, ApiResult, AppState, Id};
use crate::content;
use crate::model::content::{Schedule, ScheduleFields};
use crate::scheduling::local::due_times;
use crate::store::content as sql;
use crate::validation::input::{set, Input, Mode, Text};
pub use crate::wire::content::ScheduleOut;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/schedule", get(list).post(create))
        .route(
            "/api/v1/schedule/{id}",
            get(retrieve).put(replace).patch(update).delete(destroy),
        )
        .route("/api/v1/schedule/{id}/send", axum::routing::post(send))
}

impl From<Schedule> for ScheduleOut {
    fn from(s: Schedule) -> Self {
        let next_due = due_times(&s, crate::store::now(), 5);
        ScheduleOut::new(s, next_due)
    }
}

/// Writable fields; each defaults to `*` (PATCH: only those sent change).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ScheduleIn {
    #[serde(default)]
    #[schema(max_length = 64, pattern = r"^(\*|[0-5]?[0-9](,[0-5]?[0-9])*)$")]
    minute: String,
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^(\*|([01]?[0-9]|2[0-3])(,([01]?[0-9]|2[0-3]))*)$"
    )]
    hour: String,
    #[serde(default)]
    #[schema(max_length = 64, pattern = r"^(\*|[0-7](,[0-7])*)$")]
    day_of_week: String,
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^(\*|([1-9]|[12][0-9]|3[01])(,([1-9]|[12][0-9]|3[01]))*)$"
    )]
    day_of_month: String,
    #[serde(default)]
    #[schema(max_length = 64, pattern = r"^(\*|([1-9]|1[0-2])(,([1-9]|1[0-2]))*)$")]
    month_of_year: String,
    /// An IANA time zone name, such as `Africa/Johannesburg`; default `UTC`. Only UTC when a
    /// Seed Scheduler is configured.
    #[schema(max_length = 64)]
    timezone: Option<String>,
}

pub(super) fn read_fields(
    body: &serde_json::Value,
    mode: Mode,
    f: &mut ScheduleFields,
) -> ApiResult<()> {
    let mut input = Input::new(body, mode)?;
    let rule = Text::optional().not_blank().max(64);
    set(&mut f.minute, input.text("minute", rule));
    set(&mut f.hour, input.text("hour", rule));
    set(&mut f.day_of_week, input.text("day_of_week", rule));
    set(&mut f.day_of_month, input.text("day_of_month", rule));
    set(&mut f.month_of_year, input.text("month_of_year", rule));
    set(&mut f.timezone, input.text("timezone", rule));
    Ok(input.finish()?)
}

#[utoipa::path(get, path = "/api/v1/schedule/", tag = "content",
    params(PageParams),
    responses((status = 200, body = Paginated<ScheduleOut>)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: User,
    req: ListRequest,
) -> ApiResult<Json<Paginated<ScheduleOut>>> {
    let mut conn = state.db.acquire().await?;
    let page = sql::list_schedules(conn.conn(), req.slice).await?;
    Ok(Json(req.respond(page, ScheduleOut::from)))
}

#[utoipa::path(post, path = "/api/v1/schedule/", tag = "content", request_body = ScheduleIn,
    responses((status = 201, body = ScheduleOut), (status = 400, description = "Field errors")))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    _: User,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<ScheduleOut>)> {
    let mut fields = ScheduleFields::default();
    read_fields(&body, Mode::Create, &mut fields)?;
    let mut tx = state.db.begin().await?;
    let schedule = content::create_schedule(&mut tx, &state.effects, &fields).await?;
    state.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(schedule.into())))
}

#[utoipa::path(get, path = "/api/v1/schedule/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = ScheduleOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn retrieve(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
) -> ApiResult<Json<ScheduleOut>> {
    let mut conn = state.db.acquire().await?;
    let schedule = sql::get_schedule(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(schedule.into()))
}

async fn write(
    state: AppState,
    id: i64,
    body: serde_json::Value,
    mode: Mode,
) -> ApiResult<Json<ScheduleOut>> {
    let mut tx = state.db.begin().await?;
    let existing = sql::get_schedule(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut fields = ScheduleFields::from(&existing);
    read_fields(&body, mode, &mut fields)?;
    let schedule = content::update_schedule(&mut tx, &state.effects, id, &fields).await?;
    state.commit(tx).await?;
    Ok(Json(schedule.into()))
}

#[utoipa::path(put, path = "/api/v1/schedule/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    request_body = ScheduleIn, responses((status = 200, body = ScheduleOut)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn replace(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
    Body(body): Body,
) -> ApiResult<Json<ScheduleOut>> {
    write(state, id, body, Mode::Replace).await
}

#[utoipa::path(patch, path = "/api/v1/schedule/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    request_body = ScheduleIn, responses((status = 200, body = ScheduleOut)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn update(
    State(state): State<AppState>,
    _: User,
    Id(id): Id,
    Body(body): Body,
) -> ApiResult<Json<ScheduleOut>> {
    write(state, id, body, Mode::Partial).await
}

#[utoipa::path(delete, path = "/api/v1/schedule/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 204), (status = 404), (status = 409, description = "Still used by message sets")))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn destroy(State(state): State<AppState>, _: User, Id(id): Id) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    content::delete_schedule(&mut tx, &state.effects, id).await?;
    state.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends every ready subscription on the schedule its next message now: one tick on request
/// (the 2019 original's per-schedule POST-back, also for operators).
#[utoipa::path(post, path = "/api/v1/schedule/{id}/send/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 202, body = Empty), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn send(
    State(state): State<AppState>,
    _: super::auth::SendCaller,
    Id(id): Id,
) -> ApiResult<(StatusCode, Json<Empty>)> {
    let mut tx = state.begin().await?;
    sql::get_schedule(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let change = crate::effects::Change::ScheduleFireRequested { schedule_id: id };
    crate::effects::follow(&mut tx, &state.effects, change).await?;
    state.commit(tx).await?;
    Ok((StatusCode::ACCEPTED, Json(Empty {})))
}
