//! Input limits, black-box: what one request may make the server hold (query string, declared
//! and actual body size, values per body, string length, multipart parts) and how long a slow
//! client may keep a connection (headers and bodies trickled).

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_query_string_over_the_limit_gets_414,
    a_declared_body_over_the_limit_gets_413_before_it_is_sent,
    a_declared_upload_over_the_limit_gets_413_before_it_is_sent,
    a_body_of_too_many_values_gets_400_and_writes_nothing,
    a_string_over_the_length_limit_gets_400_under_its_field,
    a_form_of_too_many_fields_gets_400,
    an_upload_of_too_many_parts_gets_400,
    headers_trickled_past_the_timeout_lose_the_connection,
    a_body_trickled_past_its_deadline_gets_408,
);

fn port_of(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Writes `head` (request line and headers) on a fresh connection, then reads the status line
/// of the answer, waiting at most 10 s.
async fn status_for_raw(app: &TestApp, head: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port_of(app)))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !answer.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer while the body was never sent");
    let line = String::from_utf8_lossy(&answer);
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

async fn a_query_string_over_the_limit_gets_414(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let long = "a".repeat(9 * 1024);
    let reply = app
        .client
        .get(format!("{}/api/v1/schedule/?filter={long}", app.address))
        .header("Authorization", format!("Token {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 414);
    let body: Value = reply.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("query string"),
        "{body}"
    );
    // Just under the limit is an ordinary request.
    let fits = "a".repeat(8 * 1024 - "filter=".len());
    let reply = app
        .client
        .get(format!("{}/api/v1/schedule/?filter={fits}", app.address))
        .header("Authorization", format!("Token {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

async fn a_declared_body_over_the_limit_gets_413_before_it_is_sent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The test server allows 64 KiB; 10 MB are announced and never sent.
    let head = format!(
        "POST /api/v1/schedule/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        app.token
    );
    assert_eq!(status_for_raw(&app, &head).await, 413);
}

async fn a_declared_upload_over_the_limit_gets_413_before_it_is_sent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The test server allows 1 MiB uploads.
    let head = format!(
        "POST /api/v1/binarycontent/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nExpect: 100-continue\r\n\
         Content-Length: 2000000\r\n\r\n",
        app.token
    );
    assert_eq!(status_for_raw(&app, &head).await, 413);
}

async fn a_body_of_too_many_values_gets_400_and_writes_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Ten thousand and one zeros: 20 KB, well inside the byte limit.
    let many: Vec<u8> = vec![0; 10_001];
    let reply = app
        .post(
            "/api/v1/messageset/",
            json!({"short_name": "limits", "content_type": "text", "notes": many}),
        )
        .await;
    let body = reply.expect(400).json();
    assert!(
        body["non_field_errors"][0]
            .as_str()
            .unwrap()
            .contains("10000 values"),
        "{body}"
    );
    let listed = app.get("/api/v1/messageset/").await.expect(200).json();
    assert_eq!(listed["count"], 0, "{listed}");
}

async fn a_string_over_the_length_limit_gets_400_under_its_field(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.http.max_body_bytes = 1024 * 1024).await else {
        return;
    };
    let reply = app
        .post(
            "/api/v1/messageset/",
            json!({"short_name": "x".repeat(100_001), "content_type": "text"}),
        )
        .await;
    let body = reply.expect(400).json();
    assert_eq!(
        body["short_name"][0], "Ensure this field has no more than 100000 characters.",
        "{body}"
    );
}

async fn a_form_of_too_many_fields_gets_400(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let form = vec!["a=1"; 10_001].join("&");
    let reply = app
        .client
        .post(format!("{}/api/v1/messageset/", app.address))
        .header("Authorization", format!("Token {}", app.token))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let body: Value = reply.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("10000 values"),
        "{body}"
    );
}

async fn an_upload_of_too_many_parts_gets_400(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut form = Form::new();
    for i in 0..17 {
        form = form.text(format!("field{i}"), "x");
    }
    let form = form.part(
        "content",
        Part::bytes(b"ID3 audio".to_vec())
            .file_name("a.mp3")
            .mime_str("audio/mpeg")
            .unwrap(),
    );
    let reply = app
        .client
        .post(format!("{}/api/v1/binarycontent/", app.address))
        .header("Authorization", format!("Token {}", app.token))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let body: Value = reply.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("more than 16 parts"),
        "{body}"
    );
}

async fn headers_trickled_past_the_timeout_lose_the_connection(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.http.header_timeout_ms = 500).await else {
        return;
    };
    let stream = TcpStream::connect(("127.0.0.1", port_of(&app)))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // A header that never ends, a byte every 50 ms: each byte would reset an idle timer.
    let trickle = tokio::spawn(async move {
        writer
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await?;
        loop {
            writer.write_all(b"a").await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // an answer (hyper may send 408) before closing
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the trickling client kept its connection for 10 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    trickle.abort();
    // The server still serves others.
    let reply = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

async fn a_body_trickled_past_its_deadline_gets_408(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.http.body_timeout_ms = 500).await else {
        return;
    };
    let body = json!({"short_name": "slow", "content_type": "text"}).to_string();
    let head = format!(
        "POST /api/v1/messageset/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.token,
        body.len() + 1000
    );
    let stream = TcpStream::connect(("127.0.0.1", port_of(&app)))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let padded = format!("{}{}", " ".repeat(1000), body);
    let trickle = tokio::spawn(async move {
        for byte in padded.into_bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = reader.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an answer within 10 s");
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    let listed = app.get("/api/v1/messageset/").await.expect(200).json();
    assert_eq!(listed["count"], 0, "{listed}");
}
