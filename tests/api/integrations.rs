//! Integration messages (docs/integrations.md), black-box: groups fed by events or by hand, the
//! poll API (fetch and mark of leased batches, scoped poll tokens), and pushes of batches to a
//! fake receiver in each format, with the integration errors a refused push leaves behind.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use reqwest::Method;
use sbm::store::Db;
use serde_json::{json, Value};

use crate::helpers::{eventually, issue_token, spawn_app, spawn_app_with, Backend, Reply, TestApp};
use crate::hub::time;
use crate::on_both_backends;
use crate::receiver::{Received, Receiver};

on_both_backends!(
    groups_are_created_read_listed_patched_and_deleted,
    bad_group_fields_get_400_naming_the_field_and_write_nothing,
    an_unknown_group_or_message_gets_404_everywhere,
    only_admins_manage_groups,
    events_become_messages_of_the_groups_whose_event_types_match,
    an_admin_adds_a_message_by_hand,
    fetch_and_mark_until_nothing_is_unread_sees_every_message_once,
    a_batch_never_marked_comes_back_after_its_lease,
    a_late_mark_still_marks_its_batch,
    two_concurrent_pollers_never_get_the_same_message,
    a_forged_missing_or_foreign_token_gets_400_and_marks_nothing,
    a_send_group_has_no_poll_api,
    a_scoped_poll_token_works_only_on_its_groups_fetch_and_mark,
    a_push_delivers_every_waiting_message_once_in_batches,
    a_push_can_carry_its_own_auth_header,
    a_failed_push_records_an_error_and_the_next_push_delivers_each_message_once,
    with_skip_empty_nothing_is_sent_when_nothing_waits,
    without_skip_empty_an_empty_batch_is_sent,
    a_json_push_body_is_a_fetch_answer,
    an_ndjson_push_body_is_one_object_per_line,
    a_csv_push_body_has_a_header_and_one_row_per_message,
    a_push_happens_only_on_the_groups_instance,
    an_unsent_message_comes_back_and_its_audit_trail_says_who,
    a_due_scheduled_push_sends_without_being_asked,
    an_unconfirmed_push_is_sent_again_as_the_same_batch_with_the_same_key,
);

// ---- helpers ----

const GROUPS: &str = "/api/v1/integration-groups/";
const ERRORS: &str = "/api/v1/integration-errors/";
/// The email of the admin `spawn_app` issues its token to.
const ADMIN: &str = "admin@example.org";

fn group_path(name: &str) -> String {
    format!("{GROUPS}{name}/")
}

/// `base` with the fields of `extra` set over it.
fn merged(base: Value, extra: Value) -> Value {
    let mut base = base;
    if let (Some(object), Value::Object(extra)) = (base.as_object_mut(), extra) {
        for (key, value) in extra {
            object.insert(key, value);
        }
    }
    base
}

/// `value` without `key`.
fn without(value: &Value, key: &str) -> Value {
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        object.remove(key);
    }
    value
}

fn poll_group(name: &str) -> Value {
    json!({"name": name, "method": "poll", "title": format!("Poll group {name}")})
}

fn send_group(name: &str, target_url: &str) -> Value {
    json!({"name": name, "method": "send", "title": format!("Send group {name}"), "target_url": target_url})
}

async fn create_group(app: &TestApp, body: Value) -> Value {
    app.post(GROUPS, body).await.expect(201).json()
}

async fn get_group(app: &TestApp, name: &str) -> Value {
    app.get(&group_path(name)).await.expect(200).json()
}

/// The items of a list answer, paginated (`{"count", "results"}`) or a plain array.
fn results(list: Value) -> Vec<Value> {
    match list {
        Value::Array(items) => items,
        other => other["results"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("not a list: {other}")),
    }
}

async fn list_groups(app: &TestApp) -> Vec<Value> {
    results(
        app.get(&format!("{GROUPS}?limit=1000"))
            .await
            .expect(200)
            .json(),
    )
}

fn names(groups: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = groups
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Adds a message by hand; returns its id.
async fn add_message(app: &TestApp, group: &str, data: Value) -> i64 {
    app.post(
        &format!("{}messages/", group_path(group)),
        json!({ "data": data }),
    )
    .await
    .expect(201)
    .json()["id"]
        .as_i64()
        .expect("message id")
}

/// Adds `n` messages `{"n": i, "text": "message i"}` by hand; returns their ids in order.
async fn add_messages(app: &TestApp, group: &str, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(add_message(app, group, json!({"n": i, "text": format!("message {i}")})).await);
    }
    ids
}

/// The group's messages as the admin lists them (newest first), with an extra query.
async fn messages(app: &TestApp, group: &str, query: &str) -> Vec<Value> {
    let path = format!("{}messages/?limit=1000&{query}", group_path(group));
    results(app.get(&path).await.expect(200).json())
}

fn ids_of(messages: &[Value]) -> Vec<i64> {
    messages.iter().map(|m| m["id"].as_i64().unwrap()).collect()
}

fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort();
    ids
}

/// Ids of the messages still waiting (`sent_at` null), ascending.
async fn waiting(app: &TestApp, group: &str) -> Vec<i64> {
    sorted(ids_of(&messages(app, group, "sent=false").await))
}

/// Ids of the messages sent, ascending.
async fn sent(app: &TestApp, group: &str) -> Vec<i64> {
    sorted(ids_of(&messages(app, group, "sent=true").await))
}

/// Marks a message unsent.
async fn unsend(app: &TestApp, group: &str, id: i64) {
    let path = format!("{}messages/{id}/unsend/", group_path(group));
    let reply = app.call(Method::POST, &path, None).await;
    assert!(reply.status.is_success(), "{reply:?}");
}

async fn message(app: &TestApp, group: &str, id: i64) -> Value {
    app.get(&format!("{}messages/{id}/", group_path(group)))
        .await
        .expect(200)
        .json()
}

/// Who may call the poll API in a request.
#[derive(Clone, Copy)]
enum Caller<'a> {
    Admin,
    Token(&'a str),
    /// HTTP Basic with this user name and the token as the password.
    Basic(&'a str, &'a str),
}

fn request(app: &TestApp, caller: Caller, method: Method, path: &str) -> reqwest::RequestBuilder {
    let request = app.client.request(method, app.url(path));
    match caller {
        Caller::Admin => request.header("Authorization", format!("Token {}", app.token)),
        Caller::Token(token) => request.header("Authorization", format!("Token {token}")),
        Caller::Basic(user, token) => request.basic_auth(user, Some(token)),
    }
}

fn fetch_path(group: &str) -> String {
    format!("{}poll/fetch", group_path(group))
}

fn mark_path(group: &str) -> String {
    format!("{}poll/mark", group_path(group))
}

fn haplo_fetch_path(group: &str) -> String {
    format!("/api/haplo-integration-messages/poll/{group}/fetch")
}

fn haplo_mark_path(group: &str) -> String {
    format!("/api/haplo-integration-messages/poll/{group}/mark")
}

fn with_limit(path: &str, limit: Option<usize>) -> String {
    match limit {
        Some(limit) => format!("{path}?limit={limit}"),
        None => path.to_string(),
    }
}

/// A fetch (GET) as `caller` at `path`.
async fn fetch_at(app: &TestApp, caller: Caller<'_>, path: &str) -> Reply {
    app.send(request(app, caller, Method::GET, path)).await
}

