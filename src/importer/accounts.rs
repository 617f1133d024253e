//! Users, their API tokens and the failed sends: rows that get sbm ids of their own, with
//! `import_key` remembering which sbm row each source row became.

use std::collections::{HashMap, HashSet};

use futures_util::TryStreamExt;
use uuid::Uuid;

use super::merge::Checksum;
use super::report::{TableReport, Verification};
use super::source::{self, SourceSendFailure, SourceToken, SourceUser};
use crate::auth::{hash_token, normalize_email, PREFIX_LEN};
use crate::jobs::Job;
use crate::store::import::{self as sql, FailedSend};
use crate::store::{self, Tx};

pub const USERS: &str = "auth_user";
pub const TOKENS: &str = "authtoken_token";
pub const SEND_FAILURES: &str = "subscriptions_subscriptionsendfailure";

/// The email an imported user gets: its own, lower-cased, when it is a valid address no
/// earlier user took (Django requires neither); otherwise one made from the Django id.
fn email_for(user: &SourceUser, taken: &HashSet<String>) -> (String, Option<String>) {
    let made = format!("django-user-{}@django.invalid", user.id);
    match normalize_email(&user.email) {
        Ok(email) if !taken.contains(&email) => (email, None),
        Ok(email) => (
            made.clone(),
            Some(format!(
                "email {email} belongs to an earlier user; imported as {made}"
            )),
        ),
        Err(_) => (
            made.clone(),
            Some(format!(
                "username {:?} has no usable email ({:?}); imported as {made}",
                user.username, user.email
            )),
        ),
    }
}

/// Imports every user (admin = staff or superuser); returns Django id → sbm id. Users an
/// earlier run imported that the source no longer has are deactivated.
pub async fn import_users(
    source: &mut sqlx::PgConnection,
    tx: &mut Tx,
    report: &mut TableReport,
) -> anyhow::Result<(HashMap<i64, i64>, Checksum)> {
    let mut expected = Checksum::default();
    let users: Vec<SourceUser> = sqlx::query_as(source::USER_SQL)
        .fetch_all(&mut *source)
        .await?;
    let earlier: HashMap<String, i64> = sql::import_keys(tx.conn(), USERS)
        .await?
        .into_iter()
        .collect();
    let mut taken = HashSet::new();
    let mut ids = HashMap::new();
    for user in &users {
        report.read += 1;
        let (email, warning) = email_for(user, &taken);
        if let Some(warning) = warning {
            report.warn(user.id, warning);
        }
        taken.insert(email.clone());
        let admin = user.is_staff || user.is_superuser;
        expected.add(&user_fingerprint(
            &user.id.to_string(),
            admin,
            user.is_active,
        ));
        let id =
            sql::upsert_user(tx.conn(), &email, admin, user.is_active, user.date_joined).await?;
        match earlier.get(&user.id.to_string()) {
            Some(before) if *before == id => report.unchanged += 1,
            Some(_) => report.updated += 1,
            None => report.inserted += 1,
        }
        sql::put_import_key(tx.conn(), USERS, &user.id.to_string(), id).await?;
        ids.insert(user.id, id);
    }
    for (key, id) in &earlier {
        if key.parse().is_ok_and(|k: i64| !ids.contains_key(&k)) {
            sql::deactivate_user(tx.conn(), *id).await?;
            sql::delete_import_key(tx.conn(), USERS, key).await?;
            report.deleted += 1;
        }
    }
    Ok((ids, expected))
}

fn user_fingerprint(source_id: &str, admin: bool, active: bool) -> String {
    format!("{source_id}|{admin}|{active}")
}

fn failure_fingerprint(source_id: &str, task_id: Uuid, subscription: Option<Uuid>) -> String {
    format!("{source_id}|{task_id}|{subscription:?}")
}

/// Counts and checksums of the users, tokens and failed sends sbm now holds from the import,
/// against those the source runs expected.
pub async fn verify(tx: &mut Tx, expected: [&Checksum; 3]) -> anyhow::Result<[Verification; 3]> {
    let mut users = Checksum::default();
    for (id, admin, active) in sql::imported_users(tx.conn()).await? {
        users.add(&user_fingerprint(&id, admin, active));
    }
    let mut tokens = Checksum::default();
    for hash in sql::imported_token_hashes(tx.conn()).await? {
        tokens.add(&hash);
    }
    let mut failures = Checksum::default();
    for (id, task, subscription) in sql::imported_failed_sends(tx.conn()).await? {
        failures.add(&failure_fingerprint(&id, task, subscription));
    }
    let [u, t, f] = expected;
    Ok([
        Verification::of(u, &users),
        Verification::of(t, &tokens),
        Verification::of(f, &failures),
    ])
}

