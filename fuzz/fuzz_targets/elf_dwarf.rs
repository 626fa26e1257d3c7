//! Any bytes as an uploaded debug file: ELF headers, symbol tables, DWARF (addr2line/gimli,
//! compressed sections), Go's pclntab and the address translation, probed at addresses
//! spread over the file's own executable segments: frames or an error status, never a panic
//! or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_symbolizer::{
    BuildId, DebugFile, LoadSegments, MappingInfo, ObjectRef, Symbolizer, SymbolizerConfig,
};

fuzz_target!(|data: &[u8]| {
    let _ = BuildId::of(data);
    let segments = LoadSegments::parse(data).unwrap_or_default();
    // 64 addresses over each executable segment (all of it for small ones), and some fixed.
    let mut addresses: Vec<u64> = vec![0, 1, 0x1000, 0x401000, u64::MAX];
    for s in segments.0.iter().filter(|s| s.executable).take(4) {
        let step = (s.mem_size / 64).max(1);
        addresses.extend((0..64).map(|i| s.vaddr.wrapping_add(i * step)));
    }
    let symbolizer = Symbolizer::new(SymbolizerConfig {
        debug_dirs: vec![],
        read_binaries: false,
        max_file_bytes: 16 << 20,
        ..Default::default()
    })
    .unwrap();
    let object = ObjectRef::new("fuzz").with_supplied(DebugFile::from_bytes(data.to_vec()));
    let batch = symbolizer.symbolize(&object, &addresses);
    assert_eq!(batch.frames.len(), addresses.len());
    let mapping = MappingInfo {
        memory_start: 0x5555_0000_0000,
        memory_limit: 0x5555_1000_0000,
        file_offset: 0,
    };
    let runtime: Vec<u64> = addresses.iter().map(|a| a.wrapping_add(mapping.memory_start)).collect();
    let _ = symbolizer.symbolize_runtime(&object, &mapping, &runtime);
});
