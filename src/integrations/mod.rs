//! Integration messages (docs/integrations.md): groups fed by events or by hand, fetched and
//! marked by pollers in leased batches, or pushed on a schedule.

pub mod format;
pub mod input;
pub mod manage;
pub mod push;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::{json, Value};

use crate::auth;
use crate::domain::Error;
use crate::events::topic;
use crate::jobs::after;
use crate::scheduling::Cron;
use crate::secrets::{Keyring, Purpose};
use crate::store::integrations::{self as sql, BatchMessage, GroupRow, NewMessage};
use crate::store::{self, Tx};
use crate::validation::FieldErrors;
use format::OutgoingMessage;

/// Messages a fetch returns unless asked for another number, as in Haplo.
pub const DEFAULT_FETCH_LIMIT: i64 = 16;
pub const MAX_FETCH_LIMIT: i64 = 1000;
/// How long a batch's token can mark it.
pub const BATCH_TOKEN_DAYS: i64 = 7;

/// The token scope that allows only the poll API of `group`.
pub fn poll_scope(group: &str) -> String {
    format!("integration-poll:{group}")
}

/// The service user that owns a group's poll tokens.
pub fn poll_user_email(group: &str) -> String {
    format!("integration-{group}@sbm.invalid")
}

/// Normalised (raw, prefix) pairs of a group's event types.
pub fn parse_topics(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut topics = Vec::new();
    for text in raw {
        let t = topic::parse(text)?;
        topics.push((t.raw, t.prefix));
    }
    Ok(topics)
}

/// When a send group pushes next after `now` (`None` for poll groups and fields that never
/// meet).
pub fn next_push(group: &GroupRow, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if group.method != "send" {
        return None;
    }
    Cron::from_fields([
        &group.minute,
        &group.hour,
        &group.day_of_week,
        &group.day_of_month,
        &group.month_of_year,
    ])
    .ok()?
    .next_after(now)
}

/// The group with its auth header sealed for storage (crate::secrets), unless it already is.
pub fn sealed(keyring: &Keyring, group: &GroupRow) -> GroupRow {
    let mut group = group.clone();
    if let Some(header) = group.auth_header.take() {
        group.auth_header = Some(
            keyring
                .resealed(Purpose::IntegrationAuthHeader, &header)
                .unwrap_or(header),
        );
    }
    group
}

/// Creates the group, its auth header sealed; a taken name is a field error.
pub async fn create_group(
    tx: &mut Tx,
    keyring: &Keyring,
    group: &GroupRow,
    topics: &[(String, String)],
) -> Result<(), Error> {
    if !sql::insert_group(tx.conn(), &sealed(keyring, group), topics).await? {
        return Err(Error::Invalid(FieldErrors::single(
            "name",
            "integration group with this name already exists.",
        )));
    }
    Ok(())
}

pub async fn existing_group(tx: &mut Tx, name: &str) -> Result<GroupRow, Error> {
    sql::get_group(tx.conn(), name)
        .await?
        .ok_or(Error::NotFound)
}

/// Adds a message by hand to a group read in this transaction, and records who did.
pub async fn add_message(
    tx: &mut Tx,
    group: &GroupRow,
    data: Value,
    user_id: i64,
) -> Result<i64, Error> {
    let now = store::now();
    let message = NewMessage {
        group: group.name.clone(),
        event_id: None,
        data,
        manual_created_by: Some(user_id),
    };
    let ids = sql::insert_messages(tx.conn(), &[message], now).await?;
    let id = ids[0];
    sql::audit(tx.conn(), id, "added", Some(user_id), now).await?;
    Ok(id)
}

/// Marks a sent message unsent (audited); `false` if it was waiting already.
pub async fn unsend(tx: &mut Tx, group: &str, id: i64, user_id: i64) -> Result<bool, Error> {
    if sql::get_message(tx.conn(), group, id).await?.is_none() {
        return Err(Error::NotFound);
    }
    let changed = sql::unsend_message(tx.conn(), group, id).await?;
    if changed {
        sql::audit(tx.conn(), id, "marked_unsent", Some(user_id), store::now()).await?;
    }
    Ok(changed)
}

