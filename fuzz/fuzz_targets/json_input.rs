//! The DRF-style JSON field readers (src/http/input.rs): any JSON body, read with every kind of
//! reader in every mode, gives values or field errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sbm::http::input::{Input, Mode, Text};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for mode in [Mode::Create, Mode::Replace, Mode::Partial] {
        let Ok(mut input) = Input::new(&body, mode) else {
            continue;
        };
        let _ = input.text("a", Text::required().max(5));
        let _ = input.nullable_text("b", Text::optional());
        let _ = input.choice("c", false, &["x", "y"]);
        let _ = input.integer("d", false, Some(0));
        let _ = input.nullable_integer("e", Some(1));
        let _ = input.uuid("f", false);
        let _ = input.pk("g", false);
        let _ = input.nullable_pk("h");
        let _ = input.boolean("i", false);
        let _ = input.nullable_object("j");
        let _ = input.finish();
    }
});