/// A fetch by the admin with `GET`; the batch.
async fn fetch(app: &TestApp, group: &str, limit: Option<usize>) -> Value {
    fetch_at(app, Caller::Admin, &with_limit(&fetch_path(group), limit))
        .await
        .expect(200)
        .json()
}

/// A fetch by the admin with `POST` (no body), as Haplo clients do; the batch.
async fn fetch_by_post(app: &TestApp, group: &str, limit: Option<usize>) -> Value {
    let path = with_limit(&fetch_path(group), limit);
    app.send(request(app, Caller::Admin, Method::POST, &path))
        .await
        .expect(200)
        .json()
}

fn token_of(batch: &Value) -> String {
    batch["token"]
        .as_str()
        .unwrap_or_else(|| panic!("a batch has a token: {batch}"))
        .to_string()
}

fn batch_ids(batch: &Value) -> Vec<i64> {
    batch["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("a batch has messages: {batch}"))
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

/// The three ways mark takes its token.
#[derive(Clone, Copy, Debug)]
enum Via {
    Query,
    Form,
    Json,
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn mark_at(app: &TestApp, caller: Caller<'_>, path: &str, token: &str, via: Via) -> Reply {
    let request = match via {
        Via::Query => request(
            app,
            caller,
            Method::GET,
            &format!("{path}?token={}", encode(token)),
        ),
        Via::Form => request(app, caller, Method::POST, path).form(&[("token", token)]),
        Via::Json => request(app, caller, Method::POST, path).json(&json!({ "token": token })),
    };
    app.send(request).await
}

/// A mark by the admin with the token in the query; the answer.
async fn mark(app: &TestApp, group: &str, token: &str) -> Value {
    mark_at(app, Caller::Admin, &mark_path(group), token, Via::Query)
        .await
        .expect(200)
        .json()
}

fn counts(mark: &Value) -> (i64, i64) {
    (
        mark["markedCount"]
            .as_i64()
            .unwrap_or_else(|| panic!("markedCount: {mark}")),
        mark["unreadCount"]
            .as_i64()
            .unwrap_or_else(|| panic!("unreadCount: {mark}")),
    )
}

/// A random string shaped like a token.
fn forged_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// "Send outstanding now": 202.
async fn push_now(app: &TestApp, group: &str) {
    app.call(Method::POST, &format!("{}send/", group_path(group)), None)
        .await
        .expect(202);
}

/// Waits until no message of the group is waiting.
async fn wait_all_sent(app: &TestApp, group: &str) {
    eventually(&format!("every message of {group} is sent"), || async {
        waiting(app, group).await.is_empty()
    })
    .await;
}

async fn group_errors(app: &TestApp, group: &str, query: &str) -> Vec<Value> {
    let path = format!("{}errors/?limit=1000&{query}", group_path(group));
    results(app.get(&path).await.expect(200).json())
}

async fn all_errors(app: &TestApp, query: &str) -> Vec<Value> {
    results(
        app.get(&format!("{ERRORS}?limit=1000&{query}"))
            .await
            .expect(200)
            .json(),
    )
}

/// Waits until the group has at least one integration error; returns its errors.
async fn wait_for_error(app: &TestApp, group: &str) -> Vec<Value> {
    eventually(&format!("{group} has an integration error"), || async {
        !group_errors(app, group, "").await.is_empty()
    })
    .await;
    group_errors(app, group, "").await
}

/// A short pause to let anything that should *not* happen show up (jobs are polled every 10 ms
/// and retried within 50 ms by the test worker).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// The messages of a `json` push.
fn json_batch(delivery: &Received) -> Vec<Value> {
    delivery.json["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("a json batch has messages: {}", delivery.text))
        .clone()
}

fn ids_in(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| {
            m["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("message id: {m}"))
        })
        .collect()
}

/// Checks a message as fetched or pushed: exactly `id`, an RFC 3339 UTC `datetime` and the
/// data's fields.
#[track_caller]
fn assert_message_shape(message: &Value, id: i64, data: &Value) {
    assert_eq!(message["id"], id, "{message}");
    let datetime = message["datetime"]
        .as_str()
        .unwrap_or_else(|| panic!("datetime: {message}"));
    assert!(datetime.ends_with('Z'), "UTC datetime: {message}");
    time(&message["datetime"]);
    let expected = merged(
        json!({"id": id, "datetime": message["datetime"].clone()}),
        data.clone(),
    );
    assert_eq!(message, &expected);
}

/// A small RFC 4180 reader: rows of fields, quoted fields with `""` escapes and line breaks,
/// CRLF or LF between records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut started = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                assert!(
                    field.is_empty(),
                    "a quote inside an unquoted field: {text:?}"
                );
                quoted = true;
                started = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                started = false;
            }
            _ => {
                field.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "an unterminated quoted field: {text:?}");
    if started {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Sets the group's next push time directly in the database.
async fn set_next_push_at(app: &TestApp, group: &str, at: DateTime<Utc>) {
    const SQL: &str = "update integration_group set next_push_at = $1 where name = $2";
    let updated = match &app.db {
        Db::Postgres(pool) => sqlx::query(SQL)
            .bind(at)
            .bind(group)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
        Db::Sqlite(pool) => sqlx::query(SQL)
            .bind(at)
            .bind(group)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(updated, 1);
}

// ---- groups ----

async fn groups_are_created_read_listed_patched_and_deleted(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.events.instance_name = "test-instance".into()
    })
    .await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    let before = Utc::now();

    let body = merged(
        poll_group("records"),
        json!({"title": "Records system", "event_types": ["subscription.*", "send.succeeded"]}),
    );
    let poll = create_group(&app, body).await;
    assert_eq!(poll["name"], "records");
    assert_eq!(poll["method"], "poll");
    assert_eq!(poll["title"], "Records system");
    assert_eq!(poll["description"], "");
    // The doc does not say in which order the list comes back.
    let mut event_types: Vec<&str> = poll["event_types"]
        .as_array()
        .unwrap_or_else(|| panic!("event_types: {poll}"))
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    event_types.sort();
    assert_eq!(event_types, ["send.succeeded", "subscription.*"]);
    assert_eq!(poll["lease_seconds"], 300);
    assert_eq!(poll["format"], "json");
    for (field, default) in [
        ("minute", "0"),
        ("hour", "2"),
        ("day_of_week", "*"),
        ("day_of_month", "*"),
        ("month_of_year", "*"),
    ] {
        assert_eq!(poll[field], default, "{field}: {poll}");
    }
    assert_eq!(poll["max_batch_size"], 100);
    assert_eq!(poll["skip_empty"], true);
    assert_eq!(
        poll["instance"], "test-instance",
        "the instance that created it"
    );
    assert_eq!(poll["auth_header_set"], false);
    assert_eq!(poll["unsent_count"], 0);
    assert_eq!(poll["unacknowledged_errors"], 0);
    let poll_url = poll["poll_url"].as_str().expect("poll_url");
    assert!(
        poll_url.contains("records") && poll_url.ends_with("fetch"),
        "{poll_url}"
    );
    let mark_url = poll["mark_url"].as_str().expect("mark_url");
    assert!(
        mark_url.contains("records") && mark_url.ends_with("mark"),
        "{mark_url}"
    );
    assert!(time(&poll["created_at"]) >= before - chrono::Duration::seconds(1));
    time(&poll["updated_at"]);
    assert!(poll.get("auth_header").is_none(), "{poll}");

    let body = json!({
        "name": "warehouse", "method": "send", "title": "Data warehouse",
        "description": "Nightly load", "event_types": ["schedule.*"],
        "target_url": receiver.url("/dw"), "auth_header": "Bearer s3cret", "format": "ndjson",
        "lease_seconds": 60, "max_batch_size": 500, "skip_empty": false,
    });
    let send = create_group(&app, body).await;
    assert_eq!(send["method"], "send");
    assert_eq!(send["description"], "Nightly load");
    assert_eq!(send["target_url"], receiver.url("/dw"));
    assert_eq!(send["format"], "ndjson");
    assert_eq!(send["lease_seconds"], 60);
    assert_eq!(send["max_batch_size"], 500);
    assert_eq!(send["skip_empty"], false);
    assert_eq!(send["auth_header_set"], true);
    assert!(send.get("auth_header").is_none(), "{send}");
    assert!(send["last_push_at"].is_null(), "{send}");
    let next = time(&send["next_push_at"]);
    assert!(
        next > before && next <= before + chrono::Duration::hours(24),
        "{next}"
    );
    assert_eq!(
        (next.hour(), next.minute(), next.second()),
        (2, 0, 0),
        "02:00 UTC"
    );

    assert_eq!(get_group(&app, "records").await, poll);
    assert_eq!(get_group(&app, "warehouse").await, send);
    let listed = list_groups(&app).await;
    assert_eq!(names(&listed), ["records", "warehouse"]);
    for group in &listed {
        assert!(group.get("auth_header").is_none(), "{group}");
    }
    let text = app.get(GROUPS).await.expect(200).text();
    assert!(!text.contains("s3cret"), "the auth header is never shown");
    let text = app.get(&group_path("warehouse")).await.text();
    assert!(!text.contains("s3cret"), "the auth header is never shown");

    // PATCH changes the fields given; the push time follows the cron fields.
    let patched = app
        .patch(
            &group_path("warehouse"),
            json!({"title": "DW", "hour": "3", "auth_header": "Basic eDp5"}),
        )
        .await
        .expect(200);
    assert!(!patched.text().contains("eDp5"));
    let patched = patched.json();
    assert_eq!(patched["title"], "DW");
    assert_eq!(patched["hour"], "3");
    assert_eq!(patched["description"], "Nightly load", "other fields stay");
    assert_eq!(patched["auth_header_set"], true);
    assert!(patched.get("auth_header").is_none(), "{patched}");
    assert_eq!(time(&patched["next_push_at"]).hour(), 3);
    assert!(time(&patched["updated_at"]) >= time(&patched["created_at"]));
    assert_eq!(get_group(&app, "warehouse").await, patched);

    // The name cannot change.
    let reply = app
        .patch(&group_path("warehouse"), json!({"name": "renamed"}))
        .await;
    assert!(
        reply.status.as_u16() == 400 || reply.status.is_success(),
        "{reply:?}"
    );
    assert_eq!(get_group(&app, "warehouse").await["name"], "warehouse");
    app.get(&group_path("renamed")).await.expect(404);

    // Deleting a group takes its messages, batches and errors with it.
    add_messages(&app, "records", 2).await;
    assert_eq!(batch_ids(&fetch(&app, "records", Some(1)).await).len(), 1);
    app.patch(&group_path("warehouse"), json!({"instance": "elsewhere"}))
        .await
        .expect(200);
    add_message(&app, "warehouse", json!({"n": 1})).await;
    push_now(&app, "warehouse").await;
    wait_for_error(&app, "warehouse").await;
    assert!(all_errors(&app, "")
        .await
        .iter()
        .any(|e| e["group"] == "warehouse"));

    app.delete(&group_path("records")).await.expect(204);
    app.delete(&group_path("warehouse")).await.expect(204);
    app.get(&group_path("records")).await.expect(404);
    app.delete(&group_path("records")).await.expect(404);
    assert!(list_groups(&app).await.is_empty());
    assert!(
        all_errors(&app, "").await.is_empty(),
        "the group's errors went with it"
    );
    let again = create_group(&app, poll_group("records")).await;
    assert_eq!(again["unsent_count"], 0);
    assert!(messages(&app, "records", "").await.is_empty());
    let batch = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&batch), Vec::<i64>::new());
    assert_eq!(batch["unreadCount"], 0);
    assert!(receiver.deliveries().is_empty());
}

