//! A faster decoder for pprof's hot field, `Profile.sample`: a profile is mostly samples, and
//! decoding them with exact-capacity vectors (packed fields counted before they are read)
//! takes a fraction of the generic decoder's time. Every other field goes through prost.
//!
//! [`decode_profile`] gives exactly what `Profile::decode` gives, or `None` when the input is
//! anything it does not handle (groups, malformed bytes), so the caller falls back to prost,
//! which then reports the error.

use prost::Message;
use strata_proto::pprof::{Label, Profile, Sample};

/// Protobuf wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// `Profile.sample`'s field number.
const PROFILE_SAMPLE: u64 = 2;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos)?;
            self.pos += 1;
            if i == 9 && byte > 1 {
                return None;
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn bytes(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// Skips a field's payload of `wire_type`; `None` for groups and unknown wire types.
    fn skip(&mut self, wire_type: u64) -> Option<()> {
        match wire_type {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.bytes(8).map(|_| ()),
            LEN => {
                let n = self.varint()?;
                self.bytes(n).map(|_| ())
            }
            FIXED32 => self.bytes(4).map(|_| ()),
            _ => None,
        }
    }

    /// A field's tag: (field number, wire type). Field number 0 is invalid.
    fn tag(&mut self) -> Option<(u64, u64)> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) || key >> 3 == 0 {
            return None;
        }
        Some((key >> 3, key & 7))
    }
}

/// Appends the varints of a packed field: counted first (one terminating byte per value), then
/// decoded in one pass into that exact room. `None` on a truncated or overlong varint.
fn packed(bytes: &[u8], out: &mut Vec<u64>) -> Option<()> {
    let count = bytes.iter().filter(|&&b| b < 0x80).count();
    let start = out.len();
    out.resize(start + count, 0);
    let slots = &mut out[start..];
    let (mut n, mut value, mut shift) = (0usize, 0u64, 0u32);
    for &b in bytes {
        // The tenth byte may only carry the top bit of a u64.
        if shift == 63 && b > 1 {
            return None;
        }
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            slots[n] = value;
            n += 1;
            value = 0;
            shift = 0;
        } else {
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }
    // A value left open at the end is truncated.
    (shift == 0).then_some(())
}

fn sample(bytes: &[u8]) -> Option<Sample> {
    let mut s = Sample::default();
    let mut values: Vec<u64> = Vec::new();
    let mut r = Reader::new(bytes);
    while !r.done() {
        match r.tag()? {
            (1, LEN) => {
                let n = r.varint()?;
                packed(r.bytes(n)?, &mut s.location_id)?;
            }
            (1, VARINT) => s.location_id.push(r.varint()?),
            (2, LEN) => {
                let n = r.varint()?;
                packed(r.bytes(n)?, &mut values)?;
            }
            (2, VARINT) => values.push(r.varint()?),
            (3, LEN) => {
                let n = r.varint()?;
                s.label.push(Label::decode(r.bytes(n)?).ok()?);
            }
            (1..=3, _) => return None,
            (_, wire_type) => r.skip(wire_type)?,
        }
    }
    s.value = values.into_iter().map(|v| v as i64).collect();
    Some(s)
}

/// Decodes a `Profile` with the fast sample path; `None` to fall back to prost.
pub(crate) fn decode_profile(buf: &[u8]) -> Option<Profile> {
    let mut samples = Vec::new();
    // Everything but the samples, byte for byte, for prost.
    let mut rest = Vec::new();
    let mut r = Reader::new(buf);
    while !r.done() {
        let start = r.pos;
        let (field, wire_type) = r.tag()?;
        if field == PROFILE_SAMPLE {
            if wire_type != LEN {
                return None;
            }
            let n = r.varint()?;
            samples.push(sample(r.bytes(n)?)?);
        } else {
            r.skip(wire_type)?;
            rest.extend_from_slice(&buf[start..r.pos]);
        }
    }
    let mut profile = Profile::decode(rest.as_slice()).ok()?;
    profile.sample = samples;
    Some(profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use strata_proto::pprof::{Function, Line, Location, Mapping, ValueType};

    fn profiles() -> impl Strategy<Value = Profile> {
        let sample = (
            proptest::collection::vec(any::<u64>(), 0..40),
            proptest::collection::vec(any::<i64>(), 0..5),
            proptest::collection::vec((any::<i64>(), any::<i64>(), any::<i64>()), 0..3),
        )
            .prop_map(|(location_id, value, labels)| Sample {
                location_id,
                value,
                label: labels
                    .into_iter()
                    .map(|(key, str, num)| Label {
                        key,
                        str,
                        num,
                        num_unit: 0,
                    })
                    .collect(),
            });
        (
            proptest::collection::vec(sample, 0..30),
            proptest::collection::vec("[a-z]{0,8}", 0..10),
            any::<i64>(),
            any::<i64>(),
        )
            .prop_map(|(sample, mut strings, time_nanos, period)| {
                strings.insert(0, String::new());
                Profile {
                    sample_type: vec![ValueType { r#type: 1, unit: 2 }],
                    sample,
                    mapping: vec![Mapping {
                        id: 1,
                        memory_start: 4096,
                        ..Default::default()
                    }],
                    location: vec![Location {
                        id: 1,
                        mapping_id: 1,
                        line: vec![Line {
                            function_id: 1,
                            line: 3,
                            column: 0,
                        }],
                        ..Default::default()
                    }],
                    function: vec![Function {
                        id: 1,
                        name: 1,
                        ..Default::default()
                    }],
                    string_table: strings,
                    time_nanos,
                    period,
                    period_type: Some(ValueType { r#type: 2, unit: 1 }),
                    comment: vec![1, 2],
                    ..Default::default()
                }
            })
    }

    proptest! {
        #[test]
        fn fast_decode_equals_prost(profile in profiles()) {
            let bytes = profile.encode_to_vec();
            prop_assert_eq!(decode_profile(&bytes), Some(profile));
        }

        #[test]
        fn fast_decode_never_disagrees_with_prost(
            profile in profiles(),
            cut in any::<prop::sample::Index>(),
            flip in any::<(prop::sample::Index, u8)>(),
        ) {
            let mut bytes = profile.encode_to_vec();
            if !bytes.is_empty() {
                let i = flip.0.index(bytes.len());
                bytes[i] ^= flip.1;
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if let Some(fast) = decode_profile(&bytes) {
                prop_assert_eq!(Some(fast), Profile::decode(bytes.as_slice()).ok());
            }
        }
    }

    #[test]
    fn unpacked_fields_and_unknown_fields_decode() {
        // Sample { location_id: 7 (unpacked), value: 9 (unpacked), field 9: varint 1 }.
        let sample = [0x08, 7, 0x10, 9, 0x48, 1];
        let mut profile = vec![0x12, sample.len() as u8];
        profile.extend_from_slice(&sample);
        let want = Profile::decode(profile.as_slice()).unwrap();
        assert_eq!(want.sample[0].location_id, [7]);
        assert_eq!(decode_profile(&profile), Some(want));
    }
}
