//! [`KernelSymbols`]: kernel addresses to function names, from `/proc/kallsyms`.

use crate::error::{Error, Result};

/// Sorted kernel text symbols.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    addrs: Vec<u64>,
    names: Vec<Box<str>>,
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms`. Without privileges every address reads as 0, which leaves the
    /// table empty (kernel frames then stay unsymbolized).
    pub fn load() -> Result<Self> {
        let path = "/proc/kallsyms";
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::parse(&text))
    }

    /// Parses kallsyms text: `address type name [module]`, text symbols only.
    pub fn parse(text: &str) -> Self {
        let mut syms: Vec<(u64, &str)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_ascii_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?;
                let name = it.next()?;
                (addr != 0 && matches!(kind, "t" | "T" | "w" | "W")).then_some((addr, name))
            })
            .collect();
        syms.sort_unstable();
        syms.dedup_by_key(|s| s.0);
        KernelSymbols {
            addrs: syms.iter().map(|s| s.0).collect(),
            names: syms.iter().map(|s| s.1.into()).collect(),
        }
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether the table is empty (e.g. kallsyms hidden from this user).
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The function containing `addr`: the closest symbol at or below it.
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let i = self.addrs.partition_point(|&a| a <= addr);
        (i > 0).then(|| &*self.names[i - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_enclosing_symbol() {
        let k = KernelSymbols::parse(
            "ffffffff81000000 T _stext\nffffffff81000100 t do_one\n0000000000000000 A zero\nffffffff81000200 D data_sym\nffffffff81000300 T do_two [mod]\n",
        );
        assert_eq!(k.len(), 3);
        assert_eq!(k.lookup(0xffffffff81000150), Some("do_one"));
        assert_eq!(k.lookup(0xffffffff81000300), Some("do_two"));
        assert_eq!(k.lookup(0x10), None);
    }
}
