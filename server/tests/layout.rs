//! The server's house rules, checked on its source: no import circle among the files of
//! `server/src` (the library), no file over 600 lines, and no item imported through the crate
//! root (`crate::App`) from inside the crate, which would hide where it lives.
//!
//! How the circle check works: each file is a module (`lib.rs` is `crate`, `a.rs` is
//! `crate::a`, `a/b.rs` is `crate::a::b`). Every `crate::…` path and every `super::…` path in
//! a file's non-test code (everything before its first `#[cfg(test)]`) is resolved to the
//! longest module path that is a file; that is an edge from the file to that file. A parent
//! declaring its children (`mod b;`, `pub use b::X`) is structure, not an edge. The graph must
//! have no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library source file (not `bin/`), by module path.
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "bin") {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let root = src();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap().with_extension("");
            let module = match rel.to_str().unwrap() {
                "lib" => "crate".to_owned(),
                r => format!("crate::{}", r.replace('/', "::")),
            };
            (module, p)
        })
        .collect()
}

/// The non-test code of a file, without comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `crate::a::b` and `super::a` paths of `code` (identifiers only, `{` groups cut),
/// written relative to `module`.
fn paths(code: &str, module: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            // Not the tail of a longer identifier (`my_crate::`).
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let rest: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let rest = rest.trim_end_matches(':');
            let path = match rest.strip_prefix("super::") {
                Some(tail) => {
                    let parent = module.rsplit_once("::").map_or("crate", |(p, _)| p);
                    format!("{parent}::{tail}")
                }
                None => rest.to_owned(),
            };
            out.push(path);
        }
    }
    out
}

/// The module file a path resolves to: its longest prefix that is a module.
fn resolve<'a>(path: &str, modules: &'a BTreeMap<String, PathBuf>) -> Option<&'a str> {
    let mut p = path;
    loop {
        if let Some((m, _)) = modules.get_key_value(p) {
            return Some(m);
        }
        p = p.rsplit_once("::")?.0;
    }
}

#[test]
fn server_files_import_each_other_without_a_circle() {
    let modules = modules();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut through_root = Vec::new();
    for (module, path) in &modules {
        for p in paths(&code(path), module) {
            let Some(target) = resolve(&p, &modules) else {
                continue;
            };
            if target == module {
                continue;
            }
            if target == "crate" && module != "crate" {
                through_root.push(format!("{module} uses {p}"));
                continue;
            }
            edges.entry(module).or_default().insert(target);
        }
    }
    assert!(
        through_root.is_empty(),
        "import from the defining module, not the crate root: {through_root:#?}"
    );
    // Depth-first search for a back edge.
    fn visit<'a>(
        m: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(i) = stack.iter().position(|s| *s == m) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(m);
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m);
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m);
        None
    }
    let mut done = BTreeSet::new();
    for m in modules.keys() {
        if let Some(cycle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("import circle among server files: {}", cycle.join(" -> "));
        }
    }
    // The check sees edges at all (a parser that finds none would pass anything).
    assert!(
        edges
            .get("crate::router")
            .is_some_and(|e| e.contains("crate::state")),
        "{edges:#?}"
    );
}

#[test]
fn no_server_file_is_over_600_lines() {
    let mut long = Vec::new();
    let bin = std::fs::read_dir(src().join("bin/strata"))
        .unwrap()
        .map(|e| e.unwrap().path());
    for path in modules().into_values().chain(bin) {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        if lines > 600 {
            long.push(format!("{}: {lines} lines", path.display()));
        }
    }
    assert!(long.is_empty(), "split these files: {long:#?}");
}
