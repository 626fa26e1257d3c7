//! Heads held by other processes: in a shared store, the recent (unflushed) samples live in the
//! ingesters' heads, and a reader (a querier) asks them through a [`HeadSource`], which the
//! embedder implements over its transport (the engine knows no network).
//!
//! The cut between heads and blocks is exact. An ingester tags each head it reports with the
//! block that holds (or will hold) it once flushed, and keeps a flushed head for
//! `shared.flushed_head_retention`. The reader takes its catalog snapshot first, then asks the
//! heads, and keeps a head's part only when the snapshot does not list the head's block: a
//! block committed before the snapshot is read from the bucket, one committed after from the
//! ingester's head, and nothing twice.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::error::Result;
use crate::matcher::LabelMatcher;
use crate::model::{Labels, ProfileType, SeriesId, StackId};
use crate::scan::{ScanRequest, TimeRange};
use crate::stack_sums::StackSums;
use crate::symbol_tables::SymbolTables;

/// What a head scan returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadScanOutput {
    /// The labels of the selected series only.
    Series,
    /// Per head, the rows summed per stack ([`stack_sums_schema`](crate::stack_sums_schema)).
    StackSums,
    /// Per head, the rows with the given [`scan_schema`](crate::scan_schema) columns (`None`:
    /// all).
    Rows(Option<Vec<usize>>),
}

/// A scan of the heads of one ingester (or of all, through a [`HeadSource`]).
#[derive(Clone, Debug)]
pub struct HeadScanRequest {
    /// The selection.
    pub request: ScanRequest,
    /// What to return.
    pub output: HeadScanOutput,
}

/// One head's answer.
#[derive(Clone, Debug)]
pub struct HeadPart {
    /// The block that holds this head's data once flushed (committed or not); `None` for the
    /// head taking appends.
    pub flushed_as: Option<String>,
    /// The head's rows or stack sums.
    pub batches: Vec<RecordBatch>,
}

/// An answer to a [`HeadScanRequest`].
#[derive(Clone, Debug, Default)]
pub struct HeadScanResponse {
    /// Labels of the selected series (when asked for [`HeadScanOutput::Series`]).
    pub series: BTreeMap<SeriesId, Labels>,
    /// Per head, its part (empty for [`HeadScanOutput::Series`]).
    pub parts: Vec<HeadPart>,
}

/// The heads of every ingester of a shared store, as a reader sees them. An implementation
/// asks every live ingester and fails (never answers with less) when one cannot be asked:
/// [`Error::HeadUnavailable`](crate::Error::HeadUnavailable).
#[async_trait::async_trait]
pub trait HeadSource: Send + Sync + fmt::Debug {
    /// Every ingester's answer to `request`, concatenated.
    async fn scan(&self, request: &HeadScanRequest) -> Result<HeadScanResponse>;
    /// Profile types with data in `range`.
    async fn profile_types(&self, range: TimeRange) -> Result<Vec<ProfileType>>;
    /// Label names, as [`Engine::label_names`](crate::Engine::label_names).
    async fn label_names(
        &self,
        profile_type: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<String>>;
    /// Label values, as [`Engine::label_values`](crate::Engine::label_values).
    async fn label_values(
        &self,
        name: &str,
        profile_type: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<String>>;
    /// Symbols of the given stacks that the heads hold.
    async fn resolve_stacks(&self, ids: &[StackId]) -> Result<SymbolTables>;
}

/// The remote heads' share of a reader's scan: asked for when read, with the blocks of the
/// reader's catalog snapshot left out.
#[derive(Clone)]
pub(crate) struct RemoteHeads {
    pub source: Arc<dyn HeadSource>,
    pub request: ScanRequest,
    /// The blocks whose data the snapshot the scan reads holds (its blocks, and blocks
    /// compacted into them or dropped): heads flushed into one of them are skipped.
    pub in_snapshot: Arc<HashSet<String>>,
}

impl RemoteHeads {
    async fn parts(&self, output: HeadScanOutput) -> Result<Vec<HeadPart>> {
        let response = self
            .source
            .scan(&HeadScanRequest {
                request: self.request.clone(),
                output,
            })
            .await?;
        Ok(response
            .parts
            .into_iter()
            .filter(|p| {
                p.flushed_as
                    .as_ref()
                    .is_none_or(|b| !self.in_snapshot.contains(b))
            })
            .collect())
    }

    /// The heads' rows summed per stack (the ingesters sum; this combines their sums).
    pub async fn stack_sums(&self) -> Result<RecordBatch> {
        let mut sums = StackSums::default();
        for part in self.parts(HeadScanOutput::StackSums).await? {
            for b in &part.batches {
                // stack_sums_schema: stack_id 0, value 1, period 2.
                sums.add_batch(b, [2, 0, 1]);
            }
        }
        sums.into_batch()
    }

    /// The heads' rows with the `projection` columns.
    pub async fn rows(&self, projection: Option<Vec<usize>>) -> Result<Vec<RecordBatch>> {
        let parts = self.parts(HeadScanOutput::Rows(projection)).await?;
        Ok(parts.into_iter().flat_map(|p| p.batches).collect())
    }
}
