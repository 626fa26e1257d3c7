//! What the `wal` and `block` fuzz targets (and the seed generator, `examples/gen_seeds.rs`)
//! share: the input formats, a scratch data directory, the engine configuration and a pass
//! that reads everything an opened engine holds through its public read API.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::LazyLock;

use futures::TryStreamExt;
use strata_engine::{
    Engine, EngineConfig, FsyncPolicy, LabelMatcher, ScanRequest, StackId, TimeRange,
};

/// One current-thread runtime per fuzz process.
pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
});

/// Lets panics raised inside the `parquet` and `arrow` crates unwind instead of aborting.
///
/// libFuzzer's panic hook aborts on every panic, before unwinding. The engine contains panics of
/// the Parquet decoder while it reads a block file (they become a corrupt-block error: those
/// crates panic on some malformed files), so for the `wal` and `block` targets such a panic is
/// let through to that containment; any other panic still aborts, and so does a dependency's
/// panic the engine does not contain (libfuzzer-sys aborts when it reaches the target).
pub fn let_decoder_panics_unwind() {
    // The last such panic, shown if a later one aborts (an uncontained one ends in "panic in a
    // function that cannot unwind" at the target's boundary).
    static LAST: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_decoder = info.location().is_some_and(|l| {
            let file = l.file();
            file.contains("/registry/src/")
                && ["/parquet-", "/arrow-"].iter().any(|c| file.contains(c))
        });
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if in_decoder {
            *last = info.to_string();
        } else {
            if !last.is_empty() {
                eprintln!("the last dependency panic let unwind was: {last}");
            }
            abort(info);
        }
    }));
}

/// A data directory for this process (`target` names it): on `/dev/shm` where there is one
/// (the WAL writer fsyncs every new segment), else in the temp directory. Callers remove it
/// after each input.
pub fn scratch_dir(target: &str) -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("strata-fuzz-{target}-{}", std::process::id()))
}

/// An engine configuration for fuzzing: no background task, no WAL fsync, and small row
/// groups and pages so a flush of a few hundred samples writes several of each.
pub fn config(data_dir: PathBuf) -> EngineConfig {
    let mut c = EngineConfig::new(data_dir);
    c.background = false;
    c.wal.fsync = FsyncPolicy::Never;
    c.block.row_group_rows = 64;
    c.block.page_rows = 16;
    c
}

// ---- WAL segments ----

/// The first bytes of a WAL segment (`storage-format.md`, "WAL").
pub const WAL_MAGIC: &[u8; 8] = b"STRWAL01";

