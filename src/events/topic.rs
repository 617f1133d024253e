//! WebSub hub topics: an event type, or a dotted prefix of event types.

const MAX_LEN: usize = 200;

/// A validated `hub.topic`: an event type, or a dotted prefix of event types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The topic as given, trimmed.
    pub raw: String,
    /// The normalised (lowercase) prefix; empty means every event type.
    pub prefix: String,
}

/// Err is a human message for a 400 field error.
pub fn parse(topic: &str) -> Result<Topic, String> {
    let raw = topic.trim();
    if raw.is_empty() {
        return Err("topic must not be empty".into());
    }
    if raw.chars().count() > MAX_LEN {
        return Err(format!("topic must be at most {MAX_LEN} characters"));
    }
    if raw == "*" {
        return Ok(Topic {
            raw: raw.into(),
            prefix: String::new(),
        });
    }
    let body = raw
        .strip_suffix(".*")
        .or_else(|| raw.strip_suffix('.'))
        .unwrap_or(raw);
    for part in body.split('.') {
        if part.is_empty() {
            return Err(
                "topic must not contain empty parts (e.g. \"a..b\" or a leading '.')".into(),
            );
        }
        if part.contains('*') {
            return Err(
                "'*' is only allowed alone or as the whole last part (e.g. \"send.*\")".into(),
            );
        }
        if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err("topic parts may contain only letters, digits and '_'".into());
        }
    }
    Ok(Topic {
        raw: raw.into(),
        prefix: body.to_ascii_lowercase(),
    })
}

/// Whether an event type falls under a normalised prefix ('' matches everything).
pub fn matches(prefix: &str, event_type: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let t = event_type.to_ascii_lowercase();
    match t.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('.'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_topics_normalise_to_prefixes() {
        let cases = [
            ("*", ""),
            ("  *  ", ""),
            ("send", "send"),
            ("send.", "send"),
            ("send.*", "send"),
            ("send.succeeded", "send.succeeded"),
            ("Send.Succeeded", "send.succeeded"),
            ("subscription.*", "subscription"),
            ("subscription.created", "subscription.created"),
            ("UN.CEFACT.trade.*", "un.cefact.trade"),
            ("a_b.c_1", "a_b.c_1"),
            ("  send.failed \n", "send.failed"),
            ("x", "x"),
            ("123", "123"),
        ];
        for (input, prefix) in cases {
            let t = parse(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"));
            assert_eq!(t.prefix, prefix, "{input:?}");
            assert_eq!(t.raw, input.trim(), "{input:?}");
        }
    }

    #[test]
    fn invalid_topics_are_rejected() {
        let cases = [
            "",
            "   ",
            ".",
            ".*",
            "*.",
            "**",
            "se*",
            "send*",
            "*send",
            "*.send",
            "send.*.x",
            "send.*.*",
            "send.**",
            "a..b",
            ".send",
            "send..",
            "send..*",
            "send-failed",
            "send failed",
            "send/failed",
            "sénd",
            "send.$",
        ];
        for input in cases {
            assert!(parse(input).is_err(), "{input:?} accepted");
        }
    }

    #[test]
    fn length_limit_is_200_characters() {
        let ok = "a".repeat(200);
        assert_eq!(parse(&ok).unwrap().prefix, ok);
        assert!(parse(&"a".repeat(201)).is_err());
        // Surrounding whitespace does not count.
        assert!(parse(&format!("  {ok}  ")).is_ok());
    }

    #[test]
    fn error_messages_are_human() {
        assert_eq!(parse("").unwrap_err(), "topic must not be empty");
        assert!(parse("se*").unwrap_err().contains("'*'"));
        assert!(parse("a..b").unwrap_err().contains("empty"));
        assert!(parse("a-b").unwrap_err().contains("letters, digits"));
        assert!(parse(&"a".repeat(201)).unwrap_err().contains("200"));
    }

    #[test]
    fn matching_table() {
        let cases = [
            ("", "send.succeeded", true),
            ("", "anything", true),
            ("", "", true),
            ("send", "send", true),
            ("send", "send.succeeded", true),
            ("send", "send.failed", true),
            ("send", "SEND.Failed", true),
            ("send", "sending", false),
            ("send", "sending.failed", false),
            ("send", "resend", false),
            ("send", "sen", false),
            ("send", "", false),
            ("sending", "send", false),
            ("send.succeeded", "send.succeeded", true),
            ("send.succeeded", "Send.Succeeded", true),
            ("send.succeeded", "send.failed", false),
            ("send.succeeded", "send", false),
            ("send.succeeded", "send.succeeded_late", false),
            ("subscription", "subscription.created", true),
            ("subscription", "subscription.completed", true),
            ("subscription", "subscriptions.x", false),
            ("subscription.created", "subscription.created.v2", true),
        ];
        for (prefix, event, expected) in cases {
            assert_eq!(matches(prefix, event), expected, "{prefix:?} vs {event:?}");
        }
    }

    #[test]
    fn parsed_topics_match_case_insensitively() {
        let t = parse("Subscription.*").unwrap();
        assert!(matches(&t.prefix, "subscription.created"));
        assert!(matches(&t.prefix, "SUBSCRIPTION.CREATED"));
        assert!(!matches(&t.prefix, "send.succeeded"));
        let all = parse("*").unwrap();
        assert!(matches(&all.prefix, "send.succeeded"));
        assert!(matches(&all.prefix, "subscription.created"));
    }
}
