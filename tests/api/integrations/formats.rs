//! The push body in each format: json, ndjson, csv.

use super::*;
use crate::on_both_backends;

on_both_backends!(
    a_json_push_body_is_a_fetch_answer,
    an_ndjson_push_body_is_one_object_per_line,
    a_csv_push_body_has_a_header_and_one_row_per_message,
);

// ---- formats ----

/// A send group of `format` with three messages whose data keys appear in the order a, b, c
/// (single letters, so that any store orders them the same way); returns the app, the receiver,
/// and the messages (id, data, created_at) oldest first, after one push.
async fn pushed_in(
    backend: Backend,
    format: &str,
) -> Option<(TestApp, Receiver, Vec<(i64, Value, DateTime<Utc>)>)> {
    let app = spawn_app(backend).await?;
    let receiver = Receiver::start().await;
    let body = merged(
        send_group("warehouse", &receiver.url("/dw")),
        json!({ "format": format }),
    );
    assert_eq!(create_group(&app, body).await["format"], format);
    let data = [
        json!({"a": "Ann, \"the\" first\nline two", "b": 1}),
        json!({"a": "Bob", "c": {"x": [1, 2]}}),
        json!({"b": true, "c": null}),
    ];
    let mut ids = Vec::new();
    for data in &data {
        ids.push(add_message(&app, "warehouse", data.clone()).await);
    }
    let listed = messages(&app, "warehouse", "").await;
    let created: HashMap<i64, DateTime<Utc>> = listed
        .iter()
        .map(|m| (m["id"].as_i64().unwrap(), time(&m["created_at"])))
        .collect();
    push_now(&app, "warehouse").await;
    wait_all_sent(&app, "warehouse").await;
    let expected = ids
        .iter()
        .zip(data)
        .map(|(id, data)| (*id, data, created[id]))
        .collect();
    Some((app, receiver, expected))
}

/// The one delivery of a format test, with its checks common to every format.
fn only_delivery(receiver: &Receiver) -> Received {
    let deliveries = receiver.deliveries_to("/dw");
    assert_eq!(deliveries.len(), 1, "one batch");
    let delivery = deliveries.into_iter().next().unwrap();
    assert!(
        delivery
            .header("idempotency-key")
            .is_some_and(|k| !k.is_empty()),
        "{:?}",
        delivery.headers
    );
    assert_eq!(
        delivery.header("authorization"),
        None,
        "no auth_header, no Authorization"
    );
    delivery
}

#[track_caller]
fn assert_objects(objects: &[Value], expected: &[(i64, Value, DateTime<Utc>)]) {
    assert_eq!(objects.len(), expected.len(), "{objects:?}");
    for (object, (id, data, created_at)) in objects.iter().zip(expected) {
        assert_message_shape(object, *id, data);
        assert_eq!(time(&object["datetime"]), *created_at, "{object}");
    }
}

async fn a_json_push_body_is_a_fetch_answer(backend: Backend) {
    let Some((_app, receiver, expected)) = pushed_in(backend, "json").await else {
        return;
    };
    let delivery = only_delivery(&receiver);
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    assert_eq!(delivery.json["version"], 0, "{}", delivery.text);
    assert_eq!(
        delivery.json["token"].as_str(),
        delivery.header("idempotency-key")
    );
    assert_objects(&json_batch(&delivery), &expected);
}

async fn an_ndjson_push_body_is_one_object_per_line(backend: Backend) {
    let Some((_app, receiver, expected)) = pushed_in(backend, "ndjson").await else {
        return;
    };
    let delivery = only_delivery(&receiver);
    assert_eq!(
        delivery.header("content-type"),
        Some("application/x-ndjson")
    );
    let text = delivery.text.strip_suffix('\n').unwrap_or(&delivery.text);
    let objects: Vec<Value> = text
        .split('\n')
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a JSON object per line: {line:?}: {e}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect();
    assert_objects(&objects, &expected);
}

async fn a_csv_push_body_has_a_header_and_one_row_per_message(backend: Backend) {
    let Some((_app, receiver, expected)) = pushed_in(backend, "csv").await else {
        return;
    };
    let delivery = only_delivery(&receiver);
    assert_eq!(
        delivery.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let rows = parse_csv(&delivery.text);
    assert_eq!(rows.len(), 4, "a header and 3 rows: {:?}", delivery.text);
    assert_eq!(rows[0], ["id", "datetime", "a", "b", "c"]);
    let cells = [
        ["Ann, \"the\" first\nline two", "1", ""],
        ["Bob", "", "{\"x\":[1,2]}"],
        ["", "true", "null"],
    ];
    for ((row, (id, _, created_at)), cells) in rows[1..].iter().zip(&expected).zip(cells) {
        assert_eq!(row.len(), 5, "{row:?}");
        assert_eq!(row[0], id.to_string());
        assert_eq!(time(&json!(row[1])), *created_at, "{row:?}");
        assert_eq!(row[2..], cells, "{:?}", delivery.text);
    }
}
