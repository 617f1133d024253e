//! Bounds on what one request may make the server hold: the query string, the declared body
//! size, how long the body may take to arrive, and the shape of what it carries (checked where
//! bodies are read: `body.rs`, `binary_content.rs`, the admin forms).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::{Instant, Sleep};

use super::ApiError;

/// The longest query string a request may carry. Every filter sbm reads fits in a few hundred
/// bytes; 8 KiB is what common proxies allow for a whole request line.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

pub use crate::validation::MAX_BODY_VALUES;

/// The longest string any one field may hold, in characters (a message's text is far shorter).
pub const MAX_STRING_CHARS: usize = 100_000;

/// The most parts a multipart upload may have: the file and a few fields at most.
pub const MAX_MULTIPART_PARTS: usize = 16;

/// Refuses a query string over [`MAX_QUERY_BYTES`] with 414, before routing.
pub async fn refuse_long_query(req: Request, next: Next) -> Response {
    match req.uri().query() {
        Some(query) if query.len() > MAX_QUERY_BYTES => {
            ApiError::UriTooLong(MAX_QUERY_BYTES).into_response()
        }
        _ => next.run(req).await,
    }
}

/// Refuses a body whose declared `Content-Length` is over `limit` with 413 before reading a
/// byte of it (a client that sent `Expect: 100-continue` is never asked for it). Bodies without
/// a length are cut off at the limit while being read.
pub async fn refuse_declared_oversize(
    State(limit): State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => ApiError::PayloadTooLarge(limit).into_response(),
        _ => next.run(req).await,
    }
}

/// Gives every request body a deadline counted from the request's arrival: a client that
/// trickles its body (a byte now and then, each resetting an idle timer) is cut off with 408
/// when the deadline passes. The handler itself is not timed: only the reading of the body.
pub async fn body_deadline(State(within): State<Duration>, req: Request, next: Next) -> Response {
    let deadline = Instant::now() + within;
    next.run(req.map(|body| Body::new(DeadlineBody::new(body, deadline))))
        .await
}

/// The error a body read past its deadline fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyDeadlinePassed;

/// Whether `err` (or what caused it) is a body that missed its deadline.
pub fn missed_deadline(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<BodyDeadlinePassed>() {
            return true;
        }
        current = err.source();
    }
    false
}

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: Instant) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.inner.is_end_stream() {
            return Pin::new(&mut this.inner).poll_frame(cx);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyDeadlinePassed))));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The message for a body of more than [`MAX_BODY_VALUES`] values.
pub fn too_many_values(count: usize) -> Option<String> {
    (count > MAX_BODY_VALUES)
        .then(|| format!("The request body holds more than {MAX_BODY_VALUES} values."))
}

/// The message for a urlencoded form of more than [`MAX_BODY_VALUES`] fields, counted before
/// parsing, so that a body of a million `&` costs no million allocations.
pub fn too_many_form_fields(body: &[u8]) -> Option<String> {
    too_many_values(body.split(|b| *b == b'&').count())
}

/// DRF's `max_length` message, for a string over [`MAX_STRING_CHARS`].
pub fn string_too_long(s: &str) -> Option<String> {
    // Bytes bound characters from above: most strings are decided without counting.
    (s.len() > MAX_STRING_CHARS && s.chars().count() > MAX_STRING_CHARS)
        .then(|| format!("Ensure this field has no more than {MAX_STRING_CHARS} characters."))
}
