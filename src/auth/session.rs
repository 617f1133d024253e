//! Admin UI sessions: signing in (with a password or an API token, admins only, rate-limited),
//! looking a session up on each request, and signing out.
//!
//! The cookie holds a random session id; the database holds only its SHA-256 (as for tokens),
//! with the session's CSRF token. A session ends when it is idle for longer than the configured
//! time, on sign-out, and as soon as its user is deactivated or stops being an admin or the
//! token it was started with is revoked: [`current`] checks all of that on every request.
//!
//! Rate limiting lives in the database (table `admin_login_attempt`) so that it holds across
//! processes and restarts: within [`WINDOW`], at most [`MAX_FAILED_PER_ACCOUNT`] failed attempts
//! per account (email, or token prefix) and [`MAX_FAILED_PER_ADDRESS`] per client address;
//! beyond that, sign-in is refused without looking at the credentials until old failures age out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{hash_token, password, PREFIX_LEN};
use crate::store::admin::{self as sql, SessionRow};
use crate::store::{self, Db};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_FAILED_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILED_PER_ADDRESS: i64 = 20;

/// What a person signs in with.
pub enum Credentials<'a> {
    Password { email: &'a str, password: &'a str },
    Token(&'a str),
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Too many failed sign-in attempts. Wait a few minutes and try again.")]
    Limited,
    #[error("Those credentials do not belong to an active admin.")]
    Refused,
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// A new session: the cookie value and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
}

/// 32 random bytes as hex: session ids and CSRF tokens.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether the presented CSRF token is the session's. Comparing digests keeps the time taken
/// independent of how much of the token matched.
pub fn csrf_matches(expected: &str, presented: Option<&str>) -> bool {
    match presented {
        Some(presented) if !expected.is_empty() => {
            Sha256::digest(expected.as_bytes()) == Sha256::digest(presented.as_bytes())
        }
        _ => false,
    }
}

/// Whether failed attempts this many (per account, per address) stop further attempts.
pub fn is_limited(failed_for_account: i64, failed_from_address: i64) -> bool {
    failed_for_account >= MAX_FAILED_PER_ACCOUNT || failed_from_address >= MAX_FAILED_PER_ADDRESS
}

/// The key failures are counted under for the account being tried.
fn account_key(credentials: &Credentials<'_>) -> String {
    match credentials {
        Credentials::Password { email, .. } => email.trim().to_lowercase(),
        Credentials::Token(token) => {
            let prefix: String = token.trim().chars().take(PREFIX_LEN).collect();
            format!("token:{prefix}")
        }
    }
}

fn ago(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// A PHC string of a password nobody has, verified when the email is unknown so that unknown
/// and known emails take about as long.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password::hash(&new_secret()))
}

/// The user id (and token id) the credentials prove, if they belong to an active admin.
async fn check(
    tx: &mut store::Tx,
    credentials: &Credentials<'_>,
) -> store::Result<Option<(i64, Option<i64>)>> {
    match credentials {
        Credentials::Password {
            email,
            password: given,
        } => {
            let email = email.trim().to_lowercase();
            let Some((user, hash)) = sql::user_with_password(tx.conn(), &email).await? else {
                password::verify(decoy_hash(), given);
                return Ok(None);
            };
            let ok =
                password::verify(hash.as_deref().unwrap_or(decoy_hash()), given) && hash.is_some();
            Ok((ok && user.is_active && user.is_admin).then_some((user.id, None)))
        }
        Credentials::Token(token) => {
            let hash = hash_token(token.trim());
            let Some((token_id, user_id)) = sql::token_owner(tx.conn(), &hash).await? else {
                return Ok(None);
            };
            let caller = store::users::caller_for_token(tx.conn(), &hash).await?;
            let admin = caller.is_some_and(|c| c.is_active && c.is_admin && c.scope.is_none());
            Ok(admin.then_some((user_id, Some(token_id))))
        }
    }
}

/// Signs in from `address`; records the attempt either way.
pub async fn sign_in(
    db: &Db,
    credentials: Credentials<'_>,
    address: &str,
    idle: Duration,
) -> Result<NewSession, SignInError> {
    let now = store::now();
    let account = account_key(&credentials);
    let mut tx = db.begin().await?;
    sql::delete_attempts_before(tx.conn(), ago(now, WINDOW)).await?;
    sql::delete_idle_sessions(tx.conn(), ago(now, idle)).await?;
    let (by_account, by_address) =
        sql::failed_attempts(tx.conn(), &account, address, ago(now, WINDOW)).await?;
    if is_limited(by_account, by_address) {
        tx.commit().await?;
        return Err(SignInError::Limited);
    }
    let proven = check(&mut tx, &credentials).await?;
    sql::record_attempt(tx.conn(), &account, address, proven.is_some(), now).await?;
    let Some((user_id, token_id)) = proven else {
        tx.commit().await?;
        return Err(SignInError::Refused);
    };
    let session = NewSession {
        id: new_secret(),
        csrf_token: new_secret(),
    };
    sql::insert_session(
        tx.conn(),
        &hash_token(&session.id),
        user_id,
        token_id,
        &session.csrf_token,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(session)
}

/// The live session behind a cookie value, its idle clock restarted; `None` if it ended.
pub async fn current(db: &Db, id: &str, idle: Duration) -> store::Result<Option<SessionRow>> {
    let now = store::now();
    let hash = hash_token(id);
    let mut conn = db.acquire().await?;
    let session = sql::live_session(conn.conn(), &hash, ago(now, idle)).await?;
    if session.is_some() {
        sql::touch_session(conn.conn(), &hash, now).await?;
    }
    Ok(session)
}

pub async fn sign_out(db: &Db, id: &str) -> store::Result<()> {
    let mut conn = db.acquire().await?;
    sql::delete_session(conn.conn(), &hash_token(id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_hex() {
        let a = new_secret();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_secret());
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let token = new_secret();
        assert!(csrf_matches(&token, Some(&token)));
        assert!(!csrf_matches(&token, Some(&token[1..])));
        assert!(!csrf_matches(&token, Some("")));
        assert!(!csrf_matches(&token, None));
        assert!(!csrf_matches("", Some("")));
    }

    #[test]
    fn failures_limit_per_account_and_per_address() {
        assert!(!is_limited(0, 0));
        assert!(!is_limited(
            MAX_FAILED_PER_ACCOUNT - 1,
            MAX_FAILED_PER_ADDRESS - 1
        ));
        assert!(is_limited(MAX_FAILED_PER_ACCOUNT, 0));
        assert!(is_limited(0, MAX_FAILED_PER_ADDRESS));
    }

    #[test]
    fn failures_are_counted_per_email_or_token_prefix() {
        let by_email = Credentials::Password {
            email: " Staff@Example.org",
            password: "x",
        };
        assert_eq!(account_key(&by_email), "staff@example.org");
        let by_token = Credentials::Token("0123456789abcdef");
        assert_eq!(account_key(&by_token), "token:01234567");
    }
}