/// Recomputes the CRC-32C of every complete record frame of a segment (length u32 LE, CRC u32
/// LE, payload) in place, so that mutated payloads reach the record decoder instead of
/// failing their checksum.
pub fn fix_wal_crcs(seg: &mut [u8]) {
    let mut pos = WAL_MAGIC.len();
    while pos + 8 <= seg.len() {
        let len = u32::from_le_bytes(seg[pos..pos + 4].try_into().unwrap()) as usize;
        let Some(end) = (pos + 8).checked_add(len).filter(|&e| e <= seg.len()) else {
            break;
        };
        let crc = crc32c::crc32c(&seg[pos + 8..end]);
        seg[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
}

// ---- Blocks ----

/// The block id the `block` target stores its input under.
pub const BLOCK_ID: &str = "01HQ0000000000000000000000";

/// The files of a block (`storage-format.md`, "Blocks"), by their index in a block archive.
pub const BLOCK_FILES: [&str; 7] = [
    "meta.json",
    "index.bin",
    "samples.parquet",
    "stacks.parquet",
    "locations.parquet",
    "functions.parquet",
    "mappings.parquet",
];

/// Archive flag: rewrite `meta.json`'s `id` and `files` sizes to match the archive, so a
/// mutation that changes a file's length still gets past the size check of `Engine::open`.
pub const FIX_META: u8 = 1;

/// A block as one fuzz input: a flags byte, then files as (index into [`BLOCK_FILES`] modulo
/// its length: u8, length: u32 LE, bytes). A length past the end takes the rest; a later file
/// of the same name replaces an earlier one.
pub fn decode_block_archive(data: &[u8]) -> (u8, Vec<(&'static str, &[u8])>) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut files: Vec<(&'static str, &[u8])> = Vec::new();
    while let Some((&idx, r)) = rest.split_first() {
        let name = BLOCK_FILES[idx as usize % BLOCK_FILES.len()];
        let (len, r) = if r.len() >= 4 {
            let (l, r) = r.split_at(4);
            (u32::from_le_bytes(l.try_into().unwrap()) as usize, r)
        } else {
            (r.len(), &r[r.len()..])
        };
        let (bytes, r) = r.split_at(len.min(r.len()));
        files.retain(|(n, _)| *n != name);
        files.push((name, bytes));
        rest = r;
    }
    (flags, files)
}

/// The inverse of [`decode_block_archive`].
pub fn encode_block_archive(flags: u8, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = vec![flags];
    for (name, bytes) in files {
        let idx = BLOCK_FILES
            .iter()
            .position(|f| f == name)
            .expect("a block file");
        out.push(idx as u8);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// `meta.json` with `id` set to [`BLOCK_ID`] and `files` to the sizes of `files` (every file
/// but `meta.json`); `None` if it is not a JSON object.
pub fn fixed_meta(meta: &[u8], files: &[(&str, &[u8])]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(meta).ok()?;
    let obj = v.as_object_mut()?;
    obj.insert("id".into(), BLOCK_ID.into());
    let sizes: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .filter(|(n, _)| *n != "meta.json")
        .map(|(n, b)| ((*n).to_owned(), (b.len() as u64).into()))
        .collect();
    obj.insert("files".into(), sizes.into());
    serde_json::to_vec(&v).ok()
}

// ---- Reading ----

/// Reads everything the engine holds through its public read API — profile types, label
/// names and values, every part of a scan of each type (rows, projected rows and
/// `stack_sums`) over all of time and over the first half of its samples' span, for all
/// series and for one, then the symbols of every stack seen and the unsymbolized locations.
/// Errors are fine (a corrupt input), panics are not.
pub async fn read_everything(engine: &Engine) {
    let Ok(types) = engine.profile_types(TimeRange::ALL).await else {
        return;
    };
    let names = engine
        .label_names(None, &[], TimeRange::ALL)
        .await
        .unwrap_or_default();
    let mut one_series = Vec::new();
    for n in names.iter().take(4) {
        let values = engine
            .label_values(n, None, &[], TimeRange::ALL)
            .await
            .unwrap_or_default();
        if one_series.is_empty()
            && let Some(v) = values.first()
        {
            one_series.push(LabelMatcher::equal(n.as_str(), v.as_str()));
        }
    }
    let mut stacks: BTreeSet<u64> = BTreeSet::new();
    for pt in types.iter().take(8) {
        let mut ranges = vec![TimeRange::ALL];
        for matchers in [Vec::new(), one_series.clone()] {
            let mut i = 0;
            while i < ranges.len() {
                let req = ScanRequest {
                    profile_type: pt.clone(),
                    matchers: matchers.clone(),
                    range: ranges[i],
                };
                i += 1;
                if let Ok(parts) = engine.scan_parts(&req, None).await {
                    for part in parts.parts {
                        if let Ok(sums) = part.clone().stack_sums().await
                            && let Some(ids) = sums
                                .column(0)
                                .as_any()
                                .downcast_ref::<arrow::array::UInt64Array>()
                        {
                            stacks.extend(ids.values().iter().take(1024));
                        }
                        let Ok(batches) = part.batches().try_collect::<Vec<_>>().await else {
                            continue;
                        };
                        // The first half of the samples' span, to prune by statistics and
                        // filter rows.
                        if ranges.len() == 1 {
                            let ts = batches.iter().filter_map(|b| {
                                b.column(1)
                                    .as_any()
                                    .downcast_ref::<arrow::array::Int64Array>()
                            });
                            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
                            for t in ts.flat_map(|a| a.values().iter().copied()) {
                                lo = lo.min(t);
                                hi = hi.max(t);
                            }
                            if lo <= hi {
                                let mid = lo / 2 + hi / 2;
                                ranges.push(TimeRange::new(lo, mid.saturating_add(1)));
                            }
                        }
                    }
                }
                if let Ok(parts) = engine.scan_parts(&req, Some(&[4, 5])).await {
                    for part in parts.parts {
                        let _ = part.batches().try_collect::<Vec<_>>().await;
                    }
                }
            }
        }
    }
    let ids: Vec<StackId> = stacks.into_iter().map(StackId).collect();
    let _ = engine.resolve_stacks(&ids).await;
    let _ = engine.unsymbolized_locations(&HashSet::new()).await;
}
