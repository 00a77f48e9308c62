//! `--help` answers for every command and subcommand, and mistakes in flags say what to do.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_honeytrap"))
        .args(args)
        .output()
        .expect("run honeytrap");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn every_command_has_help() {
    let commands: [&[&str]; 9] = [
        &[],
        &["rules"],
        &["rules", "check"],
        &["rules", "test"],
        &["events"],
        &["events", "report"],
        &["misp", "push"],
        &["es"],
        &["es", "setup"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out.contains("Usage: honeytrap"), "{args:?}: {out}");
    }
    let (_, out, _) = run(&["rules", "test", "--help"]);
    assert!(
        out.contains("--response") && out.contains("--json"),
        "{out}"
    );
    let (_, out, _) = run(&["--version"]);
    assert!(out.starts_with("honeytrap "), "{out}");
}

#[test]
fn usage_mistakes_exit_2_and_point_at_help() {
    let (code, _, err) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("Usage:"), "{err}");
    let (code, _, err) = run(&["rules", "check"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("<FILE|GLOB>"), "{err}");
    let (code, _, err) = run(&["misp", "push", "x.ndjson", "--url", "http://m"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--key-file"), "{err}");
    let (code, _, err) = run(&["events", "report", "a", "--tpo", "3"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("unexpected argument '--tpo'") && err.contains("--help"),
        "{err}"
    );
}