/// Imports every token as its hash, tied to its user; revokes imported tokens the source no
/// longer has. Returns how many imported tokens sbm must now hold.
pub async fn import_tokens(
    source: &mut sqlx::PgConnection,
    tx: &mut Tx,
    users: &HashMap<i64, i64>,
    report: &mut TableReport,
) -> anyhow::Result<Checksum> {
    let mut expected = Checksum::default();
    let mut earlier: HashMap<String, i64> = sql::import_keys(tx.conn(), TOKENS)
        .await?
        .into_iter()
        .collect();
    let mut rows = sqlx::query_as::<_, SourceToken>(source::TOKEN_SQL).fetch(&mut *source);
    while let Some(token) = rows.try_next().await? {
        report.read += 1;
        // Reported by its user only: any part of a token is a part of a credential.
        let Some(user) = users.get(&token.user_id) else {
            report.skip(
                format!("(token of user {})", token.user_id),
                "its user was not imported",
            );
            continue;
        };
        let hash = hash_token(&token.key);
        expected.add(&hash);
        let prefix: String = token.key.chars().take(PREFIX_LEN).collect();
        let id = sql::upsert_token(tx.conn(), *user, &hash, &prefix, token.created).await?;
        match earlier.remove(&hash) {
            Some(_) => report.unchanged += 1,
            None => report.inserted += 1,
        }
        sql::put_import_key(tx.conn(), TOKENS, &hash, id).await?;
    }
    drop(rows);
    let now = store::now();
    for (hash, id) in earlier {
        sql::revoke_token(tx.conn(), id, now).await?;
        sql::delete_import_key(tx.conn(), TOKENS, &hash).await?;
        report.deleted += 1;
    }
    Ok(expected)
}

/// Imports each send failure as a failed `send_message` job (listed at /api/v1/failed-tasks/,
/// re-queued from there); removes the ones an earlier run wrote whose source row is gone.
/// `skipped` are the subscriptions that were not imported.
pub async fn import_send_failures(
    source: &mut sqlx::PgConnection,
    tx: &mut Tx,
    skipped: &HashSet<Uuid>,
    max_attempts: i32,
    report: &mut TableReport,
) -> anyhow::Result<Checksum> {
    let mut expected = Checksum::default();
    let mut earlier: HashMap<String, i64> = sql::import_keys(tx.conn(), SEND_FAILURES)
        .await?
        .into_iter()
        .collect();
    let mut rows =
        sqlx::query_as::<_, SourceSendFailure>(source::SEND_FAILURE_SQL).fetch(&mut *source);
    while let Some(f) = rows.try_next().await? {
        report.read += 1;
        if skipped.contains(&f.subscription_id) {
            report.skip(
                f.id,
                format!("subscription {} was not imported", f.subscription_id),
            );
            continue;
        }
        let job = Job::SendMessage {
            subscription_id: f.subscription_id,
            resend: false,
        };
        let failed = FailedSend {
            task_id: f.task_id,
            subscription_id: f.subscription_id,
            payload: serde_json::to_value(&job)?,
            reason: f.reason,
            max_attempts,
            initiated_at: f.initiated_at,
        };
        let key = f.id.to_string();
        expected.add(&failure_fingerprint(
            &key,
            f.task_id,
            Some(f.subscription_id),
        ));
        let existing = earlier.remove(&key);
        let id = sql::put_failed_send(tx.conn(), existing, &failed).await?;
        match existing {
            Some(_) => report.unchanged += 1,
            None => report.inserted += 1,
        }
        sql::put_import_key(tx.conn(), SEND_FAILURES, &key, id).await?;
    }
    drop(rows);
    for (key, id) in earlier {
        sql::delete_failed_job(tx.conn(), id).await?;
        sql::delete_import_key(tx.conn(), SEND_FAILURES, &key).await?;
        report.deleted += 1;
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, username: &str, email: &str) -> SourceUser {
        SourceUser {
            id,
            username: username.into(),
            email: email.into(),
            is_staff: false,
            is_superuser: false,
            is_active: true,
            date_joined: chrono::Utc::now(),
        }
    }

    #[test]
    fn users_without_a_usable_or_free_email_get_one_from_their_id() {
        let mut taken = HashSet::new();
        let (email, warning) = email_for(&user(1, "hub", "Hub@Example.org"), &taken);
        assert_eq!(email, "hub@example.org");
        assert!(warning.is_none());
        taken.insert(email);
        let (email, warning) = email_for(&user(2, "hub2", "hub@example.org"), &taken);
        assert_eq!(email, "django-user-2@django.invalid");
        assert!(warning.unwrap().contains("earlier user"));
        let (email, warning) = email_for(&user(3, "sender", ""), &taken);
        assert_eq!(email, "django-user-3@django.invalid");
        assert!(warning.unwrap().contains("sender"));
    }
}
