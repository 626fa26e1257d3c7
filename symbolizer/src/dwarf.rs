//! [`Dwarf`]: file, line and inlined frames from DWARF, through `addr2line` (the gimli one),
//! with the sections copied out of the file so nothing borrows its bytes.

use std::borrow::Cow;
use std::sync::Arc;

use object::{Object, ObjectSection as _};
use parking_lot::Mutex;

use crate::debug_object::section_data;
use crate::demangle::demangle;
use crate::error::{Error, Result};
use crate::frame::Frame;

type Reader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// The DWARF of one file. `addr2line`'s context parses units lazily through interior
/// mutability, so lookups take turns on a lock.
pub(crate) struct Dwarf {
    context: Mutex<addr2line::Context<Reader>>,
}

impl Dwarf {
    /// The file's DWARF; `None` when it has no `.debug_info` with contents (stripped, or
    /// built without `-g`).
    pub(crate) fn load(file: &object::File<'_>, what: &str, limit: u64) -> Result<Option<Self>> {
        let has_info = file
            .section_by_name(".debug_info")
            .is_some_and(|s| s.file_range().is_some_and(|(_, size)| size > 0));
        if !has_info {
            return Ok(None);
        }
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let dwarf_error = |source| Error::Dwarf {
            what: what.to_owned(),
            source,
        };
        let load = |id: gimli::SectionId| -> std::result::Result<Reader, gimli::Error> {
            let data = match file.section_by_name(id.name()) {
                // Compressed sections (SHF_COMPRESSED or .zdebug_) come back decompressed.
                Some(section) => section_data(&section, limit).ok_or(gimli::Error::Io)?,
                None => Cow::Borrowed(&[][..]),
            };
            Ok(Reader::new(Arc::from(&*data), endian))
        };
        let sections = gimli::Dwarf::load(load).map_err(dwarf_error)?;
        let context = addr2line::Context::from_dwarf(sections).map_err(dwarf_error)?;
        Ok(Some(Dwarf {
            context: Mutex::new(context),
        }))
    }

    /// The frames of `address`, innermost first, as `addr2line -i` lists them; empty when no
    /// unit covers it. A frame whose function is unknown (code without a function entry)
    /// has an empty `function`.
    pub(crate) fn frames(&self, address: u64) -> Vec<Frame> {
        // addr2line looks up [address, address + 1), which overflows at the top (found by
        // the elf_dwarf fuzz target); no code is there.
        if address == u64::MAX {
            return Vec::new();
        }
        let context = self.context.lock();
        let Ok(mut iter) = context.find_frames(address).skip_all_loads() else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = iter.next() {
            let system_name = frame
                .function
                .as_ref()
                .and_then(|f| f.raw_name().ok())
                .map(Cow::into_owned)
                .unwrap_or_default();
            let (file, line) = frame
                .location
                .map(|l| (l.file.unwrap_or_default().to_owned(), l.line.unwrap_or(0)))
                .unwrap_or_default();
            frames.push(Frame {
                function: demangle(&system_name),
                system_name,
                file,
                line,
                start_line: 0,
            });
            if frames.len() >= MAX_INLINE_DEPTH {
                break;
            }
        }
        frames
    }
}

/// Frames kept per address at most (malformed DWARF could nest without end).
const MAX_INLINE_DEPTH: usize = 256;
