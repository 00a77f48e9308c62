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
#[path = "common/crs_suite.rs"]
mod crs_suite;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crs_suite::{LoggedRule, Request};
use honeytrap_seclang::{RuleSet, TxInput};

/// Run one request through all phases; returns the ids of rules that logged.
fn run(
    rs: &Arc<RuleSet>,
    req: &Request,
    debug: bool,
    dump: Option<&mut String>,
) -> Vec<LoggedRule> {
    // As the module runs them: in memory the thread reuses, stage after stage.
    let mut tx = rs.pooled_transaction(TxInput {
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
        .map(|m| LoggedRule {
            id: m.id,
            msg: m.msg.clone(),
            data: m.logdata.clone(),
        })
        .collect()
}

#[test]
fn crs_v4_regression_suite() {
    let Some(root) = common::crs_root() else {
        return;
    };
    let prelude = "SecRequestBodyAccess On\nSecResponseBodyAccess On\n\
                   SecResponseBodyMimeType text/plain text/html text/xml application/json\n";
    let rs = Arc::new(common::load_crs4(&root, prelude));
    // `CRS_DUMP=<file>` writes every stage's matched rules, intervention and scores there.
    let dump_path = std::env::var_os("CRS_DUMP");
    let mut dump = dump_path.as_ref().map(|_| String::new());
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let (mut passed, mut not_applicable) = (0usize, 0usize);
    for stage in crs_suite::stages(&root) {
        let name = stage.name;
        let Some(log) = stage.output.log else {
            not_applicable += 1;
            continue;
        };
        let req = crs_suite::build_request(&stage.input);
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
        let logged = run(&rs, &req, debug, dump.as_mut());
        match crs_suite::check_log(&log, &logged) {
            Ok(()) => passed += 1,
            Err(reason) => {
                failures.insert(name, reason);
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
    let header = "# CRS v4.28.0 regression stages that fail in process: <rule>-<test>-<stage> <what failed> | <why>\n\
                  # Generated by `UPDATE_CRS_KNOWN_FAILURES=1 cargo test -p honeytrap-seclang --test crs_regression`;\n\
                  # the why, written by hand, is kept for the stages that still fail.\n";
    let known = crs_suite::read_known_failures(&list_path);
    if std::env::var_os("UPDATE_CRS_KNOWN_FAILURES").is_some() {
        let why = |k: &str| {
            known
                .get(k)
                .and_then(|r| r.split_once(" | "))
                .map(|(_, w)| w)
        };
        let current: String = failures
            .iter()
            .map(|(k, v)| match why(k) {
                Some(w) => format!("{k} {v} | {w}\n"),
                None => format!("{k} {v}\n"),
            })
            .collect();
        std::fs::write(&list_path, format!("{header}{current}")).unwrap();
        println!("wrote {}", list_path.display());
        return;
    }
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
