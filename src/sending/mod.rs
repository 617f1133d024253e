//! Sending one message: compose the Message Sender's outbound body, and the send job that looks
//! up the address, posts the outbound and records the send.

pub mod completion;
pub mod content_cache;
pub mod job;
pub mod quiet_hours;
pub mod rate;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::content::zone::SendWindow;
use crate::peers::Peers;
use crate::store::Db;
use completion::Completer;
use content_cache::ContentCache;
use rate::RateLimiter;

/// Everything an outbound message is made of.
#[derive(Debug, Clone)]
pub struct Outbound<'a> {
    pub to_addr: &'a str,
    pub identity: Uuid,
    pub channel: Option<&'a str>,
    /// `text` or `audio`, from the message set.
    pub content_type: &'a str,
    pub text: Option<&'a str>,
    /// Absolute URL of the message's binary content, if it has one.
    pub file_url: Option<String>,
    /// The subscription's `prepend_next_delivery`: text before the message, or (audio) a URL
    /// played before it.
    pub prepend: Option<&'a str>,
    /// The message's own metadata, which the outbound's metadata starts from.
    pub message_metadata: Option<&'a Value>,
    /// Stable across retries of one send.
    pub send_id: Uuid,
    pub resend: bool,
}

/// The metadata key that carries the stable send id to the Message Sender.
pub const SEND_ID_KEY: &str = "sbm_send_id";

/// The body of `POST {MESSAGE_SENDER_URL}/outbound/`, as the original sent it.
pub fn outbound_body(o: &Outbound<'_>) -> Value {
    let mut metadata: Map<String, Value> = o
        .message_metadata
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut body = Map::new();
    body.insert("to_addr".into(), json!(o.to_addr));
    body.insert("to_identity".into(), json!(o.identity.to_string()));
    body.insert("delivered".into(), json!("false"));
    if let Some(channel) = o.channel.filter(|c| !c.is_empty()) {
        body.insert("channel".into(), json!(channel));
    }
    if o.content_type == "audio" {
        let url = o.file_url.clone().unwrap_or_default();
        let speech = match o.prepend {
            Some(prepend) => json!([prepend, url]),
            None => json!(url),
        };
        metadata.insert("voice_speech_url".into(), speech);
    } else {
        let text = o.text.unwrap_or_default();
        let content = match o.prepend {
            Some(prepend) => format!("{prepend}\n{text}"),
            None => text.to_string(),
        };
        body.insert("content".into(), json!(content));
        if let Some(url) = &o.file_url {
            metadata.insert("image_url".into(), json!(url));
        }
    }
    if o.resend {
        body.insert("resend".into(), json!("true"));
    }
    metadata.insert(SEND_ID_KEY.into(), json!(o.send_id.to_string()));
    body.insert("metadata".into(), Value::Object(metadata));
    Value::Object(body)
}

/// What a send needs: the database, the peers, the content cache, the committer of accepted
/// sends, the send rate limit, the origin of media URLs and the default quiet hours.
pub struct SendDeps<'a> {
    pub db: &'a Db,
    pub peers: &'a Peers,
    pub content: &'a ContentCache,
    pub completer: &'a Completer,
    pub send_rate: Option<&'a RateLimiter>,
    pub public_origin: &'a str,
    pub send_window: Option<SendWindow>,
    /// What follows a change the send makes outside the committer (a deferral).
    pub effects: &'a crate::effects::Effects,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_message() -> Outbound<'static> {
        Outbound {
            to_addr: "+27820000123",
            identity: Uuid::nil(),
            channel: None,
            content_type: "text",
            text: Some("Week 5: drink water"),
            file_url: None,
            prepend: None,
            message_metadata: None,
            send_id: Uuid::nil(),
            resend: false,
        }
    }

    #[test]
    fn a_text_message_carries_its_content_and_the_send_id() {
        let body = outbound_body(&text_message());
        assert_eq!(body["to_addr"], "+27820000123");
        assert_eq!(body["to_identity"], Uuid::nil().to_string());
        assert_eq!(body["delivered"], "false");
        assert_eq!(body["content"], "Week 5: drink water");
        assert_eq!(body["metadata"][SEND_ID_KEY], Uuid::nil().to_string());
        assert!(body.get("channel").is_none());
        assert!(body.get("resend").is_none());
    }

    #[test]
    fn a_prepend_goes_on_its_own_line_before_the_text() {
        let body = outbound_body(&Outbound {
            prepend: Some("Welcome!"),
            ..text_message()
        });
        assert_eq!(body["content"], "Welcome!\nWeek 5: drink water");
    }

    #[test]
    fn audio_goes_as_a_voice_speech_url_with_any_prepend_first() {
        let audio = Outbound {
            content_type: "audio",
            text: None,
            file_url: Some("https://sbm/media/a.mp3".into()),
            ..text_message()
        };
        let body = outbound_body(&audio);
        assert!(body.get("content").is_none());
        assert_eq!(
            body["metadata"]["voice_speech_url"],
            "https://sbm/media/a.mp3"
        );
        let body = outbound_body(&Outbound {
            prepend: Some("https://sbm/media/hello.mp3"),
            ..audio
        });
        assert_eq!(
            body["metadata"]["voice_speech_url"],
            json!(["https://sbm/media/hello.mp3", "https://sbm/media/a.mp3"])
        );
    }

    #[test]
    fn channel_resend_and_message_metadata_are_passed_on() {
        let meta = json!({"priority": "high"});
        let body = outbound_body(&Outbound {
            channel: Some("WHATSAPP"),
            resend: true,
            message_metadata: Some(&meta),
            ..text_message()
        });
        assert_eq!(body["channel"], "WHATSAPP");
        assert_eq!(body["resend"], "true");
        assert_eq!(body["metadata"]["priority"], "high");
    }
}
