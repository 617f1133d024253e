//! Integration groups, their messages and errors, and the poll API (docs/integrations.md).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::auth::Admin;
use super::body::Body;
use super::error::{ApiError, ApiResult};
use super::integration_poll::{fetch, mark};
use super::integration_wire::*;
use super::query::{ListRequest, Paginated};
use super::schemas::PageParams;
use super::{AppState, Id};
use crate::audit::Actor;
use crate::events::timestamp as time;
use crate::integrations::{self, manage};
use crate::store::filter::{Condition, Value as FilterValue};
use crate::store::integrations::{self as sql, ErrorRow, GroupRow, MessageRow};
use crate::store::{self, Conn};
use crate::validation::input::{Input, Mode};

pub fn router() -> Router<AppState> {
    const GROUP: &str = "/api/v1/integration-groups/{name}";
    Router::new()
        .route("/api/v1/integration-groups", get(list).post(create))
        .route(GROUP, get(retrieve).patch(update).delete(destroy))
        .route(
            &format!("{GROUP}/messages"),
            get(messages).post(add_message),
        )
        .route(&format!("{GROUP}/messages/{{id}}"), get(message))
        .route(&format!("{GROUP}/messages/{{id}}/unsend"), post(unsend))
        .route(&format!("{GROUP}/send"), post(send_now))
        .route(&format!("{GROUP}/tokens"), post(issue_token))
        .route(&format!("{GROUP}/errors"), get(group_errors))
        .route(&format!("{GROUP}/poll/fetch"), get(fetch).post(fetch))
        .route(&format!("{GROUP}/poll/mark"), get(mark).post(mark))
        // Haplo's own paths, so that its clients need only a new host.
        .route(
            "/api/haplo-integration-messages/poll/{name}/fetch",
            get(fetch).post(fetch),
        )
        .route(
            "/api/haplo-integration-messages/poll/{name}/mark",
            get(mark).post(mark),
        )
        .route("/api/v1/integration-errors", get(errors))
        .route(
            "/api/v1/integration-errors/{id}/acknowledge",
            post(acknowledge),
        )
}

async fn representation(state: &AppState, conn: Conn<'_>, group: &GroupRow) -> ApiResult<GroupOut> {
    let mut conn = conn;
    let event_types = sql::group_topics(conn_again(&mut conn), &group.name).await?;
    let counts = sql::group_counts(conn_again(&mut conn), &group.name).await?;
    let origin = &state.effects.public_origin;
    let poll = group.method == "poll";
    let poll_url = |action: &str| {
        poll.then(|| {
            format!(
                "{origin}/api/v1/integration-groups/{}/poll/{action}",
                group.name
            )
        })
    };
    Ok(GroupOut {
        auth_header_set: group.auth_header.is_some(),
        created_at: time(group.created_at),
        day_of_month: group.day_of_month.clone(),
        day_of_week: group.day_of_week.clone(),
        description: group.description.clone(),
        event_types,
        format: group.format.clone(),
        hour: group.hour.clone(),
        instance: group.instance.clone(),
        last_push_at: group.last_push_at.map(time),
        lease_seconds: group.lease_seconds,
        mark_url: poll_url("mark"),
        max_batch_size: group.max_batch_size,
        method: group.method.clone(),
        minute: group.minute.clone(),
        month_of_year: group.month_of_year.clone(),
        name: group.name.clone(),
        next_push_at: group.next_push_at.map(time),
        poll_url: poll_url("fetch"),
        skip_empty: group.skip_empty,
        target_url: group.target_url.clone(),
        title: group.title.clone(),
        unacknowledged_errors: counts.unacknowledged_errors,
        unsent_count: counts.unsent,
        updated_at: time(group.updated_at),
    })
}

/// Reborrows a connection handle for one more query.
fn conn_again<'a>(conn: &'a mut Conn<'_>) -> Conn<'a> {
    match conn {
        Conn::Postgres(c) => Conn::Postgres(c),
        Conn::Sqlite(c) => Conn::Sqlite(c),
    }
}

