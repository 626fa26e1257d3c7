//! LEB128 varints, zigzag integers and length-prefixed strings: the primitives of the WAL
//! payload and `index.bin` encodings. Reading is bounds-checked and never panics.

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvar(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint.
pub(crate) fn put_svar(out: &mut Vec<u8>, v: i64) {
    put_uvar(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a varint byte length and the UTF-8 bytes.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvar(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Decoding failure, in words.
pub(crate) type DecodeResult<T> = std::result::Result<T, String>;

/// A bounds-checked reader.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte was consumed.
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub fn bytes(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err("data ends early".into());
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u64_le(&mut self) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn uvar(&mut self) -> DecodeResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    pub fn svar(&mut self) -> DecodeResult<i64> {
        let u = self.uvar()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A count of items each at least one byte long: bounded by the bytes left, so a corrupt
    /// count cannot trigger a huge allocation.
    pub fn count(&mut self) -> DecodeResult<usize> {
        let n = self.uvar()?;
        let left = self.buf.len() - self.pos;
        if n > left as u64 {
            return Err(format!("count {n} exceeds the {left} bytes left"));
        }
        Ok(n as usize)
    }

    /// An index below `len`.
    pub fn index(&mut self, len: usize, what: &str) -> DecodeResult<usize> {
        let i = self.uvar()?;
        if i >= len as u64 {
            return Err(format!("{what} index {i} out of range (have {len})"));
        }
        Ok(i as usize)
    }

    pub fn str(&mut self) -> DecodeResult<&'a str> {
        let n = self.count()?;
        std::str::from_utf8(self.bytes(n)?).map_err(|e| format!("invalid UTF-8: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes() {
        let mut out = Vec::new();
        for v in [0u64, 1, 127, 128, u64::MAX] {
            put_uvar(&mut out, v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            put_svar(&mut out, v);
        }
        put_str(&mut out, "héllo");
        let mut r = Reader::new(&out, 0);
        for v in [0u64, 1, 127, 128, u64::MAX] {
            assert_eq!(r.uvar().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.svar().unwrap(), v);
        }
        assert_eq!(r.str().unwrap(), "héllo");
        assert!(r.at_end());
        assert_eq!(r.u8().unwrap_err(), "data ends early");
        assert_eq!(
            Reader::new(&[0xff; 11], 0).uvar().unwrap_err(),
            "varint longer than 10 bytes"
        );
    }
}
