//! The head API's wire format, between a querier ([`super::HttpHeads`]) and an ingester
//! ([`super::head_api`]): JSON requests; a head scan answers with a frame
//! (`u32` little-endian length, a JSON header, then one Arrow IPC stream holding every part's
//! batches in order), label and symbol answers with JSON.

use std::collections::BTreeMap;
use std::io::Cursor;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use strata_engine::{
    HeadPart, HeadScanOutput, HeadScanRequest, HeadScanResponse, LabelMatcher, Labels, MatchOp,
    ProfileType, ScanRequest, SeriesId, TimeRange,
};

use crate::status::ServerError;

/// The media type of a head scan's answer.
pub(crate) const HEAD_SCAN_MEDIA_TYPE: &str = "application/vnd.strata.head-scan";

/// A label matcher on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WireMatcher {
    name: String,
    /// `=`, `!=`, `=~` or `!~`.
    op: String,
    value: String,
}

/// A selection on the wire: what every head API request but `resolve` carries.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct WireSelection {
    /// A profile type ID; absent: every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_type: Option<String>,
    #[serde(default)]
    pub matchers: Vec<WireMatcher>,
    pub start: i64,
    pub end: i64,
}

/// What a head scan returns, on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum WireOutput {
    Series,
    StackSums,
    Rows { projection: Option<Vec<usize>> },
}

/// `POST /internal/v1/heads/scan`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WireScan {
    #[serde(flatten)]
    pub selection: WireSelection,
    pub output: WireOutput,
}

/// `POST /internal/v1/heads/label_values`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WireLabelValues {
    pub name: String,
    #[serde(flatten)]
    pub selection: WireSelection,
}

/// `POST /internal/v1/heads/resolve`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WireResolve {
    pub stack_ids: Vec<u64>,
}

/// The JSON header of a head scan's answer.
#[derive(Debug, Default, Serialize, Deserialize)]
struct WireScanHeader {
    series: Vec<(u64, BTreeMap<String, String>)>,
    /// Per part: the block it is flushed as, and how many of the stream's batches are its.
    parts: Vec<(Option<String>, usize)>,
}

fn op_of(s: &str) -> Result<MatchOp, ServerError> {
    Ok(match s {
        "=" => MatchOp::Equal,
        "!=" => MatchOp::NotEqual,
        "=~" => MatchOp::Regex,
        "!~" => MatchOp::NotRegex,
        other => {
            return Err(ServerError::InvalidArgument(format!(
                "unknown matcher operator {other:?}"
            )));
        }
    })
}

impl WireSelection {
    pub fn new(
        profile_type: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Self {
        WireSelection {
            profile_type: profile_type.map(|p| p.to_string()),
            matchers: matchers
                .iter()
                .map(|m| WireMatcher {
                    name: m.name().to_owned(),
                    op: m.op().as_str().to_owned(),
                    value: m.value().to_owned(),
                })
                .collect(),
            start: range.start,
            end: range.end,
        }
    }

    pub fn profile_type(&self) -> Result<Option<ProfileType>, ServerError> {
        self.profile_type
            .as_deref()
            .map(|p| p.parse().map_err(ServerError::from))
            .transpose()
    }

    pub fn matchers(&self) -> Result<Vec<LabelMatcher>, ServerError> {
        self.matchers
            .iter()
            .map(|m| LabelMatcher::new(&m.name, op_of(&m.op)?, &m.value).map_err(ServerError::from))
            .collect()
    }

    pub fn range(&self) -> TimeRange {
        TimeRange::new(self.start, self.end)
    }
}

impl WireScan {
    pub fn new(req: &HeadScanRequest) -> Self {
        let r = &req.request;
        WireScan {
            selection: WireSelection::new(Some(&r.profile_type), &r.matchers, r.range),
            output: match &req.output {
                HeadScanOutput::Series => WireOutput::Series,
                HeadScanOutput::StackSums => WireOutput::StackSums,
                HeadScanOutput::Rows(p) => WireOutput::Rows {
                    projection: p.clone(),
                },
            },
        }
    }

    pub fn request(&self) -> Result<HeadScanRequest, ServerError> {
        let profile_type = self.selection.profile_type()?.ok_or_else(|| {
            ServerError::InvalidArgument("a head scan needs a profile_type".into())
        })?;
        Ok(HeadScanRequest {
            request: ScanRequest {
                profile_type,
                matchers: self.selection.matchers()?,
                range: self.selection.range(),
            },
            output: match &self.output {
                WireOutput::Series => HeadScanOutput::Series,
                WireOutput::StackSums => HeadScanOutput::StackSums,
                WireOutput::Rows { projection } => {
                    if let Some(p) = projection
                        && p.iter()
                            .any(|&c| c >= strata_engine::scan_schema().fields().len())
                    {
                        return Err(ServerError::InvalidArgument(format!(
                            "projection {p:?} names a column the scan schema lacks"
                        )));
                    }
                    HeadScanOutput::Rows(projection.clone())
                }
            },
        })
    }
}

/// Encodes a head scan's answer.
pub(crate) fn encode_scan(r: &HeadScanResponse) -> Result<Vec<u8>, ServerError> {
    let header = WireScanHeader {
        series: r
            .series
            .iter()
            .map(|(id, l)| {
                let labels = l
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                (id.0, labels)
            })
            .collect(),
        parts: r
            .parts
            .iter()
            .map(|p| (p.flushed_as.clone(), p.batches.len()))
            .collect(),
    };
    let header = serde_json::to_vec(&header).map_err(|e| ServerError::Internal(e.to_string()))?;
    let mut out = Vec::with_capacity(4 + header.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    let batches: Vec<&RecordBatch> = r.parts.iter().flat_map(|p| &p.batches).collect();
    if let Some(first) = batches.first() {
        let internal = |e: arrow::error::ArrowError| ServerError::Internal(e.to_string());
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &first.schema())
            .map_err(internal)?;
        for b in batches {
            w.write(b).map_err(internal)?;
        }
        w.finish().map_err(internal)?;
    }
    Ok(out)
}

/// Decodes a head scan's answer (from an ingester: any defect is an error, never a panic).
pub(crate) fn decode_scan(bytes: &[u8]) -> Result<HeadScanResponse, String> {
    let len = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("a head scan answer shorter than its length prefix")?;
    let header = bytes
        .get(4..4 + len)
        .ok_or("a head scan answer shorter than its header")?;
    let header: WireScanHeader =
        serde_json::from_slice(header).map_err(|e| format!("head scan header: {e}"))?;
    let rest = &bytes[4 + len..];
    let mut batches = Vec::new();
    if !rest.is_empty() {
        let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(rest), None)
            .map_err(|e| format!("head scan batches: {e}"))?;
        for b in reader {
            batches.push(b.map_err(|e| format!("head scan batches: {e}"))?);
        }
    }
    let wanted: usize = header.parts.iter().map(|(_, n)| n).sum();
    if wanted != batches.len() {
        return Err(format!(
            "head scan header names {wanted} batches, the stream holds {}",
            batches.len()
        ));
    }
    let mut series = BTreeMap::new();
    for (id, labels) in header.series {
        let labels = Labels::new(labels).map_err(|e| format!("head scan series: {e}"))?;
        series.insert(SeriesId(id), labels);
    }
    let mut batches = batches.into_iter();
    let parts = header
        .parts
        .into_iter()
        .map(|(flushed_as, n)| HeadPart {
            flushed_as,
            batches: batches.by_ref().take(n).collect(),
        })
        .collect();
    Ok(HeadScanResponse { series, parts })
}
