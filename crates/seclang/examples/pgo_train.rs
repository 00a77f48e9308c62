//! The training run of the profile-guided build (`scripts/pgo`): the requests of a CRS
//! release's regression suite (go-ftw YAML under `tests/regression/tests`), each through
//! phases 1-5 against that release's rules at their defaults (PL1, anomaly scoring, blocking),
//! request and response bodies inspected. The suite is an independent corpus: attacks of
//! every class the CRS knows and the benign requests it must let through, with and without
//! bodies, and responses through its `/reflect` backend. Nothing is checked here; the
//! regression test does that.
//!
//! ```text
//! pgo_train <CRS release directory>
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use honeytrap_seclang::RuleSetBuilder;

#[path = "../tests/common/crs_drive.rs"]
mod crs_drive;
#[path = "../tests/common/crs_suite.rs"]
mod crs_suite;

fn main() {
    let Some(crs) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: pgo_train <CRS release directory>");
        std::process::exit(2);
    };
    let mut b = RuleSetBuilder::default();
    b.add_text(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecResponseBodyAccess On\n\
         SecResponseBodyMimeType text/plain text/html text/xml application/json\n",
        "pgo_train",
        Path::new("."),
    )
    .expect("settings");
    b.add_file(&crs.join("crs-setup.conf.example"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rules: Vec<PathBuf> = std::fs::read_dir(crs.join("rules"))
        .unwrap_or_else(|e| panic!("{}: {e}", crs.join("rules").display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    rules.sort();
    for r in &rules {
        b.add_file(r).unwrap_or_else(|e| panic!("{e}"));
    }
    let rs = Arc::new(b.build().unwrap_or_else(|e| panic!("{e}")));
    let requests: Vec<_> = crs_suite::stages_in(&crs.join("tests/regression/tests"))
        .iter()
        .map(|s| crs_suite::build_request(&s.input))
        .collect();
    if requests.is_empty() {
        eprintln!("pgo_train: no regression tests under {}", crs.display());
        std::process::exit(1);
    }
    let logged: usize = requests
        .iter()
        .map(|req| crs_drive::drive(&rs, req).logged().count())
        .sum();
    eprintln!(
        "pgo_train: {} requests, {logged} logged rule matches",
        requests.len()
    );
}
