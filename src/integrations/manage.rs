//! Operators' actions on integration groups, for the API and the admin UI alike.

use crate::domain::{Error, Result};
use crate::effects::{follow, Change, Effects};
use crate::store::integrations::{self as sql, ErrorRow};
use crate::store::{self, Tx};

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
