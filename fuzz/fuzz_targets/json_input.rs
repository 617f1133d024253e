//! Request bodies of the JSON and form routes: any bytes under any of the Content-Types the
//! routes take go through the `Body` extractor's parse and storable check (`http::body`: NUL,
//! nesting, value count and string length limits), and what is accepted is read by every
//! resource's DRF-style field reader (`validation::input::Input` as schedules, message sets,
//! messages, subscriptions, tokens, integration groups and messages use it) in every mode:
//! values or field errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sbm::http::fuzzing::{read_with_every_reader, request_body};

const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/vnd.api+json; charset=utf-8",
    "",
];

fuzz_target!(|input: (u8, &[u8])| {
    let (kind, data) = input;
    let content_type = CONTENT_TYPES[usize::from(kind) % CONTENT_TYPES.len()];
    if let Some(body) = request_body(content_type, data) {
        read_with_every_reader(&body);
    }
});
