//! Operators' actions on integration groups, for the API, the admin UI and the CLI alike.
//! Each write that is audited records its audit entry in the caller's transaction.

use serde_json::{json, Value};

use super::input::{new_group, read_group};
use crate::audit::{self, Actor, Object};
use crate::domain::{Error, Result};
use crate::effects::{follow, Change, Effects};
use crate::secrets::Keyring;
use crate::store::integrations::{self as sql, ErrorRow, GroupRow};
use crate::store::{self, Tx};
use crate::validation::input::Mode;

async fn audit_group(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    name: &str,
    details: Value,
) -> Result<()> {
    let object = Object::new("integration_group", name);
    audit::record(tx, actor, action, object, details).await?;
    Ok(())
}

/// A new group read from a create body (before any transaction: a bad body writes nothing),
/// with its topics and its first push time.
pub fn read_new(instance: &str, body: &Value) -> Result<(GroupRow, Vec<(String, String)>)> {
    let now = store::now();
    let mut group = new_group(instance, now);
    let topics = read_group(body, Mode::Create, &mut group, &[])?;
    group.next_push_at = super::next_push(&group, now);
    Ok((group, topics))
}

/// Creates the group read by [`read_new`], audited as `integration_group.create`.
pub async fn create(
    tx: &mut Tx,
    keyring: &Keyring,
    actor: &Actor,
    group: &GroupRow,
    topics: &[(String, String)],
) -> Result<()> {
    super::create_group(tx, keyring, group, topics).await?;
    audit_group(
        tx,
        actor,
        "integration_group.create",
        &group.name,
        json!({}),
    )
    .await
}

/// Applies a PATCH body to the stored group (audited as `integration_group.update`); returns
/// the group as stored.
pub async fn update(
    tx: &mut Tx,
    keyring: &Keyring,
    actor: &Actor,
    name: &str,
    body: &Value,
) -> Result<GroupRow> {
    let mut group = super::existing_group(tx, name).await?;
    let current_topics = sql::group_topics(tx.conn(), name).await?;
    let topics = read_group(body, Mode::Partial, &mut group, &current_topics)?;
    let now = store::now();
    group.updated_at = now;
    group.next_push_at = super::next_push(&group, now);
    let stored = super::sealed(keyring, &group);
    sql::update_group(tx.conn(), &stored, &topics).await?;
    audit_group(
        tx,
        actor,
        "integration_group.update",
        &group.name,
        json!({}),
    )
    .await?;
    Ok(group)
}

/// Deletes the group with its messages and errors, audited as `integration_group.delete`.
pub async fn delete(tx: &mut Tx, actor: &Actor, name: &str) -> Result<()> {
    if !sql::delete_group(tx.conn(), name).await? {
        return Err(Error::NotFound);
    }
    audit_group(tx, actor, "integration_group.delete", name, json!({})).await
}

/// Issues a token for the group's poll API (audited with its prefix only); returns it, to be
/// shown once.
pub async fn issue_token(tx: &mut Tx, actor: &Actor, name: &str) -> Result<String> {
    let token = super::issue_poll_token(tx, name).await?;
    let prefix: String = token.chars().take(8).collect();
    audit_group(
        tx,
        actor,
        "integration_group.token",
        name,
        json!({"prefix": prefix}),
    )
    .await?;
    Ok(token)
}

/// Marks a sent message of the group unsent, as `user_id` (audited on the message).
pub async fn unsend(tx: &mut Tx, name: &str, id: i64, user_id: i64) -> Result<bool> {
    super::unsend(tx, name, id, user_id).await
}

/// "Send outstanding messages now": queues a push of a send group; `false` when one is queued
/// already. A poll group is refused.
pub async fn send_now(tx: &mut Tx, effects: &Effects, name: &str) -> Result<bool> {
    let group = super::existing_group(tx, name).await?;
    if group.method != "send" {
        return Err(Error::Refused(format!(
            "Integration group \"{name}\" is polled (method \"poll\"); it does not push."
        )));
    }
    let change = Change::IntegrationPushRequested { group: name };
    Ok(follow(tx, effects, change).await? > 0)
}

/// Acknowledges the error as `user_id` (the first acknowledgement is kept); returns it.
pub async fn acknowledge_error(tx: &mut Tx, id: i64, user_id: i64) -> Result<ErrorRow> {
    if !sql::acknowledge_error(tx.conn(), id, user_id, store::now()).await? {
        return Err(Error::NotFound);
    }
    sql::get_error(tx.conn(), id).await?.ok_or(Error::NotFound)
}