#[utoipa::path(get, path = "/api/v1/integration-groups/", tag = "integrations",
    params(PageParams),
    responses((status = 200, body = Paginated<GroupOut>, description = "Integration groups, by name")))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    req: ListRequest,
) -> ApiResult<Json<Paginated<GroupOut>>> {
    let mut conn = state.db.acquire().await?;
    let page = sql::list_groups(conn.conn(), req.slice).await?;
    let mut results = Vec::with_capacity(page.rows.len());
    for group in &page.rows {
        results.push(representation(&state, conn.conn(), group).await?);
    }
    let page = store::Page {
        count: page.count,
        rows: results,
    };
    Ok(Json(req.respond(page, |group| group)))
}

#[utoipa::path(post, path = "/api/v1/integration-groups/", tag = "integrations",
    request_body = GroupIn,
    responses((status = 201, body = GroupOut), (status = 409, description = "Name taken")))]
#[tracing::instrument(skip_all, fields(user_id = caller.user_id))]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<GroupOut>)> {
    let (group, topics) = manage::read_new(&state.instance_name, &body)?;
    let mut tx = state.begin().await?;
    let actor = Actor::user(&caller);
    manage::create(
        &mut tx,
        &state.hub.settings.keyring,
        &actor,
        &group,
        &topics,
    )
    .await?;
    let out = representation(&state, tx.conn(), &group).await?;
    state.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/integration-groups/{name}/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")), responses((status = 200, body = GroupOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(name = %name))]
pub async fn retrieve(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<GroupOut>> {
    let mut conn = state.db.acquire().await?;
    let group = sql::get_group(conn.conn(), &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(representation(&state, conn.conn(), &group).await?))
}

#[utoipa::path(patch, path = "/api/v1/integration-groups/{name}/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")), request_body = GroupIn,
    responses((status = 200, body = GroupOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(name = %name, user_id = caller.user_id))]
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<GroupOut>> {
    let mut tx = state.begin().await?;
    let actor = Actor::user(&caller);
    let keyring = &state.hub.settings.keyring;
    let group = manage::update(&mut tx, keyring, &actor, &name, &body).await?;
    let out = representation(&state, tx.conn(), &group).await?;
    state.commit(tx).await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/integration-groups/{name}/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")), responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all, fields(name = %name, user_id = caller.user_id))]
pub async fn destroy(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let mut tx = state.begin().await?;
    manage::delete(&mut tx, &Actor::user(&caller), &name).await?;
    state.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn message_out(row: MessageRow) -> GroupMessageOut {
    GroupMessageOut {
        created_at: time(row.created_at),
        data: crate::integrations::read_data(row.id, &row.data.0),
        event_id: row.event_id,
        group: row.group_name,
        id: row.id,
        leased_until: row.leased_until.map(time),
        manual_created_by: row.manual_created_by_email,
        sent_at: row.sent_at.map(time),
    }
}

async fn known_group(state: &AppState, name: &str) -> ApiResult<()> {
    let mut conn = state.db.acquire().await?;
    sql::get_group(conn.conn(), name)
        .await?
        .map(|_| ())
        .ok_or(ApiError::NotFound)
}

#[utoipa::path(get, path = "/api/v1/integration-groups/{name}/messages/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$"), ("sent" = Option<bool>, Query), PageParams),
    responses((status = 200, body = Paginated<GroupMessageOut>, description = "The group's messages, newest first"), (status = 404)))]
#[tracing::instrument(skip_all, fields(name = %name))]
pub async fn messages(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    req: ListRequest,
) -> ApiResult<Json<Paginated<GroupMessageOut>>> {
    known_group(&state, &name).await?;
    let mut conditions = super::query::Filters::new(&req.params)
        .boolean("sent", "sent")
        .finish()?;
    conditions.push(Condition::eq("group_name", FilterValue::Text(name)));
    let mut conn = state.db.acquire().await?;
    let page = sql::list_messages(conn.conn(), &conditions, req.slice).await?;
    Ok(Json(req.respond(page, message_out)))
}

#[utoipa::path(post, path = "/api/v1/integration-groups/{name}/messages/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")), request_body = GroupMessageIn,
    responses((status = 201, body = GroupMessageOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(name = %name, user_id = caller.user_id))]
pub async fn add_message(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<GroupMessageOut>)> {
    let mut tx = state.begin().await?;
    let group = integrations::existing_group(&mut tx, &name).await?;
    let data = read_message_data(&body)?;
    let id = integrations::add_message(&mut tx, &group, data, caller.user_id).await?;
    let row = sql::get_message(tx.conn(), &name, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    state.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(message_out(row))))
}

