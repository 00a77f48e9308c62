//! Shared helpers: where the CRS data lives and how to load it as the suite expects.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use honeytrap_seclang::{RuleSet, RuleSetBuilder};

/// `../shared/crs` next to the repository, if present (it is read-only data, never copied).
pub fn crs_root() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs");
    if p.join("v4.28.0/rules").is_dir() {
        Some(p)
    } else {
        println!(
            "SKIPPED: CRS data not found at {} — nothing to test",
            p.display()
        );
        None
    }
}

/// The rule files of CRS v4.28.0 in load order: setup, test setup, rules sorted by name.
pub fn crs4_files(root: &Path) -> Vec<PathBuf> {
    let v4 = root.join("v4.28.0");
    let mut files = vec![
        v4.join("crs-setup.conf.example"),
        root.join("test-setup.conf"),
    ];
    let mut rules: Vec<PathBuf> = std::fs::read_dir(v4.join("rules"))
        .expect("rules dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    rules.sort();
    files.extend(rules);
    files
}

/// Load CRS v4.28.0 with extra settings prepended (e.g. `SecResponseBodyAccess On`).
pub fn load_crs4(root: &Path, prelude: &str) -> RuleSet {
    let mut b = RuleSetBuilder::default();
    b.add_text(prelude, "prelude", Path::new("."))
        .expect("prelude");
    for f in crs4_files(root) {
        b.add_file(&f)
            .unwrap_or_else(|e| panic!("CRS v4.28.0 failed to load: {e}"));
    }
    b.build().expect("build")
}
