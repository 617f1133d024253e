//! `/api/v1/events/`: the lifecycle events every change writes (docs/events.md).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::auth::User;
use super::callbacks::{delivery_out, DeliveryOut};
use super::error::{ApiError, ApiResult};
use super::query::{Filters, ListRequest, Paginated};
use super::schemas::{EventOut, PageParams, TopicText};
use super::{AppState, UuidId};
use crate::events::{self, topic};
use crate::store::events as sql;
use crate::store::filter::{Condition, Op, Value as FilterValue};
use crate::validation::FieldErrors;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(list))
        .route("/api/v1/events/{id}", get(retrieve))
        .route("/api/v1/events/{id}/deliveries", get(deliveries))
}

#[utoipa::path(get, path = "/api/v1/events/", tag = "events",
    params(("type" = Option<String>, Query), ("topic" = Option<TopicText>, Query),
        ("object_type" = Option<String>, Query), ("object_id" = Option<String>, Query),
        ("since" = Option<DateTime<Utc>>, Query), ("until" = Option<DateTime<Utc>>, Query, description = "Exclusive"),
        PageParams),
    responses((status = 200, body = Paginated<EventOut>, description = "Events, oldest first")))]
pub async fn list(
    State(state): State<AppState>,
    _: User,
    req: ListRequest,
) -> ApiResult<Json<Paginated<Value>>> {
    let mut conditions = Filters::new(&req.params)
        .text("type", "type")
        .text("object_type", "object_type")
        .text("object_id", "object_id")
        .time("since", "occurred_at", Op::AtLeast)
        .time("until", "occurred_at", Op::Below)
        .finish()?;
    if let Some(raw) = req.params.get("topic") {
        let topic = topic::parse(raw)
            .map_err(|message| ApiError::Invalid(FieldErrors::single("topic", message)))?;
        if !topic.prefix.is_empty() {
            conditions.push(Condition {
                column: "type",
                op: Op::Under,
                value: FilterValue::Text(topic.prefix),
            });
        }
    }
    let mut conn = state.db.acquire().await?;
    let page = sql::list_events(conn.conn(), &conditions, req.slice).await?;
    Ok(Json(req.respond(page, |row| events::envelope(&row))))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/", tag = "events", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EventOut), (status = 404)))]
pub async fn retrieve(
    State(state): State<AppState>,
    _: User,
    UuidId(id): UuidId,
) -> ApiResult<Json<Value>> {
    let mut conn = state.db.acquire().await?;
    let row = sql::get_event(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(events::envelope(&row)))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/deliveries/", tag = "events", params(("id" = uuid::Uuid, Path), PageParams),
    responses((status = 200, body = Paginated<DeliveryOut>), (status = 404)))]
pub async fn deliveries(
    State(state): State<AppState>,
    _: User,
    UuidId(id): UuidId,
    req: ListRequest,
) -> ApiResult<Json<Paginated<DeliveryOut>>> {
    let mut conn = state.db.acquire().await?;
    let event = sql::get_event(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let conditions = [Condition::eq("event_id", FilterValue::Int(event.id))];
    let page = sql::list_deliveries(conn.conn(), &conditions, req.slice).await?;
    Ok(Json(req.respond(page, delivery_out)))
}
