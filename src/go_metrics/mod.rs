//! The original's metrics, pushed to the Go Metrics API (spec/peers.md §4): metric names,
//! the outbox flusher that batches increments into few requests, and the scheduled metrics.

pub mod client;

use std::collections::BTreeMap;

use crate::scheduling::Cron;
use crate::store::{self, metrics as sql, Db};
pub use client::GoMetricsClient;

pub use crate::model::metrics::{created, normalize, send_failed, sent};

pub const SCHEDULED: [&str; 5] = [
    "subscriptions.active.last",
    "subscriptions.created.last",
    "subscriptions.broken.last",
    "subscriptions.completed.last",
    "subscriptions.incomplete.last",
];

/// Every metric name this service may push, for `GET /api/metrics/`.
pub async fn available(db: &Db) -> store::Result<Vec<String>> {
    let mut conn = db.acquire().await?;
    let sets = sql::message_set_names(conn.conn()).await?;
    let mut names: Vec<String> = vec![
        "subscriptions.created.sum".into(),
        "subscriptions.send_next_message_errored.sum".into(),
    ];
    names.extend(SCHEDULED.iter().map(|s| s.to_string()));
    names.extend((0..7).map(|d| format!("subscriptions.send.estimate.{d}.last")));
    for set in sets {
        names.push(format!("subscriptions.{set}.active.last"));
        names.push(format!("subscriptions.message_set.{}.sum", normalize(&set)));
        names.push(format!(
            "subscriptions.message_set.{}.total.last",
            normalize(&set)
        ));
    }
    Ok(names)
}

/// The scheduled metrics' current values, computed from the subscriptions.
pub async fn scheduled(db: &Db) -> store::Result<BTreeMap<String, f64>> {
    let mut conn = db.acquire().await?;
    let totals = sql::totals(conn.conn()).await?;
    let breakdown = sql::breakdown(conn.conn()).await?;
    let schedules = store::ticks::all_schedules(conn.conn()).await?;
    let mut values = BTreeMap::new();
    for (name, value) in SCHEDULED.iter().zip([
        totals.active,
        totals.created,
        totals.broken,
        totals.completed,
        totals.incomplete,
    ]) {
        values.insert(name.to_string(), value as f64);
    }
    let crons: BTreeMap<i64, Cron> = schedules
        .iter()
        .filter_map(|s| Cron::parse(s).ok().map(|c| (s.id, c)))
        .collect();
    let mut estimate = [0i64; 7];
    for (short_name, _, _, schedule_id, active, _) in &breakdown {
        *values
            .entry(format!("subscriptions.{short_name}.active.last"))
            .or_insert(0.0) += *active as f64;
        if let Some(cron) = crons.get(schedule_id) {
            for (day, total) in estimate.iter_mut().enumerate() {
                if cron.runs_on_weekday(day as u8 + 1) {
                    *total += active;
                }
            }
        }
    }
    for (day, total) in estimate.iter().enumerate() {
        values.insert(
            format!("subscriptions.send.estimate.{day}.last"),
            *total as f64,
        );
    }
    Ok(values)
}

/// The running totals the original fired with each creation.
async fn creation_totals(db: &Db) -> store::Result<BTreeMap<String, f64>> {
    let mut conn = db.acquire().await?;
    let mut values = BTreeMap::new();
    for (short_name, content_type, lang, _, _, all) in sql::breakdown(conn.conn()).await? {
        for name in [
            format!(
                "subscriptions.message_set.{}.total.last",
                normalize(&short_name)
            ),
            format!("subscriptions.language.{}.total.last", normalize(&lang)),
            format!(
                "subscriptions.message_format.{}.total.last",
                normalize(&content_type)
            ),
        ] {
            *values.entry(name).or_insert(0.0) += all as f64;
        }
    }
    Ok(values)
}

/// Pushes the pending increments, a batch per request; returns how many rows went out.
pub async fn flush(db: &Db, client: &GoMetricsClient) -> anyhow::Result<usize> {
    const BATCH: i64 = 10_000;
    let mut pushed = 0;
    loop {
        let rows = {
            let mut conn = db.acquire().await?;
            sql::pending(conn.conn(), BATCH).await?
        };
        let Some(last_id) = rows.last().map(|r| r.0) else {
            return Ok(pushed);
        };
        let mut body: BTreeMap<String, f64> = BTreeMap::new();
        for (_, name, value) in &rows {
            if name.ends_with(".last") {
                body.insert(name.clone(), *value);
            } else {
                *body.entry(name.clone()).or_insert(0.0) += value;
            }
        }
        if body.contains_key("subscriptions.created.sum") {
            body.extend(creation_totals(db).await?);
        }
        client.push(&body).await?;
        let mut tx = db.begin().await?;
        sql::delete_through(tx.conn(), last_id).await?;
        tx.commit().await?;
        pushed += rows.len();
        if (rows.len() as i64) < BATCH {
            return Ok(pushed);
        }
    }
}

/// The `FireScheduledMetrics` job: computes the scheduled metrics and pushes them, when a
/// Go Metrics API is configured.
pub async fn fire_scheduled(
    db: &Db,
    client: Option<&GoMetricsClient>,
    claim: &crate::jobs::Claim<'_>,
) -> crate::jobs::Outcome {
    if let Some(client) = client {
        let values = scheduled(db).await?;
        client.push(&values).await?;
    }
    claim.finish_alone(db).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::content::MessageSet;

    #[test]
    fn names_are_normalised_as_the_original_did() {
        assert_eq!(
            normalize("momconnect_prebirth.hw_full.1"),
            "momconnect_prebirth_hw_full_1"
        );
        assert_eq!(normalize("  Baby -- 1 "), "Baby_1");
        assert_eq!(normalize("eng_ZA"), "eng_ZA");
    }

    #[test]
    fn every_metric_ends_in_an_aggregator() {
        let set = MessageSet {
            id: 1,
            short_name: "pregnancy.1".into(),
            label: String::new(),
            notes: None,
            channel: None,
            next_set_id: None,
            default_schedule_id: 1,
            content_type: "text".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            send_window_start: None,
            send_window_end: None,
        };
        let names = [
            created(&set, "eng_ZA"),
            sent(&set),
            send_failed("errored"),
            send_failed("http_error.500"),
        ]
        .concat();
        assert!(names.contains(&"subscriptions.message_set.pregnancy_1.sum".to_string()));
        assert!(names.contains(&"message.text.pregnancy_1.sum".to_string()));
        assert!(names.contains(&"sbm.send_next_message.http_error.500.sum".to_string()));
        for name in names.iter().chain(
            SCHEDULED
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .iter(),
        ) {
            let aggregator = name.rsplit('.').next().unwrap();
            assert!(
                ["sum", "avg", "max", "min", "last"].contains(&aggregator),
                "{name}"
            );
        }
    }
}
