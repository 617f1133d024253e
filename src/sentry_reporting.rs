//! Errors and panics to Sentry, when `STAGE_BASED_MESSAGING_SENTRY_DSN` (the original's
//! setting) or `SENTRY_DSN` is set: `error!` events become Sentry events with the fields of the
//! spans they happened in (the request's method and URI, the job's id and kind), `warn!` and
//! `info!` become breadcrumbs, and panics are reported by sentry's panic integration. Every
//! event passes [`scrub`] first: no token, secret or auth header leaves the process.

use std::sync::Arc;

use serde_json::Value;

/// The DSN from the environment, if one is set.
pub fn dsn_from_env() -> Option<String> {
    ["STAGE_BASED_MESSAGING_SENTRY_DSN", "SENTRY_DSN"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|dsn| dsn.trim().to_string())
        .find(|dsn| !dsn.is_empty())
}

/// Starts the Sentry client; events are sent until the guard is dropped (which flushes).
pub fn init(dsn: &str) -> anyhow::Result<sentry::ClientInitGuard> {
    let dsn = dsn
        .parse()
        .map_err(|err| anyhow::anyhow!("STAGE_BASED_MESSAGING_SENTRY_DSN: {err}"))?;
    let options = sentry::ClientOptions {
        dsn: Some(dsn),
        release: sentry::release_name!(),
        send_default_pii: false,
        before_send: Some(Arc::new(|event| Some(scrub(event)))),
        before_breadcrumb: Some(Arc::new(|crumb| Some(scrub_breadcrumb(crumb)))),
        ..Default::default()
    };
    Ok(sentry::init(options))
}

/// The tracing layer that turns events into Sentry events and breadcrumbs.
pub fn layer<S>() -> sentry::integrations::tracing::SentryLayer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    sentry::integrations::tracing::layer().enable_span_attributes()
}

const FILTERED: &str = "[Filtered]";

/// Whether a field of this name holds something secret.
fn secret_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "authorization",
        "auth_header",
        "api_key",
        "apikey",
        "cookie",
        "dsn",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// A text with credentials in it replaced: `Token …`, `Bearer …`, `Basic …` and the word after
/// them, sealed values (`sbm:v1:…`), `whsec_…` secrets, and any run of 32 or more token
/// characters (sbm's API tokens and batch tokens are such runs).
pub fn scrub_text(text: &str) -> String {
    let mut out = Vec::new();
    let mut hide_next = false;
    for word in text.split(' ') {
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        let shown = if hide_next && !bare.is_empty() {
            hide_next = false;
            FILTERED.to_string()
        } else if bare.starts_with("sbm:v1:") || word.contains("whsec_") || word.contains("sbm:v1:")
        {
            FILTERED.to_string()
        } else {
            hide_long_runs(word)
        };
        if ["token", "bearer", "basic"].contains(&bare.to_ascii_lowercase().as_str()) {
            hide_next = true;
        }
        out.push(shown);
    }
    out.join(" ")
}

fn hide_long_runs(word: &str) -> String {
    // A UUID's groups, module paths and words are short; tokens are long and have digits.
    fn flush(run: &mut String, out: &mut String) {
        let uuid = uuid::Uuid::try_parse(run).is_ok();
        if run.len() >= 32 && !uuid && run.chars().any(|c| c.is_ascii_digit()) {
            out.push_str(FILTERED);
        } else {
            out.push_str(run);
        }
        run.clear();
    }
    let mut out = String::new();
    let mut run = String::new();
    for c in word.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Walks a JSON value: secret-named fields are replaced, every text scrubbed; stack frames'
/// names are kept (they hold no data).
fn scrub_value(value: &mut Value) {
    match value {
        Value::String(text) => *text = scrub_text(text),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if secret_key(name) && !field.is_null() {
                    *field = Value::String(FILTERED.into());
                } else if !["function", "module", "filename", "abs_path", "package"]
                    .contains(&name.as_str())
                {
                    scrub_value(field);
                }
            }
        }
        _ => {}
    }
}

