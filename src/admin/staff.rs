//! Who is signed in, as every page sees it: plain data, below the pages, forms and errors that
//! use it (the extractor that finds it is in `session`).

use axum::http::header::COOKIE;
use axum::http::request::Parts;
use maud::{html, Markup};

pub const COOKIE_NAME: &str = "sbm_admin";

/// The form field carrying the session's CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The signed-in admin of this request.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user_id: i64,
    pub email: String,
    pub csrf_token: String,
}

/// The session id the request's cookie carries.
pub fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

/// The hidden field every POST form of a session carries.
pub fn csrf_field(staff: &Staff) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(staff.csrf_token); }
}
