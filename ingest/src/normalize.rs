//! Normalizing a pprof profile into an engine [`SampleBatch`]: one profile type per sample type,
//! pprof string labels added to the series, zero values dropped, stacks and symbols interned.

use rustc_hash::FxHashMap;

use strata_engine::{
    Function, Line, Location, LocationRef, Mapping, MappingId, ProfileType, SampleBatch,
    SampleBatchBuilder, SeriesId, SeriesRef,
};

use crate::delta::DeltaSource;
use crate::sample_writer::{ProfileTiming, SampleWriter};
use strata_proto::pprof::Profile;

use crate::error::{Error, Result};

/// Where a profile comes from: the name of its profile type and its series labels.
#[derive(Clone, Debug)]
pub struct ProfileSource {
    /// The profile type's name part, from the `__name__` label (e.g. `process_cpu`, `memory`).
    pub name: String,
    /// Series labels, without `__name__`.
    pub labels: Vec<(String, String)>,
    /// Whether the values are per-interval deltas. `None`: CPU and off-CPU profiles (period
    /// type `cpu` or `off_cpu`) are deltas, others are not.
    pub delta: Option<bool>,
    /// Timestamp for a profile that carries none (`time_nanos` 0), ns since the epoch.
    pub default_time_ns: i64,
}

impl ProfileSource {
    /// Splits pushed labels into the `__name__` and the rest.
    pub fn from_labels(
        labels: impl IntoIterator<Item = (String, String)>,
        default_time_ns: i64,
    ) -> Result<Self> {
        let mut name = None;
        let mut rest = Vec::new();
        for (k, v) in labels {
            if k == "__name__" {
                name = Some(v);
            } else if k.is_empty() {
                // A label without a name cannot be stored or queried: it is dropped, not the
                // push. Any other name (UTF-8, e.g. `otel.scope.name`) is kept as it is.
                continue;
            } else {
                rest.push((k, v));
            }
        }
        let name = name.filter(|n| !n.is_empty()).ok_or(Error::MissingName)?;
        Ok(ProfileSource {
            name,
            labels: rest,
            delta: None,
            default_time_ns,
        })
    }
}

/// A label name made valid the Prometheus way: every character outside `[a-zA-Z0-9_]`
/// becomes `_`, and a leading digit gets a `_` in front.
pub fn sanitize_label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The ids of a pprof table. Some exporters (.NET's) leave ids at 0 and refer to entries by
/// position + 1; then, or when ids repeat, every entry gets its position + 1.
fn table_ids(ids: impl Iterator<Item = u64> + Clone) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    if ids.clone().all(|id| id != 0 && seen.insert(id)) {
        ids.collect()
    } else {
        (1..=ids.count() as u64).collect()
    }
}

/// pprof ids to interned ids: a vector indexed by id when the ids are small (as they are in
/// practice: 1..=n), a hash map otherwise. Looked up once per frame of every sample.
struct IdIndex<T> {
    dense: Vec<Option<T>>,
    sparse: FxHashMap<u64, T>,
}

impl<T: Copy> IdIndex<T> {
    fn with_capacity(n: usize) -> Self {
        IdIndex {
            dense: Vec::with_capacity(n + 1),
            sparse: FxHashMap::default(),
        }
    }

    fn insert(&mut self, id: u64, value: T) {
        let dense_limit = 4 * self.dense.capacity() as u64 + 64;
        if id < dense_limit {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(value);
        } else {
            self.sparse.insert(id, value);
        }
    }

    fn get(&self, id: u64) -> Option<T> {
        match self.dense.get(id as usize) {
            Some(v) => *v,
            None => self.sparse.get(&id).copied(),
        }
    }
}

struct Strings<'a>(&'a [String]);

impl Strings<'_> {
    fn get(&self, i: i64, what: &str) -> Result<&str> {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(String::as_str)
            .ok_or_else(|| {
                Error::InvalidProfile(format!(
                    "{what} refers to string {i}, but the string table has {}",
                    self.0.len()
                ))
            })
    }
}

