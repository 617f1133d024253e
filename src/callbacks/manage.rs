//! Changes operators make to callbacks and their deliveries, for the API and the admin UI alike.
//! Whether the caller may see the callback is the caller's check; these functions only write.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::model::Caller;
use crate::domain::{Error, Result};
use crate::effects::{follow, Change, Effects};
use crate::store::events::{self as sql, CallbackRow};
use crate::store::{self, Conn, Tx};

/// Whether `caller` may see and change the callback: an admin, or the user who made it.
pub fn is_visible(caller: &Caller, callback: &CallbackRow) -> bool {
    caller.is_admin || callback.created_by == Some(caller.user_id)
}

/// The callback, if `caller` may see it; else [`Error::NotFound`] (as if it did not exist).
pub async fn visible(conn: Conn<'_>, caller: &Caller, id: Uuid) -> Result<CallbackRow> {
    match sql::get_callback(conn, id).await? {
        Some(callback) if is_visible(caller, &callback) => Ok(callback),
        _ => Err(Error::NotFound),
    }
}

/// The API's PATCH by `caller`: the callback must be visible to them; an admin's change to
/// another user's callback is audited. Returns the callback as it is now.
pub async fn update_as(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    batch_size: Option<i32>,
) -> Result<CallbackRow> {
    let mut callback = visible(tx.conn(), caller, id).await?;
    let owner = callback.created_by;
    crate::audit::admin_on_callback(tx, caller, owner, "callback.update", id).await?;
    if let Some(batch_size) = batch_size {
        callback = set_batch_size(tx, id, batch_size).await?;
    }
    Ok(callback)
}

/// The API's DELETE by `caller`: the callback must be visible to them; an admin's delete of
/// another user's callback is audited.
pub async fn delete_as(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    let callback = visible(tx.conn(), caller, id).await?;
    delete(tx, id).await?;
    let owner = callback.created_by;
    crate::audit::admin_on_callback(tx, caller, owner, "callback.delete", id).await?;
    Ok(())
}

/// Sets how many events one POST to the callback carries (checked by the caller: 1 to 100).
pub async fn set_batch_size(tx: &mut Tx, id: Uuid, batch_size: i32) -> Result<CallbackRow> {
    sql::set_batch_size(tx.conn(), id, batch_size, store::now())
        .await?
        .ok_or(Error::NotFound)
}

/// Removes the callback at once, with its deliveries and log.
pub async fn delete(tx: &mut Tx, id: Uuid) -> Result<()> {
    if sql::delete_callback(tx.conn(), id).await? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// Re-queues the callback's failed deliveries of events that occurred in [since, until);
/// returns how many.
pub async fn recover(
    tx: &mut Tx,
    id: Uuid,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Result<u64> {
    Ok(sql::recover_deliveries(tx.conn(), id, since, until, store::now()).await?)
}

/// Sends one delivery again (a failed one, or a succeeded one to replay it). A delivery that
/// is pending or running already is refused as [`Error::InUse`] (409).
pub async fn retry_delivery(tx: &mut Tx, id: i64) -> Result<sql::DeliveryView> {
    if !sql::requeue_delivery(tx.conn(), id, store::now()).await? {
        return Err(Error::InUse(
            "This delivery is already waiting for its next attempt.".into(),
        ));
    }
    sql::get_delivery(tx.conn(), id)
        .await?
        .ok_or(Error::NotFound)
}

/// Stops deliveries to the callback, as when it keeps failing: state `disabled`, with a
/// `callback.disabled` event.
pub async fn disable(
    tx: &mut Tx,
    effects: &Effects,
    id: Uuid,
    reason: &str,
) -> Result<CallbackRow> {
    let callback = sql::set_callback_state(tx.conn(), id, "disabled", Some(reason), store::now())
        .await?
        .ok_or(Error::NotFound)?;
    follow(
        tx,
        effects,
        Change::CallbackDisabled {
            callback: &callback,
            reason,
        },
    )
    .await?;
    Ok(callback)
}