async fn bad_group_fields_get_400_naming_the_field_and_write_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let poll = poll_group("records");
    let send = send_group("warehouse", "https://dw.example.org/sbm");
    let cases = [
        (json!({"method": "poll", "title": "No name"}), "name"),
        (merged(poll.clone(), json!({"name": ""})), "name"),
        (merged(poll.clone(), json!({"name": "Records"})), "name"),
        (merged(poll.clone(), json!({"name": "two words"})), "name"),
        (
            merged(poll.clone(), json!({"name": "dots.are.out"})),
            "name",
        ),
        (
            merged(poll.clone(), json!({"name": "a".repeat(65)})),
            "name",
        ),
        (json!({"name": "records", "title": "No method"}), "method"),
        (merged(poll.clone(), json!({"method": "push"})), "method"),
        (json!({"name": "records", "method": "poll"}), "title"),
        (
            merged(poll.clone(), json!({"title": "t".repeat(201)})),
            "title",
        ),
        (without(&send, "target_url"), "target_url"),
        (
            merged(send.clone(), json!({"target_url": "ftp://dw.example.org/"})),
            "target_url",
        ),
        (
            merged(send.clone(), json!({"target_url": "not a url"})),
            "target_url",
        ),
        (merged(poll.clone(), json!({"minute": "60"})), "minute"),
        (merged(poll.clone(), json!({"minute": "*/5"})), "minute"),
        (merged(poll.clone(), json!({"hour": "24"})), "hour"),
        (
            merged(poll.clone(), json!({"day_of_week": "8"})),
            "day_of_week",
        ),
        (
            merged(poll.clone(), json!({"day_of_month": "0"})),
            "day_of_month",
        ),
        (
            merged(poll.clone(), json!({"month_of_year": "13"})),
            "month_of_year",
        ),
        (
            merged(poll.clone(), json!({"lease_seconds": 0})),
            "lease_seconds",
        ),
        (
            merged(poll.clone(), json!({"lease_seconds": 86_401})),
            "lease_seconds",
        ),
        (
            merged(poll.clone(), json!({"max_batch_size": 0})),
            "max_batch_size",
        ),
        (
            merged(poll.clone(), json!({"max_batch_size": 10_001})),
            "max_batch_size",
        ),
        (merged(send.clone(), json!({"format": "xml"})), "format"),
        (
            merged(poll.clone(), json!({"event_types": ["schedule..created"]})),
            "event_types",
        ),
        (
            merged(poll.clone(), json!({"event_types": ["send.*.x"]})),
            "event_types",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post(GROUPS, body.clone()).await;
        let errors = reply.json();
        assert_eq!(reply.status.as_u16(), 400, "{body}: {errors}");
        assert!(errors[field].is_array(), "{body}: {errors}");
    }
    assert!(list_groups(&app).await.is_empty(), "nothing written");

    // The limits themselves are fine.
    let name = format!("edge_{}", "x".repeat(59));
    assert_eq!(name.len(), 64);
    let body = merged(
        poll_group(&name),
        json!({"lease_seconds": 1, "max_batch_size": 10_000, "event_types": ["*"]}),
    );
    create_group(&app, body).await;
    let body = merged(
        poll_group("edge-2"),
        json!({"lease_seconds": 86_400, "max_batch_size": 1}),
    );
    create_group(&app, body).await;

    // A duplicate name.
    create_group(&app, merged(poll.clone(), json!({"title": "First"}))).await;
    let reply = app
        .post(GROUPS, merged(poll.clone(), json!({"title": "Second"})))
        .await
        .expect(400);
    assert!(reply.json()["name"].is_array(), "{}", reply.text());
    assert_eq!(get_group(&app, "records").await["title"], "First");
    assert_eq!(list_groups(&app).await.len(), 3);

    // A bad PATCH changes nothing.
    let before = get_group(&app, "records").await;
    for (body, field) in [
        (json!({"lease_seconds": 0}), "lease_seconds"),
        (json!({"minute": "61"}), "minute"),
        (json!({"format": "xml"}), "format"),
        (json!({"method": "carrier-pigeon"}), "method"),
        (json!({"method": "send"}), "target_url"),
        (json!({"title": ""}), "title"),
    ] {
        let reply = app.patch(&group_path("records"), body.clone()).await;
        let errors = reply.json();
        assert_eq!(reply.status.as_u16(), 400, "{body}: {errors}");
        assert!(errors[field].is_array(), "{body}: {errors}");
    }
    assert_eq!(get_group(&app, "records").await, before);

    // A message added by hand must be a JSON object.
    for body in [
        json!({}),
        json!({"data": "text"}),
        json!({"data": [1, 2]}),
        json!({"data": 3}),
    ] {
        app.post(&format!("{}messages/", group_path("records")), body)
            .await
            .expect(400);
    }
    assert!(messages(&app, "records", "").await.is_empty());
}

