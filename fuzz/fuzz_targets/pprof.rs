//! pprof bytes (gzipped or not) through decode and normalization (with server-side deltas):
//! any input is a profile or an error, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::{DecodeLimits, DeltaTracker, ProfileSource, decode_pprof, normalize_with_deltas};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_body_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
    };
    let Ok(profile) = decode_pprof(data, &limits) else { return };
    let source = ProfileSource::from_labels([("__name__".to_owned(), "fuzz".to_owned())], 1).unwrap();
    let mut deltas = DeltaTracker::new(16);
    // Twice, so the second pass computes deltas against the first.
    for _ in 0..2 {
        let mut b = strata_engine::SampleBatchBuilder::new();
        if normalize_with_deltas(&profile, &source, &mut deltas, &mut b).is_ok() {
            let _ = b.build();
        }
    }
});
