//! Runs the CRS v4.28.0 regression suite (go-ftw YAML, from ../shared/crs) in process: each
//! stage's request becomes a transaction, and the ids of the rules that logged must include
//! `expect_ids` and exclude `no_expect_ids`.
//!
//! Failing stages are listed with a reason in `tests/crs-known-failures.txt`. The test fails
//! when a stage fails that is not listed (the pass rate dropped) or a listed stage passes
//! (the list is stale). `UPDATE_CRS_KNOWN_FAILURES=1` rewrites the list.
//!
//! The upstream expectations are used as written (no server-specific overrides: in process
//! no web server rejects or rewrites anything first). Stages that only check the HTTP
//! status carry no log expectation and are counted as not applicable.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use honeytrap_seclang::{RuleSet, TxInput};
use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
struct TestFile {
    /// Absent in files whose tests are all commented out.
    rule_id: Option<u32>,
    #[serde(default)]
    tests: Vec<Test>,
}

#[derive(Deserialize)]
struct Test {
    test_id: Option<u32>,
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
struct Stage {
    input: Input,
    output: Output,
}

#[derive(Deserialize, Default)]
struct Input {
    method: Option<String>,
    uri: Option<String>,
    version: Option<String>,
    headers: Option<serde_yaml::Mapping>,
    data: Option<Value>,
    encoded_request: Option<String>,
    autocomplete_headers: Option<bool>,
}

#[derive(Deserialize, Default, Clone)]
struct Output {
    log: Option<Log>,
}

#[derive(Deserialize, Default, Clone)]
struct Log {
    expect_ids: Option<Vec<u32>>,
    no_expect_ids: Option<Vec<u32>>,
}

/// A request as the engine sees it.
struct Request {
    method: Vec<u8>,
    uri: Vec<u8>,
    version: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&rest[..nl])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .unwrap_or(0);
        rest = &rest[nl + 2..];
        if size == 0 || size > rest.len() {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(b"");
    }
    out
}

/// Read a raw HTTP/1.x request (for `encoded_request`).
fn parse_raw(raw: &[u8]) -> Request {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let method = parts.next().unwrap_or("").as_bytes().to_vec();
    let uri = parts.next().unwrap_or("").as_bytes().to_vec();
    let version = parts.next().unwrap_or("").as_bytes().to_vec();
    let headers: Vec<(Vec<u8>, Vec<u8>)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().as_bytes().to_vec(), v.trim().as_bytes().to_vec()))
        .collect();
    let mut body = raw[split.min(raw.len())..].to_vec();
    if headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case(b"transfer-encoding") && v.eq_ignore_ascii_case(b"chunked")
    }) {
        body = dechunk(&body);
    }
    Request {
        method,
        uri,
        version,
        headers,
        body,
    }
}

