//! Differential tests: programs built here from C, C++, Rust and Go, symbolized at a sample of
//! addresses (every few bytes of the programs' own functions, so inlined call sites are
//! among them) and compared frame by frame — function (demangled), file name, line, inline
//! chain — with binutils' `addr2line -i -f -C`, or with `go tool addr2line` for a Go binary
//! without DWARF (binutils does not read Go's pclntab).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use strata_symbolizer::{DebugInfoStatus, Frame, ObjectRef, Symbolizer, SymbolizerConfig};

const C_SOURCE: &str = r#"
#include <stdio.h>
#include <stdlib.h>

static inline int square(int x) { return x * x; }

static inline int sum_squares(const int *v, int n) {
    int s = 0;
    for (int i = 0; i < n; i++)
        s += square(v[i]);
    return s;
}

__attribute__((noinline)) int compute(int n) {
    int *v = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++)
        v[i] = i ^ (n >> 1);
    int r = sum_squares(v, n);
    free(v);
    return r;
}

__attribute__((noinline)) int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    printf("%d %d\n", compute(n), fib(n));
    return 0;
}
"#;

const CPP_SOURCE: &str = r#"
#include <cstdio>
#include <vector>

namespace demo {
template <typename T> struct Acc {
    T total{};
    void add(T v) { total += v * 2; }
    T get() const { return total; }
};

template <typename T> __attribute__((noinline)) T accumulate(const std::vector<T> &xs) {
    Acc<T> acc;
    for (const T &x : xs)
        acc.add(x);
    return acc.get();
}

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
};
struct Square : Shape {
    double s;
    explicit Square(double s) : s(s) {}
    double area() const override { return s * s; }
};

__attribute__((noinline)) double total_area(const std::vector<Shape *> &v) {
    double t = 0;
    for (auto *s : v)
        t += s->area();
    return t;
}
} // namespace demo

int main(int argc, char **) {
    std::vector<int> xs;
    for (int i = 0; i < argc * 100; i++)
        xs.push_back(i);
    std::vector<double> ds(xs.begin(), xs.end());
    demo::Square sq(argc);
    std::vector<demo::Shape *> shapes{&sq};
    std::printf("%d %f %f\n", demo::accumulate(xs), demo::accumulate(ds), demo::total_area(shapes));
}
"#;

const RUST_SOURCE: &str = r#"
use std::hint::black_box;

#[inline(always)]
fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

struct Acc<T> {
    total: T,
}

impl<T: Copy + std::ops::Add<Output = T>> Acc<T> {
    #[inline]
    fn add(&mut self, v: T) {
        self.total = self.total + v;
    }
}

#[inline(never)]
fn compute(n: u64) -> u64 {
    let mut a = Acc { total: 0u64 };
    for i in 0..n {
        a.add(square(black_box(i)));
    }
    a.total
}

#[inline(never)]
fn generic_sum<T: Copy + std::ops::Add<Output = T> + Default>(xs: &[T]) -> T {
    let mut a = Acc { total: T::default() };
    for &x in xs {
        a.add(x);
    }
    a.total
}

fn main() {
    let n = std::env::args().count() as u64 * 1000;
    let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
    println!("{} {}", compute(n), generic_sum(&v));
}
"#;

pub const GO_SOURCE: &str = r#"
package main

import (
	"fmt"
	"os"
	"sort"
)

type acc struct{ total int }

func (a *acc) add(v int) { a.total += v * 2 }

func square(x int) int { return x * x }

//go:noinline
func compute(n int) int {
	var a acc
	for i := 0; i < n; i++ {
		a.add(square(i))
	}
	return a.total
}

//go:noinline
func sorted(n int) []int {
	xs := make([]int, n)
	for i := range xs {
		xs[i] = (i * 7919) % n
	}
	sort.Ints(xs)
	return xs
}

func main() {
	n := len(os.Args) * 1000
	fmt.Println(compute(n), len(sorted(n)))
}
"#;

/// Frames of the symbolizer and of the reference, side by side, for the failure message.
fn describe(addr: u64, ours: &[Frame], reference: &[RefFrame]) -> String {
    let ours: Vec<String> = ours
        .iter()
        .map(|f| format!("{} @ {}:{}", f.function, f.file, f.line))
        .collect();
    let theirs: Vec<String> = reference
        .iter()
        .map(|f| format!("{} @ {}:{}", f.function, f.file, f.line))
        .collect();
    format!("{addr:#x}\n  ours:   {ours:?}\n  theirs: {theirs:?}")
}

