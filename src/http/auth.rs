//! Who is calling: `Authorization: Token <key>` as in DRF's TokenAuthentication. HTTP Basic is
//! accepted too, with the token as the password (the original listed Basic first), so that
//! clients that can only do Basic still work.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;

use super::error::ApiError;
use super::AppState;
use crate::auth;
use crate::model::auth::Caller;

/// An authenticated, active user.
pub struct User(pub Caller);

/// An authenticated admin user.
pub struct Admin(pub Caller);

fn presented_token(parts: &Parts) -> Result<String, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::NotAuthenticated)?;
    let header = header.to_str().map_err(|_| {
        ApiError::AuthenticationFailed(
            "Invalid token header. Token string should not contain invalid characters.",
        )
    })?;
    let mut words = header.split_whitespace();
    let scheme = words.next().unwrap_or("");
    let credentials: Vec<&str> = words.collect();
    if scheme.eq_ignore_ascii_case("token") {
        match credentials.as_slice() {
            [] => Err(ApiError::AuthenticationFailed(
                "Invalid token header. No credentials provided.",
            )),
            [token] => Ok(token.to_string()),
            _ => Err(ApiError::AuthenticationFailed(
                "Invalid token header. Token string should not contain spaces.",
            )),
        }
    } else if scheme.eq_ignore_ascii_case("basic") {
        let invalid = || {
            ApiError::AuthenticationFailed(
                "Invalid basic header. Credentials not correctly base64 encoded.",
            )
        };
        let [encoded] = credentials.as_slice() else {
            return Err(invalid());
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (_user, password) = decoded.split_once(':').ok_or_else(invalid)?;
        Ok(password.to_string())
    } else {
        Err(ApiError::NotAuthenticated)
    }
}

impl<S> FromRequestParts<S> for User
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = any_caller(parts, state).await?;
        if caller.scope.is_some() {
            // A scoped token may use only its own part of the API (see `PollCaller`).
            return Err(ApiError::Forbidden);
        }
        Ok(User(caller))
    }
}

/// The active caller behind the presented token, whatever its scope.
async fn any_caller<S>(parts: &mut Parts, state: &S) -> Result<Caller, ApiError>
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    let token = presented_token(parts)?;
    let state = AppState::from_ref(state);
    match auth::authenticate(&state.db, &state.tokens, &token).await? {
        Some(caller) if caller.is_active => Ok(caller),
        Some(_) => Err(ApiError::AuthenticationFailed("User inactive or deleted.")),
        None => Err(ApiError::AuthenticationFailed("Invalid token.")),
    }
}

/// Whoever may use the poll API of the integration group named in the path: an admin, or a
/// token scoped to that group's poll API.
pub struct PollCaller {
    pub group: String,
}

impl<S> FromRequestParts<S> for PollCaller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = any_caller(parts, state).await?;
        let axum::extract::Path(group) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        let allowed = match &caller.scope {
            Some(scope) => *scope == crate::integrations::poll_scope(&group),
            None => caller.is_admin,
        };
        if allowed {
            Ok(PollCaller { group })
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let User(caller) = User::from_request_parts(parts, state).await?;
        if caller.is_admin {
            Ok(Admin(caller))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Whoever may ask for a send: the Seed Scheduler with `SCHEDULER_INBOUND_API_TOKEN`, or any
/// user.
pub enum SendCaller {
    Scheduler,
    User(Caller),
}

impl<S> FromRequestParts<S> for SendCaller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = presented_token(parts)?;
        let app = AppState::from_ref(state);
        // Comparing hashes keeps the comparison's timing independent of the secret.
        let inbound = app.scheduler_inbound_token.as_deref().map(auth::hash_token);
        if inbound.is_some_and(|hash| hash == auth::hash_token(&token)) {
            return Ok(SendCaller::Scheduler);
        }
        User::from_request_parts(parts, state)
            .await
            .map(|User(caller)| SendCaller::User(caller))
    }
}
