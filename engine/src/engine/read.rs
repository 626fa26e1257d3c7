//! The read path: scans, label APIs from indexes, stack resolution.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, stream};
use roaring::RoaringBitmap;

use super::{Engine, Role};
use crate::block::{BlockHandle, BlockScan, SymbolFilter, files, read_symbols};
use crate::error::Result;
use crate::head_source::{HeadScanOutput, HeadScanRequest, HeadSource, RemoteHeads};
use crate::matcher::LabelMatcher;
use crate::model::{LocationId, ProfileType, StackId};
use crate::scan::{
    PartSource, ScanOutput, ScanPart, ScanParts, ScanRequest, TimeRange, projected_scan_schema,
};
use crate::symbol_tables::SymbolTables;

/// Series ordinals of a block selected by type, matchers and time (block-level time pruning:
/// a profile type's samples in a block are taken to span its min..max time), and whether they
/// are every series of the selected types there.
fn block_selection(
    block: &BlockHandle,
    profile_type: Option<&ProfileType>,
    matchers: &[LabelMatcher],
    range: TimeRange,
) -> (RoaringBitmap, bool) {
    let types = block.index.types.iter().filter(|t| {
        profile_type.is_none_or(|pt| &t.profile_type == pt)
            && range.overlaps(t.min_time, t.max_time)
    });
    let with_type = types.fold(RoaringBitmap::new(), |acc, t| acc | &t.series);
    if with_type.is_empty() {
        return (with_type, true);
    }
    let selected = &with_type & block.index.postings.select(matchers);
    let every = selected.len() == with_type.len();
    (selected, every)
}

impl Engine {
    /// Samples of one profile type whose series match every matcher, in `range`. Blocks are
    /// pruned by time, series by the index, row groups by Parquet statistics.
    pub async fn scan(&self, req: ScanRequest) -> Result<ScanOutput> {
        let ScanParts { series, parts } = self.scan_parts(&req, None).await?;
        let batches = stream::iter(parts).flat_map(|p| p.batches()).boxed();
        Ok(ScanOutput { series, batches })
    }

    /// The same rows as [`Engine::scan`], as independent parts (the heads' rows, then one
    /// part per block) that can be read concurrently, with only the `projection` columns of
    /// [`scan_schema`](crate::scan_schema) (`None`: all). The set of blocks is fixed when this
    /// returns.
    ///
    /// A reader of a shared store first re-reads the catalog if its snapshot is older than
    /// `shared.catalog_refresh`; the ingesters' heads are then one more part, read when polled.
    pub async fn scan_parts(
        &self,
        req: &ScanRequest,
        projection: Option<&[usize]>,
    ) -> Result<ScanParts> {
        self.scan_parts_labelled(req, projection, true).await
    }

    /// [`scan_parts`](Self::scan_parts) with an empty `series` map: for readers that never
    /// look at labels (per-stack sums), which then skip copying every selected series'
    /// labels (a sixth of a SQL `GROUP BY stack_id` over 100,000 series).
    pub async fn scan_parts_without_labels(
        &self,
        req: &ScanRequest,
        projection: Option<&[usize]>,
    ) -> Result<ScanParts> {
        self.scan_parts_labelled(req, projection, false).await
    }

