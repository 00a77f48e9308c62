//! The setup snapshot changes nothing a host or a rule can observe: every request of the CRS
//! v4.28.0 regression suite (from ../shared/crs) gives the same TX, matches, logged rules,
//! intervention and scores, after each phase, whether transactions start from the snapshot
//! or run CRS's setup rules themselves, with `nolog` matches recorded (every other request)
//! or not. The transactions with the snapshot are pooled ones
//! (`RuleSet::pooled_transaction`, which the module uses), those without plain ones: a
//! transaction readied in place from the one before must see what a new one sees.

mod common;
#[path = "common/crs_suite.rs"]
mod crs_suite;

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crs_suite::Request;
use honeytrap_seclang::{RuleSet, RuleSetBuilder, Transaction, TxInput};

fn load(prelude: &str, files: &[PathBuf], snapshot: bool) -> Arc<RuleSet> {
    let mut b = RuleSetBuilder::default();
    b.setup_snapshot(snapshot);
    b.add_text(prelude, "prelude", Path::new(".")).unwrap();
    for f in files {
        b.add_file(f).unwrap();
    }
    Arc::new(b.build().unwrap())
}

/// What the host and later rules can see of `tx`.
fn observed(tx: &Transaction, out: &mut String) {
    tx.each_tx_var(&mut |k, v| {
        let _ = writeln!(
            out,
            "TX:{}={}",
            String::from_utf8_lossy(k),
            String::from_utf8_lossy(v)
        );
    });
    for m in tx.matched_rules() {
        let _ = writeln!(out, "{m:?}");
    }
    let logged: Vec<u32> = tx.logged().map(|m| m.id).collect();
    let _ = writeln!(
        out,
        "logged {logged:?} {:?} {:?} {:?}",
        tx.intervention(),
        tx.anomaly_scores(),
        tx.engine_mode()
    );
}

/// How a request of the comparison is run.
#[derive(Clone, Copy)]
struct Way {
    /// The module's bait variables set first.
    flagged: bool,
    /// `nolog` matches recorded too.
    all_matches: bool,
}

/// `req` through phases 1, 2 and 3-5 (a small HTML response), observed after each.
fn run(rs: &Arc<RuleSet>, req: &Request, way: Way, pooled: bool) -> [String; 3] {
    let input = TxInput {
        remote_addr: "192.0.2.7".into(),
        remote_port: 40000,
        server_addr: "192.0.2.1".into(),
        server_port: 80,
        server_name: "localhost".into(),
        unique_id: "setup".into(),
    };
    let (mut plain, mut reused);
    let tx: &mut Transaction = if pooled {
        reused = rs.pooled_transaction(input);
        &mut reused
    } else {
        plain = rs.transaction(input);
        &mut plain
    };
    if way.all_matches {
        tx.record_nolog_matches();
    }
    if way.flagged {
        tx.set_tx_var("honeytrap_flagged", b"1");
    }
    tx.set_request_line(&req.method, &req.uri, &req.version);
    for (n, v) in &req.headers {
        tx.add_request_header(n, v);
    }
    let mut seen: [String; 3] = Default::default();
    tx.process_request_headers();
    observed(tx, &mut seen[0]);
    tx.append_request_body(&req.body);
    tx.process_request_body();
    observed(tx, &mut seen[1]);
    tx.set_response_status(200, b"HTTP/1.1");
    tx.add_response_header(b"Content-Type", b"text/html");
    tx.process_response_headers();
    tx.append_response_body(b"<html><body>ok</body></html>");
    tx.process_response_body();
    tx.process_logging();
    observed(tx, &mut seen[2]);
    seen
}

fn same_with_and_without(prelude: &str, files: &[PathBuf], root: &Path) -> usize {
    let (with, without) = (load(prelude, files, true), load(prelude, files, false));
    assert_eq!(without.setup_snapshot_steps(), 0);
    let stages = crs_suite::stages(root);
    let mut compared = 0;
    // A batch of requests on one set, then on the other: each transaction reuses the
    // pooled state the one before left, as a worker's do.
    for batch in stages.chunks(64) {
        let requests: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(n, s)| {
                let way = Way {
                    flagged: n % 3 == 0,
                    all_matches: n % 2 == 0,
                };
                (crs_suite::build_request(&s.input), way)
            })
            .collect();
        let all = |rs, pooled| {
            let seen = requests.iter().map(|(req, way)| run(rs, req, *way, pooled));
            seen.collect::<Vec<_>>()
        };
        let (with_seen, without_seen) = (all(&with, true), all(&without, false));
        for ((stage, a), b) in batch.iter().zip(&with_seen).zip(&without_seen) {
            for (phase, (a, b)) in ["phase 1", "phase 2", "phase 5"]
                .iter()
                .zip(a.iter().zip(b))
            {
                if a != b {
                    // The first line that differs: the whole state is long.
                    let (x, y) = a
                        .lines()
                        .zip(b.lines())
                        .find(|(x, y)| x != y)
                        .unwrap_or_default();
                    panic!(
                        "{} after {phase}: with the snapshot {x:?}, without {y:?}",
                        stage.name
                    );
                }
            }
            compared += 1;
        }
    }
    println!(
        "{compared} requests, the snapshot {} steps",
        with.setup_snapshot_steps()
    );
    with.setup_snapshot_steps()
}

/// CRS as `crs-setup.conf.example` sets it up, blocking: the snapshot covers its setup.
#[test]
fn crs_as_deployed_sees_the_same_with_the_snapshot() {
    let Some(root) = common::crs_root() else {
        return;
    };
    let mut files = common::crs4_files(&root);
    // Not the suite's test-setup.conf, whose `ctl` would end the snapshot at once.
    files.retain(|f| !f.ends_with("test-setup.conf"));
    let prelude = "SecRuleEngine On\nSecRequestBodyAccess On\nSecResponseBodyAccess On\n";
    let steps = same_with_and_without(prelude, &files, &root);
    assert!(steps > 20, "the snapshot covers {steps} steps");
}

/// CRS as the regression suite sets it up (PL4, DetectionOnly, a `ctl` in its first rule).
#[test]
fn crs_as_the_suite_runs_it_sees_the_same_with_the_snapshot() {
    let Some(root) = common::crs_root() else {
        return;
    };
    let files = common::crs4_files(&root);
    same_with_and_without("SecRequestBodyAccess On\n", &files, &root);
}
