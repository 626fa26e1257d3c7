//! [`Kallsyms`] over this host's `/proc/kallsyms`. The kernel shows its addresses only to root
//! (or `CAP_SYSLOG`, as `kernel.kptr_restrict` allows); without them the test fails unless
//! `STRATA_SKIP_ROOT_TESTS=1`.

mod common;

use strata_symbolizer::Kallsyms;

#[test]
fn reads_this_hosts_kallsyms() {
    let text = std::fs::read_to_string(Kallsyms::PROC).unwrap();
    let k = Kallsyms::load(Kallsyms::PROC).unwrap();
    if k.is_empty() {
        common::skip_or_fail(
            "STRATA_SKIP_ROOT_TESTS",
            "/proc/kallsyms shows no kernel addresses to this user (needs root)",
        );
        return;
    }
    assert!(k.len() > 1000, "only {} kernel text symbols", k.len());
    // Every kernel has vfs_write; its address is a symbol start, found as itself.
    let vfs_write = text
        .lines()
        .find_map(|l| {
            let mut f = l.split_ascii_whitespace();
            let (address, kind, name) = (f.next()?, f.next()?, f.next()?);
            (name == "vfs_write" && matches!(kind, "t" | "T")).then_some(address)
        })
        .map(|a| u64::from_str_radix(a, 16).unwrap())
        .expect("vfs_write in /proc/kallsyms");
    let found = k.lookup(vfs_write).unwrap();
    assert_eq!(found.address, vfs_write);
    assert_eq!(k.lookup(vfs_write + 1).unwrap().address, vfs_write);
    assert_eq!(k.frames(vfs_write + 1).len(), 1);
}
