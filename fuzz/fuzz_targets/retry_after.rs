//! Retry-After values (src/callbacks/retry.rs): seconds or an HTTP date, anything else none,
//! never a panic (nor an overflow in the arithmetic on far dates or huge numbers).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    let _ = sbm::callbacks::retry::parse_retry_after(value, chrono::Utc::now());
});
