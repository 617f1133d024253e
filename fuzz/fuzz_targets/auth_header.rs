//! An integration group's push auth header (src/integrations/push.rs), as an admin writes it
//! in the group's `auth_header`: any text gives a header (its own `Name: value`, or the value of
//! `Authorization`) or none, never a panic; what it gives is a header reqwest can send.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Some((name, value)) = sbm::integrations::push::auth_header(text) {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(name, value);
    }
});
