//! The CRS v4.28.0 of ../shared/crs for unit tests, loaded as its regression suite runs it.

use std::path::PathBuf;

/// ../shared/crs, beside the repository.
pub(crate) fn root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs")
}

/// CRS v4.28.0's directory and its rule files in load order; `None` (the test has nothing
/// to check) when the data is not there.
pub(crate) fn v4_rule_files() -> Option<(PathBuf, Vec<PathBuf>)> {
    let v4 = root().join("v4.28.0");
    if !v4.join("rules").is_dir() {
        println!("SKIPPED: CRS data not found at {}", root().display());
        return None;
    }
    let mut files: Vec<_> = std::fs::read_dir(v4.join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    Some((v4, files))
}

/// CRS v4.28.0 with `crs-setup.conf.example` and the suite's `test-setup.conf`; `None` (the
/// test has nothing to check) when the data is not there.
pub(crate) fn rule_set() -> Option<crate::RuleSet> {
    let (v4, files) = v4_rule_files()?;
    let mut b = crate::RuleSetBuilder::default();
    for f in [
        v4.join("crs-setup.conf.example"),
        root().join("test-setup.conf"),
    ]
    .iter()
    .chain(&files)
    {
        b.add_file(f).unwrap();
    }
    Some(b.build().unwrap())
}
