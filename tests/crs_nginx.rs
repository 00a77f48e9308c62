//! The CRS v4.28.0 regression suite through real nginx: the module with the CRS loaded as the
//! suite expects (crs-setup, test-setup.conf, rules), proxying to a backend in this test that
//! answers `/reflect` requests with the status, headers and body they ask for, so the
//! response rules (RESPONSE-95x, phases 3 and 4) see real upstream responses.
//!
//! Every RESPONSE-95x stage runs, and a deterministic sample of the others: every k-th stage
//! of each rule file, at most [`SAMPLE_PER_FILE`] per file (`CRS_NGINX_ALL=1` runs them all).
//! Each stage's request goes on its own connection as the test writes it, followed, as go-ftw
//! does, by a marker request that only test-setup.conf's rule 999999 logs: the rule ids that
//! logged for the stage are those of the event written before the marker's (one worker writes
//! events in order; the event's client port is checked too). The answer's status is checked
//! where the stage states one. Where nginx itself answers or hands the request on differently,
//! the suite's `nginx-overrides.yaml` gives the expectation that holds instead.
//!
//! Stages that fail in process (`crates/seclang/tests/crs-known-failures.txt`) are skipped.
//! Stages that fail only through nginx are listed with the reason in
//! `tests/crs-nginx-known-failures.txt`; the test fails on a failure not listed there or a
//! listed stage that now passes.

#[path = "../crates/seclang/tests/common/crs_suite.rs"]
mod crs_suite;
mod harness;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use crs_suite::{LoggedRule, Output, Stage};
use harness::{field, http, Config, Nginx};
use serde::Deserialize;

/// Stages run per request rule file (all RESPONSE-95x stages run).
const SAMPLE_PER_FILE: usize = 100;

fn crs_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/crs");
    root.join("v4.28.0/rules").is_dir().then_some(root)
}

/// The suite's backend: `/reflect` answers with the JSON body's `status`, `headers` and `body`
/// (or base64 `encodedBody`); anything else gets a small HTML page, as in the in-process run.
fn start_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("backend port");
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve_backend(stream));
        }
    });
    port
}

fn serve_backend(mut stream: TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 16384];
    let head_end = loop {
        if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    // nginx buffers the body and sends it with a Content-Length (proxy_request_buffering).
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let path = head.split(' ').nth(1).unwrap_or("");
    let body = &data[head_end..data.len().min(head_end + length)];
    let spec = path
        .starts_with("/reflect")
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten();
    let (status, mut headers, answer) = match spec {
        Some(spec) => {
            let headers: Vec<(String, String)> = spec["headers"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect();
            let answer = match (spec["body"].as_str(), spec["encodedBody"].as_str()) {
                (Some(b), _) if !b.is_empty() => b.as_bytes().to_vec(),
                (_, Some(e)) => base64::engine::general_purpose::STANDARD
                    .decode(e)
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            (spec["status"].as_u64().unwrap_or(200), headers, answer)
        }
        None => (200, vec![], b"<html><body>ok</body></html>".to_vec()),
    };
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "text/html".into()));
    }
    let mut out = format!("HTTP/1.1 {status} Reflected\r\n");
    for (name, value) in &headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&answer);
    let _ = stream.write_all(&bytes);
}

/// One request on its own connection: the client port (which the event names) and the answer,
/// or why there was none.
fn send(port: u16, raw: &[u8]) -> (u16, Result<http::Response, String>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
    let client_port = stream.local_addr().unwrap().port();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // nginx may answer (400, 413) and close before it has read everything.
    let _ = stream.write_all(raw);
    let mut bytes = Vec::new();
    let read = stream.read_to_end(&mut bytes);
    let answer = match read {
        Err(e) if bytes.is_empty() => Err(e.to_string()),
        _ => http::parse(&bytes),
    };
    (client_port, answer)
}

