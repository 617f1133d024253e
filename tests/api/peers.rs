//! Fake peers as real HTTP servers on loopback: the Seed Scheduler, Identity Store and Message
//! Sender of spec/peers.md, recording every request and able to fail on demand.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A request a fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
    /// The W3C trace context the caller sent, if any.
    pub traceparent: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Fakes {
    requests: Vec<Recorded>,
    /// Statuses the Message Sender answers before it accepts again (0 = hang past the timeout,
    /// 1 = accept, but answer only after 2 seconds).
    sender_failures: VecDeque<u16>,
    /// Answer every outbound with this status (peer down).
    sender_down: Option<u16>,
    /// Identity → msisdn; identities not here have no address.
    addresses: HashMap<String, String>,
    scheduler_failures: VecDeque<u16>,
    /// Scheduler schedules: id → body.
    schedules: HashMap<String, Value>,
    /// Statuses the Metrics API answers before accepting again.
    metrics_failures: VecDeque<u16>,
}

#[derive(Clone)]
pub struct FakePeers {
    pub address: String,
    state: Arc<Mutex<Fakes>>,
}

type Shared = Arc<Mutex<Fakes>>;

fn record(
    state: &Shared,
    method: &str,
    path: String,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: Value,
) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    state.lock().unwrap().requests.push(Recorded {
        method: method.into(),
        path,
        query,
        authorization,
        traceparent,
        body,
    });
}

async fn create_outbound(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let failure = {
        let mut fakes = state.lock().unwrap();
        fakes
            .sender_down
            .or_else(|| fakes.sender_failures.pop_front())
    };
    let failure = match failure {
        Some(1) => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            None
        }
        other => other,
    };
    match failure {
        Some(0) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some(status) => {
            (StatusCode::from_u16(status).unwrap(), "failure on demand").into_response()
        }
        None => {
            if body["to_addr"].as_str().unwrap_or("").is_empty()
                && body["to_identity"].as_str().unwrap_or("").is_empty()
            {
                let error = json!({"non_field_errors": ["One of these fields must be populated: to_addr, to_identity"]});
                return (StatusCode::BAD_REQUEST, Json(error)).into_response();
            }
            let id = uuid::Uuid::new_v4().to_string();
            record(
                &state,
                "POST",
                "/outbound/".into(),
                HashMap::new(),
                &headers,
                body.clone(),
            );
            let mut created = body;
            created["id"] = json!(id);
            created["attempts"] = json!(0);
            (StatusCode::CREATED, Json(created)).into_response()
        }
    }
}

async fn addresses(
    State(state): State<Shared>,
    Path((identity, kind)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    record(
        &state,
        "GET",
        format!("/identities/{identity}/addresses/{kind}"),
        query,
        &headers,
        Value::Null,
    );
    let address = state.lock().unwrap().addresses.get(&identity).cloned();
    let results: Vec<Value> = address.into_iter().map(|a| json!({"address": a})).collect();
    Json(json!({"count": results.len(), "next": null, "previous": null, "results": results}))
        .into_response()
}

async fn create_schedule(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let failure = state.lock().unwrap().scheduler_failures.pop_front();
    if let Some(status) = failure {
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    if body["endpoint"].as_str().unwrap_or("").is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"endpoint": ["This field is required."]})),
        )
            .into_response();
    }
    record(
        &state,
        "POST",
        "/schedule/".into(),
        HashMap::new(),
        &headers,
        body.clone(),
    );
    let id = uuid::Uuid::new_v4().to_string();
    let mut created = body;
    created["id"] = json!(id);
    created["enabled"] = json!(true);
    state.lock().unwrap().schedules.insert(id, created.clone());
    (StatusCode::CREATED, Json(created)).into_response()
}

async fn patch_schedule(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    record(
        &state,
        "PATCH",
        format!("/schedule/{id}/"),
        HashMap::new(),
        &headers,
        body.clone(),
    );
    let mut fakes = state.lock().unwrap();
    let Some(schedule) = fakes.schedules.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    for (key, value) in body.as_object().cloned().unwrap_or_default() {
        schedule[key] = value;
    }
    Json(schedule.clone()).into_response()
}

