//! OTLP `ExportProfilesServiceRequest` bytes (gzipped or not) through decode and the
//! dictionary-resolving normalization: a batch or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::{DecodeLimits, DeltaTracker, decode_otlp, otlp_export};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_body_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
    };
    let Ok(req) = decode_otlp(data, &limits) else { return };
    let mut deltas = DeltaTracker::new(16);
    let _ = otlp_export(&req, 1, &mut deltas);
});
