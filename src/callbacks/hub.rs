//! The hub's subscription requests: reading the form and queueing the verification of intent.

use url::Url;

use super::ssrf::AddressPolicy;
use super::CallbackSettings;
use crate::domain::{Error, Result};
use crate::effects::{follow, Change, Effects};
use crate::events::topic::{self, Topic};
use crate::store::{self, events as sql, Tx};
use crate::validation::FieldErrors;

/// WebSub asks for under 200 bytes; intergov's hub took up to 200, so 200 is allowed.
const MAX_SECRET_BYTES: usize = 200;
const MAX_CALLBACK_LENGTH: usize = 2000;

pub use crate::model::callbacks::Mode;

#[derive(Debug, Clone)]
pub struct HubRequest {
    pub mode: Mode,
    pub topic: Topic,
    pub callback: String,
    pub lease_seconds: Option<i64>,
    pub secret: Option<String>,
}

const REQUIRED: &str = "This field is required.";

/// Reads a hub form. Unknown fields are ignored, as WebSub requires; of a repeated field the
/// first counts.
pub fn parse(
    form: &[(String, String)],
    policy: &AddressPolicy,
) -> std::result::Result<HubRequest, FieldErrors> {
    let field = |name: &str| {
        crate::validation::asked(name);
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut errors = FieldErrors::new();
    let mode = read_mode(&mut errors, field("hub.mode"));
    let topic = read_topic(&mut errors, field("hub.topic"));
    let callback = read_callback(&mut errors, field("hub.callback"), policy);
    let lease_seconds = read_lease(&mut errors, field("hub.lease_seconds"));
    let secret = read_secret(&mut errors, field("hub.secret"));
    errors.into_result()?;
    Ok(HubRequest {
        mode: mode.expect("no errors"),
        topic: topic.expect("no errors"),
        callback: callback.expect("no errors"),
        lease_seconds,
        secret,
    })
}

fn read_mode(errors: &mut FieldErrors, raw: Option<&str>) -> Option<Mode> {
    match raw.map(str::trim) {
        None | Some("") => {
            errors.add("hub.mode", REQUIRED);
            None
        }
        Some("subscribe") => Some(Mode::Subscribe),
        Some("unsubscribe") => Some(Mode::Unsubscribe),
        Some(other) => {
            errors.add(
                "hub.mode",
                format!("\"{other}\" is not a valid choice: use subscribe or unsubscribe."),
            );
            None
        }
    }
}

fn read_topic(errors: &mut FieldErrors, raw: Option<&str>) -> Option<Topic> {
    match raw {
        None => {
            errors.add("hub.topic", REQUIRED);
            None
        }
        Some(raw) => topic::parse(raw)
            .map_err(|message| errors.add("hub.topic", message))
            .ok(),
    }
}

/// The callback URL: present, not too long, http(s), and allowed by the address policy.
fn read_callback(
    errors: &mut FieldErrors,
    raw: Option<&str>,
    policy: &AddressPolicy,
) -> Option<String> {
    let raw = match raw.map(str::trim) {
        None | Some("") => {
            errors.add("hub.callback", REQUIRED);
            return None;
        }
        Some(raw) if raw.len() > MAX_CALLBACK_LENGTH => {
            errors.add(
                "hub.callback",
                format!("Ensure this field has no more than {MAX_CALLBACK_LENGTH} characters."),
            );
            return None;
        }
        Some(raw) => raw,
    };
    let Ok(url) = Url::parse(raw) else {
        errors.add("hub.callback", "Enter a valid URL.");
        return None;
    };
    match policy.check_url(&url) {
        Err(message) => {
            errors.add("hub.callback", message);
            None
        }
        Ok(()) => Some(url.to_string()),
    }
}

fn read_lease(errors: &mut FieldErrors, raw: Option<&str>) -> Option<i64> {
    match raw.map(str::trim) {
        None | Some("") => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(seconds) if seconds > 0 => Some(seconds),
            Ok(_) => {
                errors.add("hub.lease_seconds", "Ensure this value is greater than 0.");
                None
            }
            Err(_) => {
                errors.add("hub.lease_seconds", "A valid integer is required.");
                None
            }
        },
    }
}

