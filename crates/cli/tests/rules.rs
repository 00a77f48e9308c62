//! `honeytrap rules check` and `rules test`, run as the binary: on CRS v4.28.0 (from
//! ../shared/crs, read-only, never copied), Debian's CRS 3.3.4 when installed, files with
//! mistakes, and requests built from the CRS regression suite.

#[path = "support/run.rs"]
mod run;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use run::honeytrap;
use serde_json::Value;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn crs_root() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs");
    if p.join("v4.28.0/rules").is_dir() {
        Some(p.canonicalize().unwrap())
    } else {
        println!("SKIPPED: CRS data not found at {}", p.display());
        None
    }
}

/// The CRS load order the suite expects: setup, test setup, rules.
fn crs_args(root: &Path) -> Vec<String> {
    vec![
        root.join("v4.28.0/crs-setup.conf.example")
            .display()
            .to_string(),
        root.join("test-setup.conf").display().to_string(),
        root.join("v4.28.0/rules/*.conf").display().to_string(),
    ]
}

#[test]
fn check_crs_v4_has_zero_errors() {
    let Some(root) = crs_root() else { return };
    let args = crs_args(&root);
    let mut argv = vec!["rules", "check"];
    argv.extend(args.iter().map(String::as_str));
    let o = honeytrap(&argv, &root);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains(", 0 errors"), "{out}");
    assert!(out.contains("@detectSQLi"), "{out}");
    let rules: usize = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(rules > 500, "{out}");
    assert!(out.contains("2 request body:"), "{out}");
}

#[test]
fn check_debian_crs_3_has_zero_errors() {
    let setup = Path::new("/etc/modsecurity/crs/crs-setup.conf");
    let rules = Path::new("/usr/share/modsecurity-crs/rules");
    if !setup.exists() || !rules.is_dir() {
        println!(
            "SKIPPED: Debian modsecurity-crs is not installed (apt-get install -y modsecurity-crs)"
        );
        return;
    }
    let o = honeytrap(
        &[
            "rules",
            "check",
            "/etc/modsecurity/crs/crs-setup.conf",
            "/usr/share/modsecurity-crs/rules/*.conf",
        ],
        Path::new("/"),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains(", 0 errors"), "{out}");
}

#[test]
fn check_reports_the_line_of_a_typo_in_an_included_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.conf"),
        "SecRuleEngine On\nSecRule ARGS \"@rx a\" \"id:1,phase:2,deny\"\n",
    )
    .unwrap();
    // Line 5 misspells the operator; a continuation line before it must not shift the count.
    std::fs::write(
        dir.path().join("bad.conf"),
        "# our rules\n\nSecRule ARGS:q \"@rx b\" \\\n    \"id:2,phase:2,pass\"\nSecRule ARGS \"@rxx c\" \"id:3,phase:2,deny\"\n",
    )
    .unwrap();
    let o = honeytrap(&["rules", "check", "good.conf", "bad.conf"], dir.path());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    let bad = dir.path().join("bad.conf");
    assert!(
        err.contains(&format!(
            "{}:5: SecRule: unknown operator @rxx",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.contains("1 error(s)"), "{err}");

    // Every argument is checked: a missing file is reported besides the typo.
    let o = honeytrap(
        &["rules", "check", "bad.conf", "missing/*.conf"],
        dir.path(),
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("missing/*.conf: no file matches"), "{err}");
    assert!(err.contains("quote globs"), "{err}");
    assert!(err.contains("2 error(s)"), "{err}");
}

#[test]
fn check_quiet_prints_nothing_on_success() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.conf"),
        "SecAction \"id:1,phase:1,pass,nolog\"\n",
    )
    .unwrap();
    let o = honeytrap(&["rules", "check", "--quiet", "a.conf"], dir.path());
    assert!(o.status.success());
    assert!(o.stdout.is_empty());
}

// ---------------------------------------------------------------------------------------------
// rules test