    async fn scan_parts_labelled(
        &self,
        req: &ScanRequest,
        projection: Option<&[usize]>,
        labelled: bool,
    ) -> Result<ScanParts> {
        let schema = projected_scan_schema(projection)?;
        let projection: Option<Arc<[usize]>> = projection.map(Arc::from);
        self.inner.refresh_catalog(Instant::now()).await?;
        // The snapshot: these blocks, then the heads (remote heads flushed into one of them
        // are left out, so nothing is missed or counted twice).
        let (heads, blocks, covered) = {
            let st = self.inner.state.read();
            (st.heads(), st.blocks.clone(), st.catalog_covered.clone())
        };
        let mut series = BTreeMap::new();
        let mut parts = Vec::new();
        if let Some(source) = self.remote_heads() {
            if labelled {
                let answer = source
                    .scan(&HeadScanRequest {
                        request: req.clone(),
                        output: HeadScanOutput::Series,
                    })
                    .await?;
                series.extend(answer.series);
            }
            parts.push(ScanPart {
                source: PartSource::Remote(RemoteHeads {
                    source,
                    request: req.clone(),
                    in_snapshot: covered,
                }),
                projection: projection.clone(),
                schema: schema.clone(),
            });
        }
        let mut head_batches = Vec::new();
        for h in heads {
            let (s, b) = h
                .read()
                .scan(&req.profile_type, &req.matchers, req.range, labelled);
            series.extend(s);
            head_batches.extend(b);
        }
        if !head_batches.is_empty() {
            parts.push(ScanPart {
                source: PartSource::Memory(head_batches),
                projection: projection.clone(),
                schema: schema.clone(),
            });
        }
        for block in blocks {
            let (sel, every_series) =
                block_selection(&block, Some(&req.profile_type), &req.matchers, req.range);
            if sel.is_empty() {
                continue;
            }
            let mut ids: Vec<u64> = sel
                .iter()
                .map(|o| {
                    let (id, labels) = &block.index.series[o as usize];
                    if labelled {
                        series.insert(*id, labels.clone());
                    }
                    id.0
                })
                .collect();
            ids.sort_unstable();
            parts.push(ScanPart {
                source: PartSource::Block(BlockScan {
                    store: self.inner.store.clone(),
                    block,
                    profile_type: req.profile_type.clone(),
                    series: ids.into(),
                    every_series,
                    range: req.range,
                }),
                projection: projection.clone(),
                schema: schema.clone(),
            });
        }
        Ok(ScanParts { series, parts })
    }

