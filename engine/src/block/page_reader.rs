//! The pages of one Parquet column chunk, read straight from its bytes: page headers decoded
//! from Thrift's compact protocol (only the fields a summing scan needs; the rest skipped) and
//! page data decompressed by one zstd context the caller keeps. Parquet's own page reader
//! builds a codec (a zstd compression and decompression context) per column chunk, which costs
//! more than decompressing the chunk's pages of a 65,536-row group.
//!
//! Returns `Ok(None)` for anything a summing scan does not read (codecs other than none and
//! zstd, encodings other than PLAIN and dictionary), so the caller can take the general path.

use bytes::Bytes;
use parquet::basic::{Compression, Encoding};
use parquet::errors::{ParquetError, Result};

/// One page's values section, decompressed.
pub(crate) struct RawPage {
    /// Whether this is the dictionary page.
    pub(crate) dictionary: bool,
    /// The values section (for a data page v2, after the levels).
    pub(crate) data: Bytes,
    /// Values in the page.
    pub(crate) values: usize,
    /// Their encoding.
    pub(crate) encoding: Encoding,
}

/// Decompresses pages, keeping one zstd context for every page it is given.
#[derive(Default)]
pub(crate) struct PageDecompressor {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl PageDecompressor {
    fn decompress(&mut self, codec: Compression, data: &[u8], size: usize) -> Result<Vec<u8>> {
        match codec {
            Compression::UNCOMPRESSED => Ok(data.to_vec()),
            _ => {
                let zstd = match &mut self.zstd {
                    Some(z) => z,
                    None => self.zstd.insert(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| general(format!("zstd context: {e}")))?,
                    ),
                };
                let out = zstd
                    .decompress(data, size)
                    .map_err(|e| general(format!("zstd page of {} bytes: {e}", data.len())))?;
                if out.len() != size {
                    return Err(general(format!(
                        "page decompressed to {} bytes, its header says {size}",
                        out.len()
                    )));
                }
                Ok(out)
            }
        }
    }
}

fn general(msg: String) -> ParquetError {
    ParquetError::General(msg)
}

/// The pages of a column chunk (`bytes`: the whole chunk, `codec`: its compression), in order,
/// index pages skipped; `None` for a codec or encoding this module does not read.
pub(crate) fn read_pages(
    bytes: &Bytes,
    codec: Compression,
    decompressor: &mut PageDecompressor,
) -> Result<Option<Vec<RawPage>>> {
    if !matches!(codec, Compression::UNCOMPRESSED | Compression::ZSTD(_)) {
        return Ok(None);
    }
    let mut pages = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let mut r = CompactReader {
            data: &bytes[at..],
            pos: 0,
        };
        let header = PageHeader::read(&mut r)?;
        let start = at + r.pos;
        let end = start
            .checked_add(header.compressed_size)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                general(format!(
                    "page of {} bytes at offset {start} runs past the {}-byte chunk",
                    header.compressed_size,
                    bytes.len()
                ))
            })?;
        at = end;
        let (dictionary, values, encoding, levels, compressed) = match header.kind {
            PageKind::Index => continue,
            PageKind::Dictionary {
                values,
                encoding: 0 | 2,
            } => (true, values, Encoding::PLAIN, 0, true),
            PageKind::Dictionary { .. } => return Ok(None),
            PageKind::Data { values, encoding } => match encoding_of(encoding) {
                Some(e) => (false, values, e, 0, true),
                None => return Ok(None),
            },
            PageKind::DataV2 {
                values,
                encoding,
                levels,
                compressed,
            } => match encoding_of(encoding) {
                Some(e) => (false, values, e, levels, compressed),
                None => return Ok(None),
            },
        };
        let page = &bytes[start..end];
        if levels > page.len() || levels > header.uncompressed_size {
            return Err(general(format!(
                "page levels of {levels} bytes exceed the page of {} bytes",
                page.len()
            )));
        }
        let body = &page[levels..];
        let data = if compressed {
            decompressor.decompress(codec, body, header.uncompressed_size - levels)?
        } else {
            body.to_vec()
        };
        pages.push(RawPage {
            dictionary,
            data: Bytes::from(data),
            values,
            encoding,
        });
    }
    Ok(Some(pages))
}