/// The Go Metrics API: a flat object of numbers whose names end in an aggregator, else 400.
async fn fire_metrics(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(status) = state.lock().unwrap().metrics_failures.pop_front() {
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    let Some(metrics) = body.as_object() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status_code": 400, "reason": "not an object"})),
        )
            .into_response();
    };
    let mut accepted = Vec::new();
    for (name, value) in metrics {
        let aggregator = name.rsplit('.').next().unwrap_or("");
        if !["sum", "avg", "max", "min", "last"].contains(&aggregator) {
            let reason = format!("Aggregator '{aggregator}' is not a valid aggregator");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"status_code": 400, "reason": reason})),
            )
                .into_response();
        }
        let Some(value) = value.as_f64() else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        accepted.push(json!({"name": name, "value": value, "aggregator": aggregator}));
    }
    record(
        &state,
        "POST",
        "/metrics/".into(),
        HashMap::new(),
        &headers,
        body,
    );
    Json(accepted).into_response()
}

impl FakePeers {
    pub async fn start() -> FakePeers {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/sender/api/v1/outbound/", post(create_outbound))
            .route(
                "/identity/api/v1/identities/{identity}/addresses/{kind}",
                get(addresses),
            )
            .route("/scheduler/api/v1/schedule/", post(create_schedule))
            .route("/scheduler/api/v1/schedule/{id}/", patch(patch_schedule))
            .route("/gometrics/metrics/", post(fire_metrics))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakePeers { address, state }
    }

    /// The Go Metrics API root (callers append `/metrics/`).
    pub fn metrics_url(&self) -> String {
        format!("{}/gometrics", self.address)
    }

    pub fn fail_metrics(&self, statuses: &[u16]) {
        self.state.lock().unwrap().metrics_failures.extend(statuses);
    }

    /// The bodies the Metrics API accepted.
    pub fn metric_pushes(&self) -> Vec<Value> {
        self.requests("POST", "/metrics/")
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    pub fn scheduler_url(&self) -> String {
        format!("{}/scheduler/api/v1", self.address)
    }
    pub fn identity_store_url(&self) -> String {
        format!("{}/identity/api/v1", self.address)
    }
    pub fn message_sender_url(&self) -> String {
        format!("{}/sender/api/v1", self.address)
    }

    /// Gives the identity a number at the Identity Store.
    pub fn add_address(&self, identity: &str, msisdn: &str) {
        self.state
            .lock()
            .unwrap()
            .addresses
            .insert(identity.to_string(), msisdn.to_string());
    }

    /// The Message Sender answers these statuses (0: no answer in time) before accepting again.
    pub fn fail_sends(&self, statuses: &[u16]) {
        self.state.lock().unwrap().sender_failures.extend(statuses);
    }

    /// The Message Sender answers every outbound with `status`, or accepts again with `None`.
    pub fn sender_down(&self, status: Option<u16>) {
        self.state.lock().unwrap().sender_down = status;
    }

    pub fn fail_scheduler(&self, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .scheduler_failures
            .extend(statuses);
    }

    pub fn requests(&self, method: &str, path_prefix: &str) -> Vec<Recorded> {
        let fakes = self.state.lock().unwrap();
        fakes
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    /// The outbound messages the Message Sender accepted.
    pub fn outbounds(&self) -> Vec<Value> {
        self.requests("POST", "/outbound/")
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    pub fn schedule(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().schedules.get(id).cloned()
    }

    /// The Scheduler firing a schedule: POST `{}` to its endpoint with its auth token, as the
    /// real one does. Returns the status sbm answered.
    pub async fn fire(&self, schedule_id: &str) -> (u16, Value) {
        let schedule = self.schedule(schedule_id).expect("schedule exists");
        let mut request = reqwest::Client::new()
            .post(schedule["endpoint"].as_str().unwrap())
            .json(&json!({}));
        if let Some(token) = schedule["auth_token"].as_str() {
            request = request.header("Authorization", format!("Token {token}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
