//! Integration messages as a consequence: every event written feeds the integration groups whose
//! event types match it (docs/integrations.md), in the change's own transaction.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::events::topic;
use crate::store::events::NewEventRow;
use crate::store::integrations::{self as sql, NewMessage};
use crate::store::{self, Tx};

/// Turns events just written into messages of the groups whose event types match them, in the
/// same transaction; a message's time is its event's.
pub async fn feed(
    tx: &mut Tx,
    events: &[NewEventRow],
    occurred_at: DateTime<Utc>,
) -> store::Result<()> {
    let topics = sql::all_topics(tx.conn()).await?;
    if topics.is_empty() {
        return Ok(());
    }
    let mut messages = Vec::new();
    for event in events {
        let mut groups: Vec<&str> = topics
            .iter()
            .filter(|(_, prefix)| topic::matches(prefix, event.event_type))
            .map(|(group, _)| group.as_str())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        for group in groups {
            messages.push(NewMessage {
                group: group.to_string(),
                event_id: Some(event.event_id),
                data: event_message_data(event),
                manual_created_by: None,
            });
        }
    }
    if !messages.is_empty() {
        sql::insert_messages(tx.conn(), &messages, occurred_at).await?;
    }
    Ok(())
}

/// The data of an event's message: the event as callbacks get it, less the envelope's id and
/// timestamp (the message has its own id and time).
fn event_message_data(event: &NewEventRow) -> Value {
    json!({
        "event_id": event.event_id,
        "type": event.event_type,
        "object": {"type": event.object_type, "id": event.object_id},
        "sequence": event.sequence,
        "data": event.data,
    })
}
