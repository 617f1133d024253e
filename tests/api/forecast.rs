//! The forecast (what a subscriber gets next), a schedule's next due times, a subscription's
//! history through the events API, and their OpenAPI description.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::helpers::Backend;
use crate::local_time::{at, world};
use crate::on_both_backends;

on_both_backends!(
    a_forecast_follows_the_next_set_across_schedules_and_zones,
    a_subscriptions_history_is_its_events_in_order,
    the_openapi_document_describes_zones_windows_and_the_forecast,
);

pub fn format_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The first instant after `now` at `hour:00` UTC.
fn next_utc_hour(now: DateTime<Utc>, hour: u32) -> DateTime<Utc> {
    let today = now.date_naive().and_hms_opt(hour, 0, 0).unwrap().and_utc();
    if today > now {
        today
    } else {
        today + chrono::Duration::days(1)
    }
}

async fn a_forecast_follows_the_next_set_across_schedules_and_zones(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    // Pregnancy: daily 08:00 in Johannesburg (06:00 UTC); then baby: daily 09:00 UTC.
    let baby_schedule = w.schedule(json!({"minute": "0", "hour": "9"})).await;
    let baby = w.set("baby", baby_schedule, 2, json!({})).await;
    let pregnancy_schedule = w
        .schedule(json!({"minute": "0", "hour": "8", "timezone": "Africa/Johannesburg"}))
        .await;
    let pregnancy = w
        .set(
            "pregnancy",
            pregnancy_schedule,
            2,
            json!({"next_set": baby}),
        )
        .await;
    let subscription = w.subscribe(0, pregnancy, None).await;

    let path = format!("/api/v1/subscriptions/{subscription}/forecast/");
    let before = Utc::now();
    let forecast = w.app.get(&format!("{path}?n=4")).await.expect(200).json();
    let first = next_utc_hour(before, 6);
    let second = first + chrono::Duration::days(1);
    let third = next_utc_hour(second, 9);
    let fourth = third + chrono::Duration::days(1);
    let sends = forecast["sends"].as_array().unwrap();
    let summary: Vec<(i64, i64, String, String, String)> = sends
        .iter()
        .map(|s| {
            (
                s["messageset"].as_i64().unwrap(),
                s["sequence_number"].as_i64().unwrap(),
                s["due"]["utc"].as_str().unwrap().to_string(),
                s["due"]["local"].as_str().unwrap().to_string(),
                s["text_content"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let local_sast = |t: DateTime<Utc>| {
        (t + chrono::Duration::hours(2))
            .format("%Y-%m-%dT%H:%M:%S+02:00")
            .to_string()
    };
    assert_eq!(
        summary,
        vec![
            (
                pregnancy,
                1,
                format_utc(first),
                local_sast(first),
                "pregnancy 1".into()
            ),
            (
                pregnancy,
                2,
                format_utc(second),
                local_sast(second),
                "pregnancy 2".into()
            ),
            (
                baby,
                1,
                format_utc(third),
                format_utc(third),
                "baby 1".into()
            ),
            (
                baby,
                2,
                format_utc(fourth),
                format_utc(fourth),
                "baby 2".into()
            ),
        ]
    );
    assert_eq!(forecast["timezone"], "Africa/Johannesburg");
    assert_eq!(sends[2]["timezone"], "UTC");
    assert_eq!(sends[0]["sends_at"], sends[0]["due"], "no quiet hours");
    assert!(sends[0]["message"].is_i64() && sends[0]["audio_url"].is_null());
    assert!(forecast["pending_send"].is_null());
    let end = &forecast["programme_end"];
    assert_eq!(
        (
            end["reason"].clone(),
            end["messageset"].clone(),
            end["sequence_number"].clone()
        ),
        (json!("last_message"), json!(baby), json!(2))
    );
    assert_eq!(end["sends_remaining"], 4);
    assert_eq!(end["sends_at"]["utc"], json!(format_utc(fourth)));

    // Fewer sends listed; the end is the same. Default n is 5.
    let two = w.app.get(&format!("{path}?n=2")).await.expect(200).json();
    assert_eq!(two["sends"].as_array().unwrap().len(), 2);
    assert_eq!(two["programme_end"], forecast["programme_end"]);
    let default = w.app.get(&path).await.expect(200).json();
    assert_eq!(
        default["sends"].as_array().unwrap().len(),
        4,
        "the programme has 4"
    );
    for bad in ["0", "101", "-1", "five"] {
        let reply = w.app.get(&format!("{path}?n={bad}")).await.expect(400);
        assert!(reply.json()["n"].is_array(), "{bad}: {}", reply.text());
    }
    w.app
        .get("/api/v1/subscriptions/00000000-0000-4000-8000-999999999999/forecast/")
        .await
        .expect(404);

    // The schedule shows its next five due times, in UTC and its own zone.
    let shown = w
        .app
        .get(&format!("/api/v1/schedule/{pregnancy_schedule}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(shown["timezone"], "Africa/Johannesburg");
    let next_due = shown["next_due"].as_array().unwrap();
    assert_eq!(next_due.len(), 5);
    assert_eq!(next_due[0]["utc"], json!(format_utc(first)));
    assert_eq!(next_due[0]["local"], json!(local_sast(first)));
}

async fn a_subscriptions_history_is_its_events_in_order(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let schedule = w.schedule(json!({})).await;
    let set = w.set("history", schedule, 3, json!({})).await;
    let subscription = w.subscribe(0, set, None).await;
    let path = format!("/api/v1/subscriptions/{subscription}/");
    w.app
        .patch(&path, json!({"timezone": "Europe/London"}))
        .await
        .expect(200);
    // A send that goes out, then one that fails for good (three 500s for three attempts).
    sbm::scheduling::ticker::fire(&w.app.db, 3, schedule, at("2027-01-12T08:00:00Z"))
        .await
        .unwrap();
    w.worker(10).drain().await.unwrap();
    w.peers.fail_sends(&[500, 500, 500]);
    sbm::scheduling::ticker::fire(&w.app.db, 3, schedule, at("2027-01-12T08:01:00Z"))
        .await
        .unwrap();
    crate::helpers::eventually("the send fails for good", || async {
        w.worker(10).drain().await.unwrap();
        w.app.count("/api/v1/failed-tasks/").await == 1
    })
    .await;

    let list = w
        .app
        .get(&format!(
            "/api/v1/events/?object_type=subscription&object_id={subscription}"
        ))
        .await
        .expect(200)
        .json();
    let events = list["results"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "subscription.created",
            "subscription.updated",
            "send.succeeded",
            "send.failed"
        ]
    );
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4]);
    assert!(events[0]["data"]["created_by"].is_i64(), "who created it");
    assert_eq!(events[1]["data"]["changed"], json!(["timezone"]));
    assert!(events[1]["data"]["updated_by"].is_i64(), "who changed it");
    assert!(events[2]["data"]["outbound_id"].is_string());
    assert_eq!(events[2]["data"]["sequence_number"], 1);
    assert_eq!(events[3]["data"]["reason"], "http_error.500");
    assert_eq!(events[3]["data"]["attempts"], 3);
}

async fn the_openapi_document_describes_zones_windows_and_the_forecast(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let doc = w.app.get("/api/openapi.json").await.expect(200).json();
    let forecast = &doc["paths"]["/api/v1/subscriptions/{id}/forecast/"]["get"];
    assert_eq!(
        forecast["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ForecastOut"
    );
    let schemas = &doc["components"]["schemas"];
    for (schema, property) in [
        ("ForecastOut", "programme_end"),
        ("ForecastSendOut", "sends_at"),
        ("DueTimeOut", "local"),
        ("ScheduleOut", "timezone"),
        ("ScheduleOut", "next_due"),
        ("SubscriptionOut", "timezone"),
        ("MessageSetOut", "send_window_start"),
        ("MessageSetIn", "send_window_end"),
    ] {
        assert!(
            schemas[schema]["properties"][property].is_object(),
            "{schema}.{property} missing"
        );
    }
}
