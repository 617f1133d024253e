//! Signing in and out, and the extractor of the [`Staff`] every admin page starts with.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use super::error::{AdminError, AdminResult};
use super::form::{Posted, RawForm};
use super::layout;
pub use super::staff::Staff;
use super::staff::{session_cookie, COOKIE_NAME};
use crate::auth::session::{self, Credentials, SignInError};
use crate::http::links::BaseUrl;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AdminResult<Self> {
        let id = session_cookie(parts).ok_or(AdminError::NotSignedIn)?;
        let row = session::current(&state.db, &id, state.settings.admin_session_idle)
            .await?
            .ok_or(AdminError::NotSignedIn)?;
        Ok(Staff {
            user_id: row.user_id,
            email: row.email,
            csrf_token: row.csrf_token,
        })
    }
}

/// `Set-Cookie` for the session: HttpOnly, SameSite=Strict, only under /admin, Secure when the
/// UI is served over https. Without a value, the cookie is removed.
fn cookie(base: &BaseUrl, value: Option<&str>) -> String {
    let secure = if base.0.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    match value {
        Some(value) => {
            format!("{COOKIE_NAME}={value}; Path=/admin; HttpOnly; SameSite=Strict{secure}")
        }
        None => {
            format!("{COOKIE_NAME}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
        }
    }
}

fn login_form(status: StatusCode, message: Option<&str>) -> Response {
    let body = html! {
        @if let Some(message) = message { p.notice.error role="alert" { (message) } }
        form.card method="post" action="/admin/login" {
            fieldset {
                legend { "With your email and password" }
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="username";
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password";
            }
            fieldset {
                legend { "Or with an API token" }
                label for="token" { "API token" }
                input #token type="password" name="token" autocomplete="off";
            }
            button type="submit" { "Sign in" }
        }
        p.hint { "Admins only. Set a password with " code { "sbm user set-password --email …" } "." }
    };
    (status, layout::bare("Sign in", body)).into_response()
}

#[tracing::instrument(skip_all)]
async fn login_page() -> Response {
    login_form(StatusCode::OK, None)
}

fn client_address(connect: Option<&ConnectInfo<SocketAddr>>) -> String {
    connect.map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    base: BaseUrl,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    RawForm(form): RawForm,
) -> AdminResult<Response> {
    let token = form.get("token").unwrap_or("").trim();
    let credentials = if token.is_empty() {
        Credentials::Password {
            email: form.get("email").unwrap_or(""),
            password: form.get("password").unwrap_or(""),
        }
    } else {
        Credentials::Token(token)
    };
    let address = client_address(connect.as_ref().map(|e| &e.0));
    let idle = state.settings.admin_session_idle;
    match session::sign_in(&state.db, credentials, &address, idle).await {
        Ok(new) => Ok((
            [(SET_COOKIE, cookie(&base, Some(&new.id)))],
            Redirect::to("/admin"),
        )
            .into_response()),
        Err(SignInError::Limited) => Ok(login_form(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&SignInError::Limited.to_string()),
        )),
        Err(SignInError::Refused) => Ok(login_form(
            StatusCode::UNAUTHORIZED,
            Some(&SignInError::Refused.to_string()),
        )),
        Err(SignInError::Store(err)) => Err(err.into()),
    }
}

#[tracing::instrument(skip_all, fields(user_id = parts.staff.user_id))]
async fn logout(
    State(state): State<AppState>,
    base: BaseUrl,
    parts: Posted,
) -> AdminResult<Response> {
    if let Some(id) = &parts.session_id {
        session::sign_out(&state.db, id).await?;
    }
    Ok((
        [(SET_COOKIE, cookie(&base, None))],
        Redirect::to("/admin/login"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let plain = cookie(&BaseUrl("http://localhost:8000".into()), Some("abc"));
        assert_eq!(
            plain,
            "sbm_admin=abc; Path=/admin; HttpOnly; SameSite=Strict"
        );
        let secure = cookie(&BaseUrl("https://sbm.example.org".into()), Some("abc"));
        assert!(secure.ends_with("; Secure"), "{secure}");
        let removed = cookie(&BaseUrl("http://x".into()), None);
        assert!(removed.contains("Max-Age=0"), "{removed}");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let request = axum::http::Request::builder()
            .header(axum::http::header::COOKIE, "a=1; sbm_admin=xyz; b=2")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        assert_eq!(session_cookie(&parts).as_deref(), Some("xyz"));
    }
}