fn scrub_map(map: &mut std::collections::BTreeMap<String, Value>) {
    for (name, field) in map.iter_mut() {
        if secret_key(name) {
            *field = Value::String(FILTERED.into());
        } else {
            scrub_value(field);
        }
    }
}

fn scrub_string(text: &mut String) {
    *text = scrub_text(text);
}

/// The event with every token, secret and auth header taken out (`before_send`): messages,
/// exception values, extra data, tags, contexts, breadcrumbs and request data. Stack frames
/// are left as they are (function and file names hold no data).
pub fn scrub(mut event: sentry::protocol::Event<'static>) -> sentry::protocol::Event<'static> {
    use sentry::protocol::Context;
    if let Some(message) = event.message.as_mut() {
        scrub_string(message);
    }
    if let Some(entry) = event.logentry.as_mut() {
        scrub_string(&mut entry.message);
        entry.params.iter_mut().for_each(scrub_value);
    }
    for exception in event.exception.values.iter_mut() {
        if let Some(value) = exception.value.as_mut() {
            scrub_string(value);
        }
    }
    scrub_map(&mut event.extra);
    for (name, tag) in event.tags.iter_mut() {
        *tag = if secret_key(name) {
            FILTERED.into()
        } else {
            scrub_text(tag)
        };
    }
    for context in event.contexts.values_mut() {
        if let Context::Other(map) = context {
            scrub_map(map);
        }
    }
    let crumbs = std::mem::take(&mut event.breadcrumbs.values);
    event.breadcrumbs.values = crumbs.into_iter().map(scrub_breadcrumb).collect();
    if let Some(request) = event.request.as_mut() {
        request.cookies = None;
        request.headers.retain(|name, _| !secret_key(name));
        request.headers.values_mut().for_each(scrub_string);
        if let Some(query) = request.query_string.as_mut() {
            scrub_string(query);
        }
        request.data = None;
    }
    if let Some(culprit) = event.culprit.as_mut() {
        scrub_string(culprit);
    }
    event.user = None;
    event
}

fn scrub_breadcrumb(mut crumb: sentry::protocol::Breadcrumb) -> sentry::protocol::Breadcrumb {
    if let Some(message) = crumb.message.as_mut() {
        scrub_string(message);
    }
    scrub_map(&mut crumb.data);
    crumb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_text_are_filtered_and_the_rest_kept() {
        let token = "0123456789abcdef0123456789abcdef01234567";
        let cases = [
            (
                format!("Invalid token {token}"),
                "Invalid token [Filtered]".to_string(),
            ),
            (
                "Authorization: Bearer s3cret".into(),
                "Authorization: Bearer [Filtered]".into(),
            ),
            (
                "header Basic dXNlcjpwYXNz.".into(),
                "header Basic [Filtered]".into(),
            ),
            (
                format!("job 42 failed: {token}"),
                "job 42 failed: [Filtered]".into(),
            ),
            (
                "secret whsec_c2VjcmV0 here".into(),
                "secret [Filtered] here".into(),
            ),
            ("stored sbm:v1:AAAA".into(), "stored [Filtered]".into()),
            (
                "callback 6f1c2e8a-1b2c-4d5e-8f90-123456789abc failed".into(),
                "callback 6f1c2e8a-1b2c-4d5e-8f90-123456789abc failed".into(),
            ),
            (
                "job failed; will retry".into(),
                "job failed; will retry".into(),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(scrub_text(&text), expected, "{text}");
        }
    }

    #[test]
    fn secret_named_fields_are_filtered_in_events() {
        let mut event = sentry::protocol::Event {
            message: Some("Token abc123 refused".into()),
            ..Default::default()
        };
        event.extra.insert("auth_header".into(), "Bearer x".into());
        event.extra.insert("job".into(), 42.into());
        event.tags.insert("secret_key".into(), "k".into());
        let value = serde_json::to_value(scrub(event)).unwrap();
        assert_eq!(value["message"], "Token [Filtered] refused");
        assert_eq!(value["extra"]["auth_header"], FILTERED);
        assert_eq!(value["extra"]["job"], 42);
        assert_eq!(value["tags"]["secret_key"], FILTERED);
    }
}
