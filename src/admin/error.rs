//! What an admin request can fail with, as HTML pages (never the API's JSON).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout;

#[derive(Debug)]
pub enum AdminError {
    /// No live session: go and sign in.
    NotSignedIn,
    /// A POST without the session's CSRF token.
    Csrf,
    NotFound,
    BadRequest(String),
    Internal(anyhow::Error),
}

pub type AdminResult<T> = Result<T, AdminError>;

impl From<crate::store::Error> for AdminError {
    fn from(err: crate::store::Error) -> Self {
        match err {
            crate::store::Error::NotFound => AdminError::NotFound,
            other => AdminError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<crate::domain::Error> for AdminError {
    fn from(err: crate::domain::Error) -> Self {
        use crate::domain::Error;
        match err {
            Error::NotFound => AdminError::NotFound,
            Error::InUse(text) | Error::Refused(text) => AdminError::BadRequest(text),
            Error::Invalid(errors) => AdminError::BadRequest(describe_errors(&errors)),
            Error::Store(err) => err.into(),
        }
    }
}

/// "lang: Enter an ISO 639-3 language code…; schedule: …".
fn describe_errors(errors: &crate::validation::FieldErrors) -> String {
    let value = serde_json::to_value(errors).unwrap_or_default();
    let Some(fields) = value.as_object() else {
        return "The input was refused.".into();
    };
    fields
        .iter()
        .flat_map(|(field, messages)| {
            let messages = messages.as_array().cloned().unwrap_or_default();
            messages.into_iter().map(move |m| {
                let text = m.as_str().unwrap_or_default().to_string();
                if field == crate::validation::NON_FIELD_ERRORS {
                    text
                } else {
                    format!("{field}: {text}")
                }
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn simple(status: StatusCode, title: &str, text: &str) -> Response {
    let body = html! {
        p.notice.error { (text) }
        p { a href="/admin" { "Back to the dashboard" } }
    };
    (status, layout::bare(title, body)).into_response()
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match self {
            AdminError::NotSignedIn => Redirect::to("/admin/login").into_response(),
            AdminError::Csrf => simple(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was not sent from a page of this session (missing or wrong CSRF \
                 token). Reload the page and try again.",
            ),
            AdminError::NotFound => simple(StatusCode::NOT_FOUND, "Not found", "No such record."),
            AdminError::BadRequest(text) => simple(StatusCode::BAD_REQUEST, "Refused", &text),
            AdminError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "admin page failed");
                simple(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "A server error occurred.",
                )
            }
        }
    }
}
