//! The audit log (docs/security.md): token creation and revocation, user changes and admin
//! actions, each recorded with who and when in the transaction of the change itself, so an
//! entry exists exactly when the change does. Details never carry a token or a secret.

use serde_json::Value;

use crate::model::auth::Caller;
use crate::store::audit::{self as sql, NewAudit};
use crate::store::{self, Tx};

/// Who acted: a user through the API, or an operator at the command line.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
}

impl Actor {
    pub fn user(caller: &Caller) -> Actor {
        Actor {
            user_id: Some(caller.user_id),
            name: caller.email.clone(),
        }
    }

    /// The command line, named by the operating-system user that ran it.
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor {
            user_id: None,
            name: format!("cli:{user}"),
        }
    }
}

/// What was acted on: a kind (`token`, `user`, `callback`, …) and its id.
pub struct Object<'a> {
    pub kind: &'a str,
    pub id: String,
}

impl<'a> Object<'a> {
    pub fn new(kind: &'a str, id: impl ToString) -> Self {
        Object {
            kind,
            id: id.to_string(),
        }
    }
}

/// Records `action` (`token.create`, `integration_group.update`, …) by `actor` on `object`.
pub async fn record(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    object: Object<'_>,
    details: Value,
) -> store::Result<()> {
    let details = details.to_string();
    let entry = NewAudit {
        at: store::now(),
        actor_id: actor.user_id,
        actor: &actor.name,
        action,
        object_type: object.kind,
        object_id: &object.id,
        details: &details,
    };
    sql::insert(tx.conn(), &entry).await
}

/// Records a write by `caller` on a callback created by `owner`, when the caller is an admin
/// acting on someone else's callback (a user's own callbacks are theirs to change).
pub async fn admin_on_callback(
    tx: &mut Tx,
    caller: &Caller,
    owner: Option<i64>,
    action: &str,
    callback_id: uuid::Uuid,
) -> store::Result<()> {
    if !caller.is_admin || owner == Some(caller.user_id) {
        return Ok(());
    }
    let details = serde_json::json!({"owner": owner});
    let object = Object::new("callback", callback_id);
    record(tx, &Actor::user(caller), action, object, details).await
}
