//! Integration messages (docs/integrations.md), black-box: groups fed by events or by hand, the
//! poll API (fetch and mark of leased batches, scoped poll tokens), and pushes of batches to a
//! fake receiver in each format, with the integration errors a refused push leaves behind.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Timelike, Utc};
use reqwest::Method;
use sbm::store::Db;
use serde_json::{json, Value};

use crate::helpers::{
    eventually, issue_token, quiet, spawn_app, spawn_app_with, Backend, Reply, TestApp,
};
use crate::hub::time;
use crate::receiver::{Received, Receiver};

mod formats;
mod groups;
mod poll;
mod push;

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

/// A receiver, and a send group `name` that pushes to it (at `/dw`) with the fields of `extra`.
async fn send_group_to(app: &TestApp, name: &str, extra: Value) -> Receiver {
    let receiver = Receiver::start().await;
    create_group(app, merged(send_group(name, &receiver.url("/dw")), extra)).await;
    receiver
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

/// Waits until no message of the group is held by a batch any more, by the lease ends the
/// server recorded.
async fn leases_end(app: &TestApp, group: &str) {
    const HELD: &str = "select leased_until from integration_message \
        where group_name = $1 and leased_until is not null";
    let held: Vec<DateTime<Utc>> = match &app.db {
        Db::Postgres(pool) => sqlx::query_scalar(HELD).bind(group).fetch_all(pool).await,
        Db::Sqlite(pool) => sqlx::query_scalar(HELD).bind(group).fetch_all(pool).await,
    }
    .expect("lease ends");
    let Some(end) = held.into_iter().max() else {
        return;
    };
    eventually(&format!("the leases of {group} end"), || async {
        sbm::store::now() > end
    })
    .await;
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
