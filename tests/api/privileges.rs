//! Who may call what (docs/security.md), black-box: every operation of `/api/openapi.json` has a
//! row in the table of docs/security.md, and every row is tried with each kind of caller.
//! Refused callers get 401 or 403; allowed ones get anything else (with a made-up id and an
//! empty body that is mostly a 400 or 404, so the walk changes nothing).

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{issue_token, spawn_app_with, Backend, TestApp, INBOUND_TOKEN};
use crate::on_both_backends;

on_both_backends!(every_operation_admits_exactly_the_callers_docs_security_md_names);

const KINDS: [&str; 5] = ["anonymous", "scheduler", "poll", "user", "admin"];
/// Served outside the OpenAPI document, and in the table.
const NOT_IN_OPENAPI: [&str; 3] = ["GET /metrics", "GET /api/openapi.json", "GET /media/{path}"];

struct Row {
    method: String,
    path: String,
    allowed: Vec<String>,
}

/// The rows of the table in docs/security.md: `| `METHOD` | `path` | kind, kind |`.
fn table() -> Vec<Row> {
    include_str!("../../docs/security.md")
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let [method, path, who] = cells.as_slice() else {
                return None;
            };
            let method = method.strip_prefix('`')?.strip_suffix('`')?;
            Method::from_bytes(method.as_bytes()).ok()?;
            let path = path.strip_prefix('`')?.strip_suffix('`')?;
            let allowed = who.split(',').map(|k| k.trim().to_string()).collect();
            Some(Row {
                method: method.to_string(),
                path: path.to_string(),
                allowed,
            })
        })
        .collect()
}

async fn openapi_operations(app: &TestApp) -> BTreeSet<String> {
    let doc = app.get("/api/openapi.json").await.expect(200).json();
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

/// A path to try: the poll group for poll routes, made-up ids elsewhere.
fn concrete(path: &str) -> String {
    let name = if path.contains("/poll/") {
        "g"
    } else {
        "absent"
    };
    path.replace("{name}", name)
        .replace("{id}", "00000000-0000-4000-8000-000000000001")
        .replace("{path}", "absent.txt")
}

async fn every_operation_admits_exactly_the_callers_docs_security_md_names(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.no_worker = true;
        c.peers.scheduler_inbound_api_token = Some(INBOUND_TOKEN.into());
    })
    .await
    else {
        return;
    };
    let group = json!({"name": "g", "method": "poll", "title": "G", "event_types": ["schedule.*"]});
    app.post("/api/v1/integration-groups/", group)
        .await
        .expect(201);
    let poll = app
        .post("/api/v1/integration-groups/g/tokens/", json!({}))
        .await
        .expect(201)
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let user = issue_token(&app.db, "plain@example.org", false).await;
    let token_of = |kind: &str| match kind {
        "anonymous" => None,
        "scheduler" => Some(INBOUND_TOKEN.to_string()),
        "poll" => Some(poll.clone()),
        "user" => Some(user.clone()),
        "admin" => Some(app.token.clone()),
        other => panic!("unknown kind of caller {other:?} in docs/security.md"),
    };

    let rows = table();
    let documented: BTreeSet<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let served = openapi_operations(&app).await;
    let undocumented: Vec<&String> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "operations missing from docs/security.md: {undocumented:?}"
    );
    let extra: Vec<&String> = documented
        .difference(&served)
        .filter(|op| !NOT_IN_OPENAPI.contains(&op.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "rows of docs/security.md that are not served: {extra:?}"
    );

    let mut wrong = Vec::new();
    for row in &rows {
        for kind in KINDS {
            let method = Method::from_bytes(row.method.as_bytes()).unwrap();
            let mut request = app
                .client
                .request(method.clone(), app.url(&concrete(&row.path)));
            if let Some(token) = token_of(kind) {
                request = request.header("Authorization", format!("Token {token}"));
            }
            if method != Method::GET && method != Method::DELETE {
                request = request.json(&json!({}));
            }
            let status = app.send(request).await.status.as_u16();
            let refused = status == 401 || status == 403;
            let allowed = row.allowed.iter().any(|k| k == kind);
            if allowed == refused {
                wrong.push(format!("{} {} as {kind}: {status}", row.method, row.path));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "not as docs/security.md says:\n{}",
        wrong.join("\n")
    );
    assert!(rows.len() >= served.len());
}
