//! `POST /api/v1/user/token/`: an admin creates (or reuses) a user by email and issues a token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Admin;
use super::body::Body;
use super::{ApiResult, AppState};
use crate::auth;
use crate::validation::input::{Input, Mode, Text};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/user/token", post(create_token))
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// The user's email: an existing user gets a new token, a new email a new user.
    #[schema(format = Email)]
    email: String,
}

pub(super) fn read_email(body: &serde_json::Value) -> ApiResult<String> {
    let mut input = Input::new(body, Mode::Create)?;
    let email = input.text("email", Text::required());
    input.finish()?;
    Ok(email.unwrap_or_default())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    /// Shown once; only its hash is stored.
    pub token: String,
}

#[utoipa::path(post, path = "/api/v1/user/token/", tag = "auth", request_body = TokenRequest,
    responses((status = 201, body = TokenOut), (status = 400, description = "Missing or invalid email"),
              (status = 403, description = "Caller is not an admin")))]
#[tracing::instrument(skip_all, fields(user_id = caller.user_id))]
pub async fn create_token(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<TokenOut>)> {
    let email = read_email(&body)?;
    let mut tx = state.db.begin().await?;
    let issued = auth::issue_token(&mut tx, &email, false).await?;
    let prefix: String = issued.token.chars().take(8).collect();
    let details = serde_json::json!({"email": issued.user.email});
    let actor = crate::audit::Actor::user(&caller);
    let object = crate::audit::Object::new("token", prefix);
    crate::audit::record(&mut tx, &actor, "token.create", object, details).await?;
    tx.commit().await?;
    tracing::info!(email = %issued.user.email, "issued API token");
    Ok((
        StatusCode::CREATED,
        Json(TokenOut {
            token: issued.token,
        }),
    ))
}
