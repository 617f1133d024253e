//! WebSub verification of intent (W3C WebSub §5.3), run as a durable job: the hub GETs the
//! callback with a random challenge, and only a 2xx echoing it confirms the request.

use rand::Rng;
use uuid::Uuid;

use super::hub::Mode;
use super::Hub;
use crate::jobs::{Claim, Failure, Outcome};
use crate::store::events::{self as sql, CallbackRow};
use crate::store::{self, Db, Tx};

#[derive(Debug, Clone)]
pub struct Request {
    pub callback_id: Uuid,
    pub mode: Mode,
    pub topic: String,
    pub lease_seconds: i64,
    pub secret: Option<String>,
}

/// The callback URL with the hub's parameters added to any query it already has.
fn with_query(callback: &str, pairs: &[(&str, &str)]) -> Option<url::Url> {
    let mut url = url::Url::parse(callback).ok()?;
    url.query_pairs_mut().extend_pairs(pairs);
    Some(url)
}

/// Whether the subscriber confirmed: a 2xx whose body is the challenge.
async fn confirmed(hub: &Hub, url: url::Url, challenge: &str) -> Result<(), String> {
    // An IP literal never reaches the guarded resolver: judge it against today's policy here.
    hub.settings.policy.check_url(&url)?;
    let response = hub.client.get(url).send().await.map_err(|err| {
        let reason = super::error_chain(&err);
        format!("the callback could not be reached: {reason}")
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the callback answered {status}"));
    }
    let body = response
        .text()
        .await
        .map_err(|err| format!("reading the callback's answer: {err}"))?;
    if body.trim() == challenge {
        Ok(())
    } else {
        Err("the callback did not echo the challenge".into())
    }
}

/// Verifies the request with the callback, records the outcome, and tells a denied subscriber.
pub async fn run(db: &Db, hub: &Hub, claim: &Claim<'_>, request: Request) -> Outcome {
    let callback = {
        let mut conn = db.acquire().await?;
        sql::get_callback(conn.conn(), request.callback_id).await?
    };
    let Some(callback) = callback else {
        // Deleted through the API meanwhile: nothing to verify.
        return claim.finish_alone(db).await;
    };
    let challenge = hex::encode(rand::thread_rng().gen::<[u8; 20]>());
    let lease = request.lease_seconds.to_string();
    let mut pairs = vec![
        ("hub.mode", request.mode.as_str()),
        ("hub.topic", request.topic.as_str()),
        ("hub.challenge", challenge.as_str()),
    ];
    if request.mode == Mode::Subscribe {
        pairs.push(("hub.lease_seconds", lease.as_str()));
    }
    let outcome = match with_query(&callback.callback_url, &pairs) {
        Some(url) => confirmed(hub, url, &challenge).await,
        None => Err("the callback URL does not parse".into()),
    };

    let mut tx = db.begin().await?;
    let denial = record(&mut tx, &callback, &request, &outcome).await?;
    if !claim.finish(&mut tx).await? {
        return Ok(());
    }
    tx.commit().await?;
    if let Some(reason) = denial {
        tell_denied(hub, &callback, &request.topic, &reason).await;
    }
    Ok(())
}

/// Moves the callback on by the verification's outcome; returns the reason of a denial.
async fn record(
    tx: &mut Tx,
    callback: &CallbackRow,
    request: &Request,
    outcome: &Result<(), String>,
) -> Result<Option<String>, Failure> {
    let now = store::now();
    match (outcome, request.mode) {
        (Ok(()), Mode::Subscribe) => {
            sql::activate_callback(
                tx.conn(),
                callback.id,
                &request.topic,
                request.secret.as_deref(),
                request.lease_seconds,
                now,
            )
            .await?;
            tracing::info!(callback = %callback.id, topic = %request.topic, "callback verified");
        }
        (Ok(()), Mode::Unsubscribe) => {
            sql::set_callback_state(
                tx.conn(),
                callback.id,
                "unsubscribed",
                Some("the subscriber unsubscribed"),
                now,
            )
            .await?;
        }
        // A renewal that is not confirmed leaves the subscription as it was (WebSub: a new
        // request overrides the old one only once verified).
        (Err(reason), Mode::Subscribe) if callback.state != "active" => {
            sql::set_callback_state(tx.conn(), callback.id, "denied", Some(reason), now).await?;
            return Ok(Some(reason.clone()));
        }
        (Err(reason), _) => {
            tracing::info!(callback = %callback.id, mode = request.mode.as_str(), %reason, "request not verified; callback unchanged");
        }
    }
    Ok(None)
}

/// WebSub §5.2: tells the subscriber its subscription was denied. Best effort: the state is
/// already recorded.
async fn tell_denied(hub: &Hub, callback: &CallbackRow, topic: &str, reason: &str) {
    tracing::info!(callback = %callback.id, %reason, "subscription denied");
    let pairs = [
        ("hub.mode", "denied"),
        ("hub.topic", topic),
        ("hub.reason", reason),
    ];
    if let Some(url) = with_query(&callback.callback_url, &pairs) {
        if let Err(err) = hub.client.get(url).send().await {
            tracing::debug!(callback = %callback.id, error = %err, "denial not delivered");
        }
    }
}
