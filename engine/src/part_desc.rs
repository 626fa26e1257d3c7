//! [`PartDesc`]: a [`ScanPart`] as data, so a scan part planned in one process can be read in
//! another that opens the same shared store (a distributed query's worker): which block and
//! series, or which remote heads, over which time range. [`ScanPart::descriptor`] makes one;
//! [`Engine::part`](crate::Engine::part) turns it back into a part of the local engine.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::matcher::{LabelMatcher, MatchOp};
use crate::scan::{PartSource, ScanPart, ScanRequest, TimeRange};

/// A scan part that another process of the same shared store can read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartDesc {
    /// Some series of one block.
    Block {
        /// The block id.
        block: String,
        /// The profile type (its string form).
        profile_type: String,
        /// Selected series ids, sorted.
        series: Vec<u64>,
        /// Whether `series` is every series of the type in the block.
        every_series: bool,
        /// Time range start (inclusive, ns).
        start: i64,
        /// Time range end (exclusive, ns).
        end: i64,
        /// Estimated rows, for balancing.
        estimated_rows: u64,
    },
    /// The ingesters' heads, minus those flushed into the planning snapshot's blocks.
    RemoteHeads {
        /// The profile type (its string form).
        profile_type: String,
        /// Matchers as (name, operator, value).
        matchers: Vec<(String, String, String)>,
        /// Time range start (inclusive, ns).
        start: i64,
        /// Time range end (exclusive, ns).
        end: i64,
        /// The blocks whose data the planning snapshot holds.
        in_snapshot: Vec<String>,
    },
}

impl PartDesc {
    /// What routes the part to a worker: the block id (so each worker's caches of a block's
    /// footer and index stay warm), or a fixed key for the heads.
    pub fn route_key(&self) -> &str {
        match self {
            PartDesc::Block { block, .. } => block,
            PartDesc::RemoteHeads { .. } => "\u{0}remote-heads",
        }
    }

    /// Estimated rows (0 for heads).
    pub fn estimated_rows(&self) -> u64 {
        match self {
            PartDesc::Block { estimated_rows, .. } => *estimated_rows,
            PartDesc::RemoteHeads { .. } => 0,
        }
    }

    pub(crate) fn request(&self) -> Result<ScanRequest> {
        let (profile_type, matchers, start, end) = match self {
            PartDesc::Block {
                profile_type,
                start,
                end,
                ..
            } => (profile_type, &[][..], *start, *end),
            PartDesc::RemoteHeads {
                profile_type,
                matchers,
                start,
                end,
                ..
            } => (profile_type, &matchers[..], *start, *end),
        };
        let matchers = matchers
            .iter()
            .map(|(n, op, v)| {
                let op = match op.as_str() {
                    "=" => MatchOp::Equal,
                    "!=" => MatchOp::NotEqual,
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    other => {
                        return Err(Error::InvalidMatcher {
                            matcher: format!("{n}{other}{v:?}"),
                            reason: "unknown operator".into(),
                        });
                    }
                };
                LabelMatcher::new(n, op, v)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ScanRequest {
            profile_type: profile_type.parse()?,
            matchers,
            range: TimeRange::new(start, end),
        })
    }
}

impl ScanPart {
    /// This part as data another process can read ([`Engine::part`](crate::Engine::part));
    /// `None` for rows already copied out of this process's own heads (a store without
    /// ingesters), which only this process can read.
    pub fn descriptor(&self) -> Option<PartDesc> {
        match &self.source {
            PartSource::Memory(_) => None,
            PartSource::Block(scan) => Some(PartDesc::Block {
                block: scan.block.id().to_owned(),
                profile_type: scan.profile_type.to_string(),
                series: scan.series.to_vec(),
                every_series: scan.every_series,
                start: scan.range.start,
                end: scan.range.end,
                estimated_rows: scan.estimated_rows(),
            }),
            PartSource::Remote(heads) => {
                let r = &heads.request;
                let mut in_snapshot: Vec<String> = heads.in_snapshot.iter().cloned().collect();
                in_snapshot.sort();
                Some(PartDesc::RemoteHeads {
                    profile_type: r.profile_type.to_string(),
                    matchers: r
                        .matchers
                        .iter()
                        .map(|m| {
                            (
                                m.name().to_owned(),
                                m.op().as_str().to_owned(),
                                m.value().to_owned(),
                            )
                        })
                        .collect(),
                    start: r.range.start,
                    end: r.range.end,
                    in_snapshot,
                })
            }
        }
    }
}
