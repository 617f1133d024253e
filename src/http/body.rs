//! Request bodies: JSON (as every Seed client sends) or HTML-form encoded (as DRF also
//! accepted), read up to the configured size and turned into one JSON value.

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::AppState;

/// The request body as JSON. An empty body reads as `{}`, as in DRF.
pub struct Body(pub Value);

impl<S> FromRequest<S> for Body
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = AppState::from_ref(state).settings.max_body_bytes;
        let content_type = content_type(&req);
        let bytes = read_limited(req, limit).await?;
        parse(&content_type, &bytes).map(Body)
    }
}

/// The request's Content-Type header, or "" without one.
pub fn content_type(req: &Request) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The media type without parameters, lower-cased: `application/json; charset=utf-8` →
/// `application/json`.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub fn parse_form(bytes: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(bytes)
        .map_err(|e| ApiError::BadRequest(format!("Form parse error - {e}")))
}

pub async fn read_limited(req: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|err| {
            let too_large = std::error::Error::source(&err)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadRequest(format!("Could not read the request body: {err}"))
            }
        })
}

fn parse(content_type: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let essence = essence(content_type);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match essence.as_str() {
        "application/json" | "" => parse_json(bytes),
        t if t.ends_with("+json") => parse_json(bytes),
        "application/x-www-form-urlencoded" => Ok(Value::Object(
            parse_form(bytes)?
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )),
        _ => Err(ApiError::UnsupportedMediaType(content_type.to_string())),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_and_empty_bodies_parse() {
        assert_eq!(
            parse("application/json;charset=utf-8", br#"{"a": 1}"#).unwrap(),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            parse("application/x-www-form-urlencoded", b"a=1&b=x").unwrap(),
            serde_json::json!({"a": "1", "b": "x"})
        );
        assert_eq!(
            parse("application/json", b"").unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn malformed_json_and_other_types_are_refused() {
        assert!(
            matches!(parse("application/json", b"{"), Err(ApiError::BadRequest(m)) if m.starts_with("JSON parse error"))
        );
        assert!(matches!(
            parse("text/plain", b"hi"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}
