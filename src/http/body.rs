//! Request bodies: JSON (as every Seed client sends) or HTML-form encoded (as DRF also
//! accepted), read up to the configured size and turned into one JSON value.

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::limits;
use super::AppState;
use crate::validation::{FieldErrors, NON_FIELD_ERRORS, NUL_MESSAGE};

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
        let value = parse(&content_type, &bytes)?;
        check_storable(&value).map_err(ApiError::Invalid)?;
        Ok(Body(value))
    }
}

pub use crate::validation::MAX_JSON_DEPTH;

/// Refuses what no engine can store or every reader read back: NUL characters in text (which
/// PostgreSQL cannot hold; SQLite would, so both refuse alike) and nesting deeper than
/// [`MAX_JSON_DEPTH`]. Errors are reported under the top-level field they are in.
pub fn check_storable(body: &Value) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    let values = match body {
        Value::Object(fields) => {
            if fields.keys().any(|name| name.contains('\0')) {
                errors.add(NON_FIELD_ERRORS, NUL_MESSAGE);
            }
            fields
                .iter()
                .map(|(name, value)| check_field(name, value, &mut errors))
                .sum()
        }
        other => check_field(NON_FIELD_ERRORS, other, &mut errors),
    };
    if let Some(message) = limits::too_many_values(values) {
        errors.add(NON_FIELD_ERRORS, message);
    }
    errors.into_result()
}

/// Checks one top-level field; returns how many values it holds, itself included.
fn check_field(name: &str, value: &Value, errors: &mut FieldErrors) -> usize {
    // An explicit stack: a hostile body must not be able to exhaust this thread's.
    let mut stack = vec![(value, 2usize)];
    let (mut nul, mut too_deep, mut too_long, mut values) = (false, false, None, 0);
    while let Some((value, depth)) = stack.pop() {
        values += 1;
        match value {
            Value::String(s) => {
                nul |= s.contains('\0');
                too_long = too_long.or_else(|| limits::string_too_long(s));
            }
            Value::Array(items) => {
                too_deep |= depth > MAX_JSON_DEPTH;
                stack.extend(items.iter().map(|v| (v, depth + 1)));
            }
            Value::Object(fields) => {
                too_deep |= depth > MAX_JSON_DEPTH;
                nul |= fields.keys().any(|k| k.contains('\0'));
                stack.extend(fields.values().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    if nul {
        errors.add(name, NUL_MESSAGE);
    }
    if too_deep {
        errors.add(
            name,
            format!("Nested too deeply: a body may have at most {MAX_JSON_DEPTH} levels."),
        );
    }
    if let Some(message) = too_long {
        errors.add(name, message);
    }
    values
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
    if let Some(message) = limits::too_many_form_fields(bytes) {
        return Err(ApiError::BadRequest(message));
    }
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
            } else if limits::missed_deadline(&err) {
                ApiError::BodyTimeout
            } else {
                ApiError::BadRequest(format!("Could not read the request body: {err}"))
            }
        })
}

pub(super) fn parse(content_type: &str, bytes: &[u8]) -> Result<Value, ApiError> {
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
    fn nul_characters_and_deep_nesting_are_refused_under_their_field() {
        let nul = serde_json::json!({"short_name": "a\u{0}b", "metadata": {"k": ["x\u{0}"]}});
        let errors = check_storable(&nul).unwrap_err();
        assert_eq!(errors.messages("short_name"), [NUL_MESSAGE]);
        assert_eq!(errors.messages("metadata"), [NUL_MESSAGE]);
        let mut deep = serde_json::json!(1);
        for _ in 0..MAX_JSON_DEPTH {
            deep = serde_json::json!({ "a": deep });
        }
        // The body's own object is the first level: this metadata makes it one too many.
        assert!(
            check_storable(&serde_json::json!({"metadata": deep.clone()}))
                .unwrap_err()
                .has("metadata")
        );
        let fits = deep["a"].clone();
        assert!(check_storable(&serde_json::json!({"metadata": fits})).is_ok());
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
