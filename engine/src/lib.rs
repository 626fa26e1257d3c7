//! # Strata engine
//!
//! Strata's durable columnar profile store, usable as a library.
//!
//! - [`Engine::open`] opens (or creates) a store from an [`EngineConfig`]: a data directory
//!   for the write-ahead log and, by default, the blocks; or any `object_store` URL for blocks.
//! - Write: build a [`SampleBatch`] with [`SampleBatchBuilder`] (or from an Arrow
//!   `RecordBatch` in [`input_schema`]) and [`Engine::append`] it; it returns once durable.
//! - Read: [`Engine::scan`] a [`ScanRequest`] (profile type, [`LabelMatcher`]s, [`TimeRange`])
//!   into Arrow batches in [`scan_schema`], or [`Engine::scan_parts`] into parts read
//!   concurrently, each as rows or already summed per stack ([`ScanPart::stack_sums`], the
//!   partial aggregate of a merge); [`Engine::profile_types`],
//!   [`Engine::label_names`], [`Engine::label_values`] come from indexes;
//!   [`Engine::resolve_stacks`] turns [`StackId`]s into [`SymbolTables`].
//! - Late symbols: [`Engine::unsymbolized_locations`] finds address-keyed locations stored
//!   without lines; [`Engine::put_location_lines`] stores their lines later, for every head and
//!   block. [`Engine::debuginfo`] keeps debug info files by build id ([`DebuginfoStore`]).
//! - Maintenance: [`Engine::flush`], [`Engine::compact`], [`Engine::apply_retention`] (run by a
//!   background task unless `background: false`), [`Engine::close`].
//!
//! Data flows WAL -> head (memory) -> blocks (Parquet on object storage) -> compacted blocks.
//! The on-disk format is specified byte for byte in `storage-format.md`.
//!
//! ```text
//! append ──► WAL (crc, group commit) ──► head (columnar, indexed) ──flush──► block
//!                                                          blocks ──compact──► block
//! ```
#![deny(missing_docs)]

mod batch;
mod block;
mod catalog;
mod clock;
mod config;
mod debuginfo;
mod engine;
mod error;
mod head;
mod head_source;
mod index;
mod matcher;
mod model;
mod part_desc;
mod scan;
mod stack_sums;
mod store;
mod symbol_cache;
mod symbol_tables;
mod varint;
mod wal;

pub use batch::{
    LocationRef, ProfileTypeRef, SampleBatch, SampleBatchBuilder, SampleRow, SeriesRef, StackRef,
    Symbols, input_schema,
};
pub use block::BlockMeta;
pub use catalog::{Catalog, CatalogDelta, CatalogSnapshot, Manifest};
pub use clock::{Clock, FixedClock, SystemClock, now_ns};
pub use config::{
    BlockConfig, CompactionConfig, EngineConfig, FsyncPolicy, HeadConfig, LimitsConfig,
    RetentionConfig, SharedConfig, StorageConfig, WalConfig,
};
pub use debuginfo::{
    DebuginfoKind, DebuginfoMeta, DebuginfoStore, MAX_BUILD_ID_BYTES, UploadState, build_id_key,
    validate_build_id,
};
pub use engine::{
    Engine, EngineStats, GarbageReport, IngesterHeartbeat, LocationLines, OpenReport,
    UnsymbolizedLocation, UnsymbolizedSweep,
};
pub use error::{Error, Result};
pub use head::HeadStats;
pub use head_source::{HeadPart, HeadScanOutput, HeadScanRequest, HeadScanResponse, HeadSource};
pub use matcher::{LabelMatcher, MatchOp};
pub use model::{
    Function, FunctionId, Label, Labels, Line, Location, LocationId, Mapping, MappingId,
    ProfileType, SeriesId, StackId, is_legacy_label_name, is_valid_label_name, stack_id,
    write_escaped, write_label_name,
};
pub use part_desc::PartDesc;
pub use scan::{ScanOutput, ScanPart, ScanParts, ScanRequest, TimeRange, scan_schema};
pub use stack_sums::stack_sums_schema;
pub use symbol_tables::SymbolTables;
pub use wal::{ReplayReport, WalDamage, WalDamageKind};