/// The data page encodings a summing scan decodes (Thrift `Encoding` values).
fn encoding_of(thrift: i32) -> Option<Encoding> {
    match thrift {
        0 => Some(Encoding::PLAIN),
        2 => Some(Encoding::PLAIN_DICTIONARY),
        8 => Some(Encoding::RLE_DICTIONARY),
        _ => None,
    }
}

/// What a page header says, as far as a summing scan cares.
struct PageHeader {
    kind: PageKind,
    uncompressed_size: usize,
    compressed_size: usize,
}

enum PageKind {
    Data {
        values: usize,
        encoding: i32,
    },
    DataV2 {
        values: usize,
        encoding: i32,
        /// Bytes of (uncompressed) repetition and definition levels before the values.
        levels: usize,
        compressed: bool,
    },
    Dictionary {
        values: usize,
        encoding: i32,
    },
    Index,
}

/// Thrift compact protocol types.
mod ttype {
    pub const TRUE: u8 = 1;
    pub const FALSE: u8 = 2;
    pub const BYTE: u8 = 3;
    pub const I16: u8 = 4;
    pub const I32: u8 = 5;
    pub const I64: u8 = 6;
    pub const DOUBLE: u8 = 7;
    pub const BINARY: u8 = 8;
    pub const LIST: u8 = 9;
    pub const SET: u8 = 10;
    pub const MAP: u8 = 11;
    pub const STRUCT: u8 = 12;
}

/// Nesting deeper than this in a page header is refused (headers nest two or three levels).
const MAX_DEPTH: u32 = 16;

/// Reads Thrift's compact protocol.
struct CompactReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl CompactReader<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| general("page header cut short".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(general("page header varint too long".into()))
    }

    fn zigzag(&mut self) -> Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn i32(&mut self) -> Result<i32> {
        i32::try_from(self.zigzag()?).map_err(|_| general("page header i32 out of range".into()))
    }

    /// A non-negative i32 as a size or count.
    fn size(&mut self, what: &str) -> Result<usize> {
        usize::try_from(self.i32()?).map_err(|_| general(format!("negative {what}")))
    }

    fn skip_bytes(&mut self, n: usize) -> Result<()> {
        if n > self.data.len() - self.pos {
            return Err(general("page header cut short".into()));
        }
        self.pos += n;
        Ok(())
    }

    /// The next field of a struct: (field id, type), or `None` at its end.
    fn field(&mut self, last: &mut i16) -> Result<Option<(i16, u8)>> {
        let b = self.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let kind = b & 0x0f;
        let delta = (b >> 4) as i16;
        let id = if delta == 0 {
            i16::try_from(self.zigzag()?).map_err(|_| general("field id out of range".into()))?
        } else {
            last.checked_add(delta)
                .ok_or_else(|| general("field id out of range".into()))?
        };
        *last = id;
        Ok(Some((id, kind)))
    }

    fn skip(&mut self, kind: u8, depth: u32) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(general("page header nested too deeply".into()));
        }
        match kind {
            ttype::TRUE | ttype::FALSE => Ok(()),
            ttype::BYTE => self.skip_bytes(1),
            ttype::I16 | ttype::I32 | ttype::I64 => self.varint().map(drop),
            ttype::DOUBLE => self.skip_bytes(8),
            ttype::BINARY => {
                let n = usize::try_from(self.varint()?)
                    .map_err(|_| general("binary length out of range".into()))?;
                self.skip_bytes(n)
            }
            ttype::LIST | ttype::SET => {
                let h = self.byte()?;
                let n = match h >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                for _ in 0..n {
                    // Booleans in lists take a byte each.
                    match h & 0x0f {
                        ttype::TRUE | ttype::FALSE => self.skip_bytes(1)?,
                        elem => self.skip(elem, depth + 1)?,
                    }
                }
                Ok(())
            }
            ttype::MAP => {
                let n = self.varint()?;
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.skip(kv >> 4, depth + 1)?;
                        self.skip(kv & 0x0f, depth + 1)?;
                    }
                }
                Ok(())
            }
            ttype::STRUCT => {
                let mut last = 0;
                while let Some((_, k)) = self.field(&mut last)? {
                    self.skip(k, depth + 1)?;
                }
                Ok(())
            }
            other => Err(general(format!(
                "unknown Thrift type {other} in a page header"
            ))),
        }
    }

    /// Reads a struct, handing each field to `f` (which reads it, or returns false to skip).
    fn read_struct(&mut self, mut f: impl FnMut(&mut Self, i16, u8) -> Result<bool>) -> Result<()> {
        let mut last = 0;
        while let Some((id, kind)) = self.field(&mut last)? {
            if !f(self, id, kind)? {
                self.skip(kind, 1)?;
            }
        }
        Ok(())
    }
}

