//! Name demangling: C++ (Itanium), Rust legacy and v0, through `symbolic-demangle`.

/// The demangled form of a symbol name: C++ with parameters as `c++filt` prints it, Rust
/// without the hash as `rustc-demangle`'s `{:#}` prints it; other names (C, Go) unchanged.
pub fn demangle(name: &str) -> String {
    symbolic_demangle::demangle(name).into_owned()
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn cpp_rust_legacy_and_v0() {
        assert_eq!(demangle("_ZN3foo3barEi"), "foo::bar(int)");
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        // rustc -C symbol-mangling-version=v0
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
        assert_eq!(
            demangle("_RNvMNtCs1234_7mycrate5innerNtB2_6Widget4draw"),
            "<mycrate::inner::Widget>::draw"
        );
        assert_eq!(demangle("main.main"), "main.main");
        assert_eq!(demangle("memcpy"), "memcpy");
    }
}