fn build_request(input: &Input) -> Request {
    if let Some(enc) = &input.encoded_request {
        let clean: String = enc.chars().filter(|c| !c.is_whitespace()).collect();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(clean)
            .unwrap_or_default();
        return parse_raw(&raw);
    }
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = input
        .headers
        .iter()
        .flatten()
        .map(|(k, v)| (scalar(k).into_bytes(), scalar(v).into_bytes()))
        .collect();
    let body = match &input.data {
        Some(Value::Sequence(lines)) => lines
            .iter()
            .map(scalar)
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes(),
        Some(v) => scalar(v).into_bytes(),
        None => Vec::new(),
    };
    // go-ftw completes a body's Content-Type (form-urlencoded) and Content-Length unless
    // told not to.
    let has = |hs: &[(Vec<u8>, Vec<u8>)], name: &[u8]| {
        hs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if input.autocomplete_headers != Some(false) && !body.is_empty() {
        if !has(&headers, b"content-type") {
            headers.push((
                b"Content-Type".to_vec(),
                b"application/x-www-form-urlencoded".to_vec(),
            ));
        }
        if !has(&headers, b"content-length") {
            headers.push((
                b"Content-Length".to_vec(),
                body.len().to_string().into_bytes(),
            ));
        }
    }
    Request {
        method: input
            .method
            .clone()
            .unwrap_or_else(|| "GET".into())
            .into_bytes(),
        uri: input.uri.clone().unwrap_or_else(|| "/".into()).into_bytes(),
        version: input
            .version
            .clone()
            .unwrap_or_else(|| "HTTP/1.1".into())
            .into_bytes(),
        headers,
        body,
    }
}

/// Run one request through all phases; returns the ids of rules that logged.
fn run(rs: &Arc<RuleSet>, req: &Request, debug: bool, dump: Option<&mut String>) -> Vec<u32> {
    let mut tx = rs.transaction(TxInput {
        remote_addr: "127.0.0.1".into(),
        remote_port: 40000,
        server_addr: "127.0.0.1".into(),
        server_port: 80,
        server_name: "localhost".into(),
        unique_id: "test".into(),
    });
    tx.set_request_line(&req.method, &req.uri, &req.version);
    for (n, v) in &req.headers {
        tx.add_request_header(n, v);
    }
    tx.process_request_headers();
    tx.append_request_body(&req.body);
    tx.process_request_body();
    // The suite's /reflect backend answers with the status, headers and body it is sent.
    let reflected = req
        .uri
        .starts_with(b"/reflect")
        .then(|| serde_json::from_slice::<serde_json::Value>(&req.body).ok())
        .flatten();
    match reflected {
        Some(j) => {
            tx.set_response_status(j["status"].as_u64().unwrap_or(200) as u16, b"HTTP/1.1");
            if let Some(h) = j["headers"].as_object() {
                for (k, v) in h {
                    tx.add_response_header(k.as_bytes(), v.as_str().unwrap_or("").as_bytes());
                }
            }
            if j["headers"].get("Content-Type").is_none() {
                tx.add_response_header(b"Content-Type", b"text/html");
            }
            tx.process_response_headers();
            tx.append_response_body(j["body"].as_str().unwrap_or("").as_bytes());
        }
        None => {
            tx.set_response_status(200, b"HTTP/1.1");
            tx.add_response_header(b"Content-Type", b"text/html");
            tx.process_response_headers();
            tx.append_response_body(b"<html><body>ok</body></html>");
        }
    }
    tx.process_response_body();
    tx.process_logging();
    if let Some(out) = dump {
        // Everything observable, so an engine change can be diffed stage by stage.
        use std::fmt::Write;
        for m in tx.matched_rules() {
            let _ = writeln!(
                out,
                "  {} p{} {:?} log={} msg={:?} data={:?} var={:?}={:?}",
                m.id,
                m.phase,
                m.disruptive,
                m.log,
                m.msg,
                m.logdata,
                m.matched_var_name,
                String::from_utf8_lossy(&m.matched_var)
            );
        }
        let _ = writeln!(
            out,
            "  => {:?} {:?}",
            tx.intervention(),
            tx.anomaly_scores()
        );
    }
    if debug {
        for m in tx.matched_rules() {
            println!(
                "  {} {} [{}] {}",
                m.id, m.msg, m.matched_var_name, m.logdata
            );
        }
    }
    tx.matched_rules()
        .iter()
        .filter(|m| m.log)
        .map(|m| m.id)
        .collect()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("tests dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn crs_v4_regression_suite() {
    let Some(root) = common::crs_root() else {
        return;
    };
    let prelude = "SecRequestBodyAccess On\nSecResponseBodyAccess On\n\
                   SecResponseBodyMimeType text/plain text/html text/xml application/json\n";
    let rs = Arc::new(common::load_crs4(&root, prelude));
    let reg = root.join("v4.28.0/tests/regression");
    let mut files = Vec::new();
    yaml_files(&reg.join("tests"), &mut files);
    files.sort();

    // `CRS_DUMP=<file>` writes every stage's matched rules, intervention and scores there.
    let dump_path = std::env::var_os("CRS_DUMP");
    let mut dump = dump_path.as_ref().map(|_| String::new());
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let (mut passed, mut not_applicable) = (0usize, 0usize);
    for f in &files {
        let tf: TestFile = serde_yaml::from_str(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let Some(rule_id) = tf.rule_id else { continue };
        for (ti, t) in tf.tests.iter().enumerate() {
            for (si, stage) in t.stages.iter().enumerate() {
                let name = format!(
                    "{rule_id}-{}-{}",
                    t.test_id.unwrap_or(ti as u32 + 1),
                    si + 1
                );
                let Some(log) = stage.output.log.clone() else {
                    not_applicable += 1;
                    continue;
                };
                let req = build_request(&stage.input);
                // `CRS_DEBUG=<rule>-<test>-<stage>` prints what that stage matched.
                let debug = std::env::var("CRS_DEBUG").is_ok_and(|d| d == name);
                if debug {
                    println!(
                        "{name}: {} {} {}",
                        String::from_utf8_lossy(&req.method),
                        String::from_utf8_lossy(&req.uri),
                        String::from_utf8_lossy(&req.version)
                    );
                }
                if let Some(d) = dump.as_mut() {
                    d.push_str(&name);
                    d.push('\n');
                }
                let ids = run(&rs, &req, debug, dump.as_mut());
                let missing: Vec<u32> = log
                    .expect_ids
                    .iter()
                    .flatten()
                    .filter(|id| !ids.contains(id))
                    .copied()
                    .collect();
                let unexpected: Vec<u32> = log
                    .no_expect_ids
                    .iter()
                    .flatten()
                    .filter(|id| ids.contains(id))
                    .copied()
                    .collect();
                if missing.is_empty() && unexpected.is_empty() {
                    passed += 1;
                } else {
                    let mut reason = Vec::new();
                    if !missing.is_empty() {
                        reason.push(format!("expected {missing:?} did not match"));
                    }
                    if !unexpected.is_empty() {
                        reason.push(format!("{unexpected:?} matched but must not"));
                    }
                    failures.insert(name, reason.join("; "));
                }
            }
        }
    }
    if let (Some(p), Some(d)) = (&dump_path, &dump) {
        std::fs::write(p, d).unwrap();
    }
    let total = passed + failures.len();
    let rate = 100.0 * passed as f64 / total.max(1) as f64;
    println!("CRS v4.28.0 regression: {passed} passed, {} failed of {total} stages ({rate:.2} %); {not_applicable} stages without log expectations not counted", failures.len());

    let list_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crs-known-failures.txt");
    let header = "# CRS v4.28.0 regression stages that fail in process: <rule>-<test>-<stage> <reason>\n\
                  # Generated by `UPDATE_CRS_KNOWN_FAILURES=1 cargo test -p honeytrap-seclang --test crs_regression`.\n";
    let current: String = failures.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    if std::env::var_os("UPDATE_CRS_KNOWN_FAILURES").is_some() {
        std::fs::write(&list_path, format!("{header}{current}")).unwrap();
        println!("wrote {}", list_path.display());
        return;
    }
    let known: BTreeMap<String, String> = std::fs::read_to_string(&list_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split_once(' ')
                .map_or((l.to_string(), String::new()), |(a, b)| {
                    (a.to_string(), b.to_string())
                })
        })
        .collect();
    let new_failures: Vec<_> = failures
        .iter()
        .filter(|(k, _)| !known.contains_key(*k))
        .collect();
    let fixed: Vec<_> = known
        .keys()
        .filter(|k| !failures.contains_key(*k))
        .collect();
    for (k, v) in new_failures.iter().take(50) {
        println!("NEW FAILURE {k}: {v}");
    }
    for k in fixed.iter().take(50) {
        println!("NOW PASSING {k} (remove it from the known-failures list)");
    }
    assert!(
        new_failures.is_empty(),
        "{} stages fail that are not in crs-known-failures.txt",
        new_failures.len()
    );
    assert!(
        fixed.is_empty(),
        "{} listed failures now pass: update crs-known-failures.txt",
        fixed.len()
    );
}
