//! `/api/v1/events/`: the lifecycle events every change writes (docs/events.md).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::auth::User;
use super::callbacks::{delivery_out, DeliveryOut};
use super::error::{ApiError, ApiResult};
use super::query::{Filters, ListRequest, Paginated};
use super::schemas::{EventOut, PageParams, TopicText};
use super::{AppState, UuidId};
use crate::events::{self, topic};
use crate::store::events as sql;
use crate::store::filter::{Condition, Op, Value as FilterValue};
use crate::store::Page;
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
#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>, _: User, req: ListRequest) -> ApiResult<Response> {
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
    let rows = page.rows;
    let page = Page {
        count: page.count,
        rows: rows.iter().collect(),
    };
    Ok(json_response(&req.respond(page, events::envelope)))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/", tag = "events", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EventOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn retrieve(
    State(state): State<AppState>,
    _: User,
    UuidId(id): UuidId,
) -> ApiResult<Response> {
    let mut conn = state.db.acquire().await?;
    let row = sql::get_event(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(json_response(&events::envelope(&row)))
}

/// A JSON response of a value that borrows from rows read here (events keep their data as the
/// stored text, which is written out as it is).
fn json_response(value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("events serialize");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[utoipa::path(get, path = "/api/v1/events/{id}/deliveries/", tag = "events", params(("id" = uuid::Uuid, Path), PageParams),
    responses((status = 200, body = Paginated<DeliveryOut>), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn deliveries(
    State(state): State<AppState>,
    User(caller): User,
    UuidId(id): UuidId,
    req: ListRequest,
) -> ApiResult<Json<Paginated<DeliveryOut>>> {
    let mut conn = state.db.acquire().await?;
    let event = sql::get_event(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Deliveries belong to their callback's owner, as on the callbacks' own routes.
    let mut conditions = vec![Condition::eq("event_id", FilterValue::Int(event.id))];
    if !caller.is_admin {
        conditions.push(Condition::eq(
            "callback_owner",
            FilterValue::Int(caller.user_id),
        ));
    }
    let page = sql::list_deliveries(conn.conn(), &conditions, req.slice).await?;
    Ok(Json(req.respond(page, delivery_out)))
}