/// A request line, headers and body as go-ftw would send a stage's input.
fn raw_request(input: &serde_yaml::Value) -> Vec<u8> {
    let s = |k: &str, d: &str| {
        input
            .get(k)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| d.to_owned())
    };
    let body = input
        .get("data")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let mut head = format!(
        "{} {} {}\r\n",
        s("method", "GET"),
        s("uri", "/"),
        s("version", "HTTP/1.1")
    );
    let mut has_ct = false;
    let mut has_cl = false;
    if let Some(h) = input.get("headers").and_then(|h| h.as_mapping()) {
        for (k, v) in h {
            let k = k.as_str().unwrap_or("");
            has_ct |= k.eq_ignore_ascii_case("content-type");
            has_cl |= k.eq_ignore_ascii_case("content-length");
            head.push_str(&format!("{k}: {}\r\n", v.as_str().unwrap_or("")));
        }
    }
    // go-ftw completes these for a body unless told not to.
    if !body.is_empty() {
        if !has_ct {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        if !has_cl {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body.as_bytes());
    raw
}

/// Finds test `test_id` of `rule.yaml` and returns its first stage's input and expectations.
fn crs_case(
    root: &Path,
    dir: &str,
    rule: u32,
    test_id: u64,
) -> (serde_yaml::Value, Vec<u64>, Vec<u64>) {
    let path = root.join(format!("v4.28.0/tests/regression/tests/{dir}/{rule}.yaml"));
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let test = doc["tests"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|t| t["test_id"].as_u64() == Some(test_id))
        .unwrap_or_else(|| panic!("{rule}-{test_id} not in {}", path.display()));
    let stage = &test["stages"][0];
    let ids = |k: &str| -> Vec<u64> {
        stage["output"]["log"][k]
            .as_sequence()
            .map(|s| s.iter().filter_map(serde_yaml::Value::as_u64).collect())
            .unwrap_or_default()
    };
    (
        stage["input"].clone(),
        ids("expect_ids"),
        ids("no_expect_ids"),
    )
}

#[test]
fn test_reports_the_ids_the_crs_regression_suite_expects() {
    let Some(root) = crs_root() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("REQUEST-942-APPLICATION-ATTACK-SQLI", 942100, 1),
        ("REQUEST-942-APPLICATION-ATTACK-SQLI", 942100, 2),
        ("REQUEST-932-APPLICATION-ATTACK-RCE", 932160, 1),
        ("REQUEST-930-APPLICATION-ATTACK-LFI", 930120, 1),
    ];
    for (family, rule, test_id) in cases {
        let (input, expect, no_expect) = crs_case(&root, family, rule, test_id);
        assert!(
            !expect.is_empty() || !no_expect.is_empty(),
            "{rule}-{test_id} has no expectation"
        );
        let req = dir.path().join(format!("{rule}-{test_id}.http"));
        std::fs::write(&req, raw_request(&input)).unwrap();
        let mut argv: Vec<String> = vec!["rules".into(), "test".into(), "--json".into()];
        for r in crs_args(&root) {
            argv.push("--rules".into());
            argv.push(r);
        }
        argv.push(req.display().to_string());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let o = honeytrap(&argv, dir.path());
        let (out, err) = text(&o);
        assert!(o.status.success(), "{rule}-{test_id}: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        let ids: Vec<u64> = v["ids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        for id in &expect {
            assert!(
                ids.contains(id),
                "{rule}-{test_id}: expected {id} in {ids:?}"
            );
        }
        for id in &no_expect {
            assert!(
                !ids.contains(id),
                "{rule}-{test_id}: {id} must not match: {ids:?}"
            );
        }
        // The explanation is there for the expected rule: variable, value, transformations.
        let m = v["matched"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"].as_u64() == Some(u64::from(rule)))
            .unwrap();
        assert!(!m["matched_var_name"].as_str().unwrap().is_empty(), "{m}");
        assert!(
            m["transformations"]
                .as_array()
                .is_some_and(|t| !t.is_empty()),
            "{m}"
        );
        assert!(m["file"].as_str().unwrap().ends_with(".conf"), "{m}");
        assert_eq!(v["engine"], "DetectionOnly");
    }
}

const OWN_RULES: &str = r#"SecRuleEngine On
SecRequestBodyAccess On
SecResponseBodyAccess On
SecResponseBodyMimeType text/html
SecRule REQUEST_BODY "@contains attack" "id:100,phase:2,pass,log,t:lowercase,msg:'body says attack',severity:2,setvar:tx.inbound_anomaly_score=+5"
SecRule RESPONSE_BODY "@contains secret" "id:200,phase:4,pass,log,msg:'secret leaked'"
SecRule ARGS:block "@streq yes" "id:300,phase:1,deny,status:418,log,msg:'asked to block'"
"#;

#[test]
fn test_decodes_chunked_bodies_and_reads_the_response() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("own.conf"), OWN_RULES).unwrap();
    std::fs::write(
        dir.path().join("req.http"),
        "POST /form HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n3\r\nATT\r\n3\r\nACK\r\n0\r\n\r\n",
    )
    .unwrap();
    // LF-only line endings, as an editor may save them.
    std::fs::write(
        dir.path().join("resp.http"),
        "HTTP/1.1 200 OK\nContent-Type: text/html\n\n<p>the secret is out</p>\n",
    )
    .unwrap();
    let o = honeytrap(
        &[
            "rules",
            "test",
            "-r",
            "own.conf",
            "req.http",
            "--response",
            "resp.http",
        ],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("  100 (phase 2) severity 2: body says attack"),
        "{out}"
    );
    assert!(
        out.contains("matched REQUEST_BODY (transformed) = attack"),
        "{out}"
    );
    assert!(out.contains("t: lowercase"), "{out}");
    assert!(out.contains("  200 (phase 4): secret leaked"), "{out}");
    assert!(
        out.contains("anomaly scores: inbound 5, outbound 0"),
        "{out}"
    );
    assert!(out.contains("decision: pass (engine On)"), "{out}");
}

#[test]
fn test_from_stdin_reports_a_block_and_stops_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("own.conf"), OWN_RULES).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_honeytrap"))
        .args(["rules", "test", "--rules", "own.conf", "--json", "-"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"POST /?block=yes HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nattack")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"]["action"], "block");
    assert_eq!(v["decision"]["status"], 418);
    assert_eq!(v["decision"]["rule_id"], 300);
    // Blocked in phase 1: the body rule never ran, as in nginx.
    assert_eq!(v["ids"], serde_json::json!([300]));
    assert_eq!(v["phases_run"], 1);
}

#[test]
fn test_explains_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("own.conf"), OWN_RULES).unwrap();
    std::fs::write(dir.path().join("bad.http"), "this is not http\r\n\r\n").unwrap();
    let o = honeytrap(&["rules", "test", "-r", "own.conf", "bad.http"], dir.path());
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("not a request line"), "{err}");
    let o = honeytrap(
        &["rules", "test", "-r", "nope.conf", "bad.http"],
        dir.path(),
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("rules check"), "{err}");
}
