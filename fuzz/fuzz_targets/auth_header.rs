//! An integration group's push auth header (src/integrations/push.rs): any text gives a header
//! or none, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = sbm::integrations::push::auth_header(text);
});
