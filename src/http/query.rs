//! Query strings: pagination (`limit`/`offset`, DRF's LimitOffsetPagination) and list filters.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::error::ApiError;
use super::links::BaseUrl;
use crate::store::filter::{Condition, Op, Value};
use crate::store::{Page, Slice};
use crate::validation::FieldErrors;

/// The query string's parameters, in order.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("Malformed query string: {e}")))?;
        crate::validation::refuse_nul_pairs(&pairs).map_err(ApiError::Invalid)?;
        Ok(Params(pairs))
    }
}

/// The largest `offset` a list accepts: no list holds that many rows, and links computed from
/// it cannot overflow.
pub const MAX_OFFSET: i64 = i32::MAX as i64;

/// Parses a boolean as Python clients send it (`True`), as well as `true` and `1`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "True" | "true" | "1" | "TRUE" => Some(true),
        "False" | "false" | "0" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Parses an ISO-8601 date-time (a bare date means its midnight, UTC).
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc())
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn non_negative(&self, name: &str, errors: &mut FieldErrors) -> Option<i64> {
        let raw = self.get(name)?;
        match raw.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                errors.add(name, "Enter a whole number, 0 or more.");
                None
            }
        }
    }

    /// The page asked for. An absent or zero `limit` means the default page size; a larger one
    /// than allowed is reduced to the maximum.
    pub fn slice(&self, default_limit: i64, max_limit: i64) -> Result<Slice, FieldErrors> {
        let mut errors = FieldErrors::new();
        let limit = match self.non_negative("limit", &mut errors) {
            None | Some(0) => default_limit,
            Some(n) => n.min(max_limit),
        };
        let offset = self.non_negative("offset", &mut errors).unwrap_or(0);
        if offset > MAX_OFFSET {
            errors.add(
                "offset",
                format!("Ensure this value is less than or equal to {MAX_OFFSET}."),
            );
        }
        errors.into_result().map(|()| Slice { limit, offset })
    }
}

/// Turns the filter parameters of a list endpoint into SQL conditions, collecting errors.
pub struct Filters<'a> {
    params: &'a Params,
    pub conditions: Vec<Condition>,
    errors: FieldErrors,
}

impl<'a> Filters<'a> {
    pub fn new(params: &'a Params) -> Self {
        Filters {
            params,
            conditions: Vec::new(),
            errors: FieldErrors::new(),
        }
    }

    pub fn text(mut self, param: &str, column: &'static str) -> Self {
        if let Some(v) = self.params.get(param) {
            self.conditions
                .push(Condition::eq(column, Value::Text(v.to_string())));
        }
        self
    }

    pub fn integer(mut self, param: &str, column: &'static str) -> Self {
        if let Some(v) = self.params.get(param) {
            match v.trim().parse() {
                Ok(n) => self.conditions.push(Condition::eq(column, Value::Int(n))),
                Err(_) => self.errors.add(param, "Enter a number."),
            }
        }
        self
    }

    pub fn boolean(mut self, param: &str, column: &'static str) -> Self {
        if let Some(v) = self.params.get(param) {
            match parse_bool(v) {
                Some(b) => self.conditions.push(Condition::eq(column, Value::Bool(b))),
                None => self
                    .errors
                    .add(param, "Select a valid choice: True or False."),
            }
        }
        self
    }

    pub fn time(mut self, param: &str, column: &'static str, op: Op) -> Self {
        if let Some(v) = self.params.get(param) {
            match parse_time(v) {
                Some(t) => self.conditions.push(Condition {
                    column,
                    op,
                    value: Value::Time(t),
                }),
                None => self.errors.add(param, "Enter a valid date/time."),
            }
        }
        self
    }

    pub fn finish(self) -> Result<Vec<Condition>, ApiError> {
        self.errors.into_result().map_err(ApiError::Invalid)?;
        Ok(self.conditions)
    }
}

/// DRF's pagination envelope, with absolute `next`/`previous` links.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paginated<T> {
    pub count: i64,
    #[schema(required = true)]
    pub next: Option<String>,
    #[schema(required = true)]
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// What a list handler needs to build its links: the page asked for and the request's URL.
pub struct ListRequest {
    pub params: Params,
    pub slice: Slice,
    base: BaseUrl,
    path: String,
}

impl<S> FromRequestParts<S> for ListRequest
where
    S: Send + Sync,
    super::AppState: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = Params::from_request_parts(parts, state).await?;
        let base = BaseUrl::from_request_parts(parts, state).await?;
        let settings = <super::AppState as axum::extract::FromRef<S>>::from_ref(state).settings;
        let slice = params.slice(settings.page_size, settings.max_page_size)?;
        // The trailing slash was trimmed before routing; links carry it, as DRF's did.
        let path = format!("{}/", parts.uri.path().trim_end_matches('/'));
        Ok(ListRequest {
            params,
            slice,
            base,
            path,
        })
    }
}

impl ListRequest {
    fn link(&self, offset: Option<i64>) -> String {
        let mut pairs: Vec<(String, String)> = self
            .params
            .0
            .iter()
            .filter(|(k, _)| k != "limit" && k != "offset")
            .cloned()
            .collect();
        pairs.push(("limit".into(), self.slice.limit.to_string()));
        if let Some(offset) = offset {
            pairs.push(("offset".into(), offset.to_string()));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}?{}", self.base.url(&self.path), query)
    }

    /// Wraps a page of rows in the envelope, mapping each row to its wire form.
    pub fn respond<R, T>(&self, page: Page<R>, to_wire: impl Fn(R) -> T) -> Paginated<T> {
        let Slice { limit, offset } = self.slice;
        let next = offset
            .checked_add(limit)
            .filter(|end| *end < page.count)
            .map(|end| self.link(Some(end)));
        let previous = (offset > 0).then(|| {
            let back = offset.saturating_sub(limit);
            self.link((back > 0).then_some(back))
        });
        Paginated {
            count: page.count,
            next,
            previous,
            results: page.rows.into_iter().map(to_wire).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn slices_default_clamp_and_refuse_garbage() {
        assert_eq!(params(&[]).slice(100, 1000).unwrap().limit, 100);
        assert_eq!(
            params(&[("limit", "5000")]).slice(100, 1000).unwrap().limit,
            1000
        );
        assert_eq!(
            params(&[("limit", "0")]).slice(100, 1000).unwrap().limit,
            100
        );
        assert_eq!(
            params(&[("offset", "7")]).slice(100, 1000).unwrap().offset,
            7
        );
        assert!(params(&[("limit", "abc")]).slice(100, 1000).is_err());
        assert!(params(&[("offset", "-1")]).slice(100, 1000).is_err());
        assert!(params(&[("offset", "9223372036854775807")])
            .slice(100, 1000)
            .is_err());
        assert_eq!(
            params(&[("offset", "2147483647")])
                .slice(100, 1000)
                .unwrap()
                .offset,
            MAX_OFFSET
        );
    }

    #[test]
    fn booleans_and_times_parse_like_the_original() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes please"), None);
        assert!(parse_time("2016-02-17T07:59:42.831533+00:00").is_some());
        assert!(parse_time("2016-02-17").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