async fn an_unknown_group_or_message_gets_404_everywhere(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let missing = group_path("nowhere");
    for path in [
        missing.clone(),
        format!("{missing}messages/"),
        format!("{missing}messages/1/"),
        format!("{missing}errors/"),
        fetch_path("nowhere"),
        format!("{}?token={}", mark_path("nowhere"), forged_token()),
        haplo_fetch_path("nowhere"),
    ] {
        app.get(&path).await.expect(404);
    }
    app.patch(&missing, json!({"title": "x"})).await.expect(404);
    app.delete(&missing).await.expect(404);
    app.post(&format!("{missing}messages/"), json!({"data": {"a": 1}}))
        .await
        .expect(404);
    for path in [
        format!("{missing}send/"),
        format!("{missing}tokens/"),
        format!("{missing}messages/1/unsend/"),
        fetch_path("nowhere"),
    ] {
        app.call(Method::POST, &path, None).await.expect(404);
    }
    assert!(list_groups(&app).await.is_empty());

    // Messages: unknown ids, and ids of another group.
    create_group(&app, poll_group("records")).await;
    create_group(&app, poll_group("other")).await;
    let id = add_message(&app, "records", json!({"a": 1})).await;
    app.get(&format!("{}messages/999999/", group_path("records")))
        .await
        .expect(404);
    app.get(&format!("{}messages/{id}/", group_path("other")))
        .await
        .expect(404);
    app.call(
        Method::POST,
        &format!("{}messages/{id}/unsend/", group_path("other")),
        None,
    )
    .await
    .expect(404);
    app.call(Method::POST, &format!("{ERRORS}999999/acknowledge/"), None)
        .await
        .expect(404);
    assert_eq!(waiting(&app, "records").await, [id]);
}

async fn only_admins_manage_groups(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let user = issue_token(&app.db, "user@example.org", false).await;
    create_group(&app, poll_group("records")).await;
    let id = add_message(&app, "records", json!({"a": 1})).await;
    let group = group_path("records");
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, GROUPS.into(), None),
        (Method::POST, GROUPS.into(), Some(poll_group("mine"))),
        (Method::GET, group.clone(), None),
        (Method::PATCH, group.clone(), Some(json!({"title": "Mine"}))),
        (Method::DELETE, group.clone(), None),
        (Method::GET, format!("{group}messages/"), None),
        (
            Method::POST,
            format!("{group}messages/"),
            Some(json!({"data": {"b": 2}})),
        ),
        (Method::GET, format!("{group}messages/{id}/"), None),
        (Method::POST, format!("{group}messages/{id}/unsend/"), None),
        (Method::GET, fetch_path("records"), None),
        (Method::POST, fetch_path("records"), None),
        (Method::GET, haplo_fetch_path("records"), None),
        (
            Method::GET,
            format!("{}?token={}", mark_path("records"), forged_token()),
            None,
        ),
        (Method::POST, format!("{group}send/"), None),
        (Method::POST, format!("{group}tokens/"), None),
        (Method::GET, format!("{group}errors/"), None),
        (Method::GET, ERRORS.into(), None),
        (Method::POST, format!("{ERRORS}1/acknowledge/"), None),
    ];
    for (method, path, body) in calls {
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .header("Authorization", format!("Token {user}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = app.send(request).await;
        assert_eq!(reply.status.as_u16(), 403, "{method} {path}: {reply:?}");
    }
    assert_eq!(names(&list_groups(&app).await), ["records"]);
    let group = get_group(&app, "records").await;
    assert_eq!(group["title"], "Poll group records");
    assert_eq!(messages(&app, "records", "").await.len(), 1);
    assert_eq!(
        batch_ids(&fetch(&app, "records", None).await),
        [id],
        "no refused fetch leased it"
    );
}

// ---- messages ----

async fn events_become_messages_of_the_groups_whose_event_types_match(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let before_groups = app.create_schedule().await;
    create_group(
        &app,
        merged(
            poll_group("schedules"),
            json!({"event_types": ["schedule.*"]}),
        ),
    )
    .await;
    create_group(
        &app,
        merged(
            poll_group("sets"),
            json!({"event_types": ["messageset.created"]}),
        ),
    )
    .await;
    create_group(&app, poll_group("manual")).await;

    let first = app.create_schedule().await;
    let second = app.create_schedule().await;
    let body = json!({"short_name": "set", "content_type": "text", "default_schedule": first});
    let set = app
        .post("/api/v1/messageset/", body)
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    // A refused change writes no event, hence no message.
    app.post("/api/v1/schedule/", json!({"minute": "60"}))
        .await
        .expect(400);

    let listed = messages(&app, "schedules", "").await;
    assert_eq!(
        listed.len(),
        2,
        "one message per schedule created: {listed:?}"
    );
    let events_path = |object_type: &str, id: i64| {
        format!("/api/v1/events/?limit=1000&object_type={object_type}&object_id={id}")
    };
    let mut expected_fetch = Vec::new();
    // Newest first.
    for (message, schedule) in listed.iter().zip([second, first]) {
        let events = results(
            app.get(&events_path("schedule", schedule))
                .await
                .expect(200)
                .json(),
        );
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event["type"], "schedule.created");
        let data = json!({
            "event_id": event["id"], "type": event["type"], "object": event["object"],
            "sequence": event["sequence"], "data": event["data"],
        });
        assert_eq!(message["data"], data, "the event as callbacks get it");
        assert_eq!(message["event_id"], event["id"]);
        assert_eq!(message["group"], "schedules");
        assert!(message["manual_created_by"].is_null(), "{message}");
        assert!(message["sent_at"].is_null(), "{message}");
        time(&message["created_at"]);
        expected_fetch.push((
            message["id"].as_i64().unwrap(),
            data,
            time(&event["timestamp"]),
        ));
    }
    expected_fetch.reverse();
    let before_groups = before_groups.to_string();
    assert!(
        !listed
            .iter()
            .any(|m| m["data"]["object"]["id"] == before_groups.as_str()),
        "a schedule created before the group is not in it"
    );

    let sets = messages(&app, "sets", "").await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0]["data"]["type"], "messageset.created");
    assert_eq!(sets[0]["data"]["object"]["id"], set.to_string());
    assert!(messages(&app, "manual", "").await.is_empty());
    assert_eq!(get_group(&app, "schedules").await["unsent_count"], 2);

    // Fetched, each message is its data beside its id and the event's timestamp.
    let batch = fetch(&app, "schedules", None).await;
    let fetched = batch["messages"].as_array().unwrap();
    assert_eq!(fetched.len(), 2, "{batch}");
    for (message, (id, data, timestamp)) in fetched.iter().zip(&expected_fetch) {
        assert_message_shape(message, *id, data);
        assert_eq!(time(&message["datetime"]), *timestamp, "{message}");
    }
}

