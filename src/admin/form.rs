//! Posted forms. Every state-changing admin request is a POST whose form carries the session's
//! CSRF token in the field `csrf`; [`Posted`] refuses one without it (403) before any handler
//! runs. The session cookie is SameSite=Strict as well, but the token does not rely on that.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};

use super::error::{AdminError, AdminResult};
pub use super::staff::{csrf_field, CSRF_FIELD};
use super::staff::{session_cookie, Staff};
use crate::auth::session::csrf_matches;
use crate::http::AppState;

/// The fields of a urlencoded form, in order.
#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> AdminResult<Self> {
        if let Some(message) = crate::http::limits::too_many_form_fields(body) {
            return Err(AdminError::BadRequest(message));
        }
        serde_urlencoded::from_bytes(body)
            .map(FormData)
            .map_err(|_| AdminError::BadRequest("The form could not be read.".into()))
    }

    /// The first value of the field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value trimmed, `None` when absent or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// Refuses a form whose CSRF token is not the session's.
pub fn check_csrf(staff: &Staff, presented: Option<&str>) -> AdminResult<()> {
    if csrf_matches(&staff.csrf_token, presented) {
        Ok(())
    } else {
        Err(AdminError::Csrf)
    }
}

async fn body_bytes(request: Request, state: &AppState) -> AdminResult<Bytes> {
    let limit = state.settings.max_body_bytes;
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| AdminError::BadRequest("The form is too large.".into()))
}

/// A form posted without a session (the sign-in form).
pub struct RawForm(pub FormData);

impl FromRequest<AppState> for RawForm {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &AppState) -> AdminResult<Self> {
        let bytes = body_bytes(request, state).await?;
        Ok(RawForm(FormData::parse(&bytes)?))
    }
}

/// A form posted by a signed-in admin, its CSRF token checked.
pub struct Posted {
    pub staff: Staff,
    pub form: FormData,
    pub session_id: Option<String>,
}

impl FromRequest<AppState> for Posted {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &AppState) -> AdminResult<Self> {
        let (mut parts, body) = request.into_parts();
        let staff = Staff::from_request_parts(&mut parts, state).await?;
        let session_id = session_cookie(&parts);
        let bytes = body_bytes(Request::from_parts(parts, body), state).await?;
        let form = FormData::parse(&bytes)?;
        check_csrf(&staff, form.get(CSRF_FIELD))?;
        Ok(Posted {
            staff,
            form,
            session_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff() -> Staff {
        Staff {
            user_id: 1,
            email: "a@b.c".into(),
            csrf_token: "t0ken".into(),
        }
    }

    #[test]
    fn forms_are_read_in_order_and_trimmed() {
        let form = FormData::parse(b"a=1&b=+two+&a=3&c=").unwrap();
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.text("b").as_deref(), Some("two"));
        assert_eq!(form.text("c"), None);
        assert_eq!(form.get("d"), None);
    }

    #[test]
    fn a_form_without_the_sessions_token_is_refused() {
        assert!(check_csrf(&staff(), Some("t0ken")).is_ok());
        assert!(matches!(check_csrf(&staff(), None), Err(AdminError::Csrf)));
        assert!(matches!(
            check_csrf(&staff(), Some("other")),
            Err(AdminError::Csrf)
        ));
    }

    #[test]
    fn the_hidden_field_carries_the_token_escaped() {
        let mut s = staff();
        s.csrf_token = "a\"b".into();
        let markup = csrf_field(&s).into_string();
        assert!(markup.contains("value=\"a&quot;b\""), "{markup}");
    }
}
