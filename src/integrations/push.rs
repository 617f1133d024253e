//! Pushes of `send` groups: the loop that enqueues a push job at each due minute of a group's
//! cron fields, and the job that POSTs every waiting message in batches.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::json;

use super::format::push_body;
use super::{next_push, take_batch};
use crate::effects::{follow, Change, Effects};
use crate::jobs::{Claim, Failure, Outcome};
use crate::secrets::{Keyring, Purpose};
use crate::store::integrations::{self as sql, GroupRow};
use crate::store::{self, Db};

/// Bytes of a failed push's answer kept in its integration error.
const RESPONSE_LOG_BYTES: usize = 2000;

/// For each send group whose push is due: moves its next push on and reports the push as due to
/// the consequences table (which enqueues it), in one transaction. Of several processes, only
/// the one that moves it enqueues. Returns how many.
pub async fn enqueue_due(db: &Db, effects: &Effects) -> store::Result<usize> {
    let now = store::now();
    let due = {
        let mut conn = db.acquire().await?;
        sql::due_pushes(conn.conn(), now).await?
    };
    let mut enqueued = 0;
    for group in due {
        let Some(was_due) = group.next_push_at else {
            continue;
        };
        let mut tx = db.begin().await?;
        if sql::claim_push(tx.conn(), &group.name, was_due, next_push(&group, now)).await? {
            follow(
                &mut tx,
                effects,
                Change::IntegrationPushRequested { group: &group.name },
            )
            .await?;
            enqueued += 1;
        }
        tx.commit().await?;
    }
    Ok(enqueued)
}

/// What a push job needs: the database, the POST timeout (that of event deliveries), the
/// keyring that opens auth headers, this process's instance name, and the job lease.
pub struct Pusher<'a> {
    pub db: &'a Db,
    pub timeout: Duration,
    pub keyring: &'a Keyring,
    pub instance_name: &'a str,
    pub job_lease: Duration,
}

/// The push job: every waiting message of the group, in batches, until a batch fails.
pub async fn push(ctx: &Pusher<'_>, claim: &Claim<'_>, name: &str) -> Outcome {
    let group = {
        let mut conn = ctx.db.acquire().await?;
        sql::get_group(conn.conn(), name).await?
    };
    // A group deleted or turned into a poll group since the job was written has nothing to do.
    let Some(group) = group.filter(|g| g.method == "send") else {
        return claim.finish_alone(ctx.db).await;
    };
    let auth = match push_auth(ctx, &group).await? {
        Ok(auth) => auth,
        // Recorded as the group's integration error: nothing to retry.
        Err(()) => return claim.finish_alone(ctx.db).await,
    };
    let client = reqwest::Client::builder()
        .timeout(ctx.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| Failure::permanent(format!("HTTP client: {err}"), None))?;
    // Held longer than a POST may take, so a live push keeps its batch to itself.
    let lease = ctx.timeout + ctx.job_lease;
    let mut first = true;
    loop {
        let batch = next_batch(ctx.db, &group, lease).await?;
        // An empty first batch still goes out when the group asks for empty pushes.
        let send_empty = first && !group.skip_empty;
        if batch.messages.is_empty() && !send_empty {
            break;
        }
        first = false;
        let ids: Vec<i64> = batch.messages.iter().map(|m| m.id).collect();
        let (body, content_type) = push_body(&group.format, &batch.token, &batch.messages);
        let outcome = post(
            &client,
            &group,
            auth.as_deref(),
            &batch.token,
            body,
            content_type,
        )
        .await;
        let failed = outcome.is_err();
        record_push(ctx.db, &group.name, &batch.token, &ids, outcome).await?;
        if failed || ids.is_empty() {
            break;
        }
    }
    claim.finish_alone(ctx.db).await
}

/// The group's decrypted auth header, if it has one. `Err(())` when the group must not push
/// from here (another instance's group, or a header that cannot be decrypted): the reason is
/// then recorded as the group's integration error.
async fn push_auth(
    ctx: &Pusher<'_>,
    group: &GroupRow,
) -> Result<Result<Option<String>, ()>, Failure> {
    if group.instance != ctx.instance_name {
        let message = format!(
            "Not pushed: integration group \"{}\" pushes only from the sbm instance \"{}\", and this is \"{}\".",
            group.name, group.instance, ctx.instance_name
        );
        tracing::warn!(group = %group.name, "{message}");
        record_error(
            ctx.db,
            &group.name,
            &message,
            json!({"instance": ctx.instance_name}),
        )
        .await?;
        return Ok(Err(()));
    }
    let auth = group
        .auth_header
        .as_deref()
        .map(|h| ctx.keyring.open(Purpose::IntegrationAuthHeader, h))
        .transpose();
    let Ok(auth) = auth else {
        let message = format!(
            "Not pushed: the auth header of integration group \"{}\" cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS.",
            group.name
        );
        tracing::error!(group = %group.name, "{message}");
        record_error(ctx.db, &group.name, &message, json!({})).await?;
        return Ok(Err(()));
    };
    Ok(Ok(auth))
}

/// The batch to push next: an unconfirmed one again, else a fresh one, taken under `lease`.
async fn next_batch(db: &Db, group: &GroupRow, lease: Duration) -> Result<super::Batch, Failure> {
    let mut tx = db.begin().await?;
    let batch = match retake_unconfirmed(&mut tx, group, lease).await? {
        Some(batch) => batch,
        None => {
            let batch = take_batch(&mut tx, group, group.max_batch_size.into(), lease).await?;
            rekey(&mut tx, &group.name, batch).await?
        }
    };
    tx.commit().await?;
    Ok(batch)
}

