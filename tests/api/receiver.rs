//! A fake third-party receiver of callbacks: a real HTTP server on loopback that answers the
//! hub's verification requests and takes deliveries, recording every request as it came.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// How the receiver answers a verification of intent (`GET ?hub.mode=subscribe|unsubscribe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// 200 with exactly the challenge as the body.
    Echo,
    /// 200 with some other body.
    WrongEcho,
    /// 404.
    NotFound,
}

/// One scripted answer to a POST.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: format!("scripted {status}"),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Answer {
        self.body = body.to_string();
        self
    }
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    /// Header names in lowercase; repeated headers joined with ", ".
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
    pub at: DateTime<Utc>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The events this delivery carried: the body itself, or each element of a batch.
    pub fn events(&self) -> Vec<Value> {
        match &self.json {
            Value::Array(items) => items.clone(),
            Value::Null => Vec::new(),
            event => vec![event.clone()],
        }
    }
}

struct State {
    requests: Vec<Received>,
    verify: Verify,
    script: VecDeque<Answer>,
    default: Answer,
}

#[derive(Clone)]
pub struct Receiver {
    pub address: String,
    state: Arc<Mutex<State>>,
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut header_map: HashMap<String, String> = HashMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let received = Received {
        method: method.as_str().to_string(),
        path: uri.path().to_string(),
        query: query.clone(),
        headers: header_map,
        body: body.to_vec(),
        text: String::from_utf8_lossy(&body).into_owned(),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Utc::now(),
    };
    let mut state = state.lock().unwrap();
    state.requests.push(received);
    if method == Method::GET {
        let mode = query.get("hub.mode").map(String::as_str);
        return match mode {
            Some("subscribe") | Some("unsubscribe") => {
                let challenge = query.get("hub.challenge").cloned().unwrap_or_default();
                match state.verify {
                    Verify::Echo => (StatusCode::OK, challenge).into_response(),
                    Verify::WrongEcho => {
                        (StatusCode::OK, format!("not-{challenge}")).into_response()
                    }
                    Verify::NotFound => (StatusCode::NOT_FOUND, "no such hook").into_response(),
                }
            }
            _ => (StatusCode::OK, "ok").into_response(),
        };
    }
    let answer = state
        .script
        .pop_front()
        .unwrap_or_else(|| state.default.clone());
    let mut response = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
    for (name, value) in answer.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

impl Receiver {
    /// A receiver that echoes challenges and accepts every delivery with 200.
    pub async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            verify: Verify::Echo,
            script: VecDeque::new(),
            default: Answer::status(200).body("ok"),
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { address, state }
    }

    /// The absolute URL of `path` (which may carry a query) on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn verify_with(&self, verify: Verify) {
        self.state.lock().unwrap().verify = verify;
    }

    /// The next POSTs get these answers, one each, before the default applies again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// The next POSTs get these statuses, one each.
    pub fn script_statuses(&self, statuses: &[u16]) {
        self.script(statuses.iter().map(|s| Answer::status(*s)));
    }

    /// Every POST not scripted gets this answer.
    pub fn answer_by_default(&self, answer: Answer) {
        self.state.lock().unwrap().default = answer;
    }

    /// Every POST not scripted gets this status.
    pub fn always(&self, status: u16) {
        let answer = if status < 300 {
            Answer::status(status).body("ok")
        } else {
            Answer::status(status)
        };
        self.answer_by_default(answer);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every POST (delivery attempt), in the order received.
    pub fn deliveries(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    /// The POSTs to one path (the query is not part of the path).
    pub fn deliveries_to(&self, path: &str) -> Vec<Received> {
        self.deliveries()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Every event delivered (batches flattened), in the order received.
    pub fn delivered_events(&self) -> Vec<Value> {
        self.deliveries()
            .iter()
            .flat_map(Received::events)
            .collect()
    }

    /// The types of the events delivered to one path, sorted.
    pub fn delivered_types_to(&self, path: &str) -> Vec<String> {
        let mut types: Vec<String> = self
            .deliveries_to(path)
            .iter()
            .flat_map(Received::events)
            .map(|e| e["type"].as_str().unwrap_or_default().to_string())
            .collect();
        types.sort();
        types
    }

    /// Verifications of intent: GETs with `hub.mode` subscribe or unsubscribe.
    pub fn verifications(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.method == "GET"
                    && matches!(r.param("hub.mode"), Some("subscribe") | Some("unsubscribe"))
            })
            .collect()
    }

    /// Notices of denial: GETs with `hub.mode=denied`.
    pub fn denials(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.param("hub.mode") == Some("denied"))
            .collect()
    }
}
