//! The names of the original's real-time Go Metrics counters (spec/peers.md §4), which the
//! consequences table writes to the metrics outbox.

use super::content::MessageSet;

/// The original's normalisation of names inside metric keys: every run of non-word characters
/// becomes `_`, and `_` at either end is dropped.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if c.is_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out.trim_matches('_').to_string()
}

/// Counted when a subscription is created.
pub fn created(set: &MessageSet, lang: &str) -> Vec<String> {
    vec![
        "subscriptions.created.sum".into(),
        format!(
            "subscriptions.message_set.{}.sum",
            normalize(&set.short_name)
        ),
        format!("subscriptions.language.{}.sum", normalize(lang)),
        format!(
            "subscriptions.message_format.{}.sum",
            normalize(&set.content_type)
        ),
    ]
}

/// Counted when a message was accepted by the Message Sender.
pub fn sent(set: &MessageSet) -> Vec<String> {
    let content_type = normalize(&set.content_type);
    vec![
        format!("message.{content_type}.sum"),
        format!("message.{content_type}.{}.sum", normalize(&set.short_name)),
    ]
}

/// Counted when a send failed: `errored` for a subscriber without an address, else the peer
/// failure (`timeout`, `connection_error`, `http_error.<code>`).
pub fn send_failed(reason: &str) -> Vec<String> {
    if reason == "errored" {
        vec!["subscriptions.send_next_message_errored.sum".into()]
    } else {
        vec![format!("sbm.send_next_message.{reason}.sum")]
    }
}