/// Marks a pushed batch (or releases a failed one and records why), in one transaction.
async fn record_push(
    db: &Db,
    group: &str,
    token: &str,
    ids: &[i64],
    outcome: Result<(), (String, serde_json::Value)>,
) -> Result<(), Failure> {
    let mut tx = db.begin().await?;
    let now = store::now();
    match outcome {
        Ok(()) => {
            let hash = crate::auth::hash_token(token);
            sql::mark_batch(tx.conn(), group, &hash, ids, now).await?;
            sql::note_push(tx.conn(), group, now).await?;
        }
        Err((message, mut details)) => {
            sql::release_batch(tx.conn(), group, ids).await?;
            details["messages"] = json!(ids.len());
            sql::insert_error(tx.conn(), group, "push", &message, details, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A push whose POST may have reached the receiver but was never confirmed (the worker died or
/// lost the database before marking it, or the POST failed) is sent again as the same batch,
/// with the same token, before any other: see store::push_batches.
async fn retake_unconfirmed(
    tx: &mut store::Tx,
    group: &GroupRow,
    lease: Duration,
) -> Result<Option<super::Batch>, Failure> {
    let now = store::now();
    let until = crate::jobs::after(now, lease);
    let taken = store::push_batches::retake_unconfirmed(tx.conn(), &group.name, now, until).await?;
    Ok(taken.map(|messages| {
        let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
        super::Batch {
            token: batch_token(&group.name, &ids),
            messages: messages.into_iter().map(super::outgoing).collect(),
        }
    }))
}

/// A fresh batch takes the token derived from its ids.
async fn rekey(
    tx: &mut store::Tx,
    group: &str,
    batch: super::Batch,
) -> Result<super::Batch, Failure> {
    let ids: Vec<i64> = batch.messages.iter().map(|m| m.id).collect();
    let token = batch_token(group, &ids);
    let (old, new) = (
        crate::auth::hash_token(&batch.token),
        crate::auth::hash_token(&token),
    );
    store::push_batches::rekey(tx.conn(), &old, &new).await?;
    Ok(super::Batch { token, ..batch })
}

/// A push batch's token, also its `Idempotency-Key`: the same for the same messages of the
/// same group, so that a batch pushed again can be recognised by the receiver. Push tokens
/// mark nothing (a send group has no poll API), so they need not be secret.
pub fn batch_token(group: &str, ids: &[i64]) -> String {
    use sha2::Digest;
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    let name = format!("sbm push batch\0{group}\0{}", ids.join(","));
    hex::encode(sha2::Sha256::digest(name.as_bytes()))
}

/// The header a group's `auth_header` stands for: `Name: value` for a header of its own
/// (`X-Api-Key: …`), anything else as the value of `Authorization` (`Bearer …`, `Basic …`).
pub fn auth_header(text: &str) -> Option<(HeaderName, HeaderValue)> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let own = text.split_once(':').and_then(|(name, value)| {
        let name = HeaderName::from_bytes(name.trim_end().as_bytes()).ok()?;
        Some((name, HeaderValue::from_str(value.trim()).ok()?))
    });
    own.or_else(|| Some((AUTHORIZATION, HeaderValue::from_str(text).ok()?)))
}

/// One POST; Err is the integration error's message and details.
async fn post(
    client: &reqwest::Client,
    group: &GroupRow,
    auth: Option<&str>,
    token: &str,
    body: String,
    content_type: &'static str,
) -> Result<(), (String, serde_json::Value)> {
    let url = group.target_url.as_deref().unwrap_or_default();
    let mut request = client
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .header("Idempotency-Key", token)
        .body(body);
    if let Some((name, value)) = auth.and_then(auth_header) {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let excerpt: String = text.chars().take(RESPONSE_LOG_BYTES).collect();
            Err((
                format!("Push to {url} answered {status}."),
                json!({"status": status, "response_body": excerpt}),
            ))
        }
        Err(err) => {
            let reason = if err.is_timeout() {
                "timed out".to_string()
            } else {
                format!("failed: {err:#}")
            };
            Err((
                format!("Push to {url} {reason}."),
                json!({"status": null, "response_body": null}),
            ))
        }
    }
}

async fn record_error(
    db: &Db,
    group: &str,
    message: &str,
    details: serde_json::Value,
) -> store::Result<()> {
    let mut tx = db.begin().await?;
    sql::insert_error(tx.conn(), group, "push", message, details, store::now()).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_is_authorization_unless_it_names_its_own_header() {
        let header = |text: &str| {
            auth_header(text).map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        };
        let pair = |n: &str, v: &str| Some((n.to_string(), v.to_string()));
        assert_eq!(
            header("Bearer s3cret"),
            pair("authorization", "Bearer s3cret")
        );
        assert_eq!(
            header("Basic dXNlcjpwYXNz"),
            pair("authorization", "Basic dXNlcjpwYXNz")
        );
        assert_eq!(header("X-Api-Key: abc"), pair("x-api-key", "abc"));
        assert_eq!(
            header("Authorization: Token t"),
            pair("authorization", "Token t")
        );
        // A colon inside a value with spaces before it is not a header name.
        assert_eq!(header("Token a:b"), pair("authorization", "Token a:b"));
        assert_eq!(header("  "), None);
    }
}
