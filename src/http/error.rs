//! The one error type handlers return, and its mapping to status codes and DRF-shaped bodies.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::validation::FieldErrors;
use crate::{auth, content, store};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with `{"field": ["message"]}`.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// 400 with `{"detail": "..."}`.
    #[error("{0}")]
    BadRequest(String),
    #[error("Authentication credentials were not provided.")]
    NotAuthenticated,
    /// 401 with the given detail ("Invalid token.", "Invalid token header. ...").
    #[error("{0}")]
    AuthenticationFailed(&'static str),
    #[error("You do not have permission to perform this action.")]
    Forbidden,
    #[error("Not found.")]
    NotFound,
    #[error("Method \"{0}\" not allowed.")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Request body is larger than the {0} bytes allowed.")]
    PayloadTooLarge(usize),
    #[error("Unsupported media type \"{0}\" in request.")]
    UnsupportedMediaType(String),
    #[error("The query string is longer than the {0} bytes allowed.")]
    UriTooLong(usize),
    /// The body did not arrive within the deadline (a slow or stalled client).
    #[error("The request body did not arrive in time.")]
    BodyTimeout,
    #[error("The service is busy. Try again shortly.")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotAuthenticated | ApiError::AuthenticationFailed(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Invalid(errors) => json!(errors),
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "request failed");
                json!({"detail": "A server error occurred."})
            }
            ApiError::Unavailable(err) => {
                tracing::warn!(error = ?err, "database unavailable");
                json!({"detail": self.to_string()})
            }
            other => json!({"detail": other.to_string()}),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::NotAuthenticated | ApiError::AuthenticationFailed(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of a late body may still be on its way: do not read it as a request.
            ApiError::BodyTimeout => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        ApiError::Invalid(errors)
    }
}

impl From<store::Error> for ApiError {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NotFound => ApiError::NotFound,
            store::Error::Unavailable(e) => ApiError::Unavailable(e.into()),
            store::Error::Unique(name) => ApiError::Conflict(format!("Duplicate value ({name}).")),
            // A referenced row vanished between our check and the write.
            store::Error::ForeignKey(_) => ApiError::Conflict(
                "A referenced record was changed or deleted at the same time; try again.".into(),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<content::Error> for ApiError {
    fn from(err: content::Error) -> Self {
        match err {
            content::Error::Invalid(errors) => ApiError::Invalid(errors),
            content::Error::NotFound => ApiError::NotFound,
            content::Error::InUse(detail) => ApiError::Conflict(detail),
            content::Error::Refused(detail) => ApiError::BadRequest(detail),
            content::Error::Store(e) => e.into(),
        }
    }
}

impl From<auth::Error> for ApiError {
    fn from(err: auth::Error) -> Self {
        match err {
            auth::Error::InvalidEmail => {
                ApiError::Invalid(FieldErrors::single("email", err.to_string()))
            }
            auth::Error::Store(e) => e.into(),
        }
    }
}
