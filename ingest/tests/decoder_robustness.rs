//! The decoders under mutated input, on stable Rust (the same entry points the cargo-fuzz
//! targets in `fuzz/` drive, seeded from `fuzz/seeds/`): any bytes give a batch or an error,
//! never a panic.

use proptest::prelude::*;
use strata_engine::{Labels, ProfileType, SampleBatchBuilder};
use strata_ingest::{
    DecodeLimits, DeltaTracker, ProfileSource, decode_otlp, decode_pprof, decompress, folded_into,
    normalize_with_deltas, otlp_export, parse_folded,
};

fn seeds(kind: &str) -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/").to_owned() + kind;
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            // Mutate the protobuf, not the gzip around it.
            decompress(&bytes, &limits()).unwrap().into_owned()
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {dir}");
    out
}

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_body_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
    }
}

/// Byte edits: (position, kind, byte), applied in order.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, kind, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let pos = pos % bytes.len();
        match kind % 4 {
            0 => bytes[pos] = byte,
            1 => bytes[pos] ^= 1 << (byte % 8),
            2 => bytes.insert(pos, byte),
            _ => bytes.truncate(pos),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_pprof_never_panics(seed in any::<prop::sample::Index>(), edits in edits()) {
        let seeds = seeds("pprof");
        let data = mutate(seed.get(&seeds).clone(), &edits);
        if let Ok(profile) = decode_pprof(&data, &limits()) {
            let source =
                ProfileSource::from_labels([("__name__".to_owned(), "fuzz".to_owned())], 1).unwrap();
            let mut deltas = DeltaTracker::new(16);
            for _ in 0..2 {
                let mut b = SampleBatchBuilder::new();
                if normalize_with_deltas(&profile, &source, &mut deltas, &mut b).is_ok() {
                    let _ = b.build();
                }
            }
        }
    }

    #[test]
    fn mutated_otlp_never_panics(seed in any::<prop::sample::Index>(), edits in edits()) {
        let seeds = seeds("otlp");
        let data = mutate(seed.get(&seeds).clone(), &edits);
        if let Ok(req) = decode_otlp(&data, &limits()) {
            let _ = otlp_export(&req, 1, &mut DeltaTracker::new(16));
        }
    }

    #[test]
    fn arbitrary_folded_text_never_panics(text in "([a-z;]{0,12}( -?[0-9]{0,20})?\n?){0,20}") {
        if let Ok(stacks) = parse_folded(&text) {
            let pt = ProfileType::new("fuzz", "samples", "count", "cpu", "nanoseconds", true).unwrap();
            let mut b = SampleBatchBuilder::new();
            folded_into(&stacks, &pt, Labels::new([("service_name", "fuzz")]).unwrap(), 1, 0, 1, &mut b);
            let _ = b.build();
        }
    }
}

#[test]
fn unmutated_seeds_decode() {
    for data in seeds("otlp") {
        let req = decode_otlp(&data, &limits()).unwrap();
        let batch = otlp_export(&req, 1, &mut DeltaTracker::new(16)).unwrap();
        assert!(batch.num_samples() > 0);
    }
    for data in seeds("pprof") {
        decode_pprof(&data, &limits()).unwrap();
    }
}
