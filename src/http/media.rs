//! Headers on every uploaded file served from the API's origin (`/media/…` and a message's raw
//! content): files are uploaded by users and served without authentication, so a browser must
//! never run one as a page of this origin (where step 9's admin cookies live).

use axum::http::header::{self, HeaderMap, HeaderValue};

/// No scripts, plugins or frames; the response is its own sandboxed origin.
const SANDBOX: &str = "sandbox; default-src 'none'; media-src 'self'; img-src 'self'";

/// Adds the headers to a served file: never sniffed, sandboxed, and downloaded rather than
/// shown unless it is audio or an image (what a Message Sender or an `<audio>` element plays).
pub fn guard<B>(mut response: axum::http::Response<B>) -> axum::http::Response<B> {
    protect(response.headers_mut());
    response
}

pub fn protect(headers: &mut HeaderMap) {
    let playable = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| crate::content::media::is_acceptable(&t.trim().to_ascii_lowercase()));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX),
    );
    if !playable {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
}
