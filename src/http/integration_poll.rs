//! The poll API of an integration group (docs/integrations.md): fetch a leased batch, mark it
//! received. For an admin, or a token issued for the group's poll API.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::auth::PollCaller;
use super::body::Body;
use super::error::{ApiError, ApiResult};
use super::integration_wire::*;
use super::query::Params;
use super::AppState;
use crate::integrations::{self, format, DEFAULT_FETCH_LIMIT, MAX_FETCH_LIMIT};
use crate::validation::input::field;
use crate::validation::FieldErrors;

/// Takes the next batch of waiting messages, leased until marked or until the lease ends. For an
/// admin, or a token issued for this group's poll API.
#[utoipa::path(method(get, post), path = "/api/v1/integration-groups/{name}/poll/fetch", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 16")),
    responses((status = 200, body = PollBatchOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(group = %group))]
pub async fn fetch(
    State(state): State<AppState>,
    PollCaller { group }: PollCaller,
    params: Params,
) -> ApiResult<Json<Value>> {
    let limit = match params.get("limit") {
        None => DEFAULT_FETCH_LIMIT,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_FETCH_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::Invalid(FieldErrors::single(
                    "limit",
                    format!("Enter a whole number from 1 to {MAX_FETCH_LIMIT}."),
                )))
            }
        },
    };
    let mut tx = state.begin().await?;
    let (batch, unread) = integrations::fetch(&mut tx, &group, limit).await?;
    tx.commit().await?;
    let mut out = format::json_batch(&batch.token, &batch.messages);
    out["unreadCount"] = json!(unread);
    Ok(Json(out))
}

/// Marks a fetched batch as received: its messages are sent. The token comes in the query
/// string or the body.
#[utoipa::path(method(get, post), path = "/api/v1/integration-groups/{name}/poll/mark", tag = "integrations",
    params(("name" = String, Path, pattern = "^[a-z0-9_-]{1,64}$"), ("token" = Option<String>, Query, pattern = r"\S")), request_body = MarkIn,
    responses((status = 200, body = MarkOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(group = %group))]
pub async fn mark(
    State(state): State<AppState>,
    PollCaller { group }: PollCaller,
    params: Params,
    Body(body): Body,
) -> ApiResult<Json<MarkOut>> {
    let token = mark_token(&params, &body);
    let mut tx = state.begin().await?;
    let (marked, unread) = integrations::mark(&mut tx, &group, token.as_deref()).await?;
    tx.commit().await?;
    Ok(Json(MarkOut {
        marked_count: marked,
        unread_count: unread,
    }))
}

/// The batch token of a mark request: from the query string, else from the body.
pub(super) fn mark_token(params: &Params, body: &Value) -> Option<String> {
    params.get("token").map(str::to_string).or_else(|| {
        field(body, "token")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}