async fn an_admin_adds_a_message_by_hand(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    let before = Utc::now() - chrono::Duration::seconds(1);
    let data = json!({"kind": "note", "n": 1, "nested": {"list": [1, "two"]}});
    let created = app
        .post(
            &format!("{}messages/", group_path("records")),
            json!({ "data": data }),
        )
        .await
        .expect(201)
        .json();
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["group"], "records");
    assert_eq!(created["data"], data);
    assert_eq!(created["manual_created_by"], ADMIN);
    assert!(created["event_id"].is_null(), "{created}");
    assert!(created["sent_at"].is_null(), "{created}");
    assert!(time(&created["created_at"]) >= before);

    let shown = message(&app, "records", id).await;
    assert_eq!(shown["id"], id);
    assert_eq!(shown["data"], data);
    assert_eq!(shown["manual_created_by"], ADMIN);
    assert!(shown["audit"].is_array(), "{shown}");
    let listed = messages(&app, "records", "").await;
    assert_eq!(ids_of(&listed), [id]);
    assert_eq!(listed[0]["manual_created_by"], ADMIN);
    assert_eq!(get_group(&app, "records").await["unsent_count"], 1);

    let batch = fetch(&app, "records", None).await;
    assert_message_shape(&batch["messages"][0], id, &data);
    assert_eq!(
        time(&batch["messages"][0]["datetime"]),
        time(&created["created_at"])
    );
}

// ---- poll ----

async fn fetch_and_mark_until_nothing_is_unread_sees_every_message_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    let ids = add_messages(&app, "records", 5).await;
    let data: HashMap<i64, Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, json!({"n": i, "text": format!("message {i}")})))
        .collect();

    let mut seen: Vec<i64> = Vec::new();
    let mut rounds = Vec::new();
    let ways = [Via::Query, Via::Form, Via::Json];
    for round in 0.. {
        assert!(round < 10, "fetch and mark never ended: {rounds:?}");
        let batch = if round % 2 == 0 {
            fetch(&app, "records", Some(2)).await
        } else {
            fetch_by_post(&app, "records", Some(2)).await
        };
        assert_eq!(batch["version"], 0, "{batch}");
        let got = batch_ids(&batch);
        let remaining = 5 - seen.len() as i64 - got.len() as i64;
        assert_eq!(batch["unreadCount"], remaining, "{batch}");
        for message in batch["messages"].as_array().unwrap() {
            let id = message["id"].as_i64().unwrap();
            assert_message_shape(message, id, &data[&id]);
        }
        seen.extend(&got);
        let via = ways[round % 3];
        let marked = mark_at(
            &app,
            Caller::Admin,
            &mark_path("records"),
            &token_of(&batch),
            via,
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            counts(&marked),
            (got.len() as i64, remaining),
            "{via:?}: {marked}"
        );
        rounds.push(got);
        if marked["unreadCount"] == 0 {
            break;
        }
    }
    assert_eq!(
        rounds,
        [vec![ids[0], ids[1]], vec![ids[2], ids[3]], vec![ids[4]]],
        "oldest first, at most 2 a batch"
    );
    assert_eq!(seen, ids, "every message exactly once");

    let batch = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&batch), Vec::<i64>::new());
    assert_eq!(batch["unreadCount"], 0);
    assert_eq!(sent(&app, "records").await, ids);
    for message in messages(&app, "records", "").await {
        time(&message["sent_at"]);
    }
    assert_eq!(get_group(&app, "records").await["unsent_count"], 0);
}

async fn a_batch_never_marked_comes_back_after_its_lease(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(
        &app,
        merged(poll_group("records"), json!({"lease_seconds": 1})),
    )
    .await;
    let ids = add_messages(&app, "records", 3).await;

    // The poller fetches, then crashes before marking.
    let crashed = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&crashed), ids);
    assert_eq!(crashed["unreadCount"], 0);
    let meanwhile = fetch(&app, "records", None).await;
    assert_eq!(
        batch_ids(&meanwhile),
        Vec::<i64>::new(),
        "held by the first batch"
    );
    assert_eq!(
        meanwhile["unreadCount"], 3,
        "leased messages are still waiting"
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&again), ids, "the same messages come back");
    assert_ne!(token_of(&again), token_of(&crashed));

    assert_eq!(
        counts(&mark(&app, "records", &token_of(&again)).await),
        (3, 0)
    );
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&crashed)).await),
        (0, 0),
        "the old token afterwards is harmless"
    );
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&again)).await),
        (0, 0),
        "marking twice marks 0"
    );
    assert_eq!(sent(&app, "records").await, ids);
    assert!(batch_ids(&fetch(&app, "records", None).await).is_empty());
}

async fn a_late_mark_still_marks_its_batch(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(
        &app,
        merged(poll_group("records"), json!({"lease_seconds": 1})),
    )
    .await;
    let ids = add_messages(&app, "records", 2).await;
    let batch = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&batch), ids);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&batch)).await),
        (2, 0)
    );
    assert_eq!(sent(&app, "records").await, ids);
    let next = fetch(&app, "records", None).await;
    assert!(batch_ids(&next).is_empty(), "{next}");
}

