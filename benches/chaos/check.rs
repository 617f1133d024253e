//! The end state of a run, judged by identity against what the fakes saw and what the database
//! holds.

use std::collections::HashSet;

use sbm::store::Db;

use crate::peers::Seen;
use crate::setup::count;

pub struct Verdict {
    pub rows: Vec<(String, String)>,
    pub failures: Vec<String>,
}

impl Verdict {
    fn figure(&mut self, name: &str, value: impl ToString) {
        self.rows.push((name.to_string(), value.to_string()));
    }

    fn require(&mut self, ok: bool, what: String) {
        if !ok {
            self.failures.push(what);
        }
    }
}

async fn uuids(db: &Db, sql: &str) -> Vec<uuid::Uuid> {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    }
}

async fn ids(db: &Db, sql: &str) -> Vec<i64> {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    }
}

pub async fn judge(db: &Db, seen: &Seen, n: i64, verdict: &mut Verdict) {
    sends(db, seen, n, verdict).await;
    events(db, seen, n, verdict).await;
    integration(db, seen, verdict).await;
    let unfinished = count(
        db,
        "select count(*) from job where state in ('pending', 'running')",
    )
    .await;
    let failed = count(db, "select count(*) from job where state = 'failed'").await;
    verdict.figure(
        "jobs pending or running / failed",
        format!("{unfinished} / {failed}"),
    );
    verdict.require(
        unfinished == 0,
        format!("{unfinished} jobs still pending or running"),
    );
    verdict.require(failed == 0, format!("{failed} jobs failed for good"));
}

async fn sends(db: &Db, seen: &Seen, n: i64, verdict: &mut Verdict) {
    let (reached, distinct_sends, duplicates) = {
        let by_identity = seen.sends_by_identity.lock().unwrap();
        let distinct: usize = by_identity.values().map(HashSet::len).sum();
        let duplicates: usize = by_identity.values().map(|s| s.len() - 1).sum();
        (by_identity.len() as i64, distinct, duplicates)
    };
    let losses = n - reached;
    let taken = seen
        .outbound_taken
        .load(std::sync::atomic::Ordering::Relaxed);
    let requests = seen
        .outbound_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    verdict.figure(
        "outbound requests / taken by the Message Sender",
        format!("{requests} / {taken}"),
    );
    verdict.figure("sends (distinct sbm_send_id)", distinct_sends);
    verdict.figure("distinct-send duplicates", duplicates);
    verdict.figure("losses (subscribers with no message)", losses);
    verdict.require(
        duplicates == 0,
        format!("{duplicates} subscribers got a second, distinct send"),
    );
    verdict.require(losses == 0, format!("{losses} subscribers got no message"));
    let once = count(
        db,
        "select count(*) from subscription where next_sequence_number = 2",
    )
    .await;
    let other = count(
        db,
        "select count(*) from subscription where next_sequence_number <> 2",
    )
    .await;
    verdict.figure(
        "subscriptions advanced exactly once / otherwise",
        format!("{once} / {other}"),
    );
    verdict.require(
        once == n && other == 0,
        format!("{once} of {n} advanced exactly once, {other} not"),
    );
}

async fn events(db: &Db, seen: &Seen, n: i64, verdict: &mut Verdict) {
    let stored = uuids(db, "select event_id from event where type like 'send.%'").await;
    let succeeded = count(
        db,
        "select count(*) from event where type = 'send.succeeded'",
    )
    .await;
    let (undelivered, unstable, unknown) = {
        let acknowledged = seen.events_acknowledged.lock().unwrap();
        let webhook_ids = seen.webhook_ids.lock().unwrap();
        let stored_ids: HashSet<String> = stored.iter().map(|s| s.to_string()).collect();
        (
            stored_ids
                .iter()
                .filter(|id| !acknowledged.contains(*id))
                .count(),
            webhook_ids.values().filter(|ids| ids.len() != 1).count(),
            webhook_ids
                .keys()
                .filter(|id| !stored_ids.contains(*id))
                .count(),
        )
    };
    let requests = seen
        .event_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    verdict.figure(
        "send.* events stored / send.succeeded",
        format!("{} / {succeeded}", stored.len()),
    );
    verdict.figure("event POSTs received", requests);
    verdict.figure("events never acknowledged", undelivered);
    verdict.figure("events seen with more than one webhook-id", unstable);
    verdict.require(
        succeeded == n,
        format!("{succeeded} send.succeeded events for {n} sends"),
    );
    verdict.require(
        undelivered == 0,
        format!("{undelivered} events never delivered"),
    );
    verdict.require(
        unstable == 0,
        format!("{unstable} events with changing webhook-id"),
    );
    verdict.require(
        unknown == 0,
        format!("{unknown} events received that are not stored"),
    );
    let failed = count(
        db,
        "select count(*) from delivery where state <> 'succeeded'",
    )
    .await;
    verdict.require(failed == 0, format!("{failed} deliveries not succeeded"));
}

async fn integration(db: &Db, seen: &Seen, verdict: &mut Verdict) {
    let messages = ids(db, "select id from integration_message").await;
    let unsent = count(
        db,
        "select count(*) from integration_message where sent_at is null",
    )
    .await;
    let pushed_in = seen.pushed_in.lock().unwrap();
    let never = messages
        .iter()
        .filter(|id| !pushed_in.contains_key(id))
        .count();
    let twice = pushed_in.values().filter(|keys| keys.len() > 1).count();
    let batches: HashSet<&String> = pushed_in.values().flatten().collect();
    let requests = seen
        .push_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    verdict.figure(
        "integration messages / unsent",
        format!("{} / {unsent}", messages.len()),
    );
    verdict.figure(
        "push POSTs / acknowledged batches",
        format!("{requests} / {}", batches.len()),
    );
    verdict.figure(
        "messages in no acknowledged batch / in more than one",
        format!("{never} / {twice}"),
    );
    verdict.require(
        unsent == 0 && never == 0,
        format!("{never} integration messages never pushed, {unsent} unsent"),
    );
    verdict.require(
        twice == 0,
        format!("{twice} integration messages acknowledged in two batches"),
    );
}
