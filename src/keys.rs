//! Key rotation for secrets at rest: `sbm secrets rotate` seals every stored callback secret and
//! integration auth header again with the current key. It spans callbacks and integration groups,
//! so it sits in the domain layer above [`crate::secrets`] (the keyring alone).

use crate::audit::{self, Actor, Object};
use crate::secrets::{Keyring, Purpose};
use crate::store::{self, secrets as sql, Db};

/// What `sbm secrets rotate` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Values sealed again with the current key (from a fallback key or from plaintext).
    pub resealed: usize,
    /// Values already sealed with the current key.
    pub current: usize,
    /// Values no configured key opens, left as they were (named in the log).
    pub unreadable: usize,
}

/// Seals every stored secret with the current key: values sealed with a fallback key and
/// plaintext left from before encryption. Each value is replaced only if unchanged meanwhile.
/// The rotation is audited as `secrets.rotate` by `actor`, with its counts.
pub async fn rotate(db: &Db, keyring: &Keyring, actor: &Actor) -> store::Result<Rotated> {
    let mut done = Rotated::default();
    let mut tx = db.begin().await?;
    for (id, stored) in sql::callback_secrets(tx.conn()).await? {
        match keyring.resealed(Purpose::CallbackSecret, &stored) {
            Some(new) if new == stored => done.current += 1,
            Some(new) => {
                done.resealed +=
                    usize::from(sql::replace_callback_secret(tx.conn(), id, &stored, &new).await?);
            }
            None => {
                tracing::error!(callback = %id, "the callback's secret cannot be decrypted");
                done.unreadable += 1;
            }
        }
    }
    for (name, stored) in sql::integration_auth_headers(tx.conn()).await? {
        match keyring.resealed(Purpose::IntegrationAuthHeader, &stored) {
            Some(new) if new == stored => done.current += 1,
            Some(new) => {
                done.resealed += usize::from(
                    sql::replace_integration_auth_header(tx.conn(), &name, &stored, &new).await?,
                );
            }
            None => {
                tracing::error!(group = %name, "the group's auth header cannot be decrypted");
                done.unreadable += 1;
            }
        }
    }
    let details = serde_json::json!({
        "resealed": done.resealed,
        "current": done.current,
        "unreadable": done.unreadable,
    });
    audit::record(
        &mut tx,
        actor,
        "secrets.rotate",
        Object::new("secrets", "all"),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}
