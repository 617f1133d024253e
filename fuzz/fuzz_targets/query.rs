//! Query strings (src/http/query.rs): any query string is read by the `Params` extractor as
//! the routes read it (urlencoded pairs, NUL refused), then paginated (`Params::slice`, with
//! the API's default and maximum page sizes) and filtered with every kind of filter the list
//! routes use (text, integer, boolean, times with each comparison), plus the raw readers
//! (`parse_bool`, `parse_time`) on every value: parameters or a 400, never a panic.
#![no_main]
use axum::extract::FromRequestParts;
use libfuzzer_sys::fuzz_target;
use sbm::http::query::{parse_bool, parse_time, Filters, Params, MAX_OFFSET};
use sbm::store::filter::Op;

fuzz_target!(|query: &str| {
    let Ok(request) = axum::http::Request::builder()
        .uri(format!("/api/v1/subscriptions/?{query}"))
        .body(())
    else {
        return;
    };
    let (mut parts, ()) = request.into_parts();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let Ok(params) = runtime.block_on(Params::from_request_parts(&mut parts, &())) else {
        return;
    };
    for (default, max) in [(100, 1000), (1, 1), (1000, i64::MAX)] {
        if let Ok(slice) = params.slice(default, max) {
            assert!(slice.limit >= 1 && slice.limit <= max.max(default));
            assert!((0..=MAX_OFFSET).contains(&slice.offset));
        }
    }
    let _ = Filters::new(&params)
        .text("lang", "lang")
        .integer("messageset", "message_set_id")
        .boolean("active", "active")
        .time("created_after", "created_at", Op::AtLeast)
        .time("created_before", "created_at", Op::AtMost)
        .time("until", "occurred_at", Op::Below)
        .finish();
    if let Some(topic) = params.get("topic") {
        let _ = sbm::events::topic::parse(topic);
    }
    for (_, value) in &params.0 {
        let _ = parse_bool(value);
        let _ = parse_time(value);
    }
});
