//! [`Kallsyms`]: kernel addresses to function names, from `/proc/kallsyms`-format text. The
//! collector (`strata-collector-ebpf`) names the kernel frames of its samples with it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::frame::Frame;

/// A kernel text symbol found by [`Kallsyms::lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSymbol<'a> {
    /// The function name.
    pub name: &'a str,
    /// The module (`[ext4]` in the text, here `ext4`), `None` for the kernel image.
    pub module: Option<&'a str>,
    /// Start address of the function.
    pub address: u64,
}

/// The kernel's text symbols, sorted by address. Lines are `address type name [module]`;
/// text symbols (`t`, `T`, `w`, `W`) are kept, other types and zero addresses (what an
/// unprivileged reader sees) are skipped.
#[derive(Clone, Debug, Default)]
pub struct Kallsyms {
    /// (address, start of the name in `names`, its length, module index into `modules` + 1,
    /// 0 for the kernel image), sorted by address: 16 bytes a symbol.
    entries: Vec<(u64, u32, u16, u16)>,
    /// Every kept name, back to back.
    names: String,
    modules: Vec<Box<str>>,
}

impl Kallsyms {
    /// This host's kernel symbols.
    pub const PROC: &'static str = "/proc/kallsyms";

    /// Reads a kallsyms file (normally [`Kallsyms::PROC`]) a line at a time. Without
    /// privileges every address reads as 0, which leaves the table empty (kernel frames then
    /// stay unsymbolized).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::BufRead;
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = std::io::BufReader::with_capacity(64 << 10, file);
        let mut table = Kallsyms::default();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => table.add_line(&line),
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Ok(table.sorted())
    }

    /// Parses kallsyms text; malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut table = Kallsyms::default();
        for line in text.lines() {
            table.add_line(line);
        }
        table.sorted()
    }

    /// Adds a line's text symbol (in file order; [`Kallsyms::sorted`] orders them).
    fn add_line(&mut self, line: &str) {
        let mut fields = line.split_ascii_whitespace();
        let (Some(address), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            return;
        };
        if !matches!(kind, "t" | "T" | "w" | "W") {
            return;
        }
        let Ok(address) = u64::from_str_radix(address, 16) else {
            return;
        };
        let (Ok(start), Ok(len)) = (u32::try_from(self.names.len()), u16::try_from(name.len()))
        else {
            return;
        };
        if address == 0 {
            return;
        }
        let module = match fields
            .next()
            .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
        {
            None => 0,
            Some(m) => match self.modules.iter().position(|x| &**x == m) {
                Some(i) => i + 1,
                None => {
                    self.modules.push(m.into());
                    self.modules.len()
                }
            },
        };
        let Ok(module) = u16::try_from(module) else {
            return;
        };
        self.names.push_str(name);
        self.entries.push((address, start, len, module));
    }

    /// One name per address: the first in address order, as the kernel lists aliases.
    fn sorted(mut self) -> Self {
        self.entries.sort_by_key(|e| e.0);
        self.entries.dedup_by_key(|e| e.0);
        self.entries.shrink_to_fit();
        self.names.shrink_to_fit();
        self
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (e.g. kallsyms read without privileges).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The function holding `address`: the closest symbol at or below it. Addresses below
    /// the first symbol get `None`; kallsyms has no sizes, so an address past the last
    /// function still gets that function.
    pub fn lookup(&self, address: u64) -> Option<KernelSymbol<'_>> {
        let i = self
            .entries
            .partition_point(|e| e.0 <= address)
            .checked_sub(1)?;
        let (start, name_start, len, module) = self.entries[i];
        let name_start = name_start as usize;
        Some(KernelSymbol {
            name: &self.names[name_start..name_start + usize::from(len)],
            module: module
                .checked_sub(1)
                .map(|m| &*self.modules[usize::from(m)]),
            address: start,
        })
    }

    /// The frames of a kernel address: one frame with the function name, or none.
    pub fn frames(&self, address: u64) -> Vec<Frame> {
        self.lookup(address)
            .map(|s| Frame::function_only(s.name.to_owned(), s.name.to_owned()))
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ffffffff81000000 T _stext
ffffffff81000100 t do_one
0000000000000000 A zero
ffffffff81000200 D data_sym
ffffffff81000300 T do_two\t[ext4]
ffffffff81000300 t alias_of_two\t[ext4]
garbage line
ffffffff81000400 W weak_one
";

    #[test]
    fn lookup_finds_the_enclosing_text_symbol() {
        let k = Kallsyms::parse(TEXT);
        assert_eq!(k.len(), 4);
        assert_eq!(k.lookup(0xffffffff81000150).unwrap().name, "do_one");
        let two = k.lookup(0xffffffff81000300).unwrap();
        assert_eq!((two.name, two.module), ("do_two", Some("ext4")));
        assert_eq!(k.lookup(0xffffffff81000250).unwrap().name, "do_one");
        assert_eq!(k.lookup(0xffffffff81000500).unwrap().name, "weak_one");
        assert_eq!(k.lookup(0x10), None);
        assert_eq!(k.frames(0xffffffff81000101)[0].function, "do_one");
        assert!(Kallsyms::parse("").is_empty());
    }

    /// Reading line by line from a file gives the table parsing the whole text does.
    #[test]
    fn load_reads_a_file_as_parse_reads_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kallsyms");
        let mut text = TEXT.to_owned();
        for i in 0..5000u64 {
            text.push_str(&format!(
                "{:x} t f{i}\t[m{}]\n",
                0xffffffffc0000000u64 + i * 64,
                i % 7
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let (loaded, parsed) = (Kallsyms::load(&path).unwrap(), Kallsyms::parse(&text));
        assert_eq!(loaded.len(), parsed.len());
        assert_eq!(loaded.len(), 5004);
        for e in &parsed.entries {
            assert_eq!(loaded.lookup(e.0), parsed.lookup(e.0));
        }
        assert_eq!(
            loaded
                .lookup(0xffffffffc0000000 + 64 * 4999 + 5)
                .unwrap()
                .module,
            Some("m1")
        );
    }
}