    /// Profile types with data in `range`, from the heads and the block indexes.
    pub async fn profile_types(&self, range: TimeRange) -> Result<Vec<ProfileType>> {
        self.inner.refresh_catalog(Instant::now()).await?;
        let mut out = BTreeSet::new();
        if let Some(source) = self.remote_heads() {
            out.extend(source.profile_types(range).await?);
        }
        let st = self.inner.state.read();
        for h in st.heads() {
            out.extend(h.read().profile_types(range));
        }
        for b in &st.blocks {
            for t in &b.index.types {
                if range.overlaps(t.min_time, t.max_time) {
                    out.insert(t.profile_type.clone());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// A reader's ingesters' heads.
    fn remote_heads(&self) -> Option<Arc<dyn HeadSource>> {
        match &self.inner.role {
            Role::Reader {
                heads: Some(source),
                ..
            } => Some(source.clone()),
            _ => None,
        }
    }

    /// Merges an answer computed from every head and every block's index with the remote
    /// heads' answer (`remote`).
    fn merge_index_answers(
        &self,
        profile_type: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
        remote: Vec<String>,
        from_head: impl Fn(&crate::head::Head) -> Vec<String>,
        from_block: impl Fn(&crate::index::SeriesIndex, &RoaringBitmap) -> Vec<String>,
    ) -> Vec<String> {
        let st = self.inner.state.read();
        let mut out: BTreeSet<String> = remote.into_iter().collect();
        for h in st.heads() {
            out.extend(from_head(&h.read()));
        }
        for b in &st.blocks {
            let (sel, _) = block_selection(b, profile_type, matchers, range);
            if !sel.is_empty() {
                out.extend(from_block(&b.index.postings, &sel));
            }
        }
        out.into_iter().collect()
    }

    /// Label names of series matching `matchers` (and of `profile_type`, if given) with data in
    /// `range`. Answered from indexes; no sample is read.
    pub async fn label_names(
        &self,
        profile_type: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<String>> {
        self.inner.refresh_catalog(Instant::now()).await?;
        let remote = match self.remote_heads() {
            Some(source) => source.label_names(profile_type, matchers, range).await?,
            None => Vec::new(),
        };
        Ok(self.merge_index_answers(
            profile_type,
            matchers,
            range,
            remote,
            |h| h.label_names(profile_type, matchers, range),
            |index, sel| index.label_names(sel),
        ))
    }

    /// Values of label `name` on series matching `matchers` (and of `profile_type`, if given)
    /// with data in `range`. Answered from indexes; no sample is read.
    pub async fn label_values(
        &self,
        name: &str,
        profile_type: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<String>> {
        self.inner.refresh_catalog(Instant::now()).await?;
        let remote = match self.remote_heads() {
            Some(source) => {
                source
                    .label_values(name, profile_type, matchers, range)
                    .await?
            }
            None => Vec::new(),
        };
        Ok(self.merge_index_answers(
            profile_type,
            matchers,
            range,
            remote,
            |h| h.label_values(name, profile_type, matchers, range),
            |index, sel| index.label_values(name, sel),
        ))
    }

    /// Every symbol of block `b` from the symbol cache, read and cached on a miss when small
    /// enough; `None` when the block's tables are too large to cache.
    pub(super) async fn cached_block_symbols(
        &self,
        b: &Arc<BlockHandle>,
    ) -> Result<Option<Arc<SymbolTables>>> {
        let cache = &self.inner.symbols;
        if let Some(all) = cache.get(b.id()) {
            return Ok(Some(all));
        }
        let file_bytes: u64 = [
            files::STACKS,
            files::LOCATIONS,
            files::FUNCTIONS,
            files::MAPPINGS,
        ]
        .iter()
        .map(|f| b.file_size(f))
        .sum();
        if !cache.admits(file_bytes) {
            return Ok(None);
        }
        let all = Arc::new(read_symbols(&self.inner.store, b, SymbolFilter::All).await?);
        cache.insert(b.id(), all.clone());
        Ok(Some(all))
    }

    /// The given stacks of block `b`, with the given locations and every location, function
    /// and mapping they reach: from the symbol cache, which is filled with the block's whole
    /// tables on a miss when they are small enough, else read filtered from the block.
    pub(super) async fn block_symbols(
        &self,
        b: &Arc<BlockHandle>,
        stacks: &HashSet<StackId>,
        locations: &HashSet<LocationId>,
    ) -> Result<SymbolTables> {
        if let Some(all) = self.cached_block_symbols(b).await? {
            return Ok(all.select(stacks, locations));
        }
        read_symbols(
            &self.inner.store,
            b,
            SymbolFilter::Only { stacks, locations },
        )
        .await
    }

    /// The locations, functions and mappings of the given stacks. Symbols that arrived after a
    /// stack (late symbolization) are preferred over the unsymbolized originals. Stacks the
    /// store does not know are absent from the result.
    pub async fn resolve_stacks(&self, ids: &[StackId]) -> Result<SymbolTables> {
        let (heads, mut blocks) = {
            let st = self.inner.state.read();
            (st.heads(), st.blocks.clone())
        };
        let mut out = SymbolTables::default();
        let mut missing: Vec<StackId> = ids.to_vec();
        for h in &heads {
            missing = h.read().resolve(&missing, &mut out);
        }
        blocks.sort_by_key(|b| std::cmp::Reverse(b.meta.max_time_ns));
        // First the stacks (newest blocks first), then, in every block, symbols for locations
        // still unsymbolized: they may have arrived in any block, older or newer.
        for find_stacks in [true, false] {
            for b in &blocks {
                let stacks: HashSet<StackId> = if find_stacks {
                    missing.iter().copied().collect()
                } else {
                    HashSet::new()
                };
                let locations: HashSet<LocationId> =
                    out.unsymbolized_locations().into_iter().collect();
                if stacks.is_empty() && (find_stacks || locations.is_empty()) {
                    break;
                }
                let found = self.block_symbols(b, &stacks, &locations).await?;
                missing.retain(|s| !found.stacks.contains_key(s));
                out.merge(found);
            }
        }
        // A reader: stacks only in the ingesters' heads.
        if let Some(source) = self.remote_heads()
            && !missing.is_empty()
        {
            let found = source.resolve_stacks(&missing).await?;
            missing.retain(|s| !found.stacks.contains_key(s));
            out.merge(found);
        }
        for h in &heads {
            h.read().resolve_locations(&mut out);
        }
        Ok(out)
    }
}