async fn two_concurrent_pollers_never_get_the_same_message(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    let ids = add_messages(&app, "records", 20).await;
    let mut seen: Vec<i64> = Vec::new();
    for round in 0.. {
        assert!(round < 30, "polling never ended; seen {seen:?}");
        let (a, b) = tokio::join!(
            fetch(&app, "records", Some(3)),
            fetch_by_post(&app, "records", Some(3))
        );
        let (a_ids, b_ids) = (batch_ids(&a), batch_ids(&b));
        let a_set: HashSet<i64> = a_ids.iter().copied().collect();
        assert!(
            b_ids.iter().all(|id| !a_set.contains(id)),
            "both pollers got a message: {a_ids:?} {b_ids:?}"
        );
        if a_ids.is_empty() && b_ids.is_empty() {
            break;
        }
        seen.extend(&a_ids);
        seen.extend(&b_ids);
        let (ta, tb) = (token_of(&a), token_of(&b));
        let (ma, mb) = tokio::join!(mark(&app, "records", &ta), mark(&app, "records", &tb));
        assert_eq!(counts(&ma).0, a_ids.len() as i64, "{ma}");
        assert_eq!(counts(&mb).0, b_ids.len() as i64, "{mb}");
    }
    assert_eq!(sorted(seen), ids, "every message once");
    assert_eq!(sent(&app, "records").await, ids);
}

async fn a_forged_missing_or_foreign_token_gets_400_and_marks_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    create_group(&app, poll_group("other")).await;
    let records = add_messages(&app, "records", 2).await;
    let other = add_messages(&app, "other", 2).await;
    let records_batch = fetch(&app, "records", None).await;
    let other_batch = fetch(&app, "other", None).await;
    let (records_token, other_token) = (token_of(&records_batch), token_of(&other_batch));

    let mut altered = records_token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'a' { 'b' } else { 'a' });
    for token in [forged_token(), altered, String::new()] {
        for via in [Via::Query, Via::Form, Via::Json] {
            mark_at(&app, Caller::Admin, &mark_path("records"), &token, via)
                .await
                .expect(400);
        }
    }
    // No token at all.
    app.get(&mark_path("records")).await.expect(400);
    app.call(Method::POST, &mark_path("records"), None)
        .await
        .expect(400);
    app.post(&mark_path("records"), json!({})).await.expect(400);
    // A token of another group, both ways round.
    for via in [Via::Query, Via::Form, Via::Json] {
        mark_at(
            &app,
            Caller::Admin,
            &mark_path("records"),
            &other_token,
            via,
        )
        .await
        .expect(400);
        mark_at(
            &app,
            Caller::Admin,
            &mark_path("other"),
            &records_token,
            via,
        )
        .await
        .expect(400);
    }
    mark_at(
        &app,
        Caller::Admin,
        &haplo_mark_path("records"),
        &other_token,
        Via::Form,
    )
    .await
    .expect(400);

    assert_eq!(waiting(&app, "records").await, records, "nothing marked");
    assert_eq!(waiting(&app, "other").await, other, "nothing marked");
    // The real tokens still work, each on its own group.
    assert_eq!(counts(&mark(&app, "records", &records_token).await), (2, 0));
    assert_eq!(counts(&mark(&app, "other", &other_token).await), (2, 0));
}

async fn a_send_group_has_no_poll_api(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, send_group("warehouse", "https://dw.example.org/sbm")).await;
    add_message(&app, "warehouse", json!({"a": 1})).await;
    for path in [
        fetch_path("warehouse"),
        haplo_fetch_path("warehouse"),
        format!("{}?token={}", mark_path("warehouse"), forged_token()),
    ] {
        app.get(&path).await.expect(400);
    }
    app.call(Method::POST, &fetch_path("warehouse"), None)
        .await
        .expect(400);
    assert_eq!(waiting(&app, "warehouse").await.len(), 1);
}