/// Normalizes one profile into a batch.
pub fn normalize(profile: &Profile, source: &ProfileSource) -> Result<SampleBatch> {
    let mut b = SampleBatchBuilder::new();
    normalize_into(profile, source, &mut b)?;
    Ok(b.build()?)
}

/// Normalizes one profile into `b`, so several profiles of one request share one batch.
pub fn normalize_into(
    profile: &Profile,
    source: &ProfileSource,
    b: &mut SampleBatchBuilder,
) -> Result<()> {
    normalize_profile(profile, source, None, b)
}

/// Like [`normalize_into`], and also adds, for each cumulative type (see
/// [`is_cumulative`](crate::is_cumulative)), the increase since the series' previous profile
/// under the `:delta` type, as tracked by `deltas`.
pub fn normalize_with_deltas(
    profile: &Profile,
    source: &ProfileSource,
    deltas: &mut dyn DeltaSource,
    b: &mut SampleBatchBuilder,
) -> Result<()> {
    normalize_profile(profile, source, Some(deltas), b)
}

fn normalize_profile(
    profile: &Profile,
    source: &ProfileSource,
    deltas: Option<&mut dyn DeltaSource>,
    b: &mut SampleBatchBuilder,
) -> Result<()> {
    let strings = Strings(&profile.string_table);
    let locations = intern_symbols(profile, &strings, b)?;
    let types = profile_types(profile, source, &strings)?;
    let timing = ProfileTiming {
        timestamp_ns: if profile.time_nanos != 0 {
            profile.time_nanos
        } else {
            source.default_time_ns
        },
        duration_ns: profile.duration_nanos,
        period: profile.period,
    };
    let base: Vec<(String, String)> = source
        .labels
        .iter()
        .filter(|(k, _)| k != "__name__")
        .cloned()
        .collect();
    let mut w = SampleWriter::new(b, &base, &types, timing, deltas.is_some());
    write_samples(profile, &strings, &locations, &mut w)?;
    w.finish(deltas);
    Ok(())
}

