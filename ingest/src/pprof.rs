//! Decoding pprof: gzipped or plain `Profile` protobufs, within [`DecodeLimits`].

use std::borrow::Cow;
use std::io::Read;

use flate2::read::GzDecoder;
use prost::Message;
use strata_proto::pprof::Profile;

use crate::error::{Error, Result};
use crate::limits::DecodeLimits;

mod sample_decoder;

/// Whether `bytes` start with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompresses `bytes` if gzipped, reading at most `max_decompressed_bytes`; plain bytes are
/// borrowed as they are.
pub fn decompress<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Result<Cow<'a, [u8]>> {
    if bytes.len() as u64 > limits.max_body_bytes {
        return Err(Error::BodyTooLarge {
            size: bytes.len() as u64,
            max: limits.max_body_bytes,
        });
    }
    if !is_gzip(bytes) {
        if bytes.len() as u64 > limits.max_decompressed_bytes {
            return Err(Error::DecompressedTooLarge {
                max: limits.max_decompressed_bytes,
            });
        }
        return Ok(Cow::Borrowed(bytes));
    }
    // The gzip trailer's ISIZE (the input's size mod 2^32) sizes the output once, within the
    // limit; a wrong or hostile value only costs a smaller or bounded first allocation.
    let hint = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.get(at..))
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .map_or(0, |t| u64::from(u32::from_le_bytes(t)));
    let mut out =
        Vec::with_capacity(hint.min(limits.max_decompressed_bytes).min(64 << 20) as usize + 1);
    GzDecoder::new(bytes)
        .take(limits.max_decompressed_bytes + 1)
        .read_to_end(&mut out)
        .map_err(Error::Gzip)?;
    if out.len() as u64 > limits.max_decompressed_bytes {
        return Err(Error::DecompressedTooLarge {
            max: limits.max_decompressed_bytes,
        });
    }
    Ok(Cow::Owned(out))
}

/// Decodes a pprof profile, gzipped or not. Samples take a faster path than prost's generic
/// decoder (same result); anything that path does not handle, errors included, goes to prost.
pub fn decode_pprof(bytes: &[u8], limits: &DecodeLimits) -> Result<Profile> {
    let raw = decompress(bytes, limits)?;
    if let Some(profile) = sample_decoder::decode_profile(&raw) {
        return Ok(profile);
    }
    Ok(Profile::decode(&*raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_bomb_is_refused() {
        let bomb = gzip(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 64 << 10);
        let limits = DecodeLimits {
            max_decompressed_bytes: 1 << 20,
            ..Default::default()
        };
        let err = decode_pprof(&bomb, &limits).unwrap_err();
        assert!(matches!(err, Error::DecompressedTooLarge { .. }), "{err}");
    }

    #[test]
    fn plain_and_gzipped_decode_alike() {
        let p = Profile {
            string_table: vec!["".into(), "x".into()],
            period: 7,
            ..Default::default()
        };
        let bytes = p.encode_to_vec();
        assert_eq!(decode_pprof(&bytes, &DecodeLimits::default()).unwrap(), p);
        assert_eq!(
            decode_pprof(&gzip(&bytes), &DecodeLimits::default()).unwrap(),
            p
        );
    }

    #[test]
    fn truncated_input_is_a_clear_error() {
        let p = Profile {
            string_table: vec!["".into(), "a long string".into()],
            ..Default::default()
        };
        let bytes = p.encode_to_vec();
        let err = decode_pprof(&bytes[..bytes.len() - 3], &DecodeLimits::default()).unwrap_err();
        assert!(err.to_string().starts_with("bad protobuf"), "{err}");
        let gz = gzip(&bytes);
        let err = decode_pprof(&gz[..gz.len() - 6], &DecodeLimits::default()).unwrap_err();
        assert!(err.to_string().starts_with("bad gzip"), "{err}");
    }
}
