//! Users and API tokens: issuing, hashing, authenticating and revoking.
//!
//! Tokens look like DRF's (40 hex characters) so that clients and configuration written for the
//! original keep working, but only their SHA-256 is stored.

pub mod cache;
/// Old path of [`crate::model::auth`], kept while the step-7 branches merge.
pub use crate::model::auth as model;
pub mod password;
pub mod session;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::model::auth::{Caller, User};
use crate::store::{self, users, Db, Tx};

/// Length of the token prefix kept in clear for listing and revoking.
pub const PREFIX_LEN: usize = 8;

/// A token as handed to its owner, once.
pub struct IssuedToken {
    pub token: String,
    pub user: User,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Enter a valid email address.")]
    InvalidEmail,
    #[error(transparent)]
    Store(#[from] store::Error),
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Makes a new token for the user, stores its hash (and scope, if limited) and returns it.
async fn store_new_token(
    conn: store::Conn<'_>,
    user_id: i64,
    scope: Option<&str>,
) -> Result<String, store::Error> {
    let token = new_token();
    let prefix = &token[..PREFIX_LEN];
    users::insert_token(
        conn,
        user_id,
        &hash_token(&token),
        prefix,
        scope,
        store::now(),
    )
    .await?;
    Ok(token)
}

/// Lower-cases and checks an email address: one `@`, something before it, a dotted or
/// single-label domain after it, no spaces. Deliberately loose, like Django's validator.
pub fn normalize_email(raw: &str) -> Result<String, Error> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@').ok_or(Error::InvalidEmail)?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace);
    if ok {
        Ok(email)
    } else {
        Err(Error::InvalidEmail)
    }
}

/// Creates (or reuses) the user with this email and issues a new token for them.
/// `make_admin` only ever grants admin rights; it does not take them away.
pub async fn issue_token(tx: &mut Tx, email: &str, make_admin: bool) -> Result<IssuedToken, Error> {
    let email = normalize_email(email)?;
    let now = store::now();
    let (mut user, created) = users::get_or_create_user(tx.conn(), &email, make_admin, now).await?;
    if make_admin && !created && !user.is_admin {
        users::set_admin(tx.conn(), user.id, true).await?;
        user.is_admin = true;
    }
    let token = store_new_token(tx.conn(), user.id, None).await?;
    Ok(IssuedToken { token, user })
}

/// Issues a token limited to `scope` to the (created or reused, never admin) user `email`.
pub async fn issue_scoped_token(tx: &mut Tx, email: &str, scope: &str) -> Result<String, Error> {
    let email = normalize_email(email)?;
    let now = store::now();
    let (user, _) = users::get_or_create_user(tx.conn(), &email, false, now).await?;
    Ok(store_new_token(tx.conn(), user.id, Some(scope)).await?)
}

/// Creates the user without a token; returns it and whether it is new.
pub async fn create_user(
    tx: &mut Tx,
    email: &str,
    make_admin: bool,
) -> Result<(User, bool), Error> {
    let email = normalize_email(email)?;
    let (mut user, created) =
        users::get_or_create_user(tx.conn(), &email, make_admin, store::now()).await?;
    if make_admin && !user.is_admin {
        users::set_admin(tx.conn(), user.id, true).await?;
        user.is_admin = true;
    }
    Ok((user, created))
}

/// Looks a presented token up (in `cache` first). `None` for unknown and revoked tokens.
pub async fn authenticate(
    db: &Db,
    cache: &cache::TokenCache,
    token: &str,
) -> Result<Option<Caller>, store::Error> {
    let hash = hash_token(token);
    if let Some(caller) = cache.get(&hash) {
        return Ok(Some(caller));
    }
    let mut conn = db.acquire().await?;
    let caller = users::caller_for_token(conn.conn(), &hash).await?;
    if let Some(caller) = &caller {
        cache.put(hash, caller.clone());
    }
    Ok(caller)
}

/// Revokes a token given either in full or by its prefix; returns how many were revoked.
pub async fn revoke(tx: &mut Tx, token_or_prefix: &str) -> Result<u64, store::Error> {
    let now = store::now();
    if token_or_prefix.len() > PREFIX_LEN {
        users::revoke_token_by_hash(tx.conn(), &hash_token(token_or_prefix), now).await
    } else {
        users::revoke_tokens_by_prefix(tx.conn(), token_or_prefix, now).await
    }
}

/// The email of the admin created on a database that has no users.
pub const FIRST_ADMIN_EMAIL: &str = "admin@localhost";

/// On a database with no users, creates an admin and issues its token. Two processes starting
/// at once on an empty database both try; only the one whose insert created the user issues a
/// token.
pub async fn bootstrap_admin(db: &Db) -> Result<Option<IssuedToken>, Error> {
    let mut tx = db.begin().await?;
    if users::count_users(tx.conn()).await? > 0 {
        return Ok(None);
    }
    let (user, created) =
        users::get_or_create_user(tx.conn(), FIRST_ADMIN_EMAIL, true, store::now()).await?;
    if !created {
        return Ok(None);
    }
    let token = store_new_token(tx.conn(), user.id, None).await?;
    tx.commit().await?;
    Ok(Some(IssuedToken { token, user }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_email(" Bob@Example.org ").unwrap(),
            "bob@example.org"
        );
        for bad in [
            "",
            "bob",
            "@example.org",
            "bob@",
            "bob@@x.org",
            "bo b@x.org",
            "bob@.org",
            "bob@org.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tokens_are_40_hex_characters_and_hash_deterministically() {
        let t = new_token();
        assert_eq!(t.len(), 40);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hash_token(&t), hash_token(&t));
        assert_ne!(hash_token(&t), t);
    }
}
