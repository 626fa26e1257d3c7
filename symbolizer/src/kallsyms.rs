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
    addresses: Vec<u64>,
    /// (name, module index into `modules` + 1, 0 for the kernel image).
    entries: Vec<(Box<str>, u32)>,
    modules: Vec<Box<str>>,
}

impl Kallsyms {
    /// This host's kernel symbols.
    pub const PROC: &'static str = "/proc/kallsyms";

    /// Reads a kallsyms file (normally [`Kallsyms::PROC`]). Without privileges every address
    /// reads as 0, which leaves the table empty (kernel frames then stay unsymbolized).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::parse(&text))
    }

    /// Parses kallsyms text; malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut modules: Vec<Box<str>> = Vec::new();
        let mut symbols: Vec<(u64, Box<str>, u32)> = Vec::new();
        for line in text.lines() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(address), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            let Ok(address) = u64::from_str_radix(address, 16) else {
                continue;
            };
            if address == 0 {
                continue;
            }
            let module = match fields
                .next()
                .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
            {
                None => 0,
                Some(m) => match modules.iter().position(|x| &**x == m) {
                    Some(i) => i as u32 + 1,
                    None => {
                        modules.push(m.into());
                        modules.len() as u32
                    }
                },
            };
            symbols.push((address, name.into(), module));
        }
        // One name per address: the first in address order, as the kernel lists aliases.
        symbols.sort_by_key(|s| s.0);
        symbols.dedup_by_key(|s| s.0);
        Kallsyms {
            addresses: symbols.iter().map(|s| s.0).collect(),
            entries: symbols.into_iter().map(|s| (s.1, s.2)).collect(),
            modules,
        }
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Whether there are none (e.g. kallsyms read without privileges).
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The function holding `address`: the closest symbol at or below it. Addresses below
    /// the first symbol get `None`; kallsyms has no sizes, so an address past the last
    /// function still gets that function.
    pub fn lookup(&self, address: u64) -> Option<KernelSymbol<'_>> {
        let i = self
            .addresses
            .partition_point(|&a| a <= address)
            .checked_sub(1)?;
        let (name, module) = &self.entries[i];
        Some(KernelSymbol {
            name,
            module: module.checked_sub(1).map(|m| &*self.modules[m as usize]),
            address: self.addresses[i],
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
}