/// Interns the profile's mappings, functions and locations into `b`; returns the interned
/// location of each pprof location id.
fn intern_symbols(
    profile: &Profile,
    strings: &Strings<'_>,
    b: &mut SampleBatchBuilder,
) -> Result<IdIndex<LocationRef>> {
    let mut mappings = IdIndex::with_capacity(profile.mapping.len());
    let mapping_ids = table_ids(profile.mapping.iter().map(|m| m.id));
    for (m, &pprof_id) in profile.mapping.iter().zip(&mapping_ids) {
        let id = b.mapping(Mapping {
            build_id: strings.get(m.build_id, "a mapping's build id")?.to_owned(),
            filename: strings.get(m.filename, "a mapping's file name")?.to_owned(),
            memory_start: m.memory_start,
            memory_limit: m.memory_limit,
            file_offset: m.file_offset,
        });
        mappings.insert(pprof_id, id);
    }
    let mut functions = IdIndex::with_capacity(profile.function.len());
    let function_ids = table_ids(profile.function.iter().map(|f| f.id));
    for (f, &pprof_id) in profile.function.iter().zip(&function_ids) {
        let id = b.function(Function {
            name: strings.get(f.name, "a function's name")?.to_owned(),
            system_name: strings
                .get(f.system_name, "a function's system name")?
                .to_owned(),
            filename: strings
                .get(f.filename, "a function's file name")?
                .to_owned(),
            start_line: f.start_line,
        });
        functions.insert(pprof_id, id);
    }
    let mut locations = IdIndex::with_capacity(profile.location.len());
    let location_ids = table_ids(profile.location.iter().map(|l| l.id));
    for (l, &pprof_id) in profile.location.iter().zip(&location_ids) {
        let mapping_id = match l.mapping_id {
            0 => MappingId::NONE,
            m => mappings.get(m).ok_or_else(|| {
                Error::InvalidProfile(format!("location {} refers to unknown mapping {m}", l.id))
            })?,
        };
        let lines = l
            .line
            .iter()
            .map(|line| {
                let function_id = functions.get(line.function_id).ok_or_else(|| {
                    Error::InvalidProfile(format!(
                        "location {} refers to unknown function {}",
                        l.id, line.function_id
                    ))
                })?;
                Ok(Line {
                    function_id,
                    line: line.line,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let r = b.location_ref(Location {
            mapping_id,
            address: l.address,
            lines,
        });
        locations.insert(pprof_id, r);
    }
    Ok(locations)
}

/// One profile type per sample type, named after `source` (deltas: see
/// [`ProfileSource::delta`]).
fn profile_types(
    profile: &Profile,
    source: &ProfileSource,
    strings: &Strings<'_>,
) -> Result<Vec<ProfileType>> {
    let period_type = profile.period_type.unwrap_or_default();
    let (period_name, period_unit) = (
        strings.get(period_type.r#type, "the period type")?,
        strings.get(period_type.unit, "the period unit")?,
    );
    let delta = source
        .delta
        .unwrap_or(matches!(period_name, "cpu" | "off_cpu"));
    profile
        .sample_type
        .iter()
        .map(|st| {
            let ty = strings.get(st.r#type, "a sample type")?;
            let unit = strings.get(st.unit, "a sample unit")?;
            profile_type(&source.name, (ty, unit), (period_name, period_unit), delta)
        })
        .collect()
}

/// Writes every sample of `profile` (all-zero ones skipped), its series named by its string
/// labels (one lookup per distinct label set).
fn write_samples(
    profile: &Profile,
    strings: &Strings<'_>,
    locations: &IdIndex<LocationRef>,
    w: &mut SampleWriter<'_>,
) -> Result<()> {
    let mut series_cache: FxHashMap<Vec<(i64, i64)>, (SeriesRef, SeriesId)> = FxHashMap::default();
    let mut frames = Vec::new();
    for (n, sample) in profile.sample.iter().enumerate() {
        if sample.value.len() != w.num_types() {
            return Err(Error::InvalidProfile(format!(
                "sample {n} has {} values for {} sample types",
                sample.value.len(),
                w.num_types()
            )));
        }
        if sample.value.iter().all(|&v| v == 0) {
            continue;
        }
        let mut key: Vec<(i64, i64)> = sample
            .label
            .iter()
            .filter(|l| l.str != 0)
            .map(|l| (l.key, l.str))
            .collect();
        key.sort_unstable();
        let series = match series_cache.get(&key) {
            Some(s) => *s,
            None => {
                let extra = key
                    .iter()
                    .map(|&(k, v)| {
                        Ok((
                            strings.get(k, "a sample label key")?,
                            strings.get(v, "a sample label value")?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s = w.series(extra)?;
                series_cache.insert(key, s);
                s
            }
        };
        frames.clear();
        for &id in &sample.location_id {
            frames.push(locations.get(id).ok_or_else(|| {
                Error::InvalidProfile(format!("sample {n} refers to unknown location {id}"))
            })?);
        }
        let stack = w.builder().stack_of(&frames);
        w.sample(series, stack, &sample.value);
    }
    Ok(())
}

/// The profile type `name:ty:unit:period_type:period_unit[:delta]`. A profile without a period
/// type (some exporters) uses the sample type in its place.
pub(crate) fn profile_type(
    name: &str,
    (ty, unit): (&str, &str),
    (period_name, period_unit): (&str, &str),
    delta: bool,
) -> Result<ProfileType> {
    let (pt_name, pt_unit) = if period_name.is_empty() {
        (ty, unit)
    } else {
        (period_name, period_unit)
    };
    ProfileType::new(name, ty, unit, pt_name, pt_unit, delta).map_err(|e| {
        Error::InvalidProfile(format!(
            "sample type {ty:?}/{unit:?} gives no valid profile type: {e}"
        ))
    })
}
