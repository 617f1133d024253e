//! The bodies of fetched and pushed batches: Haplo's JSON, NDJSON and CSV. Pure: a batch is
//! formatted from the messages' stored data alone.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::events::timestamp;

/// A message as it goes out.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub data: Value,
}

/// `{"id", "datetime", …data}`: the data's fields merged in beside the id and time (a
/// non-object data goes under `data`).
pub fn flatten(message: &OutgoingMessage) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(message.id));
    out.insert("datetime".into(), json!(timestamp(message.created_at)));
    match &message.data {
        Value::Object(fields) => {
            for (key, value) in fields {
                if key != "id" && key != "datetime" {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        other => {
            out.insert("data".into(), other.clone());
        }
    }
    out
}

/// Haplo's default format: `{"version": 0, "token", "messages": [...]}`.
pub fn json_batch(token: &str, messages: &[OutgoingMessage]) -> Value {
    json!({
        "version": 0,
        "token": token,
        "messages": messages.iter().map(|m| Value::Object(flatten(m))).collect::<Vec<_>>(),
    })
}

/// One message object per line, each line ending in `\n`.
pub fn ndjson(messages: &[OutgoingMessage]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(&Value::Object(flatten(m)).to_string());
        out.push('\n');
    }
    out
}

/// A header row `id,datetime,<data keys in order of first appearance>`, then one row per
/// message: text as it is, other values (null too) as compact JSON, missing keys empty. RFC 4180 quoting, CRLF line
/// ends. Written here rather than with the `csv` crate: quoting one cell is all it takes.
pub fn csv(messages: &[OutgoingMessage]) -> String {
    let rows: Vec<Map<String, Value>> = messages.iter().map(flatten).collect();
    let mut columns: Vec<String> = vec!["id".into(), "datetime".into()];
    for row in &rows {
        for key in row.keys() {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let mut out = String::new();
    push_row(&mut out, columns.iter().map(String::as_str));
    for row in &rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match row.get(c) {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            })
            .collect();
        push_row(&mut out, cells.iter().map(String::as_str));
    }
    out
}

fn push_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if cell.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push_str("\r\n");
}

/// The body and content type of a pushed batch in `format` (`json`, `ndjson` or `csv`).
pub fn push_body(
    format: &str,
    token: &str,
    messages: &[OutgoingMessage],
) -> (String, &'static str) {
    match format {
        "ndjson" => (ndjson(messages), "application/x-ndjson"),
        "csv" => (csv(messages), "text/csv; charset=utf-8"),
        _ => (json_batch(token, messages).to_string(), "application/json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64, data: Value) -> OutgoingMessage {
        OutgoingMessage {
            id,
            created_at: "2026-11-24T10:00:00Z".parse().unwrap(),
            data,
        }
    }

    #[test]
    fn data_fields_are_merged_beside_id_and_datetime() {
        let m = message(7, json!({"type": "subscription.created", "id": "shadowed"}));
        let flat = Value::Object(flatten(&m));
        assert_eq!(
            flat,
            json!({"id": 7, "datetime": "2026-11-24T10:00:00.000000Z", "type": "subscription.created"})
        );
        let scalar = Value::Object(flatten(&message(8, json!(3))));
        assert_eq!(scalar["data"], json!(3));
    }

    #[test]
    fn json_batches_have_haplos_shape() {
        let body = json_batch("tok", &[message(1, json!({"a": 1}))]);
        assert_eq!(body["version"], 0);
        assert_eq!(body["token"], "tok");
        assert_eq!(body["messages"][0]["a"], 1);
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let text = ndjson(&[message(1, json!({"a": 1})), message(2, json!({"b": "x"}))]);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["b"], "x");
        assert!(text.ends_with('\n'));
        assert_eq!(ndjson(&[]), "");
    }

    #[test]
    fn csv_has_a_header_of_every_key_and_quotes_as_rfc_4180() {
        let text = csv(&[
            message(1, json!({"name": "a, \"b\"", "n": 2})),
            message(
                2,
                json!({"object": {"type": "x"}, "note": "two\nlines", "n": null}),
            ),
        ]);
        let expected = "id,datetime,n,name,note,object\r\n\
            1,2026-11-24T10:00:00.000000Z,2,\"a, \"\"b\"\"\",,\r\n\
            2,2026-11-24T10:00:00.000000Z,null,,\"two\nlines\",\"{\"\"type\"\":\"\"x\"\"}\"\r\n";
        assert_eq!(text, expected);
        assert_eq!(csv(&[]), "id,datetime\r\n");
    }
}
