//! Whole transactions through the OWASP CRS v4.28.0 (from `../shared/crs`, beside the
//! repository), as the module drives them: request line, headers, body, phases 1-4 with an
//! HTML response made of the same body, the log phase and the audit record's texts. Every
//! part of the engine a request reaches runs: the prefilter and its caches, every operator
//! and transformation the rules name, the body processors, the setup snapshot and pooled
//! transactions reused from one input to the next.
//!
//! Input: a flags byte, then `<uri>\n<name>: <value>\n...\n\n<body>`.
//! Flags: bit 0 picks the rule set (0: blocking at paranoia level 1, as the benchmarks run
//! it; 1: detection only at paranoia level 4, every rule evaluated); bit 1 makes it a POST;
//! bits 2-4 add a Content-Type header (none, urlencoded, multipart with boundary `b`, JSON,
//! XML, text/plain).
#![no_main]

use std::path::Path;
use std::sync::{Arc, LazyLock};

use honeytrap_seclang::{RuleSet, TxInput};
use libfuzzer_sys::fuzz_target;

fn load(settings: &str) -> Arc<RuleSet> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crs/v4.28.0");
    assert!(root.is_dir(), "CRS v4.28.0 not found at {}", root.display());
    let root = root.display();
    let text =
        format!("{settings}Include {root}/crs-setup.conf.example\nInclude {root}/rules/*.conf\n");
    Arc::new(RuleSet::from_text(&text, "fuzz").unwrap())
}

static RULE_SETS: LazyLock<[Arc<RuleSet>; 2]> = LazyLock::new(|| {
    let body = "SecRequestBodyAccess On\nSecResponseBodyAccess On\n\
                SecResponseBodyMimeType text/plain text/html text/xml\n";
    [
        load(&format!("SecRuleEngine On\n{body}")),
        load(&format!(
            "SecRuleEngine DetectionOnly\n{body}\
             SecAction \"id:900000,phase:1,pass,nolog,\
             setvar:tx.blocking_paranoia_level=4,setvar:tx.detection_paranoia_level=4\"\n"
        )),
    ]
});

const CONTENT_TYPES: [&[u8]; 8] = [
    b"",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=b",
    b"application/json",
    b"text/xml",
    b"text/plain",
    b"",
    b"",
];

// The rule sets load before the first input (about 8 s), so libFuzzer's per-input timeout
// does not count the load against whichever input comes first.
fuzz_target!(init: { LazyLock::force(&RULE_SETS); }, |data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let rs = &RULE_SETS[usize::from(flags & 1)];
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &b""[..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let uri = lines.next().unwrap_or(b"/");
    let method: &[u8] = if flags & 2 != 0 { b"POST" } else { b"GET" };

    let mut tx = rs.pooled_transaction(TxInput {
        remote_addr: "192.0.2.10".into(),
        server_port: 80,
        ..TxInput::default()
    });
    tx.set_request_line(method, uri, b"HTTP/1.1");
    tx.add_request_header(b"Host", b"www.example.com");
    let content_type = CONTENT_TYPES[usize::from(flags >> 2 & 7)];
    if !content_type.is_empty() {
        tx.add_request_header(b"Content-Type", content_type);
    }
    for line in lines {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], line[i + 1..].trim_ascii_start()),
            None => (line, &b""[..]),
        };
        tx.add_request_header(name, value);
    }
    let mut blocked = tx.process_request_headers().is_some();
    if !blocked {
        tx.append_request_body(body);
        blocked = tx.process_request_body().is_some();
    }
    if !blocked {
        tx.set_response_status(200, b"HTTP/1.1");
        tx.add_response_header(b"Content-Type", b"text/html; charset=utf-8");
        blocked = tx.process_response_headers().is_some();
        if !blocked && tx.wants_response_body() {
            tx.append_response_body(body);
            let _ = tx.process_response_body();
        }
    }
    tx.process_logging();
    // What the module copies into an event.
    let mut text = 0;
    for m in tx.logged() {
        text += m.msg.len() + m.logdata.len() + m.matched_var_name.len() + m.matched_var.len();
        text += m.tags.len() + usize::from(m.severity.unwrap_or(0));
    }
    std::hint::black_box((text, tx.anomaly_scores(), tx.matched_rules().len()));
});