/// The `data` of a message added by hand: a JSON object.
pub(super) fn read_message_data(body: &Value) -> ApiResult<Value> {
    let mut input = Input::new(body, Mode::Create)?;
    let data = match input.nullable_object("data") {
        Some(Some(data)) => Some(data),
        Some(None) => {
            input.error("data", "This field may not be null.");
            None
        }
        None => {
            input.error("data", "This field is required.");
            None
        }
    };
    input.finish()?;
    Ok(data.unwrap_or_default())
}

/// The `{name}` and `{id}` of a message's path. An id that is not a positive integer names no
/// message: 404, as [`Id`] answers, rather than axum's plain-text 400.
pub struct MessagePath(String, i64);

impl<S: Send + Sync> FromRequestParts<S> for MessagePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((name, raw)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(MessagePath(name, id)),
            _ => Err(ApiError::NotFound),
        }
    }
}

async fn message_with_audit(
    conn: Conn<'_>,
    name: &str,
    id: i64,
) -> ApiResult<GroupMessageDetailOut> {
    let mut conn = conn;
    let row = sql::get_message(conn_again(&mut conn), name, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let audit = sql::audit_trail(conn_again(&mut conn), id).await?;
    Ok(GroupMessageDetailOut {
        audit: audit
            .into_iter()
            .map(|a| AuditOut {
                action: a.action,
                by: a.email,
                at: time(a.at),
            })
            .collect(),
        message: message_out(row),
    })
}

#[utoipa::path(get, path = "/api/v1/integration-groups/{name}/messages/{id}/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$"), ("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = GroupMessageDetailOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(group = %name, id = id))]
pub async fn message(
    State(state): State<AppState>,
    _: Admin,
    MessagePath(name, id): MessagePath,
) -> ApiResult<Json<GroupMessageDetailOut>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(message_with_audit(conn.conn(), &name, id).await?))
}

#[utoipa::path(post, path = "/api/v1/integration-groups/{name}/messages/{id}/unsend/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$"), ("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = GroupMessageDetailOut, description = "The message, waiting again"), (status = 404)))]
#[tracing::instrument(skip_all, fields(group = %name, id = id, user_id = caller.user_id))]
pub async fn unsend(
    State(state): State<AppState>,
    Admin(caller): Admin,
    MessagePath(name, id): MessagePath,
) -> ApiResult<Json<GroupMessageDetailOut>> {
    let mut tx = state.begin().await?;
    manage::unsend(&mut tx, &name, id, caller.user_id).await?;
    let out = message_with_audit(tx.conn(), &name, id).await?;
    state.commit(tx).await?;
    Ok(Json(out))
}

/// "Send outstanding messages now": enqueues a push of a send group.
#[utoipa::path(post, path = "/api/v1/integration-groups/{name}/send/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")),
    responses((status = 202, body = QueuedOut, description = "A push is queued"), (status = 400, description = "Not a send group"), (status = 404)))]
