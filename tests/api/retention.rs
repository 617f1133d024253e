//! Retention (docs/scaling.md): `sbm prune` and the workers' pruning loop delete events,
//! deliveries and integration messages past their retention, and never one that still has work
//! waiting on it. Rows are made through the API and then made old by moving their timestamps
//! back with SQL (the server has no clock a test can set).

use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use sbm::store::Db;
use serde_json::{json, Value};

use crate::helpers::{eventually, output_of, quiet, spawn_app_with, Backend, TestApp};
use crate::hub::{deliveries_of, hook_schedules, spawn_hub_app};
use crate::on_both_backends;
use crate::receiver::Receiver;

on_both_backends!(
    old_events_deliveries_and_sent_messages_are_pruned_and_recent_ones_kept,
    an_old_event_is_kept_while_its_delivery_or_its_integration_message_waits,
    one_pass_deletes_more_rows_than_a_batch,
    the_workers_prune_more_rows_than_a_batch_and_count_them,
    zero_days_keeps_rows_forever,
    two_pruners_at_once_delete_each_row_once_and_audit_entries_only_when_asked,
);

fn days_ago(days: i64) -> DateTime<Utc> {
    sbm::store::now() - Duration::days(days)
}

/// Runs one statement with `at` bound as `$1`.
async fn exec(app: &TestApp, sql: &str, at: DateTime<Utc>) {
    match &app.db {
        Db::Postgres(pool) => sqlx::query(sql).bind(at).execute(pool).await.map(|_| ()),
        Db::Sqlite(pool) => sqlx::query(sql).bind(at).execute(pool).await.map(|_| ()),
    }
    .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// Runs `sbm prune` against the app's database with these settings; returns what it printed.
async fn sbm_prune(app: &TestApp, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sbm"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app.database_url())
        .env("SECRET_KEY", crate::helpers::TEST_SECRET_KEY)
        .envs(env.iter().copied())
        .arg("prune");
    let output = output_of(command).await;
    assert!(
        output.status.success(),
        "sbm prune failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The events of schedules the API lists.
async fn schedule_events(app: &TestApp) -> Vec<Value> {
    let list = app
        .get("/api/v1/events/?object_type=schedule&limit=1000")
        .await
        .expect(200)
        .json();
    list["results"].as_array().cloned().unwrap_or_default()
}

fn object_ids(events: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e["object"]["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

/// The ids of the group's messages, oldest first.
async fn message_ids(app: &TestApp, group: &str) -> Vec<i64> {
    let list = app
        .get(&format!(
            "/api/v1/integration-groups/{group}/messages/?limit=1000"
        ))
        .await
        .expect(200)
        .json();
    let mut ids: Vec<i64> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

async fn add_message(app: &TestApp, group: &str, n: i64) -> i64 {
    app.post(
        &format!("/api/v1/integration-groups/{group}/messages/"),
        json!({ "data": { "n": n } }),
    )
    .await
    .expect(201)
    .json()["id"]
        .as_i64()
        .unwrap()
}

async fn old_events_deliveries_and_sent_messages_are_pruned_and_recent_ones_kept(backend: Backend) {
    // Arrange: three schedules' events delivered to a callback, and three messages by hand.
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let callback = hook_schedules(&app, &receiver).await;
    let mut schedules = Vec::new();
    for _ in 0..3 {
        schedules.push(app.create_schedule().await.to_string());
    }
    eventually("the three events are delivered", || async {
        receiver.delivered_events().len() == 3
    })
    .await;
    quiet(&app).await;
    app.post(
        "/api/v1/integration-groups/",
        json!({"name": "records", "method": "poll", "title": "Records"}),
    )
    .await
    .expect(201);
    let sent_long_ago = add_message(&app, "records", 1).await;
    let sent_yesterday = add_message(&app, "records", 2).await;
    let waiting_long = add_message(&app, "records", 3).await;

    // Every event is old; the first two schedules' deliveries are older than their 30 days,
    // the third's is not. One message was sent long ago, one yesterday, one waits since long.
    exec(
        &app,
        "update event set occurred_at = $1 where object_type = 'schedule'",
        days_ago(100),
    )
    .await;
    let first_two = format!("('{}', '{}')", schedules[0], schedules[1]);
    exec(
        &app,
        &format!(
            "update delivery set delivered_at = $1 where event_id in \
        (select id from event where object_type = 'schedule' and object_id in {first_two})"
        ),
        days_ago(40),
    )
    .await;
    exec(
        &app,
        &format!("update integration_message set sent_at = $1 where id = {sent_long_ago}"),
        days_ago(100),
    )
    .await;
    exec(
        &app,
        &format!("update integration_message set sent_at = $1 where id = {sent_yesterday}"),
        days_ago(1),
    )
    .await;
    exec(
        &app,
        &format!("update integration_message set created_at = $1 where id = {waiting_long}"),
        days_ago(100),
    )
    .await;

    // Act
    let printed = sbm_prune(&app, &[]).await;

    // Assert: the first two schedules' deliveries and events are gone; the third event stays
    // with its recent delivery; only the message sent long ago is gone.
    assert!(
        printed.contains("delivery: 2 deleted (older than 30 days)"),
        "{printed}"
    );
    assert!(
        printed.contains("event: 2 deleted (older than 90 days)"),
        "{printed}"
    );
    assert!(
        printed.contains("integration_message: 1 deleted (older than 90 days)"),
        "{printed}"
    );
    assert!(printed.contains("audit_log: kept forever"), "{printed}");
    assert_eq!(
        object_ids(&schedule_events(&app).await),
        vec![schedules[2].clone()]
    );
    assert_eq!(deliveries_of(&app, &callback, "").await.len(), 1);
    assert_eq!(
        message_ids(&app, "records").await,
        vec![sent_yesterday, waiting_long]
    );

    // A second pass finds nothing more to do.
    let printed = sbm_prune(&app, &[]).await;
    assert!(printed.contains("event: 0 deleted"), "{printed}");
    assert!(printed.contains("delivery: 0 deleted"), "{printed}");
}

async fn an_old_event_is_kept_while_its_delivery_or_its_integration_message_waits(
    backend: Backend,
) {
    // Arrange: a group fed by schedule events whose messages nobody fetches, one schedule's
    // event made before any callback (so only its message waits), and one delivered to a
    // callback that refuses it (retried in an hour) whose message is sent.
    let Some(app) = spawn_hub_app(backend, |config| {
        config.events.retry_schedule_secs = vec![3600];
    })
    .await
    else {
        return;
    };
    app.post(
        "/api/v1/integration-groups/",
        json!({"name": "feed", "method": "poll", "title": "Feed", "event_types": ["schedule.created"]}),
    )
    .await
    .expect(201);
    let waiting = app.create_schedule().await.to_string();
    let receiver = Receiver::start().await;
    hook_schedules(&app, &receiver).await;
    receiver.always(500);
    let refused = app.create_schedule().await.to_string();
    eventually("the delivery was refused once", || async {
        !receiver.deliveries().is_empty()
    })
    .await;
    quiet(&app).await;
    assert_eq!(message_ids(&app, "feed").await.len(), 2);
    exec(&app, "update event set occurred_at = $1", days_ago(365)).await;
    exec(
        &app,
        "update delivery set created_at = $1, updated_at = $1",
        days_ago(365),
    )
    .await;
    exec(
        &app,
        "update integration_message set created_at = $1",
        days_ago(365),
    )
    .await;
    exec(
        &app,
        &format!(
            "update integration_message set sent_at = $1 where event_id = \
             (select event_id from event where object_type = 'schedule' and object_id = '{refused}')"
        ),
        days_ago(365),
    )
    .await;

    // Act
    let printed = sbm_prune(&app, &[]).await;

    // Assert: the sent message is gone, both events stay.
    assert!(
        printed.contains("integration_message: 1 deleted"),
        "{printed}"
    );
    assert!(printed.contains("delivery: 0 deleted"), "{printed}");
    let mut both = vec![refused.clone(), waiting.clone()];
    both.sort();
    assert_eq!(object_ids(&schedule_events(&app).await), both);

    // Once the delivery has succeeded long ago and the other message was sent long ago, both
    // events go.
    exec(
        &app,
        "update delivery set state = 'succeeded', delivered_at = $1",
        days_ago(365),
    )
    .await;
    exec(
        &app,
        "update integration_message set sent_at = $1",
        days_ago(365),
    )
    .await;
    let printed = sbm_prune(&app, &[]).await;
    assert!(printed.contains("delivery: 1 deleted"), "{printed}");
    assert!(
        printed.contains("integration_message: 1 deleted"),
        "{printed}"
    );
    assert!(schedule_events(&app).await.is_empty());
}

async fn one_pass_deletes_more_rows_than_a_batch(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    for _ in 0..10 {
        app.create_schedule().await;
    }
    quiet(&app).await;
    exec(&app, "update event set occurred_at = $1", days_ago(91)).await;

    let printed = sbm_prune(&app, &[("SBM_PRUNE_BATCH_SIZE", "3")]).await;

    assert!(printed.contains("event: 10 deleted"), "{printed}");
    assert!(schedule_events(&app).await.is_empty());
}

async fn the_workers_prune_more_rows_than_a_batch_and_count_them(backend: Backend) {
    // Arrange: ten events, made old, and workers that prune every second, three rows a batch.
    let Some(app) = spawn_app_with(backend, |config| {
        config.worker.retention.prune_interval_secs = 1;
        config.worker.retention.prune_batch_size = 3;
    })
    .await
    else {
        return;
    };
    for _ in 0..10 {
        app.create_schedule().await;
    }
    let recent = app.create_schedule().await.to_string();
    quiet(&app).await;
    exec(
        &app,
        &format!("update event set occurred_at = $1 where object_id <> '{recent}'"),
        days_ago(91),
    )
    .await;

    // Act and assert: the loop deletes all ten, batch after batch, and keeps the recent one.
    eventually("the old events are pruned", || async {
        object_ids(&schedule_events(&app).await) == vec![recent.clone()]
    })
    .await;
    let metrics = app
        .send(app.client.get(app.url("/metrics")))
        .await
        .expect(200)
        .text();
    assert!(
        metrics.contains("sbm_pruned_rows_total{table=\"event\"}"),
        "{metrics}"
    );
}

async fn zero_days_keeps_rows_forever(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    hook_schedules(&app, &receiver).await;
    app.create_schedule().await;
    eventually("the event is delivered", || async {
        receiver.delivered_events().len() == 1
    })
    .await;
    quiet(&app).await;
    exec(&app, "update event set occurred_at = $1", days_ago(3650)).await;
    exec(
        &app,
        "update delivery set delivered_at = $1",
        days_ago(3650),
    )
    .await;

    let printed = sbm_prune(
        &app,
        &[
            ("SBM_EVENT_RETENTION_DAYS", "0"),
            ("SBM_DELIVERY_RETENTION_DAYS", "0"),
        ],
    )
    .await;

    assert!(printed.contains("event: kept forever"), "{printed}");
    assert!(printed.contains("delivery: kept forever"), "{printed}");
    assert_eq!(schedule_events(&app).await.len(), 1);

    // Keeping only deliveries forever keeps their events too.
    let printed = sbm_prune(&app, &[("SBM_DELIVERY_RETENTION_DAYS", "0")]).await;
    assert!(printed.contains("delivery: kept forever"), "{printed}");
    assert_eq!(schedule_events(&app).await.len(), 1);
}

/// The count `sbm prune` printed for a table.
fn deleted(printed: &str, table: &str) -> u64 {
    printed
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{table}: ")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count for {table} in {printed}"))
}

async fn two_pruners_at_once_delete_each_row_once_and_audit_entries_only_when_asked(
    backend: Backend,
) {
    // Arrange: 30 old events, and old audit entries (tokens issued through the API).
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    for _ in 0..30 {
        app.create_schedule().await;
    }
    for i in 0..3 {
        app.post(
            "/api/v1/user/token/",
            json!({"email": format!("user{i}@example.org")}),
        )
        .await
        .expect(201);
    }
    quiet(&app).await;
    exec(&app, "update event set occurred_at = $1", days_ago(91)).await;
    exec(&app, "update audit_log set at = $1", days_ago(400)).await;
    let audited = app
        .get("/api/v1/audit/?limit=1000")
        .await
        .expect(200)
        .json()["count"]
        .as_i64()
        .unwrap();
    assert!(audited >= 3, "{audited}");

    // Act: two passes at once, three rows a batch, one of them with an audit retention.
    let batch = [("SBM_PRUNE_BATCH_SIZE", "3")];
    let with_audit = [
        ("SBM_PRUNE_BATCH_SIZE", "3"),
        ("SBM_AUDIT_RETENTION_DAYS", "365"),
    ];
    let (first, second) = tokio::join!(sbm_prune(&app, &batch), sbm_prune(&app, &with_audit));

    // Assert: every old event went exactly once between them; the audit entries only by the
    // pass that was given a retention for them.
    assert_eq!(
        deleted(&first, "event") + deleted(&second, "event"),
        30,
        "{first}\n{second}"
    );
    assert!(schedule_events(&app).await.is_empty());
    assert!(first.contains("audit_log: kept forever"), "{first}");
    assert_eq!(deleted(&second, "audit_log"), audited as u64, "{second}");
    let left = app
        .get("/api/v1/audit/?limit=1000")
        .await
        .expect(200)
        .json()["count"]
        .as_i64()
        .unwrap();
    assert_eq!(left, 0);
}
