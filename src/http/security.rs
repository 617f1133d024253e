//! Security operations over HTTP: a callback's signing-secret rotation (docs/events.md) and the
//! audit log (docs/security.md).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::auth::{Admin, User};
use super::body::Body;
use super::error::{ApiError, ApiResult};
use super::query::{Filters, ListRequest, Paginated};
use super::{AppState, UuidId};
use crate::callbacks::secrets::{
    self as signing_secrets, DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS,
};
use crate::store::audit::AuditRow;
use crate::store::{self, events as sql};
use crate::validation::FieldErrors;

/// Longest secret accepted, as for `hub.secret`.
const MAX_SECRET_BYTES: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/callbacks/{id}/rotate-secret", post(rotate_secret))
        .route("/api/v1/audit", get(audit_log))
}

fn audit_out(row: AuditRow) -> Value {
    json!({
        "id": row.id,
        "at": crate::events::timestamp(row.at),
        "actor": row.actor,
        "actor_id": row.actor_id,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "details": serde_json::from_str::<Value>(&row.details).unwrap_or(Value::Null),
    })
}

/// The audit log, oldest first; admins only. Filters: `action`, `actor_id`, `object_type`,
/// `object_id`.
#[utoipa::path(get, path = "/api/v1/audit/", tag = "auth",
    params(("action" = Option<String>, Query), ("actor_id" = Option<i64>, Query),
        ("object_type" = Option<String>, Query), ("object_id" = Option<String>, Query),
        super::schemas::PageParams),
    responses((status = 200, body = Object, description = "Audit entries, paginated: `{count, next, previous, results: [{id, at, actor_id, actor_email, action, object_type, object_id, details}]}`"),
        (status = 401), (status = 403)))]
#[tracing::instrument(skip_all)]
pub async fn audit_log(
    State(state): State<AppState>,
    _: Admin,
    req: ListRequest,
) -> ApiResult<Json<Paginated<Value>>> {
    let conditions = Filters::new(&req.params)
        .text("action", "action")
        .integer("actor_id", "actor_id")
        .text("object_type", "object_type")
        .text("object_id", "object_id")
        .finish()?;
    let mut conn = state.db.acquire().await?;
    let page = crate::store::audit::list(conn.conn(), &conditions, req.slice).await?;
    Ok(Json(req.respond(page, audit_out)))
}

/// The fields of a rotation: a new `secret` (required) and `grace_seconds` (default a day).
fn read_rotation(body: &Value) -> Result<(String, i64), FieldErrors> {
    let mut errors = FieldErrors::new();
    let secret = match body.get("secret") {
        Some(Value::String(s)) if s.is_empty() => {
            errors.add("secret", "This field may not be blank.");
            None
        }
        Some(Value::String(s)) if s.len() > MAX_SECRET_BYTES => {
            errors.add(
                "secret",
                format!("Ensure this field has no more than {MAX_SECRET_BYTES} bytes."),
            );
            None
        }
        Some(Value::String(s)) if s.starts_with('\0') => {
            errors.add("secret", "A secret may not start with a NUL character.");
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.add("secret", "Not a valid string.");
            None
        }
        None => {
            errors.add("secret", "This field is required.");
            None
        }
    };
    let grace = match body.get("grace_seconds") {
        None | Some(Value::Null) => Some(DEFAULT_GRACE_SECONDS),
        Some(value) => match value.as_i64() {
            Some(n) if (0..=MAX_GRACE_SECONDS).contains(&n) => Some(n),
            _ => {
                errors.add(
                    "grace_seconds",
                    format!("Ensure this value is an integer from 0 to {MAX_GRACE_SECONDS}."),
                );
                None
            }
        },
    };
    errors.into_result()?;
    Ok((secret.unwrap_or_default(), grace.unwrap_or_default()))
}

/// Gives the callback a new signing secret. Its former secret, if any, keeps signing beside
/// the new one (two space-separated `webhook-signature` values) for `grace_seconds`, so the
/// receiver can switch without dropping a delivery.
/// A new signing secret; the old one keeps signing beside it for the grace period.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RotateSecretIn {
    /// The new secret (at most 200 bytes).
    #[schema(max_length = 200, min_length = 1)]
    secret: String,
    /// How long the old secret still signs too, in seconds (default 86400).
    #[schema(minimum = 0, maximum = 2592000)]
    grace_seconds: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/callbacks/{id}/rotate-secret/", tag = "events",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = RotateSecretIn),
    responses((status = 200, body = Object, description = "The callback, with previous_secret_expires_at"),
        (status = 400, description = "Field errors"), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id, user_id = caller.user_id))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    User(caller): User,
    UuidId(id): UuidId,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let (secret, grace) = read_rotation(&body).map_err(ApiError::Invalid)?;
    let mut tx = state.begin().await?;
    let callback = match sql::get_callback(tx.conn(), id).await? {
        Some(c) if caller.is_admin || c.created_by == Some(caller.user_id) => c,
        _ => return Err(ApiError::NotFound),
    };
    let owner = callback.created_by;
    crate::audit::admin_on_callback(&mut tx, &caller, owner, "callback.rotate_secret", id).await?;
    let now = store::now();
    let keyring = &state.hub.settings.keyring;
    let ends = signing_secrets::rotate(&mut tx, keyring, &callback, secret, grace, now).await?;
    let callback = sql::get_callback(tx.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    state.commit(tx).await?;
    let mut out = crate::callbacks::representation(&state.effects.public_origin, &callback);
    out["previous_secret_expires_at"] =
        ends.map_or(Value::Null, |t| Value::from(crate::events::timestamp(t)));
    Ok(Json(out))
}
