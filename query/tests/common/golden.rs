//! Golden files: `check(name, actual)` compares `actual` with `tests/golden/<name>` of the
//! crate under test, or writes it there when `STRATA_BLESS` is set. A missing golden file
//! fails. Shared by strata-query's, strata-ingest's and strata-server's tests (the
//! latter two include this file by path).

use std::path::PathBuf;

/// Compares `actual` with the golden file `name` (or blesses it: `STRATA_BLESS=1`).
pub fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("STRATA_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a golden file has a directory")).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with STRATA_BLESS=1)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from its golden file (bless with STRATA_BLESS=1 if intended):\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}
