//! Event topics (src/events/topic.rs), as a hub form's `hub.topic`, an integration group's
//! `event_types` and the events list's `topic` filter carry them: any text parses or is
//! refused; a parsed topic's prefix can be matched against any event type.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The input's first line is the topic, the rest an event type.
fuzz_target!(|text: &str| {
    let (topic, event_type) = text.split_once('\n').unwrap_or((text, "send.succeeded"));
    if let Ok(parsed) = sbm::events::topic::parse(topic) {
        let _ = sbm::events::topic::matches(&parsed.prefix, event_type);
    }
    let _ = sbm::integrations::parse_topics(&[topic.to_string(), event_type.to_string()]);
});
