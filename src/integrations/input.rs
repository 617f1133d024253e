//! Reading an integration group from a JSON body (the API's POST and PATCH, the CLI's create):
//! every error of the body is reported at once, DRF-style.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::content::cron::{self, CronField};
use crate::store::integrations::GroupRow;
use crate::validation::input::{field, set, Input, Mode, Text};
use crate::validation::FieldErrors;

fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// An optional whole number from 1 to `max`.
fn bounded(input: &mut Input<'_>, name: &str, max: i32) -> Option<i32> {
    let value = input.integer(name, false, Some(1))?;
    match i32::try_from(value) {
        Ok(value) if value <= max => Some(value),
        _ => {
            input.error(
                name,
                format!("Ensure this value is less than or equal to {max}."),
            );
            None
        }
    }
}

/// Reads a group from a request body onto `group` (a new group's defaults, or the stored
/// group for a PATCH). Returns its topics: those of the body's `event_types`, or else
/// `current_topics`. Every error of the body is reported at once.
pub fn read_group(
    body: &Value,
    mode: Mode,
    group: &mut GroupRow,
    current_topics: &[String],
) -> Result<Vec<(String, String)>, FieldErrors> {
    let mut input = Input::new(body, mode)?;
    read_name(&mut input, body, mode, group);
    read_delivery(&mut input, group);
    read_cron(&mut input, group);
    read_batching(&mut input, group);
    let topics = read_topics(&mut input, body, current_topics);
    if group.method == "send" && group.target_url.is_none() {
        input.error("target_url", "A send group needs a target URL.");
    }
    input.finish()?;
    Ok(topics)
}

/// A new group's name; a PATCH may repeat the name but not change it.
fn read_name(input: &mut Input<'_>, body: &Value, mode: Mode, group: &mut GroupRow) {
    if mode == Mode::Create {
        if let Some(name) = input.text("name", Text::required().max(64)) {
            if is_name(&name) {
                group.name = name;
            } else {
                input.error(
                    "name",
                    "Use 1 to 64 lower-case letters, digits, '-' and '_'.",
                );
            }
        }
    } else if let Some(name) = field(body, "name").and_then(Value::as_str) {
        if name != group.name {
            input.error("name", "The name of a group cannot change.");
        }
    }
}

/// How the group is delivered: method, title, lease, target, auth header, format.
fn read_delivery(input: &mut Input<'_>, group: &mut GroupRow) {
    set(
        &mut group.method,
        input.choice("method", true, &["poll", "send"]),
    );
    set(
        &mut group.title,
        input.text("title", Text::required().max(200)),
    );
    set(
        &mut group.description,
        input.text("description", Text::optional()),
    );
    set(
        &mut group.lease_seconds,
        bounded(input, "lease_seconds", 86_400),
    );
    if let Some(url) = input.nullable_text("target_url", Text::optional().max(2000)) {
        match url.filter(|u| !u.trim().is_empty()) {
            Some(url) if !is_http_url(url.trim()) => {
                input.error("target_url", "Enter a valid http or https URL.")
            }
            url => group.target_url = url.map(|u| u.trim().to_string()),
        }
    }
    if let Some(auth) = input.nullable_text("auth_header", Text::optional().max(4000)) {
        match auth.filter(|a| !a.trim().is_empty()) {
            Some(text) if super::push::auth_header(&text).is_none() => input.error(
                "auth_header",
                "Not a valid header value (no line breaks or control characters).",
            ),
            auth => group.auth_header = auth,
        }
    }
    set(
        &mut group.format,
        input.choice("format", false, &["json", "ndjson", "csv"]),
    );
}

/// The push schedule's five cron fields.
fn read_cron(input: &mut Input<'_>, group: &mut GroupRow) {
    let cron_rule = Text::optional().not_blank().max(64);
    for (field, slot) in [
        (CronField::Minute, &mut group.minute),
        (CronField::Hour, &mut group.hour),
        (CronField::DayOfWeek, &mut group.day_of_week),
        (CronField::DayOfMonth, &mut group.day_of_month),
        (CronField::MonthOfYear, &mut group.month_of_year),
    ] {
        if let Some(text) = input.text(field.name(), cron_rule) {
            match cron::parse(field, &text) {
                Ok(_) => *slot = text.trim().to_string(),
                Err(message) => input.error(field.name(), message),
            }
        }
    }
}

/// Batch size, whether empty pushes are skipped, and the owning instance.
fn read_batching(input: &mut Input<'_>, group: &mut GroupRow) {
    set(
        &mut group.max_batch_size,
        bounded(input, "max_batch_size", 10_000),
    );
    set(&mut group.skip_empty, input.boolean("skip_empty", false));
    set(
        &mut group.instance,
        input.text("instance", Text::optional().not_blank().max(200)),
    );
}

/// The body's `event_types`, else the group's current topics.
fn read_topics(
    input: &mut Input<'_>,
    body: &Value,
    current_topics: &[String],
) -> Vec<(String, String)> {
    let mut topics = super::parse_topics(current_topics).unwrap_or_default();
    match field(body, "event_types") {
        None => {}
        Some(Value::Array(items)) => {
            let texts: Option<Vec<String>> = items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            match texts.map(|t| super::parse_topics(&t)) {
                Some(Ok(parsed)) => topics = parsed,
                Some(Err(message)) => input.error("event_types", message),
                None => input.error("event_types", "Each event type must be a string."),
            }
        }
        Some(_) => input.error(
            "event_types",
            "Expected a list of event types, such as [\"subscription.*\"].",
        ),
    }
    topics
}

/// A new group before the body is read onto it.
pub fn new_group(instance: &str, now: DateTime<Utc>) -> GroupRow {
    GroupRow {
        name: String::new(),
        method: String::new(),
        title: String::new(),
        description: String::new(),
        lease_seconds: 300,
        target_url: None,
        auth_header: None,
        format: "json".into(),
        minute: "0".into(),
        hour: "2".into(),
        day_of_week: "*".into(),
        day_of_month: "*".into(),
        month_of_year: "*".into(),
        max_batch_size: 100,
        skip_empty: true,
        instance: instance.to_string(),
        next_push_at: None,
        last_push_at: None,
        created_at: now,
        updated_at: now,
    }
}