/// Fetches with one caller and path, checks the batch is `expected`, marks it with another
/// caller, path and way of giving the token, and checks everything got marked.
async fn round_trip(
    app: &TestApp,
    (fetch_caller, fetch_path): (Caller<'_>, String),
    (mark_caller, mark_path, via): (Caller<'_>, String, Via),
    expected: &[i64],
) {
    let batch = fetch_at(app, fetch_caller, &fetch_path)
        .await
        .expect(200)
        .json();
    assert_eq!(batch_ids(&batch), expected);
    let marked = mark_at(app, mark_caller, &mark_path, &token_of(&batch), via)
        .await
        .expect(200)
        .json();
    assert_eq!(counts(&marked), (expected.len() as i64, 0));
}

async fn a_scoped_poll_token_works_only_on_its_groups_fetch_and_mark(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    create_group(&app, poll_group("other")).await;
    let other = add_messages(&app, "other", 1).await;
    let created = app
        .call(
            Method::POST,
            &format!("{}tokens/", group_path("records")),
            None,
        )
        .await
        .expect(201)
        .json();
    let token = created["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();

    // As `Authorization: Token …` on the sbm paths.
    let first = add_messages(&app, "records", 2).await;
    let fetch_sbm = with_limit(&fetch_path("records"), Some(10));
    let token_caller = Caller::Token(&token);
    let mark_sbm = (token_caller, mark_path("records"), Via::Query);
    round_trip(&app, (token_caller, fetch_sbm), mark_sbm, &first).await;

    // As Haplo clients do: HTTP Basic with user `haplo`, on Haplo's paths.
    let second = add_messages(&app, "records", 2).await;
    let haplo = Caller::Basic("haplo", &token);
    let mark_haplo = (haplo, haplo_mark_path("records"), Via::Form);
    round_trip(
        &app,
        (haplo, haplo_fetch_path("records")),
        mark_haplo,
        &second,
    )
    .await;

    // Any user name; Basic on the sbm path, Token on Haplo's.
    let third = add_messages(&app, "records", 1).await;
    let anyone = (Caller::Basic("anyone", &token), fetch_path("records"));
    let mark_json = (token_caller, haplo_mark_path("records"), Via::Json);
    round_trip(&app, anyone, mark_json, &third).await;

    // Nothing else.
    let records = group_path("records");
    let refused: Vec<(Caller, Method, String)> = vec![
        (Caller::Token(&token), Method::GET, fetch_path("other")),
        (Caller::Token(&token), Method::POST, fetch_path("other")),
        (
            Caller::Basic("haplo", &token),
            Method::GET,
            haplo_fetch_path("other"),
        ),
        (
            Caller::Token(&token),
            Method::GET,
            format!("{}?token={}", mark_path("other"), forged_token()),
        ),
        (
            Caller::Token(&token),
            Method::GET,
            "/api/v1/schedule/".into(),
        ),
        (
            Caller::Basic("haplo", &token),
            Method::GET,
            "/api/v1/schedule/".into(),
        ),
        (Caller::Token(&token), Method::GET, GROUPS.into()),
        (Caller::Token(&token), Method::GET, records.clone()),
        (
            Caller::Token(&token),
            Method::GET,
            format!("{records}messages/"),
        ),
        (
            Caller::Token(&token),
            Method::POST,
            format!("{records}tokens/"),
        ),
        (
            Caller::Token(&token),
            Method::POST,
            format!("{records}send/"),
        ),
        (Caller::Token(&token), Method::GET, ERRORS.into()),
    ];
    for (caller, method, path) in refused {
        let reply = app.send(request(&app, caller, method.clone(), &path)).await;
        assert_eq!(reply.status.as_u16(), 403, "{method} {path}: {reply:?}");
    }
    assert_eq!(
        waiting(&app, "other").await,
        other,
        "the other group untouched"
    );
    let all = sorted([first, second, third].concat());
    assert_eq!(sent(&app, "records").await, all);
}

// ---- push ----

async fn a_push_delivers_every_waiting_message_once_in_batches(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let body = merged(
        send_group("warehouse", &receiver.url("/dw")),
        json!({"auth_header": "Bearer s3cret", "max_batch_size": 2}),
    );
    create_group(&app, body).await;
    let ids = add_messages(&app, "warehouse", 5).await;
    assert!(receiver.deliveries().is_empty(), "nothing before a push");

    push_now(&app, "warehouse").await;
    wait_all_sent(&app, "warehouse").await;
    let deliveries = receiver.deliveries_to("/dw");
    assert_eq!(
        deliveries.len(),
        3,
        "one POST per batch: {:?}",
        deliveries.iter().map(|d| &d.text).collect::<Vec<_>>()
    );
    let mut keys = HashSet::new();
    let mut pushed = Vec::new();
    for delivery in &deliveries {
        assert_eq!(delivery.method, "POST");
        assert_eq!(delivery.header("authorization"), Some("Bearer s3cret"));
        assert_eq!(delivery.header("content-type"), Some("application/json"));
        let key = delivery
            .header("idempotency-key")
            .unwrap_or_else(|| panic!("Idempotency-Key: {:?}", delivery.headers));
        assert!(!key.is_empty());
        assert!(keys.insert(key.to_string()), "one key per batch: {key}");
        assert_eq!(delivery.json["version"], 0, "{}", delivery.text);
        assert_eq!(
            delivery.json["token"], key,
            "the body's token is the batch token"
        );
        let batch = json_batch(delivery);
        for message in &batch {
            let id = message["id"].as_i64().unwrap();
            let i = ids.iter().position(|x| *x == id).expect("a known id");
            assert_message_shape(
                message,
                id,
                &json!({"n": i, "text": format!("message {i}")}),
            );
        }
        pushed.push(ids_in(&batch));
    }
    assert_eq!(
        pushed,
        [vec![ids[0], ids[1]], vec![ids[2], ids[3]], vec![ids[4]]],
        "oldest first, in batches of max_batch_size"
    );
    assert_eq!(sent(&app, "warehouse").await, ids);
    let group = get_group(&app, "warehouse").await;
    assert_eq!(group["unsent_count"], 0);
    time(&group["last_push_at"]);
    assert_eq!(group["unacknowledged_errors"], 0);

    settle().await;
    assert_eq!(receiver.deliveries().len(), 3, "nothing sent twice");
    // Another push has nothing to send.
    push_now(&app, "warehouse").await;
    settle().await;
    assert_eq!(receiver.deliveries().len(), 3);
}

async fn a_push_can_carry_its_own_auth_header(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let bad = merged(
        send_group("broken", &receiver.url("/dw")),
        json!({"auth_header": "X-Api-Key: a\nb"}),
    );
    let refused = app
        .post("/api/v1/integration-groups/", bad)
        .await
        .expect(400);
    assert!(
        refused.json()["auth_header"].is_array(),
        "{}",
        refused.text()
    );
    let body = merged(
        send_group("partner", &receiver.url("/dw")),
        json!({"auth_header": "X-Api-Key: k3y"}),
    );
    create_group(&app, body).await;
    add_messages(&app, "partner", 1).await;
    push_now(&app, "partner").await;
    wait_all_sent(&app, "partner").await;
    let deliveries = receiver.deliveries_to("/dw");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].header("x-api-key"), Some("k3y"));
    assert_eq!(deliveries[0].header("authorization"), None);
}

async fn a_failed_push_records_an_error_and_the_next_push_delivers_each_message_once(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script_statuses(&[500]);
    let body = merged(
        send_group("warehouse", &receiver.url("/dw")),
        json!({"max_batch_size": 2}),
    );
    create_group(&app, body).await;
    let ids = add_messages(&app, "warehouse", 3).await;
    let before = Utc::now() - chrono::Duration::seconds(1);

    push_now(&app, "warehouse").await;
    wait_for_error(&app, "warehouse").await;
    settle().await;
    let errors = group_errors(&app, "warehouse", "").await;
    assert_eq!(errors.len(), 1, "one push, one error: {errors:?}");
    assert_eq!(
        receiver.deliveries().len(),
        1,
        "the push stopped at the failure and is not retried"
    );
    assert_eq!(
        ids_in(&json_batch(&receiver.deliveries()[0])),
        [ids[0], ids[1]]
    );
    let error = &errors[0];
    assert_eq!(error["group"], "warehouse");
    assert_eq!(error["source"], "push");
    assert!(time(&error["occurred_at"]) >= before);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
    assert_eq!(error["details"]["status"], 500, "{error}");
    assert_eq!(error["details"]["messages"], 2, "{error}");
    assert!(
        error["details"]["response_body"]
            .as_str()
            .is_some_and(|b| b.starts_with("scripted 500")),
        "{error}"
    );
    assert!(error["acknowledged_at"].is_null(), "{error}");
    assert!(error["acknowledged_by"].is_null(), "{error}");
    assert_eq!(waiting(&app, "warehouse").await, ids, "nothing lost");

    let everywhere = all_errors(&app, "").await;
    assert_eq!(everywhere, errors);
    assert_eq!(all_errors(&app, "acknowledged=false").await, errors);
    assert_eq!(
        group_errors(&app, "warehouse", "acknowledged=false").await,
        errors
    );
    assert_eq!(
        get_group(&app, "warehouse").await["unacknowledged_errors"],
        1
    );

    let id = error["id"].as_i64().expect("error id");
    let reply = app
        .call(Method::POST, &format!("{ERRORS}{id}/acknowledge/"), None)
        .await;
    assert!(reply.status.is_success(), "{reply:?}");
    let acknowledged = group_errors(&app, "warehouse", "").await;
    assert_eq!(acknowledged.len(), 1);
    time(&acknowledged[0]["acknowledged_at"]);
    assert_eq!(acknowledged[0]["acknowledged_by"], ADMIN);
    assert!(all_errors(&app, "acknowledged=false").await.is_empty());
    assert!(group_errors(&app, "warehouse", "acknowledged=false")
        .await
        .is_empty());
    assert_eq!(
        get_group(&app, "warehouse").await["unacknowledged_errors"],
        0
    );

    // The receiver is fixed (it answers 200 from now on): send outstanding now.
    push_now(&app, "warehouse").await;
    wait_all_sent(&app, "warehouse").await;
    settle().await;
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 3, "one failed, then two batches");
    let succeeded: Vec<i64> = deliveries[1..]
        .iter()
        .flat_map(|d| ids_in(&json_batch(d)))
        .collect();
    assert_eq!(
        succeeded, ids,
        "each message exactly once among the accepted batches"
    );
    assert_eq!(sent(&app, "warehouse").await, ids);
    assert_eq!(
        group_errors(&app, "warehouse", "").await.len(),
        1,
        "no new error"
    );
}

async fn with_skip_empty_nothing_is_sent_when_nothing_waits(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let group = create_group(&app, send_group("warehouse", &receiver.url("/dw"))).await;
    assert_eq!(group["skip_empty"], true, "the default");
    push_now(&app, "warehouse").await;
    settle().await;
    assert!(receiver.deliveries().is_empty(), "no request");
    assert!(group_errors(&app, "warehouse", "").await.is_empty());

    let id = add_message(&app, "warehouse", json!({"a": 1})).await;
    push_now(&app, "warehouse").await;
    wait_all_sent(&app, "warehouse").await;
    settle().await;
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1, "only the batch with a message");
    assert_eq!(ids_in(&json_batch(&deliveries[0])), [id]);
}

