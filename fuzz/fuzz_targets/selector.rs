//! The query language: any text through the selector parser (an error must point inside the
//! input; what parses must print back to the same selector) and through completion at every
//! cursor position. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_query::{complete, parse_selector};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_selector(text) {
        Ok(s) => {
            let printed = s.to_string();
            let again = parse_selector(&printed).expect("Display output parses");
            assert_eq!(again.to_string(), printed);
        }
        Err(e) => assert!(e.offset <= text.len() && text.is_char_boundary(e.offset)),
    }
    for cursor in 0..=text.len() {
        let _ = complete(text, cursor);
    }
});
