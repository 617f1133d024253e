//! Absolute URLs for links in responses: from the configured public URL, or else from the
//! request's Host header (as Django built them), https when USE_SSL is set.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::HOST;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
pub use crate::wire::BaseUrl;

pub use crate::config::public_origin;

impl<S> FromRequestParts<S> for BaseUrl
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let settings = AppState::from_ref(state).settings;
        if let Some(origin) = &settings.public_origin {
            return Ok(BaseUrl(origin.clone()));
        }
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let scheme = if settings.use_ssl { "https" } else { "http" };
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}

#[cfg(test)]
mod tests {
    use super::public_origin;

    #[test]
    fn public_url_is_reduced_to_its_origin() {
        assert_eq!(
            public_origin("https://sbm.example.org/"),
            "https://sbm.example.org"
        );
        assert_eq!(
            public_origin("https://sbm.example.org/api/v1"),
            "https://sbm.example.org"
        );
        assert_eq!(
            public_origin("https://sbm.example.org/api/v1/subscriptions"),
            "https://sbm.example.org"
        );
    }
}