/// A random batch token: 32 bytes, URL-safe.
fn new_batch_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A leased batch: its token (given out once) and messages.
pub struct Batch {
    pub token: String,
    pub messages: Vec<OutgoingMessage>,
}

/// Takes and leases up to `limit` waiting messages of the group.
pub async fn take_batch(
    tx: &mut Tx,
    group: &GroupRow,
    limit: i64,
    lease: std::time::Duration,
) -> Result<Batch, Error> {
    let token = new_batch_token();
    let now = store::now();
    let expired = now - chrono::Duration::days(BATCH_TOKEN_DAYS);
    sql::prune_batches(tx.conn(), &group.name, expired).await?;
    let taken = sql::take_batch(
        tx.conn(),
        &group.name,
        &auth::hash_token(&token),
        limit,
        now,
        after(now, lease),
    )
    .await?;
    Ok(Batch {
        token,
        messages: taken.into_iter().map(outgoing).collect(),
    })
}

fn outgoing(m: BatchMessage) -> OutgoingMessage {
    OutgoingMessage {
        id: m.id,
        created_at: m.created_at,
        data: read_data(m.id, &m.data.0),
    }
}

/// A stored message's data. One that cannot be read (nested deeper than the JSON reader goes,
/// from before input was bounded) is set aside as a visible error in its own place, so that it
/// can never stop a fetch, a push or a list.
pub fn read_data(id: i64, raw: &serde_json::value::RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or_else(|err| {
        tracing::error!(message = id, error = %err, "an integration message's data cannot be read");
        json!({"sbm_error": format!("this message's data cannot be read: {err}")})
    })
}

/// A poll fetch: the batch plus how many other messages wait.
pub async fn fetch(tx: &mut Tx, name: &str, limit: i64) -> Result<(Batch, i64), Error> {
    let group = poll_group(tx, name).await?;
    let lease = std::time::Duration::from_secs(group.lease_seconds.max(1) as u64);
    let batch = take_batch(tx, &group, limit, lease).await?;
    let waiting = sql::count_waiting(tx.conn(), name).await?;
    let unread = waiting - batch.messages.len() as i64;
    Ok((batch, unread.max(0)))
}

/// A poll mark: (marked, still waiting).
pub async fn mark(tx: &mut Tx, name: &str, token: Option<&str>) -> Result<(u64, i64), Error> {
    poll_group(tx, name).await?;
    let unknown = || {
        Error::Invalid(FieldErrors::single(
            "token",
            "Unknown token for this group: give the token of one of its fetches.",
        ))
    };
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid(FieldErrors::single("token", "This field is required.")))?;
    let hash = auth::hash_token(token);
    let ids = sql::batch_ids(tx.conn(), name, &hash)
        .await?
        .ok_or_else(unknown)?;
    let marked = sql::mark_batch(tx.conn(), name, &hash, &ids, store::now()).await?;
    let waiting = sql::count_waiting(tx.conn(), name).await?;
    Ok((marked, waiting))
}

async fn poll_group(tx: &mut Tx, name: &str) -> Result<GroupRow, Error> {
    let group = existing_group(tx, name).await?;
    if group.method != "poll" {
        return Err(Error::Refused(format!(
            "Integration group \"{name}\" pushes its messages (method \"send\"); it has no poll API."
        )));
    }
    Ok(group)
}

/// Issues a token for the group's poll API, to the group's service user.
pub async fn issue_poll_token(tx: &mut Tx, name: &str) -> Result<String, Error> {
    existing_group(tx, name).await?;
    auth::issue_scoped_token(tx, &poll_user_email(name), &poll_scope(name))
        .await
        .map_err(|err| match err {
            auth::Error::Store(err) => err.into(),
            other => Error::Refused(other.to_string()),
        })
}