/// How far a symbolizer frame may differ from the reference's, beyond file and line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    /// Function names equal.
    Exact,
    /// C++: equal, or equal up to the parameter list where `cpp_demangle` (used by
    /// symbolic-demangle and addr2line alike) drops a parameter that repeats a template
    /// parameter through a substitution (`...ET_S9_RKS0_`), which `c++filt` prints twice.
    CppParams,
    /// Go: binutils 2.40 names Go's inlined frames after the function they were inlined
    /// into (it does not follow Go's `DW_AT_abstract_origin`); the inner frames' names are
    /// checked by `has_chain` instead.
    GoInlined,
}

/// A C++ name up to its parameter list: the first `(` outside template brackets.
fn without_params(name: &str) -> &str {
    let mut depth = 0i32;
    for (i, c) in name.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            '(' if depth == 0 && i > 0 => return &name[..i],
            _ => {}
        }
    }
    name
}

/// Symbolizes `addresses` of `bin` (its own file, found by path).
fn symbolize_file(bin: &Path, addresses: &[u64]) -> Vec<strata_symbolizer::Frames> {
    let symbolizer = Symbolizer::new(SymbolizerConfig {
        debug_dirs: vec![],
        ..Default::default()
    })
    .unwrap();
    let build_id = strata_symbolizer::BuildId::of(&*std::fs::read(bin).unwrap())
        .unwrap()
        .id;
    let batch = symbolizer.symbolize(&ObjectRef::new(build_id).with_path(bin), addresses);
    assert!(
        matches!(&batch.status, DebugInfoStatus::Found { content, .. } if content.dwarf),
        "{:?}",
        batch.status
    );
    batch.frames
}

/// Symbolizes `addresses` of `bin` and compares every frame with binutils. Returns the number
/// of addresses with an inline chain (two frames or more).
fn compare_with_binutils(bin: &Path, addresses: &[u64], names: Names) -> usize {
    assert!(!addresses.is_empty());
    let ours = symbolize_file(bin, addresses);
    let reference = binutils_addr2line(bin, addresses);
    let mut mismatches = Vec::new();
    let (mut inlined, mut tolerated) = (0, 0);
    for ((addr, ours), theirs) in addresses.iter().zip(&ours).zip(&reference) {
        let mut exact = true;
        let same = ours.len() == theirs.len()
            && ours.iter().zip(theirs).enumerate().all(|(i, (o, t))| {
                let name_ok = o.function == t.function || {
                    exact = false;
                    match names {
                        Names::Exact => false,
                        Names::CppParams => {
                            without_params(&o.function) == without_params(&t.function)
                        }
                        Names::GoInlined => {
                            i + 1 < theirs.len() && t.function == theirs[theirs.len() - 1].function
                        }
                    }
                };
                name_ok && basename(&o.file) == basename(&t.file) && o.line == t.line
            });
        if !same {
            mismatches.push(describe(*addr, ours, theirs));
        } else if !exact {
            tolerated += 1;
        }
        if ours.len() >= 2 {
            inlined += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} addresses differ from addr2line -i -f -C; first ones:\n{}",
        mismatches.len(),
        addresses.len(),
        mismatches[..mismatches.len().min(15)].join("\n")
    );
    eprintln!(
        "{}: {} addresses equal to addr2line -i -f -C ({} with inlined frames, {} with names differing as documented in `Names`)",
        bin.display(),
        addresses.len(),
        inlined,
        tolerated
    );
    inlined
}

/// Whether some sampled address's outermost frames are, by function name, `chain`
/// (innermost first).
fn has_chain(bin: &Path, addresses: &[u64], chain: &[&str]) -> bool {
    symbolize_file(bin, addresses).iter().any(|frames| {
        frames.len() >= chain.len()
            && frames[frames.len() - chain.len()..]
                .iter()
                .zip(chain)
                .all(|(f, c)| f.function.contains(c))
    })
}