impl PageHeader {
    fn read(r: &mut CompactReader<'_>) -> Result<Self> {
        let (mut page_type, mut uncompressed, mut compressed) = (None, None, None);
        let (mut values, mut encoding, mut levels, mut is_compressed) = (None, None, 0usize, true);
        r.read_struct(|r, id, kind| {
            Ok(match (id, kind) {
                (1, ttype::I32) => {
                    page_type = Some(r.i32()?);
                    true
                }
                (2, ttype::I32) => {
                    uncompressed = Some(r.size("uncompressed page size")?);
                    true
                }
                (3, ttype::I32) => {
                    compressed = Some(r.size("compressed page size")?);
                    true
                }
                // data_page_header, dictionary_page_header: num_values 1, encoding 2.
                (5 | 7, ttype::STRUCT) => {
                    r.read_struct(|r, id, kind| {
                        Ok(match (id, kind) {
                            (1, ttype::I32) => {
                                values = Some(r.size("value count")?);
                                true
                            }
                            (2, ttype::I32) => {
                                encoding = Some(r.i32()?);
                                true
                            }
                            _ => false,
                        })
                    })?;
                    true
                }
                // data_page_header_v2: num_values 1, encoding 4, level lengths 5 and 6,
                // is_compressed 7.
                (8, ttype::STRUCT) => {
                    r.read_struct(|r, id, kind| {
                        Ok(match (id, kind) {
                            (1, ttype::I32) => {
                                values = Some(r.size("value count")?);
                                true
                            }
                            (4, ttype::I32) => {
                                encoding = Some(r.i32()?);
                                true
                            }
                            (5 | 6, ttype::I32) => {
                                levels = levels
                                    .checked_add(r.size("level length")?)
                                    .ok_or_else(|| general("level lengths overflow".into()))?;
                                true
                            }
                            (7, ttype::TRUE | ttype::FALSE) => {
                                is_compressed = kind == ttype::TRUE;
                                true
                            }
                            _ => false,
                        })
                    })?;
                    true
                }
                _ => false,
            })
        })?;
        let missing = |what: &str| general(format!("page header without {what}"));
        let uncompressed_size = uncompressed.ok_or_else(|| missing("uncompressed size"))?;
        let compressed_size = compressed.ok_or_else(|| missing("compressed size"))?;
        let kind = match page_type.ok_or_else(|| missing("a type"))? {
            1 => PageKind::Index,
            t @ (0 | 2 | 3) => {
                let values = values.ok_or_else(|| missing("a value count"))?;
                let encoding = encoding.ok_or_else(|| missing("an encoding"))?;
                match t {
                    0 => PageKind::Data { values, encoding },
                    2 => PageKind::Dictionary { values, encoding },
                    _ => PageKind::DataV2 {
                        values,
                        encoding,
                        levels,
                        compressed: is_compressed,
                    },
                }
            }
            other => return Err(general(format!("unknown page type {other}"))),
        };
        Ok(PageHeader {
            kind,
            uncompressed_size,
            compressed_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        let mut d = PageDecompressor::default();
        for bytes in [
            &[][..],
            &[0x15][..],                                     // field 1, i32, cut short
            &[0x15, 0x00, 0x00][..],                         // type 0 only
            &[0x1c, 0x1c, 0x1c][..],                         // structs nested, never closed
            &[0x19, 0xf5, 0xff][..],                         // list of a huge count
            &[0x15, 0x04, 0x15, 0x02, 0x15, 0x7f, 0x00][..], // size past the end
        ] {
            let b = Bytes::copy_from_slice(bytes);
            if !bytes.is_empty() {
                let result = read_pages(&b, Compression::UNCOMPRESSED, &mut d);
                assert!(
                    matches!(result, Err(ParquetError::General(_))),
                    "{bytes:?}: {:?}",
                    result.err()
                );
            }
        }
    }
}
