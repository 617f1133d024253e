//! Lifecycle events: what the consequences table (`effects`) writes for each change, in the change's own
//! transaction, and how an event looks on the wire (docs/events.md).

pub mod topic;

use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

use crate::store::events::{self as sql, EventRow, NewEventRow};
use crate::store::{self, Tx};

/// An event about to be written: its sequence is taken when it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: &'static str,
    pub object_type: &'static str,
    pub object_id: String,
    pub data: Value,
}

impl Event {
    pub fn new(
        event_type: &'static str,
        object_type: &'static str,
        object_id: impl ToString,
        data: Value,
    ) -> Self {
        Event {
            event_type,
            object_type,
            object_id: object_id.to_string(),
            data,
        }
    }
}

/// Events just written, for what follows from them (integration messages, in `effects`).
#[derive(Debug, Default)]
pub struct Recorded {
    pub rows: Vec<NewEventRow>,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

/// Writes the events in the caller's transaction, each object's numbered on from its last.
/// Only the event rows: what else follows from them is the consequences table's to write.
pub async fn record(tx: &mut Tx, events: Vec<Event>) -> store::Result<Recorded> {
    if events.is_empty() {
        return Ok(Recorded::default());
    }
    let occurred_at = store::now();
    let events = events
        .into_iter()
        .map(|e| (e.event_type, e.object_type, e.object_id, e.data))
        .collect();
    let rows = sql::insert_numbered_events(tx.conn(), events, occurred_at).await?;
    Ok(Recorded { rows, occurred_at })
}

pub use crate::wire::time::timestamp;

/// An event as the API shows it and as callbacks receive it. Its data is written out as it was
/// stored, never parsed on the way.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Envelope<'a> {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub timestamp: String,
    pub object: EnvelopeObject<'a>,
    pub sequence: i64,
    pub data: Data<'a>,
}

/// An event's data as stored, or, for a value nested too deeply for JSON readers (stored before
/// input was bounded), a visible error in its place: one such row must not break a page of
/// events or a batch of deliveries for everyone.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Data<'a> {
    Stored(&'a RawValue),
    SetAside { sbm_error: &'static str },
}

/// Deeper than this, a value is set aside: the envelope and a batch add two levels, and common
/// readers stop at 128 (serde_json) or earlier.
pub const MAX_READABLE_DEPTH: usize = 100;

impl<'a> Data<'a> {
    fn of(raw: &'a RawValue) -> Self {
        if json_depth(raw.get()) <= MAX_READABLE_DEPTH {
            Data::Stored(raw)
        } else {
            Data::SetAside {
                sbm_error:
                    "this event's data is nested too deeply to be read; it is kept as stored",
            }
        }
    }
}

/// How deeply a JSON text nests, by one pass over its bytes (no parse, no recursion).
pub fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvelopeObject<'a> {
    #[serde(rename = "type")]
    pub object_type: &'a str,
    pub id: &'a str,
}

pub fn envelope(row: &EventRow) -> Envelope<'_> {
    envelope_of(
        row.event_id,
        &row.event_type,
        row.occurred_at,
        &row.object_type,
        &row.object_id,
        row.sequence,
        &row.data.0,
    )
}

pub fn envelope_of<'a>(
    id: Uuid,
    event_type: &'a str,
    occurred_at: chrono::DateTime<chrono::Utc>,
    object_type: &'a str,
    object_id: &'a str,
    sequence: i64,
    data: &'a RawValue,
) -> Envelope<'a> {
    Envelope {
        id,
        event_type,
        timestamp: timestamp(occurred_at),
        object: EnvelopeObject {
            object_type,
            id: object_id,
        },
        sequence,
        data: Data::of(data),
    }
}

#[cfg(test)]
mod tests {
    use super::json_depth;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth("1"), 0);
        assert_eq!(json_depth(r#"{"a": [1, {"b": "}}}[[["}]}"#), 3);
        assert_eq!(json_depth(r#"{"a": "\"{{{"}"#), 1);
        assert_eq!(json_depth(&"[".repeat(300)), 300);
    }
}
