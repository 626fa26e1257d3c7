//! Format-v1 fixtures (`storage-format.md`, "Format-v1 fixtures"): committed files under
//! `tests/fixtures/format-v1/` that every future build must read back exactly.
//!
//! - `wal_fixture_reads_back` and `block_fixture_reads_back` open the committed files with
//!   today's code (never re-generating them) and check every series, sample, stack and symbol,
//!   the block's `meta.json` and its index postings.
//! - `fixtures_are_reproduced` makes them again, deterministically (fixed timestamps, a
//!   [`FixedClock`] for the block id and creation time), and compares: byte for byte where the
//!   format fixes the bytes, by content for the Parquet files. With `STRATA_BLESS=1` it
//!   rewrites the committed fixtures instead (only with a format version bump).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, UInt64Type};
use strata_engine::{
    BlockMeta, Engine, EngineConfig, FixedClock, Function, LabelMatcher, Labels, Line, Location,
    LocationLines, Mapping, MappingId, ProfileType, SampleBatch, SampleBatchBuilder, SampleRow,
    ScanRequest, StackId, SymbolTables, TimeRange,
};

/// The time of the first sample: 2023-11-14T22:13:20Z, in ns.
const T0: i64 = 1_700_000_000_000_000_000;
/// The fixed clock's time (ms): the block's `created_at_ms`.
const CLOCK_MS: u64 = 1_700_000_100_000;
/// The block's id: `FixedClock`'s first, a ULID of `CLOCK_MS` and random part 1.
const BLOCK_ID: &str = "01HF7YDVN00000000000000001";
const WAL_SEGMENT: &str = "wal/00000000000000000001.wal";
const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";
const MEMORY: &str = "memory:inuse_space:bytes:space:bytes";
/// The block's files besides `meta.json`.
const PARQUET_FILES: [&str; 5] = [
    "functions.parquet",
    "locations.parquet",
    "mappings.parquet",
    "samples.parquet",
    "stacks.parquet",
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1")
}

fn blessing() -> bool {
    std::env::var("STRATA_BLESS").is_ok_and(|v| v == "1")
}

/// Reads a committed fixture file; a missing one fails the test (nothing is re-generated).
fn committed(rel: &Path) -> Vec<u8> {
    let path = fixture_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "format-v1 fixture {} cannot be read ({e}); fixtures are committed, and are made \
             only with STRATA_BLESS=1 cargo test -p strata-engine --test format_v1",
            path.display()
        )
    })
}

// --- The content -----------------------------------------------------------------------

fn mapping() -> Mapping {
    Mapping {
        build_id: "f00dfeedcafe".into(),
        filename: "/usr/bin/app".into(),
        memory_start: 0x40_0000,
        memory_limit: 0x50_0000,
        file_offset: 0x1000,
    }
}

fn function(name: &str, filename: &str, start_line: i64) -> Function {
    Function {
        name: name.into(),
        system_name: format!("_Z{name}"),
        filename: filename.into(),
        start_line,
    }
}

/// The lines the third record gives the unsymbolized location at 0x403000.
fn late_lines() -> LocationLines {
    LocationLines {
        mapping: mapping(),
        address: 0x40_3000,
        lines: vec![(function("late_fn", "lib.c", 40), 44)],
    }
}

/// The four locations, as finally stored (the one at 0x403000 with its late lines).
fn locations(symbolized: bool) -> [Location; 4] {
    let m = mapping().id();
    let line = |f: Function, line| Line {
        function_id: f.id(),
        line,
    };
    let late = late_lines();
    [
        // Address-keyed, with an inlined frame first.
        Location {
            mapping_id: m,
            address: 0x40_1000,
            lines: vec![
                line(function("inlined_helper", "app.h", 5), 7),
                line(function("handle", "app.c", 20), 25),
            ],
        },
        Location {
            mapping_id: m,
            address: 0x40_2000,
            lines: vec![line(function("main", "app.c", 10), 12)],
        },
        // Address-keyed, stored without lines; symbolized by the third record.
        Location {
            mapping_id: m,
            address: late.address,
            lines: if symbolized {
                vec![line(late.lines[0].0.clone(), late.lines[0].1)]
            } else {
                Vec::new()
            },
        },
        // Interpreted code: no mapping, no address, identified by its line.
        Location {
            mapping_id: MappingId::NONE,
            address: 0,
            lines: vec![line(function("interp_fn", "script.py", 1), -3)],
        },
    ]
}

