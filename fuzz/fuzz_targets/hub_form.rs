//! WebSub hub bodies (POST /api/v1/hub): any bytes go through the hub route's form reader
//! (`http::body::parse_form`, with its field count limit, and the NUL check), then
//! `callbacks::hub::parse` (mode, topic, callback URL against the address policy, lease,
//! secret): a request or field errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sbm::callbacks::ssrf::AddressPolicy;

fuzz_target!(|data: &[u8]| {
    let Ok(form) = sbm::http::body::parse_form(data) else {
        return;
    };
    if sbm::validation::refuse_nul_pairs(&form).is_err() {
        return;
    }
    for allowed in [
        &[][..],
        &["127.0.0.0/8".to_string(), "::1/128".to_string()][..],
    ] {
        let policy = AddressPolicy::new(allowed).expect("a valid policy");
        let _ = sbm::callbacks::hub::parse(&form, &policy);
    }
});