fn read_secret(errors: &mut FieldErrors, raw: Option<&str>) -> Option<String> {
    match raw {
        None | Some("") => None,
        Some(secret) if secret.len() > MAX_SECRET_BYTES => {
            errors.add(
                "hub.secret",
                format!("Ensure this field has no more than {MAX_SECRET_BYTES} bytes."),
            );
            None
        }
        Some(secret) => Some(secret.to_string()),
    }
}

/// Records `owner`'s request and queues its verification of intent. A subscription belongs to
/// the user who made it: a pair new to `owner` is stored as their own `pending` subscription
/// (even when another user subscribed the same pair), an existing one of theirs keeps its state
/// until the new request is verified. Unsubscribing a pair `owner` never subscribed is
/// `NotFound`, whether or not someone else did.
pub async fn request(
    tx: &mut Tx,
    effects: &Effects,
    settings: &CallbackSettings,
    request: HubRequest,
    owner: i64,
) -> Result<()> {
    let lease_seconds = settings.grant_lease(request.lease_seconds);
    let callback = match request.mode {
        Mode::Subscribe => {
            sql::pending_callback(
                tx.conn(),
                &request.topic.raw,
                &request.topic.prefix,
                &request.callback,
                lease_seconds,
                owner,
                store::now(),
            )
            .await?
        }
        Mode::Unsubscribe => {
            sql::find_callback(tx.conn(), owner, &request.topic.prefix, &request.callback)
                .await?
                .ok_or(Error::NotFound)?
        }
    };
    // Sealed from here on: in the job's payload and then in the callback row.
    let sealed = request.secret.map(|s| {
        settings
            .keyring
            .seal(crate::secrets::Purpose::CallbackSecret, &s)
    });
    let change = Change::HubRequested {
        callback_id: callback.id,
        mode: request.mode,
        topic: &request.topic.raw,
        lease_seconds,
        sealed_secret: sealed.as_deref(),
    };
    follow(tx, effects, change).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_complete_subscription_is_read_and_unknown_fields_ignored() {
        let request = parse(
            &form(&[
                ("hub.mode", "subscribe"),
                ("hub.topic", "send.*"),
                ("hub.callback", "https://example.org/hook?x=1"),
                ("hub.lease_seconds", "7200"),
                ("hub.secret", "s3cr3t"),
                ("hub.other", "ignored"),
            ]),
            &AddressPolicy::default(),
        )
        .unwrap();
        assert_eq!(request.mode, Mode::Subscribe);
        assert_eq!(request.topic.prefix, "send");
        assert_eq!(request.callback, "https://example.org/hook?x=1");
        assert_eq!(request.lease_seconds, Some(7200));
        assert_eq!(request.secret.as_deref(), Some("s3cr3t"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = parse(
            &form(&[
                ("hub.mode", "watch"),
                ("hub.topic", "a..b"),
                ("hub.callback", "ftp://example.org/"),
                ("hub.lease_seconds", "soon"),
                ("hub.secret", &"x".repeat(201)),
            ]),
            &AddressPolicy::default(),
        )
        .unwrap_err();
        for field in [
            "hub.mode",
            "hub.topic",
            "hub.callback",
            "hub.lease_seconds",
            "hub.secret",
        ] {
            assert!(errors.has(field), "{field}");
        }
        let missing = parse(&form(&[]), &AddressPolicy::default()).unwrap_err();
        for field in ["hub.mode", "hub.topic", "hub.callback"] {
            assert_eq!(missing.messages(field), ["This field is required."]);
        }
    }

    #[test]
    fn private_callbacks_are_refused_unless_allowed() {
        let fields = form(&[
            ("hub.mode", "subscribe"),
            ("hub.topic", "*"),
            ("hub.callback", "http://127.0.0.1:9/hook"),
        ]);
        assert!(parse(&fields, &AddressPolicy::default())
            .unwrap_err()
            .has("hub.callback"));
        let loopback = AddressPolicy::new(&["127.0.0.0/8".into()]).unwrap();
        assert!(parse(&fields, &loopback).is_ok());
    }
}