/// The stages to run: all of the RESPONSE-95x files, every k-th of the others.
fn sample(stages: Vec<Stage>, all: bool) -> Vec<Stage> {
    let mut by_file: BTreeMap<String, Vec<Stage>> = BTreeMap::new();
    for stage in stages {
        let checks = stage.output.log.is_some()
            || stage.output.status.is_some()
            || stage.output.expect_error.is_some();
        if checks {
            by_file
                .entry(stage.rule_file.clone())
                .or_default()
                .push(stage);
        }
    }
    let mut out = Vec::new();
    for (file, stages) in by_file {
        let step = if all || file.starts_with("RESPONSE-95") {
            1
        } else {
            stages.len().div_ceil(SAMPLE_PER_FILE)
        };
        out.extend(stages.into_iter().step_by(step));
    }
    out
}

/// One rules event: the client port it names and the rules that logged.
struct Logged {
    client_port: u16,
    rules: Vec<LoggedRule>,
    /// The `X-CRS-Test` value when this is a marker request's event.
    marker: Option<String>,
}

fn read_events(events_file: &Path) -> Vec<Logged> {
    let text = std::fs::read_to_string(events_file).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad event {line:?}: {e}"));
        if field(&event, "event.action") != "rule-matched" {
            continue;
        }
        let rules = field(&event, "honeytrap.rules").as_array().cloned();
        let rules = rules.unwrap_or_default();
        out.push(Logged {
            client_port: field(&event, "source.port").as_u64().expect("source.port") as u16,
            rules: rules
                .iter()
                .filter_map(|r| {
                    let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
                    Some(LoggedRule {
                        id: r["id"].as_str()?.parse().ok()?,
                        msg: text("msg"),
                        data: text("matched_data"),
                    })
                })
                .collect(),
            marker: rules
                .iter()
                .filter(|r| r["id"] == MARKER_RULE)
                .find_map(|r| r["msg"].as_str()?.strip_prefix("X-CRS-Test "))
                .map(str::to_owned),
        });
    }
    out
}

/// The id of test-setup.conf's rule that logs the `X-CRS-Test` header and nothing else.
const MARKER_RULE: &str = "999999";

/// Sends a request that only the marker rule logs, naming `marker` in its event.
fn send_marker(port: u16, marker: &str) {
    let raw = format!("GET /marker HTTP/1.1\r\nHost: localhost\r\nX-CRS-Test: {marker}\r\n\r\n");
    let (_, answer) = send(port, raw.as_bytes());
    assert_eq!(answer.map(|r| r.status), Ok(200), "marker {marker}");
}

/// The events written before each marker's event since the previous marker's, by marker.
/// One worker writes the events in the order its requests ended, and each stage's request
/// ends before its marker is sent, so a stage's event (if any) is in its marker's window.
fn windows(events: Vec<Logged>) -> HashMap<String, Vec<Logged>> {
    let mut out = HashMap::new();
    let mut pending = Vec::new();
    for event in events {
        match event.marker {
            Some(marker) => {
                out.insert(marker, std::mem::take(&mut pending));
            }
            None => pending.push(event),
        }
    }
    out
}