#[tracing::instrument(skip_all, fields(name = %name, user_id = caller.user_id))]
pub async fn send_now(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<QueuedOut>)> {
    let mut tx = state.begin().await?;
    let queued = manage::send_now(&mut tx, &state.effects, &name).await?;
    let actor = Actor::user(&caller);
    let object = crate::audit::Object::new("integration_group", &name);
    crate::audit::record(
        &mut tx,
        &actor,
        "integration_group.send_now",
        object,
        json!({}),
    )
    .await?;
    state.commit(tx).await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedOut { queued })))
}

/// A token for this group's poll API only, shown once.
#[utoipa::path(post, path = "/api/v1/integration-groups/{name}/tokens/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$")),
    responses((status = 201, body = PollTokenOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(name = %name, user_id = caller.user_id))]
pub async fn issue_token(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<PollTokenOut>)> {
    let mut tx = state.begin().await?;
    let token = manage::issue_token(&mut tx, &Actor::user(&caller), &name).await?;
    state.commit(tx).await?;
    let origin = &state.effects.public_origin;
    Ok((
        StatusCode::CREATED,
        Json(PollTokenOut {
            mark_url: format!("{origin}/api/v1/integration-groups/{name}/poll/mark"),
            poll_url: format!("{origin}/api/v1/integration-groups/{name}/poll/fetch"),
            scope: integrations::poll_scope(&name),
            group: name,
            token,
        }),
    ))
}

fn error_out(row: ErrorRow) -> IntegrationErrorOut {
    IntegrationErrorOut {
        acknowledged_at: row.acknowledged_at.map(time),
        acknowledged_by: row.acknowledged_by_email,
        details: row.details.0,
        group: row.group_name,
        id: row.id,
        message: row.message,
        occurred_at: time(row.occurred_at),
        source: row.source,
    }
}

async fn list_errors(
    state: &AppState,
    req: &ListRequest,
    group: Option<String>,
) -> ApiResult<Json<Paginated<IntegrationErrorOut>>> {
    let mut conditions = super::query::Filters::new(&req.params)
        .boolean("acknowledged", "acknowledged")
        .finish()?;
    if let Some(group) = group {
        conditions.push(Condition::eq("group_name", FilterValue::Text(group)));
    }
    let mut conn = state.db.acquire().await?;
    let page = sql::list_errors(conn.conn(), &conditions, req.slice).await?;
    Ok(Json(req.respond(page, error_out)))
}

#[utoipa::path(get, path = "/api/v1/integration-errors/", tag = "integrations",
    params(("acknowledged" = Option<bool>, Query), PageParams),
    responses((status = 200, body = Paginated<IntegrationErrorOut>, description = "Integration errors of every group, newest first")))]
#[tracing::instrument(skip_all)]
pub async fn errors(
    State(state): State<AppState>,
    _: Admin,
    req: ListRequest,
) -> ApiResult<Json<Paginated<IntegrationErrorOut>>> {
    list_errors(&state, &req, None).await
}

#[utoipa::path(get, path = "/api/v1/integration-groups/{name}/errors/", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$"), ("acknowledged" = Option<bool>, Query), PageParams),
    responses((status = 200, body = Paginated<IntegrationErrorOut>, description = "The group's integration errors, newest first"), (status = 404)))]
#[tracing::instrument(skip_all, fields(name = %name))]
pub async fn group_errors(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    req: ListRequest,
) -> ApiResult<Json<Paginated<IntegrationErrorOut>>> {
    known_group(&state, &name).await?;
    list_errors(&state, &req, Some(name)).await
}

#[utoipa::path(post, path = "/api/v1/integration-errors/{id}/acknowledge/", tag = "integrations",
    params(("id" = i64, Path, minimum = 1)), responses((status = 200, body = IntegrationErrorOut, description = "The error, acknowledged"), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id, user_id = caller.user_id))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Id(id): Id,
) -> ApiResult<Json<IntegrationErrorOut>> {
    let mut tx = state.begin().await?;
    let row = manage::acknowledge_error(&mut tx, id, caller.user_id).await?;
    state.commit(tx).await?;
    Ok(Json(error_out(row)))
}
