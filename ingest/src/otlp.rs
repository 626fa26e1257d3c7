//! OTLP profiles (`ProfilesService/Export`, the development revision of opentelemetry-proto
//! 1.45) into one [`SampleBatch`], all or nothing.
//!
//! The request's [`ProfilesDictionary`] is resolved once per request: mappings, functions and
//! locations are interned up front, stacks on first use, and every profile of every resource
//! shares them. Index 0 of every table is the zero value (no mapping, the empty string).
//!
//! Labels: the resource's attributes (names sanitized, so `service.name` becomes
//! `service_name`; `unknown_service` when absent), then the profile's and the sample's
//! attributes (`exported_` on a clash). The type's name part, which OTLP does not carry, is
//! derived as Parca and Pyroscope name Go's profiles: period type `cpu` gives `process_cpu`,
//! `alloc_*`/`inuse_*` sample types (or a `space` period) `memory`, `goroutine(s)` `goroutine`;
//! any other profile is named after its period type (or its sample type without one).

use std::borrow::Cow;

use prost::Message;
use rustc_hash::FxHashMap;
use strata_engine::{
    Function, Line, Location, LocationRef, Mapping, MappingId, SampleBatch, SampleBatchBuilder,
    SeriesId, SeriesRef, StackRef,
};
use strata_proto::otlp::collector::profiles::v1development::ExportProfilesServiceRequest;
use strata_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use strata_proto::otlp::profiles::v1development::{Profile, ProfilesDictionary};

use crate::delta::DeltaSource;
use crate::error::{Error, Result};
use crate::limits::DecodeLimits;
use crate::normalize::{profile_type, sanitize_label_name};
use crate::pprof::decompress;
use crate::sample_writer::{ProfileTiming, SampleWriter};

/// Decodes an `ExportProfilesServiceRequest`, gzipped or not, within `limits`.
pub fn decode_otlp(bytes: &[u8], limits: &DecodeLimits) -> Result<ExportProfilesServiceRequest> {
    let raw = decompress(bytes, limits)?;
    Ok(ExportProfilesServiceRequest::decode(&*raw)?)
}

/// The batch of an OTLP `Export` request. `now_ns` stamps profiles without a time; cumulative
/// types also get `:delta` increases, tracked by `deltas`.
pub fn otlp_export(
    req: &ExportProfilesServiceRequest,
    now_ns: i64,
    deltas: &mut dyn DeltaSource,
) -> Result<SampleBatch> {
    let mut b = SampleBatchBuilder::new();
    let empty = ProfilesDictionary::default();
    let dict = Dictionary::resolve(req.dictionary.as_ref().unwrap_or(&empty), &mut b)?;
    let mut stacks: Vec<Option<StackRef>> = vec![None; dict.stack_table.len()];
    for rp in &req.resource_profiles {
        let attributes = rp.resource.as_ref().map_or(&[][..], |r| &r.attributes);
        let mut base = Vec::with_capacity(attributes.len() + 1);
        for kv in attributes {
            let key = dict.key_of(kv)?;
            let name = sanitize_label_name(key);
            // Two keys that sanitize alike (`host.name`, `host_name`): the first one wins.
            if base.iter().any(|(k, _)| *k == name) {
                continue;
            }
            if let Some(value) = kv.value.as_ref().and_then(|v| dict.value_string(v)) {
                base.push((name, value.into_owned()));
            }
        }
        if !base.iter().any(|(k, _)| k == "service_name") {
            base.push(("service_name".to_owned(), "unknown_service".to_owned()));
        }
        for profile in rp.scope_profiles.iter().flat_map(|sp| &sp.profiles) {
            write_profile(profile, &dict, &base, &mut stacks, now_ns, deltas, &mut b)?;
        }
    }
    Ok(b.build()?)
}