/// Waits until the event of `marker` is written.
fn wait_for_marker(events_file: &Path, marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read_events(events_file)
        .iter()
        .any(|e| e.marker.as_deref() == Some(marker))
    {
        assert!(Instant::now() < deadline, "no event for marker {marker:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether what nginx answered and logged meets the stage's expectations.
fn check(
    output: &Output,
    answer: &Result<http::Response, String>,
    logged: Option<&[LoggedRule]>,
) -> Result<(), String> {
    let mut reasons = Vec::new();
    if output.expect_error == Some(true) {
        if let Ok(response) = answer {
            reasons.push(format!(
                "expected no answer, got status {}",
                response.status
            ));
        }
    }
    if let Some(status) = output.status {
        match answer {
            Ok(response) if response.status == status => {}
            Ok(response) => reasons.push(format!("status {} instead of {status}", response.status)),
            Err(e) => reasons.push(format!("no answer ({e}) instead of status {status}")),
        }
    }
    if let Some(log) = &output.log {
        if let Err(reason) = crs_suite::check_log(log, logged.unwrap_or(&[])) {
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("; "))
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    /// Passed the suite's nginx override instead of the upstream expectation.
    passed_by_override: usize,
    failed: usize,
    skipped: usize,
}

#[derive(Deserialize)]
struct OverridesFile {
    test_overrides: Vec<Override>,
}

/// An entry of the suite's `nginx-overrides.yaml`: what nginx answers instead.
#[derive(Deserialize)]
struct Override {
    rule_id: u32,
    test_ids: Vec<u32>,
    output: Option<Output>,
}

/// The expectations `nginx-overrides.yaml` gives where nginx itself answers or hands the
/// request on differently (400 for a missing Host, headers with `_` dropped, ...), by rule
/// and test. Entries without an output state no expectation and are left out.
fn nginx_overrides(crs_root: &Path) -> HashMap<(u32, u32), Output> {
    let path = crs_suite::regression_dir(crs_root).join("nginx-overrides.yaml");
    let file: OverridesFile = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = HashMap::new();
    for o in file.test_overrides {
        if let Some(output) = o.output {
            for test_id in o.test_ids {
                out.insert((o.rule_id, test_id), output.clone());
            }
        }
    }
    out
}

#[test]
fn crs_regression_sample_through_nginx() {
    let Some(root) = crs_root() else {
        eprintln!("SKIPPED: ../shared/crs is absent");
        return;
    };
    let all = std::env::var_os("CRS_NGINX_ALL").is_some();
    // `CRS_NGINX_ONLY=<rule>-<test>-<stage>,...` runs those stages (in-process failures
    // too) and prints what they sent, got back and logged.
    let only: Option<Vec<String>> = std::env::var("CRS_NGINX_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let mut stages = sample(crs_suite::stages(&root), all || only.is_some());
    if let Some(only) = &only {
        stages.retain(|s| only.contains(&s.name));
    }
    let in_process_failures = crs_suite::read_known_failures(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/seclang/tests/crs-known-failures.txt"),
    );
    let overrides = nginx_overrides(&root);
    // Built (or found up to date) before the clock starts: the figure is nginx's start.
    harness::module_path();
    let started = Instant::now();
    let backend = start_backend();
    // The suite's settings (test-setup.conf: detection only, paranoia level 4) after the
    // CRS's own setup, with request and response bodies inspected as the in-process run does.
    let crs_conf = format!(
        "SecRequestBodyAccess On\nSecResponseBodyAccess On\n\
         SecResponseBodyMimeType text/plain text/html text/xml application/json\n\
         Include {v4}/crs-setup.conf.example\nInclude {root}/test-setup.conf\n\
         Include {v4}/rules/*.conf\n",
        v4 = root.join("v4.28.0").display(),
        root = root.display()
    );
    // Connections close after each answer (the client reads to the end); short timeouts for
    // stages whose request is incomplete on purpose.
    let nginx = Nginx::start(
        Config::new(&format!(
            "honeytrap_events_file {{prefix}}/logs/events.ndjson;
             keepalive_timeout 0;
             client_header_timeout 3s;
             client_body_timeout 3s;
             server {{ listen 127.0.0.1:{{port0}}; honeytrap on;
                       honeytrap_rules_file {{prefix}}/conf/crs.conf;
                       location / {{ proxy_pass http://127.0.0.1:{backend}; }} }}
             server {{ listen 127.0.0.1:{{port1}}; location / {{ honeytrap_status; }} }}"
        ))
        .file("conf/crs.conf", crs_conf),
    );
    let events_file = nginx.prefix().join("logs/events.ndjson");

    println!(
        "nginx with the CRS started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut answers = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        // Named in CRS_NGINX_ONLY, they run anyway, to see what nginx makes of them.
        if in_process_failures.contains_key(&stage.name) && only.is_none() {
            answers.push(None);
            continue;
        }
        let request = crs_suite::build_request(&stage.input);
        let sent = send(nginx.port(0), &request.wire());
        // The suite's way to find a request's log lines: a marker request after it.
        send_marker(nginx.port(0), &format!("{i} {}", stage.name));
        answers.push(Some(sent));
    }
    send_marker(nginx.port(0), "end-of-run");
    wait_for_marker(&events_file, "end-of-run");
    let elapsed = started.elapsed();
    let counters: serde_json::Value =
        serde_json::from_slice(&http::get(nginx.port(1), "/").body).expect("status JSON");
    assert_eq!(
        counters["pipeline"]["queue"]["dropped"], 0,
        "events were dropped: {counters}"
    );
    let mut windows = windows(read_events(&events_file));

    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut passed_names = Vec::new();
    for (i, (stage, answer)) in stages.iter().zip(&answers).enumerate() {
        let tally = tallies.entry(stage.rule_file.as_str()).or_default();
        let Some((client_port, answer)) = answer else {
            tally.skipped += 1;
            continue;
        };
        let window = windows
            .remove(&format!("{i} {}", stage.name))
            .unwrap_or_else(|| panic!("no marker event after {}", stage.name));
        let strays: Vec<u16> = window
            .iter()
            .map(|e| e.client_port)
            .filter(|p| p != client_port)
            .collect();
        assert!(
            strays.is_empty(),
            "events of other requests (ports {strays:?}) before the marker of {} (port {client_port})",
            stage.name
        );
        let logged: Option<Vec<LoggedRule>> =
            (!window.is_empty()).then(|| window.into_iter().flat_map(|e| e.rules).collect());
        let ids: Option<Vec<u32>> = logged
            .as_ref()
            .map(|rules| rules.iter().map(|r| r.id).collect());
        if only.is_some() {
            let request = crs_suite::build_request(&stage.input);
            println!(
                "{}: sent {:?}\n  answer {:?}\n  logged {ids:?}",
                stage.name,
                String::from_utf8_lossy(&request.wire()),
                answer.as_ref().map(|r| (r.status, r.text()))
            );
        }
        // The override is an alternative, not a replacement: several describe what
        // libmodsecurity3 gets wrong, and the upstream expectation is what a correct engine
        // meets.
        let verdict = check(&stage.output, answer, logged.as_deref()).map_err(|reason| {
            match overrides.get(&(stage.rule_id, stage.test_id)) {
                Some(output) if check(output, answer, logged.as_deref()).is_ok() => None,
                _ => Some(reason),
            }
        });
        match verdict {
            Ok(()) => {
                tally.passed += 1;
                passed_names.push(stage.name.clone());
            }
            Err(None) => {
                tally.passed_by_override += 1;
                passed_names.push(stage.name.clone());
            }
            Err(Some(reason)) => {
                tally.failed += 1;
                println!(
                    "{} failed: {reason}; answer {:?}, logged {ids:?}",
                    stage.name,
                    answer.as_ref().map(|r| r.status)
                );
                failures.insert(stage.name.clone(), reason);
            }
        }
    }

    println!(
        "CRS v4.28.0 through nginx: {} stages in {:.1} s",
        stages.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "| rule file | run | passed | passed by nginx override | failed | skipped (fail in process) | pass rate |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut total = Tally::default();
    let row = |name: &str, t: &Tally| {
        let run = t.passed + t.passed_by_override + t.failed;
        println!(
            "| {name} | {run} | {} | {} | {} | {} | {:.2} % |",
            t.passed,
            t.passed_by_override,
            t.failed,
            t.skipped,
            100.0 * (t.passed + t.passed_by_override) as f64 / run.max(1) as f64
        );
    };
    for (file, t) in &tallies {
        row(file, t);
        total.passed += t.passed;
        total.passed_by_override += t.passed_by_override;
        total.failed += t.failed;
        total.skipped += t.skipped;
    }
    row("all", &total);

    let known = crs_suite::read_known_failures(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crs-nginx-known-failures.txt"),
    );
    let new_failures: Vec<_> = failures
        .iter()
        .filter(|(name, _)| !known.contains_key(*name) && !in_process_failures.contains_key(*name))
        .collect();
    let now_passing: Vec<_> = passed_names
        .iter()
        .filter(|name| known.contains_key(*name))
        .collect();
    for (name, reason) in &new_failures {
        println!("NEW FAILURE {name}: {reason}");
    }
    for name in &now_passing {
        println!("NOW PASSING {name} (remove it from crs-nginx-known-failures.txt)");
    }
    assert!(
        new_failures.is_empty(),
        "{} stages fail through nginx that are not in tests/crs-nginx-known-failures.txt",
        new_failures.len()
    );
    assert!(
        now_passing.is_empty(),
        "{} listed stages now pass: update tests/crs-nginx-known-failures.txt",
        now_passing.len()
    );
}
