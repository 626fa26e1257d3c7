//! The selector parser and completion never panic, and errors point inside the input: random
//! strings, and mutations of valid selectors (the `fuzz/` target `selector` runs the same
//! entry points under libFuzzer).

use proptest::prelude::*;
use strata_query::{complete, parse_selector};

const VALID: &[&str] = &[
    "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job=\"api\", pod=~'api-.*', env!=`prod`}",
    "memory:inuse_space:bytes:space:bytes{instance!~\"a\\\\\"b\"}",
    "goroutine:goroutine:count:goroutine:count",
];

fn check(input: &str) {
    match parse_selector(input) {
        Ok(s) => {
            // What parses prints back to something that parses to the same.
            let again = parse_selector(&s.to_string()).expect("Display output parses");
            assert_eq!(again.to_string(), s.to_string());
        }
        Err(e) => {
            assert!(e.offset <= input.len(), "{input:?}: {e:?}");
            assert!(input.is_char_boundary(e.offset), "{input:?}: {e:?}");
            assert_eq!(
                e.column,
                input[..e.offset].chars().count() + 1,
                "{input:?}: {e:?}"
            );
        }
    }
    for cursor in 0..=input.len() + 1 {
        let c = complete(input, cursor);
        assert!(c.start <= input.len().min(cursor));
    }
}

proptest! {
    #[test]
    fn random_text(input in "\\PC{0,40}") {
        check(&input);
    }

    #[test]
    fn mutated_selectors(
        which in 0..VALID.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..6),
    ) {
        let mut chars: Vec<char> = VALID[which].chars().collect();
        for (at, c, kind) in edits {
            let i = at.index(chars.len() + 1);
            match kind {
                0 => chars.insert(i, c),
                1 if i < chars.len() => { chars.remove(i); }
                _ if i < chars.len() => chars[i] = c,
                _ => {}
            }
        }
        check(&chars.into_iter().collect::<String>());
    }
}
