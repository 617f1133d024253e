//! A callback's signing secrets as stored: its secret, and during a rotation (Standard
//! Webhooks, as Svix does it) the former one too, until the grace period ends.
//!
//! The `callback.secret` column holds, sealed (crate::secrets), either the secret itself or,
//! during a rotation, [`ROTATION_MARK`] followed by JSON `{"current", "previous",
//! "previous_until"}`. Keeping both in the one sealed column leaves the delivery query as it is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::Error;
use crate::secrets::{Keyring, Purpose, Unreadable};
use crate::store::events::CallbackRow;
use crate::store::{secrets as sql, Tx};

/// Starts the stored form of a rotation; a NUL never starts a secret given through the hub.
const ROTATION_MARK: &str = "\u{0}rotation:";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecrets {
    pub current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Unix seconds after which `previous` no longer signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<i64>,
}

impl SigningSecrets {
    /// The plaintext stored in the column.
    fn stored_text(&self) -> String {
        if self.previous.is_none() {
            return self.current.clone();
        }
        let json = serde_json::to_string(self).expect("strings serialize");
        format!("{ROTATION_MARK}{json}")
    }

    fn from_stored_text(text: String) -> SigningSecrets {
        let rotation = text
            .strip_prefix(ROTATION_MARK)
            .and_then(|json| serde_json::from_str(json).ok());
        rotation.unwrap_or(SigningSecrets {
            current: text,
            previous: None,
            previous_until: None,
        })
    }

    /// The secrets that sign at `now`, current first.
    pub fn signing(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut secrets = vec![self.current.clone()];
        if let (Some(previous), Some(until)) = (&self.previous, self.previous_until) {
            if now.timestamp() < until {
                secrets.push(previous.clone());
            }
        }
        secrets
    }

    /// `new` becomes the current secret; the current one keeps signing until `until`.
    pub fn rotated(self, new: String, until: DateTime<Utc>) -> SigningSecrets {
        SigningSecrets {
            previous: Some(self.current),
            previous_until: Some(until.timestamp()),
            current: new,
        }
    }

    /// When the former secret stops signing, if a rotation is under way at `now`.
    pub fn rotation_ends(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let until = self.previous_until?;
        (now.timestamp() < until)
            .then(|| DateTime::from_timestamp(until, 0))
            .flatten()
    }
}

/// The secrets of a stored `callback.secret` value (sealed, or plaintext from before
/// encryption).
pub fn open(keyring: &Keyring, stored: &str) -> Result<SigningSecrets, Unreadable> {
    let text = keyring.open(Purpose::CallbackSecret, stored)?;
    Ok(SigningSecrets::from_stored_text(text))
}

/// The stored, sealed form of `secrets`.
pub fn seal(keyring: &Keyring, secrets: &SigningSecrets) -> String {
    keyring.seal(Purpose::CallbackSecret, &secrets.stored_text())
}

/// Longest grace period of a rotation (30 days), and the one given when none is asked for (1 day).
pub const MAX_GRACE_SECONDS: i64 = 30 * 86_400;
pub const DEFAULT_GRACE_SECONDS: i64 = 86_400;

/// Gives the callback `new` as its secret; its current one (if any) keeps signing beside it
/// until `grace_seconds` from now. Returns when the former secret stops signing (None when
/// there was none). The stored value must not have changed since `callback` was read.
pub async fn rotate(
    tx: &mut Tx,
    keyring: &Keyring,
    callback: &CallbackRow,
    new: String,
    grace_seconds: i64,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let Some(stored) = callback.secret.as_deref() else {
        let fresh = SigningSecrets::from_stored_text(new);
        let sealed = seal(keyring, &fresh);
        if !sql::set_callback_secret_if_none(tx.conn(), callback.id, &sealed).await? {
            return Err(Error::Refused(
                "The callback changed meanwhile; try again.".into(),
            ));
        }
        return Ok(None);
    };
    let current = open(keyring, stored).map_err(|err| Error::Refused(err.to_string()))?;
    let until = now + chrono::Duration::seconds(grace_seconds);
    let rotated = current.rotated(new, until);
    let sealed = seal(keyring, &rotated);
    if !sql::replace_callback_secret(tx.conn(), callback.id, stored, &sealed).await? {
        return Err(Error::Refused(
            "The callback changed meanwhile; try again.".into(),
        ));
    }
    Ok(rotated.rotation_ends(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn a_plain_secret_signs_alone_and_is_stored_as_itself() {
        let keys = Keyring::new("k", &[]);
        let plain = SigningSecrets::from_stored_text("s3cr3t".into());
        assert_eq!(plain.signing(at(0)), vec!["s3cr3t".to_string()]);
        let stored = seal(&keys, &plain);
        assert_eq!(
            keys.open(Purpose::CallbackSecret, &stored).unwrap(),
            "s3cr3t"
        );
        assert_eq!(open(&keys, &stored).unwrap(), plain);
        // A plaintext row from before encryption reads the same.
        assert_eq!(open(&keys, "s3cr3t").unwrap(), plain);
    }

    #[test]
    fn during_a_rotation_both_sign_until_the_grace_period_ends() {
        let keys = Keyring::new("k", &[]);
        let rotated = SigningSecrets::from_stored_text("old".into()).rotated("new".into(), at(100));
        let reopened = open(&keys, &seal(&keys, &rotated)).unwrap();
        assert_eq!(reopened, rotated);
        assert_eq!(
            reopened.signing(at(99)),
            vec!["new".to_string(), "old".to_string()]
        );
        assert_eq!(reopened.signing(at(100)), vec!["new".to_string()]);
        assert_eq!(reopened.rotation_ends(at(50)), Some(at(100)));
        assert_eq!(reopened.rotation_ends(at(100)), None);
        // Rotating again drops the oldest.
        let again = reopened.rotated("newer".into(), at(200));
        assert_eq!(
            again.signing(at(150)),
            vec!["newer".to_string(), "new".to_string()]
        );
    }
}
