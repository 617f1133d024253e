//! Retry-After values (src/callbacks/retry.rs), as a callback receiver or a peer answers them:
//! delay-seconds or any of the three HTTP date forms, anything else none, never a panic (nor an
//! overflow in the arithmetic on far dates or huge numbers), measured from 1970, from now and
//! from 2106.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    for now in [
        chrono::DateTime::UNIX_EPOCH,
        chrono::Utc::now(),
        chrono::DateTime::from_timestamp(i64::from(u32::MAX), 0).expect("in chrono's range"),
    ] {
        let _ = sbm::callbacks::retry::parse_retry_after(value, now);
    }
});
