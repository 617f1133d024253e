//! WebSub hub form bodies (src/callbacks/hub.rs): any urlencoded body reads as a request or
//! field errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sbm::callbacks::ssrf::AddressPolicy;

fuzz_target!(|data: &[u8]| {
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    let policy = AddressPolicy::new(&[]).expect("the default policy");
    let _ = sbm::callbacks::hub::parse(&form, &policy);
});
