//! Event topics (src/events/topic.rs): any text parses or is refused; a parsed topic's prefix
//! can be matched against any event type.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (topic, event_type) = input;
    if let Ok(parsed) = sbm::events::topic::parse(topic) {
        let _ = sbm::events::topic::matches(&parsed.prefix, event_type);
    }
});
