//! Fake peers on loopback that misbehave on a seeded schedule: the Identity Store (always
//! answers), the Message Sender, a WebSub receiver and an integration push target. Each keeps
//! what it saw so that the run can be judged by identity, not by request counts.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// How a fake peer answers one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    Ok,
    ServerError,
    /// 429 with `Retry-After: 1`.
    TooMany,
    /// Answers only after sbm's timeout (the request was taken, the answer is late).
    Late,
    /// Closes the connection without an answer.
    Drop,
    /// Takes the request, then closes the connection without an answer.
    TakeThenDrop,
}

/// The panic message that closes a connection; the bench's panic hook keeps it quiet.
pub const DROP_PANIC: &str = "chaos: dropping the connection";

/// The seeded mix of answers.
pub struct Mix {
    rng: Mutex<StdRng>,
    /// Answers other than Ok are given with this probability in total.
    pub fault_rate: f64,
}

impl Mix {
    pub fn new(seed: u64, fault_rate: f64) -> Mix {
        Mix {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            fault_rate,
        }
    }

    pub fn next(&self) -> Answer {
        let mut rng = self.rng.lock().unwrap();
        if !rng.gen_bool(self.fault_rate) {
            return Answer::Ok;
        }
        match rng.gen_range(0..5) {
            0 => Answer::ServerError,
            1 => Answer::TooMany,
            2 => Answer::Late,
            3 => Answer::Drop,
            _ => Answer::TakeThenDrop,
        }
    }
}

/// What the fakes saw.
#[derive(Default)]
pub struct Seen {
    /// Message Sender: every send id taken, by recipient identity.
    pub sends_by_identity: Mutex<HashMap<String, HashSet<String>>>,
    pub outbound_requests: AtomicU64,
    pub outbound_taken: AtomicU64,
    /// Receiver: every webhook-id seen with each event id, on any attempt.
    pub webhook_ids: Mutex<HashMap<String, HashSet<String>>>,
    /// Receiver: events answered with a 2xx.
    pub events_acknowledged: Mutex<HashSet<String>>,
    pub event_requests: AtomicU64,
    /// Push target: for each integration message id, the batches (Idempotency-Key) that were
    /// answered with a 2xx.
    pub pushed_in: Mutex<HashMap<i64, HashSet<String>>>,
    pub push_requests: AtomicU64,
    /// Answers given, by kind, over all fakes.
    pub answers: Mutex<HashMap<String, u64>>,
}

pub struct Fakes {
    pub seen: Arc<Seen>,
    pub mix: Arc<Mix>,
    /// How late a `Late` answer is.
    pub late: Duration,
}

type Shared = Arc<Fakes>;

impl Fakes {
    fn answer(&self) -> Answer {
        let answer = self.mix.next();
        *self
            .seen
            .answers
            .lock()
            .unwrap()
            .entry(format!("{answer:?}"))
            .or_default() += 1;
        answer
    }
}

/// The response for an answer after the request was (or was not) taken; `Ok` gives `ok`.
async fn respond(fakes: &Fakes, answer: Answer, ok: Response) -> Response {
    match answer {
        Answer::Ok => ok,
        Answer::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "chaos").into_response(),
        Answer::TooMany => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response(),
        Answer::Late => {
            tokio::time::sleep(fakes.late).await;
            ok
        }
        Answer::Drop | Answer::TakeThenDrop => panic!("{DROP_PANIC}"),
    }
}

fn taken(answer: Answer) -> bool {
    matches!(answer, Answer::Ok | Answer::Late | Answer::TakeThenDrop)
}

async fn address() -> Json<Value> {
    Json(json!({"count": 1, "next": null, "previous": null,
        "results": [{"address": "+27820000000"}]}))
}

async fn outbound(State(fakes): State<Shared>, Json(body): Json<Value>) -> Response {
    let seen = &fakes.seen;
    let n = seen.outbound_requests.fetch_add(1, Ordering::Relaxed);
    let answer = fakes.answer();
    if taken(answer) {
        let identity = body["to_identity"].as_str().unwrap_or_default().to_string();
        let send_id = body["metadata"]["sbm_send_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        seen.sends_by_identity
            .lock()
            .unwrap()
            .entry(identity)
            .or_default()
            .insert(send_id);
        seen.outbound_taken.fetch_add(1, Ordering::Relaxed);
    }
    let ok = (
        StatusCode::CREATED,
        Json(json!({"id": format!("outbound-{n}")})),
    )
        .into_response();
    respond(&fakes, answer, ok).await
}

/// WebSub verification of intent: echo the challenge, always.
async fn verify(Query(query): Query<HashMap<String, String>>) -> String {
    query.get("hub.challenge").cloned().unwrap_or_default()
}

async fn events(
    State(fakes): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let seen = &fakes.seen;
    seen.event_requests.fetch_add(1, Ordering::Relaxed);
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let events = match body {
        Value::Array(events) => events,
        event => vec![event],
    };
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect();
    {
        let mut by_event = seen.webhook_ids.lock().unwrap();
        for id in &ids {
            by_event
                .entry(id.clone())
                .or_default()
                .insert(webhook_id.clone());
        }
    }
    let answer = fakes.answer();
    if answer == Answer::Ok {
        seen.events_acknowledged.lock().unwrap().extend(ids);
    }
    respond(&fakes, answer, StatusCode::NO_CONTENT.into_response()).await
}

async fn push(
    State(fakes): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let seen = &fakes.seen;
    seen.push_requests.fetch_add(1, Ordering::Relaxed);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let answer = fakes.answer();
    if answer == Answer::Ok {
        let mut pushed = seen.pushed_in.lock().unwrap();
        for message in body["messages"].as_array().into_iter().flatten() {
            if let Some(id) = message["id"].as_i64() {
                pushed.entry(id).or_default().insert(key.clone());
            }
        }
    }
    respond(&fakes, answer, StatusCode::OK.into_response()).await
}

/// Starts the fakes; returns their base URL.
pub async fn start(fakes: Fakes) -> (String, Shared) {
    let shared = Arc::new(fakes);
    let app = Router::new()
        .route(
            "/identity/api/v1/identities/{id}/addresses/msisdn",
            get(address),
        )
        .route("/sender/api/v1/outbound/", post(outbound))
        .route("/events", get(verify).post(events))
        .route("/push", post(push))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, shared)
}

/// Keeps the deliberate connection drops out of the output.
pub fn quiet_drop_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if !message.contains(DROP_PANIC) {
            default(info);
        }
    }));
}
