//! Query strings (src/http/query.rs): any query string reads as parameters or a 400; the
//! pagination and every kind of filter take any value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sbm::http::query::{parse_bool, parse_time, Filters, Params};
use sbm::store::filter::Op;

fuzz_target!(|query: &str| {
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) else {
        return;
    };
    let params = Params(pairs);
    let _ = params.slice(1000, 1000);
    let _ = Filters::new(&params)
        .text("lang", "lang")
        .integer("messageset", "message_set_id")
        .boolean("active", "active")
        .time("created_after", "created_at", Op::AtLeast)
        .finish();
    for (_, value) in &params.0 {
        let _ = parse_bool(value);
        let _ = parse_time(value);
    }
});
