//! Folded-stack text (`a;b;c 12` per line) through the parser and into a batch: stacks or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_engine::{Labels, ProfileType, SampleBatchBuilder};
use strata_ingest::{folded_into, parse_folded};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(stacks) = parse_folded(text) else { return };
    let pt = ProfileType::new("fuzz", "samples", "count", "cpu", "nanoseconds", true).unwrap();
    let labels = Labels::new([("service_name", "fuzz")]).unwrap();
    let mut b = SampleBatchBuilder::new();
    folded_into(&stacks, &pt, labels, 1, 0, 10_000_000, &mut b);
    let _ = b.build();
});