fn write_profile(
    profile: &Profile,
    dict: &Dictionary<'_>,
    base: &[(String, String)],
    stacks: &mut [Option<StackRef>],
    now_ns: i64,
    deltas: &mut dyn DeltaSource,
    b: &mut SampleBatchBuilder,
) -> Result<()> {
    let st = profile.sample_type.unwrap_or_default();
    let pt = profile.period_type.unwrap_or_default();
    let sample_type = (
        dict.string(st.type_strindex, "the sample type")?,
        dict.string(st.unit_strindex, "the sample unit")?,
    );
    let period_type = (
        dict.string(pt.type_strindex, "the period type")?,
        dict.string(pt.unit_strindex, "the period unit")?,
    );
    let name = profile_name(sample_type.0, period_type.0);
    let ty = profile_type(&name, sample_type, period_type, period_type.0 == "cpu")?;
    let timing = ProfileTiming {
        timestamp_ns: match profile.time_unix_nano {
            0 => now_ns,
            t => i64::try_from(t).map_err(|_| {
                Error::InvalidProfile(format!("profile time {t} ns is out of range"))
            })?,
        },
        duration_ns: i64::try_from(profile.duration_nano).unwrap_or(i64::MAX),
        period: profile.period,
    };
    let mut w = SampleWriter::new(b, base, std::slice::from_ref(&ty), timing, true);
    let mut series_cache: FxHashMap<Vec<i32>, (SeriesRef, SeriesId)> = FxHashMap::default();
    // Samples without attributes of their own (the usual case) share the profile's series.
    let mut profile_series = None;
    let mut key: Vec<i32> = Vec::new();
    for (n, sample) in profile.samples.iter().enumerate() {
        // Values, or one event per timestamp when a sample carries timestamps only.
        let value = if sample.values.is_empty() {
            sample.timestamps_unix_nano.len() as i64
        } else {
            sample.values.iter().fold(0i64, |a, &v| a.saturating_add(v))
        };
        if value == 0 {
            continue;
        }
        let cached = match profile_series {
            Some(s) if sample.attribute_indices.is_empty() => Some(s),
            _ => {
                key.clear();
                key.extend_from_slice(&profile.attribute_indices);
                key.extend_from_slice(&sample.attribute_indices);
                key.sort_unstable();
                key.dedup();
                series_cache.get(&key).copied()
            }
        };
        let series = match cached {
            Some(s) => s,
            None => {
                let mut extra = Vec::with_capacity(key.len());
                for &i in &key {
                    if let Some((k, v)) = dict.attribute(i)? {
                        extra.push((k, v.as_ref()));
                    }
                }
                let s = w.series(extra)?;
                series_cache.insert(key.clone(), s);
                s
            }
        };
        if sample.attribute_indices.is_empty() {
            profile_series = Some(series);
        }
        let stack = dict.stack(sample.stack_index, n, stacks, w.builder())?;
        w.sample(series, stack, &[value]);
    }
    w.finish(Some(deltas));
    Ok(())
}

/// The type's name part for an OTLP profile (see the module docs).
fn profile_name(sample_type: &str, period_type: &str) -> String {
    if period_type == "cpu" {
        "process_cpu".to_owned()
    } else if sample_type.starts_with("alloc_")
        || sample_type.starts_with("inuse_")
        || period_type == "space"
    {
        "memory".to_owned()
    } else if sample_type == "goroutine" || sample_type == "goroutines" {
        "goroutine".to_owned()
    } else if !period_type.is_empty() {
        sanitize_label_name(period_type)
    } else {
        sanitize_label_name(sample_type)
    }
}

/// A request's dictionary, resolved into the builder.
struct Dictionary<'a> {
    strings: &'a [String],
    /// Each attribute's key and its value as a label value (`None` for values a label cannot
    /// hold: arrays, maps, bytes).
    attributes: Vec<Option<(&'a str, Cow<'a, str>)>>,
    locations: Vec<LocationRef>,
    stack_table: &'a [strata_proto::otlp::profiles::v1development::Stack],
}

