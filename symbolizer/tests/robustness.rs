//! Robustness: random bytes, truncated and byte-flipped real ELF files (a C program with
//! DWARF, a Go program with only its pclntab) through every parser — the symbolizer with the
//! file supplied, `BuildId::of`, `LoadSegments::parse`, `Kallsyms::parse`, `elf_address` —
//! give a status and frames or nothing, never a panic.

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use strata_symbolizer::{
    BuildId, DebugFile, Kallsyms, LoadSegment, LoadSegments, MappingInfo, ObjectRef, Symbolizer,
    SymbolizerConfig, elf_address,
};

const SOURCE: &str = r#"
#include <stdio.h>
static inline int square(int x) { return x * x; }
__attribute__((noinline)) int compute(int n) { int s = 0; for (int i = 0; i < n; i++) s += square(i); return s; }
int main(int argc, char **argv) { printf("%d\n", compute(argc)); return 0; }
"#;

const GO_SOURCE: &str = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n";

/// Real ELF files to damage, with addresses in their text: built once per test binary.
fn samples() -> &'static Vec<(Vec<u8>, Vec<u64>)> {
    static SAMPLES: OnceLock<Vec<(Vec<u8>, Vec<u64>)>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        if have("gcc") {
            let bin = compile("gcc", dir.path(), "prog.c", SOURCE, &["-O2", "-g"], "prog");
            let addresses = sample_addresses(&functions(&bin, &["compute", "main"]), 7);
            out.push((std::fs::read(&bin).unwrap(), addresses));
        }
        if have("go") {
            let bin = go_build("go", dir.path(), GO_SOURCE, "hello", &["-ldflags=-s -w"]);
            // No symbols to sample: every 4 KiB of the usual text range of a Go binary.
            let addresses = (0x401000..0x480000).step_by(4093).collect();
            out.push((std::fs::read(&bin).unwrap(), addresses));
        }
        // Undamaged, they symbolize: the damage below reaches the deep parsers.
        for (bytes, addresses) in &out {
            let symbolizer = Symbolizer::new(SymbolizerConfig::default()).unwrap();
            let object = ObjectRef::new("ab").with_supplied(DebugFile::from_bytes(bytes.clone()));
            let batch = symbolizer.symbolize(&object, addresses);
            assert!(batch.frames.iter().filter(|f| !f.is_empty()).count() * 2 > addresses.len());
        }
        out
    })
}

fn symbolize_supplied(bytes: Vec<u8>, addresses: &[u64]) {
    let mut addresses = addresses.to_vec();
    addresses.extend([0, u64::MAX, u64::MAX - 1]);
    let addresses = &addresses[..];
    let symbolizer = Symbolizer::new(SymbolizerConfig {
        debug_dirs: vec![],
        read_binaries: false,
        max_file_bytes: 64 << 20,
        ..Default::default()
    })
    .unwrap();
    let _ = BuildId::of(&*bytes);
    let _ = LoadSegments::parse(&bytes);
    let object = ObjectRef::new("0123456789abcdef").with_supplied(DebugFile::from_bytes(bytes));
    let batch = symbolizer.symbolize(&object, addresses);
    assert_eq!(batch.frames.len(), addresses.len());
    let mapping = MappingInfo {
        memory_start: 0x5555_0000_0000,
        memory_limit: 0x5555_0010_0000,
        file_offset: 0x1000,
    };
    let runtime: Vec<u64> = addresses
        .iter()
        .map(|a| a.wrapping_add(0x5555_0000_0000))
        .collect();
    symbolizer.symbolize_runtime(&object, &mapping, &runtime);
}

/// The elf_dwarf fuzz target's first find: the last address of the address space on a file
/// with DWARF (addr2line probes `address + 1`).
#[test]
fn top_of_the_address_space_on_real_files() {
    for (bytes, addresses) in samples() {
        symbolize_supplied(bytes.clone(), addresses);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096), addr in any::<u64>()) {
        symbolize_supplied(bytes.clone(), &[addr, 0, u64::MAX]);
        // The same after a valid ELF magic.
        let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
        elf.extend(bytes);
        symbolize_supplied(elf, &[addr, 0x1000]);
    }

    #[test]
    fn truncated_real_elf(which in 0usize..2, cut in 0.0f64..1.0) {
        let samples = samples();
        if samples.is_empty() {
            return Ok(());
        }
        let (bytes, addresses) = &samples[which % samples.len()];
        let len = (bytes.len() as f64 * cut) as usize;
        symbolize_supplied(bytes[..len].to_vec(), addresses);
    }

    #[test]
    fn byte_flipped_real_elf(
        which in 0usize..2,
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 1..64),
    ) {
        let samples = samples();
        if samples.is_empty() {
            return Ok(());
        }
        let (bytes, addresses) = &samples[which % samples.len()];
        let mut bytes = bytes.clone();
        let n = bytes.len();
        for (at, value) in flips {
            bytes[((n as f64 * at) as usize).min(n - 1)] = value;
        }
        symbolize_supplied(bytes, addresses);
    }

    #[test]
    fn kallsyms_text(text in "([0-9a-f]{0,17} [tTwWdD] [a-z_]{0,8}( \\[[a-z]{0,4}\\])?\n){0,32}", addr in any::<u64>()) {
        let k = Kallsyms::parse(&text);
        let _ = k.lookup(addr);
        let _ = k.frames(addr);
    }

    #[test]
    fn elf_address_never_overflows(
        addr in any::<u64>(),
        start in any::<u64>(),
        limit in any::<u64>(),
        file_offset in any::<u64>(),
        segs in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()), 0..4),
    ) {
        let segments = LoadSegments(segs.into_iter().map(|(offset, file_size, vaddr, mem_size, executable)| LoadSegment {
            offset, file_size, vaddr, mem_size, executable,
        }).collect());
        let _ = elf_address(addr, &MappingInfo { memory_start: start, memory_limit: limit, file_offset }, &segments);
    }
}