async fn without_skip_empty_an_empty_batch_is_sent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let body = merged(
        send_group("warehouse", &receiver.url("/dw")),
        json!({"skip_empty": false}),
    );
    create_group(&app, body).await;
    push_now(&app, "warehouse").await;
    eventually("the empty batch arrives", || async {
        !receiver.deliveries().is_empty()
    })
    .await;
    settle().await;
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1, "one empty batch");
    assert_eq!(deliveries[0].json["version"], 0, "{}", deliveries[0].text);
    assert_eq!(deliveries[0].json["messages"], json!([]));
    assert!(deliveries[0].header("idempotency-key").is_some());
}

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

// ---- instance guard ----

async fn a_push_happens_only_on_the_groups_instance(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.events.instance_name = "staging".into()
    })
    .await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    let body = merged(
        send_group("warehouse", &receiver.url("/dw")),
        json!({"instance": "production"}),
    );
    assert_eq!(create_group(&app, body).await["instance"], "production");
    let here = create_group(&app, send_group("local", &receiver.url("/local"))).await;
    assert_eq!(here["instance"], "staging");
    let ids = add_messages(&app, "warehouse", 2).await;

    push_now(&app, "warehouse").await;
    wait_for_error(&app, "warehouse").await;
    settle().await;
    assert!(receiver.deliveries().is_empty(), "nothing sent");
    let errors = group_errors(&app, "warehouse", "").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["source"], "push");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("production"),
        "says who may push: {message}"
    );
    assert_eq!(waiting(&app, "warehouse").await, ids);
    assert_eq!(
        get_group(&app, "warehouse").await["unacknowledged_errors"],
        1
    );

    // An admin moves the group here on purpose.
    app.patch(&group_path("warehouse"), json!({"instance": "staging"}))
        .await
        .expect(200);
    push_now(&app, "warehouse").await;
    wait_all_sent(&app, "warehouse").await;
    let deliveries = receiver.deliveries_to("/dw");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(ids_in(&json_batch(&deliveries[0])), ids);
    assert_eq!(group_errors(&app, "warehouse", "").await.len(), 1);
}

// ---- unsend ----

async fn an_unsent_message_comes_back_and_its_audit_trail_says_who(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    let ids = add_messages(&app, "records", 3).await;
    let batch = fetch(&app, "records", Some(2)).await;
    assert_eq!(batch_ids(&batch), [ids[0], ids[1]]);
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&batch)).await),
        (2, 1)
    );

    let audit = |message: &Value| -> Vec<Value> {
        message["audit"]
            .as_array()
            .unwrap_or_else(|| panic!("audit: {message}"))
            .clone()
    };

    // A sent message made unsent.
    let shown = message(&app, "records", ids[0]).await;
    time(&shown["sent_at"]);
    let before = audit(&shown);
    unsend(&app, "records", ids[0]).await;
    let shown = message(&app, "records", ids[0]).await;
    assert!(shown["sent_at"].is_null(), "{shown}");
    let added: Vec<Value> = audit(&shown)
        .into_iter()
        .filter(|entry| !before.contains(entry))
        .collect();
    assert_eq!(added.len(), 1, "one audit entry: {shown}");
    let entry = added[0].to_string();
    assert!(entry.contains(ADMIN), "who: {entry}");
    assert!(entry.to_lowercase().contains("unsen"), "what: {entry}");

    // A waiting message: nothing changes, nothing is recorded.
    let waiting_before = message(&app, "records", ids[2]).await;
    unsend(&app, "records", ids[2]).await;
    assert_eq!(message(&app, "records", ids[2]).await, waiting_before);

    assert_eq!(waiting(&app, "records").await, [ids[0], ids[2]]);
    let again = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&again), [ids[0], ids[2]], "it goes again");
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&again)).await),
        (2, 0)
    );
    assert_eq!(sent(&app, "records").await, ids);
}

// ---- scheduled push ----

async fn a_due_scheduled_push_sends_without_being_asked(backend: Backend) {
    // The running worker ticks every second, as it would in production (every few seconds).
    let Some(app) = spawn_app_with(backend, |config| config.worker.tick_interval_secs = 1).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    // Cron fields that are not due this month, so only the forced time below is due.
    let other_month = (Utc::now().month() % 12 + 1).to_string();
    let body = merged(
        send_group("warehouse", &receiver.url("/dw")),
        json!({"month_of_year": other_month, "skip_empty": false}),
    );
    let group = create_group(&app, body).await;
    assert!(time(&group["next_push_at"]) > Utc::now());
    let ids = add_messages(&app, "warehouse", 2).await;
    settle().await;
    assert!(receiver.deliveries().is_empty(), "not due yet");

    let due = sbm::store::now() - chrono::Duration::seconds(30);
    set_next_push_at(&app, "warehouse", due).await;
    eventually("the scheduled push arrives", || async {
        !receiver.deliveries().is_empty()
    })
    .await;
    wait_all_sent(&app, "warehouse").await;
    let deliveries = receiver.deliveries();
    assert_eq!(ids_in(&json_batch(&deliveries[0])), ids);
    let group = get_group(&app, "warehouse").await;
    time(&group["last_push_at"]);
    let next = time(&group["next_push_at"]);
    assert!(next > Utc::now(), "the next push is in the future: {next}");
    assert_eq!(next.month().to_string(), other_month);

    // Later ticks do not push again (an empty batch would show, skip_empty being false).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.deliveries().len(), 1, "one push for the due time");
}

/// Found by the crash campaign (benches/chaos): a worker killed between the receiver's 2xx and
/// the mark left its batch to be pushed again with more messages and a new key, so the
/// receiver could not tell the repeat. The batch now goes again whole, first, with the same
/// token and Idempotency-Key; a failed POST (here a 500) is the same case without a crash.
async fn an_unconfirmed_push_is_sent_again_as_the_same_batch_with_the_same_key(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script_statuses(&[500]);
    let body = merged(
        send_group("warehouse", &receiver.url("/dw")),
        json!({"max_batch_size": 3}),
    );
    create_group(&app, body).await;
    let first = add_messages(&app, "warehouse", 2).await;
    push_now(&app, "warehouse").await;
    wait_for_error(&app, "warehouse").await;
    let later = add_messages(&app, "warehouse", 2).await;
    push_now(&app, "warehouse").await;
    wait_all_sent(&app, "warehouse").await;

    let deliveries = receiver.deliveries_to("/dw");
    let batches: Vec<Vec<i64>> = deliveries.iter().map(|d| ids_in(&json_batch(d))).collect();
    let keys: Vec<Option<&str>> = deliveries
        .iter()
        .map(|d| d.header("idempotency-key"))
        .collect();
    assert_eq!(batches, [first.clone(), first, vec![later[0], later[1]]]);
    assert!(keys[0].is_some());
    assert_eq!(keys[0], keys[1], "the batch pushed again keeps its key");
    assert_ne!(keys[1], keys[2], "another batch has another key");
}