impl<'a> Dictionary<'a> {
    fn resolve(d: &'a ProfilesDictionary, b: &mut SampleBatchBuilder) -> Result<Self> {
        let mut dict = Dictionary {
            strings: &d.string_table,
            attributes: Vec::with_capacity(d.attribute_table.len()),
            locations: Vec::with_capacity(d.location_table.len()),
            stack_table: &d.stack_table,
        };
        for a in &d.attribute_table {
            let key = dict.string(a.key_strindex, "an attribute key")?;
            let value = a.value.as_ref().and_then(|v| dict.value_string(v));
            dict.attributes.push(value.map(|v| (key, v)));
        }
        let mut mappings = Vec::with_capacity(d.mapping_table.len());
        for (i, m) in d.mapping_table.iter().enumerate() {
            if i == 0 {
                mappings.push(MappingId::NONE);
                continue;
            }
            let mut build_id = String::new();
            for &a in &m.attribute_indices {
                if let Some((k, v)) = dict.attribute(a)?
                    && k.starts_with("process.executable.build_id")
                    && build_id.is_empty()
                {
                    build_id = v.clone().into_owned();
                }
            }
            mappings.push(
                b.mapping(Mapping {
                    build_id,
                    filename: dict
                        .string(m.filename_strindex, "a mapping's file name")?
                        .to_owned(),
                    memory_start: m.memory_start,
                    memory_limit: m.memory_limit,
                    file_offset: m.file_offset,
                }),
            );
        }
        let mut functions = Vec::with_capacity(d.function_table.len());
        for f in &d.function_table {
            functions.push(
                b.function(Function {
                    name: dict
                        .string(f.name_strindex, "a function's name")?
                        .to_owned(),
                    system_name: dict
                        .string(f.system_name_strindex, "a function's system name")?
                        .to_owned(),
                    filename: dict
                        .string(f.filename_strindex, "a function's file name")?
                        .to_owned(),
                    start_line: f.start_line,
                }),
            );
        }
        for (n, l) in d.location_table.iter().enumerate() {
            let mapping_id = match l.mapping_index {
                0 => MappingId::NONE,
                m => *index(&mappings, m, || format!("location {n}'s mapping"))?,
            };
            let mut lines = Vec::with_capacity(l.lines.len());
            for line in &l.lines {
                lines.push(Line {
                    function_id: *index(&functions, line.function_index, || {
                        format!("location {n}'s function")
                    })?,
                    line: line.line,
                });
            }
            dict.locations.push(b.location_ref(Location {
                mapping_id,
                address: l.address,
                lines,
            }));
        }
        Ok(dict)
    }

    fn string(&self, i: i32, what: &str) -> Result<&'a str> {
        if i == 0 && self.strings.is_empty() {
            return Ok("");
        }
        index(self.strings, i, || what.to_owned()).map(String::as_str)
    }

    /// Attribute `i` as a label (key, value), or `None` when its value cannot be a label.
    fn attribute(&self, i: i32) -> Result<Option<(&'a str, &Cow<'a, str>)>> {
        let a = index(&self.attributes, i, || "an attribute index".to_owned())?;
        Ok(a.as_ref().map(|(k, v)| (*k, v)))
    }

    fn key_of(&self, kv: &'a KeyValue) -> Result<&'a str> {
        if kv.key.is_empty() && kv.key_strindex != 0 {
            self.string(kv.key_strindex, "a resource attribute key")
        } else {
            Ok(&kv.key)
        }
    }

    fn value_string(&self, v: &'a AnyValue) -> Option<Cow<'a, str>> {
        Some(match v.value.as_ref()? {
            any_value::Value::StringValue(s) => Cow::Borrowed(s.as_str()),
            any_value::Value::StringValueStrindex(i) => {
                Cow::Borrowed(self.strings.get(usize::try_from(*i).ok()?)?.as_str())
            }
            any_value::Value::BoolValue(b) => Cow::Owned(b.to_string()),
            any_value::Value::IntValue(i) => Cow::Owned(i.to_string()),
            any_value::Value::DoubleValue(d) => Cow::Owned(d.to_string()),
            _ => return None,
        })
    }

    /// The stack of `stack_table[i]`, interned on first use.
    fn stack(
        &self,
        i: i32,
        sample: usize,
        cache: &mut [Option<StackRef>],
        b: &mut SampleBatchBuilder,
    ) -> Result<StackRef> {
        let what = || format!("sample {sample}'s stack");
        if i == 0 && self.stack_table.is_empty() {
            return Ok(b.stack(&[]));
        }
        let stack = index(self.stack_table, i, what)?;
        let slot = &mut cache[i as usize];
        if let Some(s) = *slot {
            return Ok(s);
        }
        let mut locations = Vec::with_capacity(stack.location_indices.len());
        for &l in &stack.location_indices {
            locations.push(*index(&self.locations, l, what)?);
        }
        let s = b.stack_of(&locations);
        *slot = Some(s);
        Ok(s)
    }
}

/// `table[i]`, or an error naming `what` refers out of the table.
fn index<T>(table: &[T], i: i32, what: impl FnOnce() -> String) -> Result<&T> {
    usize::try_from(i)
        .ok()
        .and_then(|u| table.get(u))
        .ok_or_else(|| {
            Error::InvalidProfile(format!(
                "{} refers to entry {i} of a dictionary table of {} entries",
                what(),
                table.len()
            ))
        })
}
