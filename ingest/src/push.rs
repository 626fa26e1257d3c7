//! Push payloads: Parca's `WriteRawRequest` and Pyroscope's `PushRequest`, each turned into one
//! [`SampleBatch`] — all or nothing, so a refused request stores nothing.

use strata_engine::{SampleBatch, SampleBatchBuilder};
use strata_proto::parca::WriteRawRequest;
use strata_proto::pyroscope::push::v1::PushRequest;

use crate::delta::DeltaSource;
use crate::error::Result;
use crate::limits::DecodeLimits;
use crate::normalize::{ProfileSource, normalize_with_deltas};
use crate::pprof::decode_pprof;

/// One series of a push: its labels (with `__name__`) and its raw pprof profiles.
struct PushedSeries<'a> {
    labels: Vec<(String, String)>,
    profiles: Vec<&'a [u8]>,
}

impl<'a> PushedSeries<'a> {
    fn new(
        labels: impl Iterator<Item = (&'a String, &'a String)>,
        profiles: impl Iterator<Item = &'a Vec<u8>>,
    ) -> Self {
        PushedSeries {
            labels: labels.map(|(n, v)| (n.clone(), v.clone())).collect(),
            profiles: profiles.map(Vec::as_slice).collect(),
        }
    }
}

fn batch_from(
    series: Vec<PushedSeries<'_>>,
    limits: &DecodeLimits,
    now_ns: i64,
    deltas: &mut dyn DeltaSource,
) -> Result<SampleBatch> {
    let mut b = SampleBatchBuilder::new();
    for s in series {
        let source = ProfileSource::from_labels(s.labels, now_ns)?;
        for raw in s.profiles {
            let profile = decode_pprof(raw, limits)?;
            normalize_with_deltas(&profile, &source, deltas, &mut b)?;
        }
    }
    Ok(b.build()?)
}

/// The batch of a Parca `WriteRaw` request.
pub fn parca_write_raw(
    req: &WriteRawRequest,
    limits: &DecodeLimits,
    now_ns: i64,
    deltas: &mut dyn DeltaSource,
) -> Result<SampleBatch> {
    let series = req
        .series
        .iter()
        .map(|s| {
            let labels = s.labels.iter().flat_map(|set| &set.labels);
            PushedSeries::new(
                labels.map(|l| (&l.name, &l.value)),
                s.samples.iter().map(|p| &p.raw_profile),
            )
        })
        .collect();
    batch_from(series, limits, now_ns, deltas)
}

/// The batch of a Pyroscope `Push` request.
pub fn pyroscope_push(
    req: &PushRequest,
    limits: &DecodeLimits,
    now_ns: i64,
    deltas: &mut dyn DeltaSource,
) -> Result<SampleBatch> {
    let series = req
        .series
        .iter()
        .map(|s| {
            PushedSeries::new(
                s.labels.iter().map(|l| (&l.name, &l.value)),
                s.samples.iter().map(|p| &p.raw_profile),
            )
        })
        .collect();
    batch_from(series, limits, now_ns, deltas)
}
