//! Events, and their fan-out to deliveries. Callbacks and deliveries are in their own files;
//! their old paths under `store::events` stay re-exported while the step-7 branches merge.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;
use uuid::Uuid;

use super::dialect::prefer_index_walks;
use super::filter::{count_and_page_ordered, Condition};
use super::{on_conn, sqlite_lists, Conn, Page, Result, Slice};

pub use super::callbacks::*;
pub use super::deliveries::*;

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: i64,
    pub event_id: Uuid,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub object_type: String,
    pub object_id: String,
    pub sequence: i64,
    pub occurred_at: DateTime<Utc>,
    /// Kept as the stored text: reading it never parses it, so no stored value (however deep)
    /// can fail a list or a delivery pass.
    pub data: Json<Box<RawValue>>,
    pub spread_at: Option<DateTime<Utc>>,
}

/// An event to insert, its sequence already given.
#[derive(Debug, Clone)]
pub struct NewEventRow {
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub object_type: &'static str,
    pub object_id: String,
    pub sequence: i64,
    pub data: Value,
}

/// Takes `count` sequence numbers for each object; returns the last one taken per object. The
/// keys are locked in sorted order, so writers of overlapping objects cannot deadlock.
pub async fn take_sequences(
    conn: Conn<'_>,
    wanted: &[(&'static str, String, i64)],
) -> Result<HashMap<(String, String), i64>> {
    let mut wanted = wanted.to_vec();
    wanted.sort();
    let rows: Vec<(String, String, i64)> = match conn {
        Conn::Postgres(c) => {
            const SQL: &str = "insert into event_sequence (object_type, object_id, last_sequence) \
                select * from unnest($1::text[], $2::text[], $3::int8[]) \
                on conflict (object_type, object_id) \
                do update set last_sequence = event_sequence.last_sequence + excluded.last_sequence \
                returning object_type, object_id, last_sequence";
            let types: Vec<&str> = wanted.iter().map(|w| w.0).collect();
            let ids: Vec<&str> = wanted.iter().map(|w| w.1.as_str()).collect();
            let counts: Vec<i64> = wanted.iter().map(|w| w.2).collect();
            sqlx::query_as(SQL)
                .bind(types)
                .bind(ids)
                .bind(counts)
                .fetch_all(&mut *c)
                .await?
        }
        Conn::Sqlite(c) => {
            // `where true`: SQLite's parser needs it between a select and `on conflict`.
            const SQL: &str = "insert into event_sequence (object_type, object_id, last_sequence) \
                select value ->> 0, value ->> 1, value ->> 2 from json_each($1) where true \
                on conflict (object_type, object_id) \
                do update set last_sequence = last_sequence + excluded.last_sequence \
                returning object_type, object_id, last_sequence";
            sqlx::query_as(SQL)
                .bind(sqlite_lists::rows(&wanted))
                .fetch_all(&mut *c)
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(t, id, last)| ((t, id), last))
        .collect())
}

/// Numbers and inserts events: each object's events get the sequence numbers after its last,
/// in the order given. On PostgreSQL, taking the numbers and inserting the events is one
/// statement (a creation's transaction writes one event, and each round trip was an eighth of
/// its cost); on SQLite, [`take_sequences`] then [`insert_events`]. The objects' sequence rows
/// are locked in the same sorted order either way. Returns the rows as inserted.
pub async fn insert_numbered_events(
    conn: Conn<'_>,
    events: Vec<(&'static str, &'static str, String, Value)>,
    now: DateTime<Utc>,
) -> Result<Vec<NewEventRow>> {
    // Each event's place among its object's, from 1, and each object's count.
    let mut counts: HashMap<(&'static str, String), i64> = HashMap::new();
    let mut rows: Vec<NewEventRow> = events
        .into_iter()
        .map(|(event_type, object_type, object_id, data)| {
            let n = counts.entry((object_type, object_id.clone())).or_insert(0);
            *n += 1;
            NewEventRow {
                // Time-ordered: each new id goes at the end of the `event_id` index instead of a
                // random leaf page.
                event_id: Uuid::now_v7(),
                event_type,
                object_type,
                object_id,
                sequence: *n,
                data,
            }
        })
        .collect();
    if rows.is_empty() {
        return Ok(rows);
    }
    let mut wanted: Vec<(&'static str, String, i64)> = counts
        .iter()
        .map(|((object_type, id), n)| (*object_type, id.clone(), *n))
        .collect();
    wanted.sort();
    match conn {
        Conn::Postgres(c) => {
            // `with ordinality … order by` keeps the order given: the sequence rows are locked
            // in the sorted order, and the events take their ids in the order written.
            const SQL: &str = "with taken as ( \
                    insert into event_sequence (object_type, object_id, last_sequence) \
                    select w.object_type, w.object_id, w.n \
                    from unnest($1::text[], $2::text[], $3::int8[]) with ordinality as w(object_type, object_id, n, ord) \
                    order by w.ord \
                    on conflict (object_type, object_id) \
                    do update set last_sequence = event_sequence.last_sequence + excluded.last_sequence \
                    returning object_type, object_id, last_sequence) \
                insert into event (event_id, type, object_type, object_id, sequence, occurred_at, data) \
                select e.id, e.type, e.object_type, e.object_id, t.last_sequence - e.n + e.place, $4, e.data::jsonb \
                from unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[], $11::text[]) \
                    with ordinality as e(id, type, object_type, object_id, place, n, data, ord) \
                join taken t on t.object_type = e.object_type and t.object_id = e.object_id \
                order by e.ord \
                returning event_id, sequence";
            let count_of = |e: &NewEventRow| counts[&(e.object_type, e.object_id.clone())];
            let numbered: Vec<(Uuid, i64)> = sqlx::query_as(SQL)
                .bind(wanted.iter().map(|w| w.0).collect::<Vec<_>>())
                .bind(wanted.iter().map(|w| w.1.as_str()).collect::<Vec<_>>())
                .bind(wanted.iter().map(|w| w.2).collect::<Vec<_>>())
                .bind(now)
                .bind(rows.iter().map(|e| e.event_id).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.event_type).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.object_type).collect::<Vec<_>>())
                .bind(
                    rows.iter()
                        .map(|e| e.object_id.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(rows.iter().map(|e| e.sequence).collect::<Vec<_>>())
                .bind(rows.iter().map(count_of).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.data.to_string()).collect::<Vec<_>>())
                .fetch_all(&mut *c)
                .await?;
            let numbered: HashMap<Uuid, i64> = numbered.into_iter().collect();
            for row in &mut rows {
                row.sequence = numbered[&row.event_id];
            }
        }
        Conn::Sqlite(c) => {
            let last = take_sequences(Conn::Sqlite(&mut *c), &wanted).await?;
            for row in &mut rows {
                let key = (row.object_type.to_string(), row.object_id.clone());
                let n = counts[&(row.object_type, row.object_id.clone())];
                row.sequence += last[&key] - n;
            }
            insert_events(Conn::Sqlite(&mut *c), &rows, now).await?;
        }
    }
    Ok(rows)
}

pub async fn insert_events(
    conn: Conn<'_>,
    events: &[NewEventRow],
    now: DateTime<Utc>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    match conn {
        Conn::Postgres(c) => {
            const SQL: &str = "insert into event (event_id, type, object_type, object_id, sequence, occurred_at, data) \
                select e.id, e.type, e.object_type, e.object_id, e.sequence, $6, e.data::jsonb \
                from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $7::text[]) \
                    as e(id, type, object_type, object_id, sequence, data)";
            sqlx::query(SQL)
                .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
                .bind(events.iter().map(|e| e.event_type).collect::<Vec<_>>())
                .bind(events.iter().map(|e| e.object_type).collect::<Vec<_>>())
                .bind(
                    events
                        .iter()
                        .map(|e| e.object_id.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(events.iter().map(|e| e.sequence).collect::<Vec<_>>())
                .bind(now)
                .bind(
                    events
                        .iter()
                        .map(|e| e.data.to_string())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *c)
                .await?;
        }
        Conn::Sqlite(c) => {
            // `data` goes as a JSON string holding its text, so that the stored text is
            // serde_json's, as on the other paths.
            const SQL: &str = "insert into event (event_id, type, object_type, object_id, sequence, occurred_at, data) \
                select unhex(value ->> 0), value ->> 1, value ->> 2, value ->> 3, value ->> 4, $2, value ->> 5 \
                from json_each($1)";
            let rows: Vec<(String, &str, &str, &str, i64, String)> = events
                .iter()
                .map(|e| {
                    let id = sqlite_lists::hex(e.event_id);
                    (
                        id,
                        e.event_type,
                        e.object_type,
                        e.object_id.as_str(),
                        e.sequence,
                        e.data.to_string(),
                    )
                })
                .collect();
            sqlx::query(SQL)
                .bind(sqlite_lists::rows(&rows))
                .bind(now)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

pub async fn list_events(
    conn: Conn<'_>,
    conditions: &[Condition],
    slice: Slice,
) -> Result<Page<EventRow>> {
    count_and_page_ordered(conn, "event", conditions, "id", slice).await
}

pub async fn get_event(conn: Conn<'_>, event_id: Uuid) -> Result<Option<EventRow>> {
    const SQL: &str = "select * from event where event_id = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(event_id).fetch_optional(&mut *c).await)?)
}

/// Fans out up to `limit` events that have not been spread to the active, unexpired callbacks
/// whose topic matches them, and marks them spread. A (event, callback) pair gets one delivery
/// however often this runs. A callback gets only events committed after it became active (see
/// [`activate_callback`]), and a user's callback URL gets one delivery of an event however many
/// of their subscriptions match it: the oldest matching subscription's (docs/events.md).
///
/// With `after`, only events with a greater id: each event spread leaves a dead entry at the
/// head of `event_unspread_idx` until a vacuum, and a spread from the head steps over all of
/// them (see `crate::jobs::ClaimCursor`).
pub async fn spread_events(
    conn: Conn<'_>,
    limit: i64,
    now: DateTime<Utc>,
    after: Option<i64>,
) -> Result<Spread> {
    let fan_out = fan_out_sql(conn.backend());
    // Event ids start at 1.
    let after = after.unwrap_or(0);
    match conn {
        Conn::Postgres(c) => spread_postgres(c, &fan_out, limit, now, after).await,
        Conn::Sqlite(c) => spread_sqlite(c, &fan_out, limit, now, after).await,
    }
}

/// What one [`spread_events`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    pub events: u64,
    pub deliveries: u64,
    /// The greatest id of the events it took.
    pub last: Option<i64>,
}

const MARK_SPREAD: &str =
    "update event set spread_at = $2 where id >= $1 and id <= $3 and spread_at is null";

/// The insert of one delivery per (event in [$1, $3], matching callback), each owner's URL once.
fn fan_out_sql(backend: super::Backend) -> String {
    // `{c}` is the callback alias, `{after}` the dialect's "committed after its activation".
    const MATCHES: &str = "{c}.state = 'active' and {c}.lease_expires_at > $2 \
        and ({c}.topic_prefix = '' or lower(e.type) = {c}.topic_prefix \
             or substr(lower(e.type), 1, length({c}.topic_prefix) + 1) = {c}.topic_prefix || '.') \
        and {after}";
    const POSTGRES_AFTER: &str = "({c}.activated_snapshot is null or (e.txid is not null \
        and not pg_visible_in_snapshot(e.txid, {c}.activated_snapshot)))";
    const SQLITE_AFTER: &str =
        "({c}.activated_after_event is null or e.id > {c}.activated_after_event)";
    let after = match backend {
        super::Backend::Postgres => POSTGRES_AFTER,
        super::Backend::Sqlite => SQLITE_AFTER,
    };
    let matches = |alias: &str| MATCHES.replace("{after}", after).replace("{c}", alias);
    format!(
        "insert into delivery (event_id, callback_id, state, attempts, next_attempt_at, created_at, updated_at) \
        select e.id, c.id, 'pending', 0, $2, $2, $2 from event e join callback c on {} \
        where e.id >= $1 and e.id <= $3 and e.spread_at is null \
        and not exists (select 1 from callback o where o.callback_url = c.callback_url \
            and o.created_by = c.created_by \
            and (o.created_at < c.created_at or (o.created_at = c.created_at and o.id < c.id)) \
            and {}) \
        order by e.id, c.id \
        on conflict (event_id, callback_id) do nothing",
        matches("c"),
        matches("o"),
    )
}

async fn spread_postgres(
    c: &mut sqlx::PgConnection,
    fan_out: &str,
    limit: i64,
    now: DateTime<Utc>,
    after: i64,
) -> Result<Spread> {
    prefer_index_walks(&mut *c).await?;
    // Lock the batch so that other workers spread other events meanwhile.
    let ids: Vec<i64> = sqlx::query_scalar(
        "select id from event where spread_at is null and id > $2 order by id limit $1 \
        for update skip locked",
    )
    .bind(limit)
    .bind(after)
    .fetch_all(&mut *c)
    .await?;
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return Ok(Spread::default());
    };
    // The range may hold events another worker has locked; `spread_at is null` and the
    // conflict rule make fanning them out here too harmless.
    let fanned = sqlx::query(&fan_out.replace(
        "e.spread_at is null",
        "e.spread_at is null and e.id = any($4)",
    ))
    .bind(first)
    .bind(now)
    .bind(last)
    .bind(&ids)
    .execute(&mut *c)
    .await?
    .rows_affected();
    let marked = sqlx::query(&MARK_SPREAD.replace("spread_at is null", "id = any($4)"))
        .bind(first)
        .bind(now)
        .bind(last)
        .bind(&ids)
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(Spread {
        events: marked,
        deliveries: fanned,
        last: Some(*last),
    })
}

async fn spread_sqlite(
    c: &mut sqlx::SqliteConnection,
    fan_out: &str,
    limit: i64,
    now: DateTime<Utc>,
    after: i64,
) -> Result<Spread> {
    let range: (Option<i64>, Option<i64>) = sqlx::query_as(
        "select min(id), max(id) from (select id from event where spread_at is null and id > $2 \
        order by id limit $1)",
    )
    .bind(limit)
    .bind(after)
    .fetch_one(&mut *c)
    .await?;
    let (Some(first), Some(last)) = range else {
        return Ok(Spread::default());
    };
    let fanned = sqlx::query(fan_out)
        .bind(first)
        .bind(now)
        .bind(last)
        .execute(&mut *c)
        .await?
        .rows_affected();
    let marked = sqlx::query(MARK_SPREAD)
        .bind(first)
        .bind(now)
        .bind(last)
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(Spread {
        events: marked,
        deliveries: fanned,
        last: Some(last),
    })
}

/// Marks events unspread again (from `since` on), so that the spreader passes over them anew.
pub async fn unspread_events(conn: Conn<'_>, since: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "update event set spread_at = null where occurred_at >= $1";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(since).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}