/// Stacks by location number (leaf first): S0 = [L0, L1], S1 = [L2, L1], S2 = [L3],
/// S3 = [L3, L1].
const STACKS: [&[usize]; 4] = [&[0, 1], &[2, 1], &[3], &[3, 1]];

fn series(n: usize) -> Labels {
    let pairs: &[(&str, &str)] = match n {
        0 => &[("job", "api"), ("instance", "a:1")],
        1 => &[("job", "api"), ("instance", "b:2")],
        2 => &[("job", "db"), ("region", "eu")],
        _ => &[("job", "db"), ("region", "us")],
    };
    Labels::new(pairs.iter().copied()).unwrap()
}

/// One sample: (profile type, series, timestamp, duration, period, stack, value).
type Sample = (&'static str, usize, i64, i64, i64, usize, i64);

const S: i64 = 1_000_000_000;
/// The first record's samples.
const RECORD_1: [Sample; 4] = [
    (CPU, 0, T0, 10 * S, 10_000_000, 0, 30_000_000),
    (CPU, 1, T0 + S, 10 * S, 10_000_000, 1, 10_000_000),
    (MEMORY, 2, T0 + 2 * S, 0, 524_288, 2, 4096),
    (MEMORY, 2, T0 + 3 * S, 0, 524_288, 1, -512),
];
/// The second record's: stack S0 again (an external stack, 8b) and the new stack S3 over
/// known locations, for a new series.
const RECORD_2: [Sample; 2] = [
    (CPU, 0, T0 + 4 * S, 10 * S, 10_000_000, 0, 5),
    (MEMORY, 3, T0 + 5 * S, 0, 524_288, 3, 1024),
];

fn batch(samples: &[Sample]) -> SampleBatch {
    let mut b = SampleBatchBuilder::new();
    let locs = locations(false);
    b.mapping(mapping());
    let mut stack_refs = BTreeMap::new();
    for &(pt, s, ts, dur, period, stack, value) in samples {
        let profile_type = b.profile_type(&pt.parse().unwrap());
        let series = b.series(series(s));
        let ids: Vec<_> = STACKS[stack]
            .iter()
            .map(|&l| {
                for line in &locs[l].lines {
                    b.function(function_of(line));
                }
                b.location(locs[l].clone())
            })
            .collect();
        let stack_ref = *stack_refs.entry(stack).or_insert_with(|| b.stack(&ids));
        b.sample(SampleRow {
            profile_type,
            series,
            timestamp_ns: ts,
            duration_ns: dur,
            period,
            stack: stack_ref,
            value,
        });
    }
    b.build().unwrap()
}

/// Every function of the fixture, by ID.
fn functions() -> BTreeMap<strata_engine::FunctionId, Function> {
    [
        function("inlined_helper", "app.h", 5),
        function("handle", "app.c", 20),
        function("main", "app.c", 10),
        late_lines().lines[0].0.clone(),
        function("interp_fn", "script.py", 1),
    ]
    .into_iter()
    .map(|f| (f.id(), f))
    .collect()
}

fn function_of(line: &Line) -> Function {
    functions()[&line.function_id].clone()
}

fn stack_ids() -> Vec<StackId> {
    let locs = locations(false);
    STACKS
        .iter()
        .map(|s| strata_engine::stack_id(&s.iter().map(|&l| locs[l].id()).collect::<Vec<_>>()))
        .collect()
}

/// What every reader must find: the symbol tables of the four stacks.
fn expected_symbols() -> SymbolTables {
    let locs = locations(true);
    let mut t = SymbolTables::default();
    for (id, s) in stack_ids().into_iter().zip(STACKS) {
        t.stacks
            .insert(id, s.iter().map(|&l| locs[l].id()).collect());
    }
    for l in locs {
        t.locations.insert(l.id(), l);
    }
    t.functions = functions();
    t.mappings.insert(mapping().id(), mapping());
    t
}

// --- Reading ---------------------------------------------------------------------------

/// A sample as read back: (profile type, labels, timestamp, duration, period, stack, value).
type ReadSample = (String, Labels, i64, i64, i64, StackId, i64);

async fn read_samples(engine: &Engine) -> Vec<ReadSample> {
    let mut out = Vec::new();
    for pt in engine.profile_types(TimeRange::ALL).await.unwrap() {
        let scan = engine
            .scan(ScanRequest {
                profile_type: pt.clone(),
                matchers: Vec::new(),
                range: TimeRange::ALL,
            })
            .await
            .unwrap();
        let series = scan.series.clone();
        for b in scan.collect().await.unwrap() {
            let u = |i: usize| b.column(i).as_primitive::<UInt64Type>().clone();
            let i = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
            let (sid, ts, dur, period, stack, value) = (u(0), i(1), i(2), i(3), u(4), i(5));
            for r in 0..b.num_rows() {
                let labels = series[&strata_engine::SeriesId(sid.value(r))].clone();
                let row = (pt.to_string(), labels, ts.value(r), dur.value(r));
                out.push((
                    row.0,
                    row.1,
                    row.2,
                    row.3,
                    period.value(r),
                    StackId(stack.value(r)),
                    value.value(r),
                ));
            }
        }
    }
    out.sort_by_key(|s| s.2);
    out
}

fn expected_samples() -> Vec<ReadSample> {
    let stacks = stack_ids();
    RECORD_1
        .iter()
        .chain(&RECORD_2)
        .map(|&(pt, s, ts, dur, period, stack, value)| {
            (
                pt.to_string(),
                series(s),
                ts,
                dur,
                period,
                stacks[stack],
                value,
            )
        })
        .collect()
}

/// The label postings as the engine answers them: name → value → the series carrying it.
async fn read_postings(engine: &Engine) -> BTreeMap<(String, String), BTreeSet<Labels>> {
    let mut out = BTreeMap::new();
    for name in engine.label_names(None, &[], TimeRange::ALL).await.unwrap() {
        for value in engine
            .label_values(&name, None, &[], TimeRange::ALL)
            .await
            .unwrap()
        {
            let mut carrying = BTreeSet::new();
            for pt in engine.profile_types(TimeRange::ALL).await.unwrap() {
                let scan = engine
                    .scan(ScanRequest {
                        profile_type: pt,
                        matchers: vec![LabelMatcher::equal(&name, &value)],
                        range: TimeRange::ALL,
                    })
                    .await
                    .unwrap();
                carrying.extend(scan.series.into_values());
            }
            out.insert((name.clone(), value), carrying);
        }
    }
    out
}

fn expected_postings() -> BTreeMap<(String, String), BTreeSet<Labels>> {
    let mut out: BTreeMap<_, BTreeSet<Labels>> = BTreeMap::new();
    for labels in (0..4).map(series) {
        for l in labels.iter() {
            out.entry((l.name.clone(), l.value.clone()))
                .or_default()
                .insert(labels.clone());
        }
    }
    out
}

/// Checks everything a store holding exactly the fixture's data must answer.
async fn assert_content(engine: &Engine) {
    let profile_types: Vec<ProfileType> = vec![MEMORY.parse().unwrap(), CPU.parse().unwrap()];
    assert_eq!(
        engine.profile_types(TimeRange::ALL).await.unwrap(),
        profile_types
    );
    assert_eq!(read_samples(engine).await, expected_samples());
    assert_eq!(
        engine.resolve_stacks(&stack_ids()).await.unwrap(),
        expected_symbols()
    );
    assert_eq!(read_postings(engine).await, expected_postings());
    let none = engine
        .unsymbolized_locations(&Default::default())
        .await
        .unwrap();
    assert!(none.locations.is_empty(), "{:?}", none.locations);
}

/// IDs are content hashes (`storage-format.md` §3) stored in every file: pinned here so a
/// change of the hashing shows as such.
#[test]
fn ids_are_pinned() {
    let hex = |v: Vec<u64>| {
        v.into_iter()
            .map(|x| format!("{x:016x}"))
            .collect::<Vec<_>>()
    };
    let series_ids = hex((0..4).map(|s| series(s).id().0).collect());
    let stacks = hex(stack_ids().into_iter().map(|s| s.0).collect());
    assert_eq!(series_ids, PINNED_SERIES_IDS);
    assert_eq!(stacks, PINNED_STACK_IDS);
    assert_eq!(format!("{:016x}", mapping().id().0), PINNED_MAPPING_ID);
}

const PINNED_SERIES_IDS: [&str; 4] = [
    "94d1229f189b5291",
    "782bf50026c9dde2",
    "1f2643993c5a8033",
    "9bb5f08551c04a26",
];
const PINNED_STACK_IDS: [&str; 4] = [
    "e3c81f45bf556464",
    "4d30034cd4eb59e9",
    "1526111a1e90a73a",
    "9ed15de9290d0771",
];
const PINNED_MAPPING_ID: &str = "15a5d70e9ad10dd4";

fn config(dir: &Path) -> EngineConfig {
    EngineConfig {
        background: false,
        ..EngineConfig::new(dir)
    }
}

/// Copies the committed `rel` files into a fresh data directory.
fn data_dir_with(rels: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for rel in rels {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, committed(rel)).unwrap();
    }
    dir
}

