//! Runs the `honeytrap` binary cargo built for these tests.

use std::path::Path;
use std::process::{Command, Output};

/// `honeytrap <args>` in `cwd`, run to the end.
pub fn honeytrap(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_honeytrap"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run honeytrap")
}
