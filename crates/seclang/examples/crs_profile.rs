//! Runs the bench's benign or attack GET (phases 1-2), or the benign GET with its HTML
//! response (`response`: phases 1-4), many times, for instruction-count profiling:
//!
//! ```text
//! cargo build --release -p honeytrap-seclang --example crs_profile
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='crs_profile::counted' \
//!     target/release/examples/crs_profile benign 200
//! ```
//!
//! Instructions per transaction = collected total / iterations (loading is not counted).

use std::path::Path;
use std::sync::Arc;

use honeytrap_seclang::{RuleSet, RuleSetBuilder, TxInput};

const HEADERS: [(&str, &str); 5] = [
    ("Host", "www.example.com"),
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"),
];

/// The response to the benign GET: five headers and a 3.4 KB HTML page.
const RESPONSE_HEADERS: [(&str, &str); 4] = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Server", "nginx"),
    ("Cache-Control", "no-cache"),
    ("Date", "Sat, 28 Nov 2026 23:00:00 GMT"),
];
const PAGE: &[u8] = include_bytes!("../benches/page.html");

const BENIGN: &[u8] = b"/products/list.php?category=books&page=2&sort=price&q=rust+programming";
const ATTACK: &[u8] = b"/products/list.php?category=books&page=2&sort=price&q=1%27%20UNION%20SELECT%20password%20FROM%20users--";

fn load() -> Arc<RuleSet> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs/v4.28.0");
    let mut b = RuleSetBuilder::default();
    b.add_text(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecResponseBodyAccess On\n",
        "bench",
        Path::new("."),
    )
    .unwrap();
    b.add_file(&root.join("crs-setup.conf.example")).unwrap();
    let mut rules: Vec<_> = std::fs::read_dir(root.join("rules"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    rules.sort();
    for r in rules {
        b.add_file(&r).unwrap();
    }
    Arc::new(b.build().unwrap())
}

fn one(rs: &Arc<RuleSet>, uri: &[u8]) -> bool {
    let mut tx = rs.transaction(TxInput {
        remote_addr: "192.0.2.10".into(),
        remote_port: 51000,
        server_addr: "192.0.2.1".into(),
        server_port: 80,
        server_name: "www.example.com".into(),
        unique_id: "bench".into(),
    });
    tx.set_request_line(b"GET", uri, b"HTTP/1.1");
    for (n, v) in HEADERS {
        tx.add_request_header(n.as_bytes(), v.as_bytes());
    }
    tx.process_request_headers().is_some() || tx.process_request_body().is_some()
}

/// The benign GET, then its response through phases 3 and 4.
fn with_response(rs: &Arc<RuleSet>, uri: &[u8]) -> bool {
    let mut tx = rs.transaction(TxInput {
        remote_addr: "192.0.2.10".into(),
        remote_port: 51000,
        server_addr: "192.0.2.1".into(),
        server_port: 80,
        server_name: "www.example.com".into(),
        unique_id: "bench".into(),
    });
    tx.set_request_line(b"GET", uri, b"HTTP/1.1");
    for (n, v) in HEADERS {
        tx.add_request_header(n.as_bytes(), v.as_bytes());
    }
    if tx.process_request_headers().is_some() || tx.process_request_body().is_some() {
        return true;
    }
    tx.set_response_status(200, b"HTTP/1.1");
    for (n, v) in RESPONSE_HEADERS {
        tx.add_response_header(n.as_bytes(), v.as_bytes());
    }
    tx.add_response_header(b"Content-Length", PAGE.len().to_string().as_bytes());
    if tx.process_response_headers().is_some() {
        return true;
    }
    tx.append_response_body(PAGE);
    tx.process_response_body().is_some()
}

/// The only function callgrind counts (`--toggle-collect`).
#[inline(never)]
fn counted(rs: &Arc<RuleSet>, uri: &[u8], n: usize, response: bool) {
    for _ in 0..n {
        let uri = std::hint::black_box(uri);
        std::hint::black_box(if response {
            with_response(rs, uri)
        } else {
            one(rs, uri)
        });
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "benign".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let uri = if which == "attack" { ATTACK } else { BENIGN };
    let response = which == "response";
    let rs = load();
    // One uncounted run first: the regex engines fill their lazy caches on first use.
    let blocked = if response {
        with_response(&rs, uri)
    } else {
        one(&rs, uri)
    };
    let t = std::time::Instant::now();
    counted(&rs, uri, n, response);
    let el = t.elapsed();
    println!(
        "{which}: blocked={blocked} {:.2} µs/tx over {n}",
        el.as_secs_f64() * 1e6 / n as f64
    );
}