/// Samples every `step`-th address of the functions of `bin` whose names contain one of
/// `needles`, compares them with binutils, and checks that some address has the inline
/// chain `chain` (innermost first, by function name). Returns the addresses.
fn differential(bin: &Path, needles: &[&str], step: u64, names: Names, chain: &[&str]) -> Vec<u64> {
    let funcs = functions(bin, needles);
    assert!(funcs.len() >= needles.len(), "{funcs:?}");
    let addresses = sample_addresses(&funcs, step);
    assert!(
        compare_with_binutils(bin, &addresses, names) > 0,
        "no inlined frames"
    );
    assert!(
        has_chain(bin, &addresses, chain),
        "no address with the chain {chain:?}"
    );
    addresses
}

#[test]
fn c_gcc_o2_with_inlined_static_functions() {
    if !have("gcc") || !have("addr2line") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(
        "gcc",
        dir.path(),
        "prog.c",
        C_SOURCE,
        &["-O2", "-g"],
        "prog",
    );
    let chain = ["square", "sum_squares", "compute"];
    differential(&bin, &["compute", "fib", "main"], 2, Names::Exact, &chain);
}

/// clang 14 writes DWARF 5 by default, whose inlined frames binutils 2.40 does not see: the
/// DWARF 4 build is compared with binutils, the DWARF 5 build (the same machine code) with
/// the DWARF 4 one.
#[test]
fn c_clang_o2_dwarf4_and_dwarf5() {
    if !have("clang") || !have("addr2line") || !have("objdump") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, dwarf: &str| {
        compile(
            "clang",
            dir.path(),
            "prog.c",
            C_SOURCE,
            &["-O2", "-g", dwarf],
            name,
        )
    };
    let (v4, v5) = (build("prog4", "-gdwarf-4"), build("prog5", "-gdwarf-5"));
    let code = |bin: &Path| {
        let text = run(Command::new("objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(bin));
        let text = String::from_utf8(text).unwrap();
        text.lines().skip(3).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(code(&v4), code(&v5), "DWARF version changed the code");
    let chain = ["square", "sum_squares", "compute"];
    let addresses = differential(&v4, &["compute", "fib", "main"], 2, Names::Exact, &chain);
    assert_eq!(
        symbolize_file(&v4, &addresses),
        symbolize_file(&v5, &addresses)
    );
}

#[test]
fn cpp_templates_and_inlined_methods() {
    if !have("g++") || !have("addr2line") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(
        "g++",
        dir.path(),
        "prog.cpp",
        CPP_SOURCE,
        &["-O2", "-g"],
        "prog",
    );
    let chain = ["demo::Acc<int>::add(int)", "int demo::accumulate<int>"];
    differential(&bin, &["4demo", "main"], 3, Names::CppParams, &chain);
}

/// The Rust program built with rustc `-C debuginfo=2 -O` and `extra` flags; its functions'
/// mangled names start with `prefix`.
fn rust_differential(extra: &[&str], prefix: &str) {
    if !have("rustc") || !have("addr2line") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let flags: Vec<&str> = ["-C", "debuginfo=2", "-O", "--edition", "2021"]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    let bin = compile(
        "rustc",
        dir.path(),
        "rsdemo.rs",
        RUST_SOURCE,
        &flags,
        "rsdemo",
    );
    assert!(
        functions(&bin, &["rsdemo"])
            .iter()
            .any(|f| f.2.starts_with(prefix))
    );
    differential(
        &bin,
        &["rsdemo"],
        2,
        Names::Exact,
        &["rsdemo::square", "rsdemo::compute"],
    );
}

#[test]
fn rust_legacy_mangling() {
    rust_differential(&[], "_ZN6rsdemo");
}

#[test]
fn rust_v0_mangling() {
    rust_differential(&["-C", "symbol-mangling-version=v0"], "_RNv");
}

/// Go's DWARF (Go 1.19 from `golang-go`, and Go 1.23 where installed), against binutils.
#[test]
fn go_with_dwarf() {
    for go in go_toolchains() {
        if !have("addr2line") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bin = go_build(&go, dir.path(), GO_SOURCE, "goprog", &[]);
        let chain = ["main.square", "main.compute"];
        differential(&bin, &["main."], 3, Names::GoInlined, &chain);
        assert!(has_chain(
            &bin,
            &sample_addresses(&functions(&bin, &["main."]), 1),
            &["main.(*acc).add", "main.compute"]
        ));
    }
}

/// A Go binary built with `-ldflags='-s -w'` (no symbol table, no DWARF) is named from its
/// pclntab: the out-of-line function and the instruction's file and line as
/// `go tool addr2line` prints them, and the inlined frames (from the inline trees) as the
/// same program's DWARF has them.
#[test]
fn go_stripped_against_go_tool_addr2line_and_dwarf() {
    for go in go_toolchains() {
        let dir = tempfile::tempdir().unwrap();
        let full = go_build(&go, dir.path(), GO_SOURCE, "goprog", &[]);
        let stripped = go_build(&go, dir.path(), GO_SOURCE, "goprog-sw", &["-ldflags=-s -w"]);
        // Same code in both (only symbols and DWARF dropped): take the addresses from the
        // full one, which has a symbol table, including the runtime's functions.
        let funcs = functions(&full, &["main.", "sort.", "runtime.mallocgc"]);
        let addresses = sample_addresses(&funcs, 5);
        let build_id = strata_symbolizer::BuildId::of(&*std::fs::read(&stripped).unwrap())
            .unwrap()
            .id;
        let symbolizer = Symbolizer::new(SymbolizerConfig::default()).unwrap();
        let batch =
            symbolizer.symbolize(&ObjectRef::new(build_id).with_path(&stripped), &addresses);
        match &batch.status {
            DebugInfoStatus::Found { content, .. } => {
                assert!(
                    content.go_pclntab && !content.dwarf && !content.symtab,
                    "{content:?}"
                )
            }
            other => panic!("{go}: {other:?}"),
        }
        let reference = go_addr2line(&go, &stripped, &addresses);
        let dwarf = symbolize_file(&full, &addresses);
        let mut mismatches = Vec::new();
        let mut inlined = 0;
        for (((addr, ours), theirs), dwarf) in addresses
            .iter()
            .zip(&batch.frames)
            .zip(&reference)
            .zip(&dwarf)
        {
            let (Some(inner), Some(outer)) = (ours.first(), ours.last()) else {
                mismatches.push(describe(*addr, ours, std::slice::from_ref(theirs)));
                continue;
            };
            let as_go_tool = outer.function == theirs.function
                && inner.file == theirs.file
                && inner.line == theirs.line;
            let as_dwarf = ours.len() == dwarf.len()
                && ours
                    .iter()
                    .zip(dwarf.iter())
                    // DWARF joins Go's `<autogenerated>` to the unit's directory `.`.
                    .all(|(o, d)| {
                        o.function == d.function
                            && basename(&o.file) == basename(&d.file)
                            && o.line == d.line
                    });
            if !as_go_tool {
                mismatches.push(describe(*addr, ours, std::slice::from_ref(theirs)));
            }
            if !as_dwarf {
                let dwarf: Vec<RefFrame> = dwarf
                    .iter()
                    .map(|f| RefFrame {
                        function: f.function.clone(),
                        file: f.file.clone(),
                        line: f.line,
                    })
                    .collect();
                mismatches.push(format!("(vs DWARF) {}", describe(*addr, ours, &dwarf)));
            }
            inlined += usize::from(ours.len() > 1);
        }
        assert!(
            mismatches.is_empty(),
            "{go}: {} differences from go tool addr2line or the DWARF of {} addresses:\n{}",
            mismatches.len(),
            addresses.len(),
            mismatches[..mismatches.len().min(15)].join("\n")
        );
        assert!(inlined > 0, "{go}: no inlined frames from the pclntab");
        eprintln!(
            "{go}: {} addresses equal to go tool addr2line and, inline chains included ({inlined} with inlined frames), to the DWARF",
            addresses.len()
        );
    }
}

/// The Go toolchains to test with: `go` (Debian's 1.19) and Go 1.23 where `scripts/test`
/// installed it (pclntab layouts of 1.18 and 1.20+).
fn go_toolchains() -> Vec<String> {
    let mut out = Vec::new();
    if have("go") {
        out.push("go".to_owned());
    }
    if Path::new("/usr/lib/go-1.23/bin/go").exists() {
        out.push("/usr/lib/go-1.23/bin/go".to_owned());
    }
    out
}