fn block_files() -> Vec<PathBuf> {
    let dir = Path::new("blocks").join(BLOCK_ID);
    PARQUET_FILES
        .iter()
        .chain(&["index.bin", "meta.json"])
        .map(|f| dir.join(f))
        .collect()
}

#[tokio::test]
async fn wal_fixture_reads_back() {
    assert_wal_frames(&committed(Path::new(WAL_SEGMENT)));
    let dir = data_dir_with(&[PathBuf::from(WAL_SEGMENT)]);
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let replay = &engine.open_report().replay;
    assert_eq!((replay.segments, replay.records, replay.samples), (1, 3, 6));
    assert!(replay.damage.is_empty(), "{:?}", replay.damage);
    assert_eq!(replay.undefined_stacks, 0);
    assert_content(&engine).await;
    engine.close().await.unwrap();
}

/// The segment's framing (§4.1), checked by hand: the magic, then three records, each with
/// its length, CRC-32C, and the kind and version bytes 1, 1; nothing after them.
fn assert_wal_frames(seg: &[u8]) {
    assert_eq!(&seg[..8], b"STRWAL01");
    let mut pos = 8;
    let mut records = 0;
    while pos < seg.len() {
        let len = u32::from_le_bytes(seg[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(seg[pos + 4..pos + 8].try_into().unwrap());
        let payload = &seg[pos + 8..pos + 8 + len];
        assert_eq!(crc32c::crc32c(payload), crc, "record {records}");
        assert_eq!(&payload[..2], &[1, 1], "record {records}: kind and version");
        pos += 8 + len;
        records += 1;
    }
    assert_eq!((pos, records), (seg.len(), 3));
}

fn expected_meta() -> BlockMeta {
    BlockMeta {
        format_version: 1,
        id: BLOCK_ID.into(),
        min_time_ns: T0,
        max_time_ns: T0 + 5 * S,
        num_samples: 6,
        num_series: 4,
        num_stacks: 4,
        level: 0,
        sources: Vec::new(),
        wal_segment_upto: 2,
        created_at_ms: CLOCK_MS,
        files: PINNED_FILE_SIZES
            .iter()
            .map(|(f, n)| (f.to_string(), *n))
            .collect(),
        ingester: None,
    }
}

/// The committed block's file sizes (`meta.json` `files`).
const PINNED_FILE_SIZES: [(&str, u64); 6] = [
    ("functions.parquet", 1886),
    ("index.bin", 456),
    ("locations.parquet", 2051),
    ("mappings.parquet", 2036),
    ("samples.parquet", 2758),
    ("stacks.parquet", 1001),
];

#[tokio::test]
async fn block_fixture_reads_back() {
    let dir = data_dir_with(&block_files());
    let engine = Engine::open(config(dir.path())).await.unwrap();
    assert!(engine.open_report().quarantined_blocks.is_empty());
    assert_eq!(engine.blocks(), vec![expected_meta()]);
    let meta_json = committed(&Path::new("blocks").join(BLOCK_ID).join("meta.json"));
    let meta: BlockMeta = serde_json::from_slice(&meta_json).unwrap();
    assert_eq!(meta, expected_meta());
    assert_content(&engine).await;
    engine.close().await.unwrap();
}

// --- Making them -------------------------------------------------------------------------

/// Writes the fixtures under `out` (`wal/…`, `blocks/<id>/…`) through the engine: two sample
/// records and a late-symbols record into segment 1, then a flush of all of it into the block.
async fn generate(out: &Path) {
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::at_unix_ms(CLOCK_MS));
    let engine = Engine::open_with_clock(config(data.path()), clock)
        .await
        .unwrap();
    engine.append(&batch(&RECORD_1)).await.unwrap();
    engine.append(&batch(&RECORD_2)).await.unwrap();
    engine.put_location_lines(&[late_lines()]).await.unwrap();
    copy(data.path(), out, Path::new(WAL_SEGMENT));
    let meta = engine.flush().await.unwrap().expect("a block");
    assert_eq!(meta.id, BLOCK_ID);
    engine.close().await.unwrap();
    for rel in &block_files() {
        copy(data.path(), out, rel);
    }
}

fn copy(from: &Path, to: &Path, rel: &Path) {
    std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
    std::fs::copy(from.join(rel), to.join(rel)).unwrap();
}

/// Makes the fixtures again and compares them with the committed ones, or (`STRATA_BLESS=1`)
/// replaces the committed ones.
///
/// The WAL segment, `index.bin` and `meta.json` are compared byte for byte: the format fixes
/// every byte of them (meta.json's `files` sizes aside, see below). The Parquet files are
/// compared by content, not bytes: their bytes also depend on the parquet-rs version (the
/// footer's `created_by` is `parquet-rs version <x.y.z>`) and on zstd's compressor, neither of
/// which is part of the format; a dependency update must not count as a format change. For
/// the same reason the sizes in `meta.json` are left out of its comparison.
#[tokio::test]
async fn fixtures_are_reproduced() {
    let fresh = tempfile::tempdir().unwrap();
    generate(fresh.path()).await;
    if blessing() {
        let dir = fixture_dir();
        let _ = std::fs::remove_dir_all(&dir);
        for rel in std::iter::once(PathBuf::from(WAL_SEGMENT)).chain(block_files()) {
            copy(fresh.path(), &dir, &rel);
        }
        eprintln!("STRATA_BLESS=1: rewrote {}", dir.display());
        return;
    }
    let block = Path::new("blocks").join(BLOCK_ID);
    let rel = PathBuf::from(WAL_SEGMENT);
    let made = std::fs::read(fresh.path().join(&rel)).unwrap();
    assert!(
        made == committed(&rel),
        "{} is not reproduced byte for byte",
        rel.display()
    );
    // index.bin: the committed fixture is the v1 layout (STRIDX01), which every build reads;
    // builds since 2026-12-06 write v2 (STRIDX02, the same sections in one zstd frame) and
    // since 2026-12-07 v3 (STRIDX03, label columns), whose content the engine check below
    // compares.
    let made_index = std::fs::read(fresh.path().join(block.join("index.bin"))).unwrap();
    assert_eq!(&made_index[..8], b"STRIDX03");
    assert_eq!(&committed(&block.join("index.bin"))[..8], b"STRIDX01");
    let meta = |bytes: &[u8]| {
        let mut m: BlockMeta = serde_json::from_slice(bytes).unwrap();
        m.files
            .retain(|f, _| !f.ends_with(".parquet") && f != "index.bin");
        m
    };
    let made = std::fs::read(fresh.path().join(block.join("meta.json"))).unwrap();
    assert_eq!(meta(&made), meta(&committed(&block.join("meta.json"))));
    // The Parquet files by content: the made block reads back as the committed one does.
    let engine = Engine::open(config(fresh.path())).await.unwrap();
    assert_eq!(engine.blocks().len(), 1);
    assert_content(&engine).await;
    engine.close().await.unwrap();
}
