//! The engine benchmark's workload, shared by `benches/crs.rs` (criterion) and
//! `examples/crs_profile.rs` (instruction counts): the full CRS v4.28.0 at PL1 in blocking
//! mode, a benign and an attack GET (5 headers, 4 args), and the benign GET's response
//! (5 headers, a 3.4 KB HTML page) with response body inspection on.

use std::path::Path;
use std::sync::Arc;

use honeytrap_seclang::{PooledTransaction, RuleSet, RuleSetBuilder, TxInput};

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

/// The response to the benign GET: these, its Content-Length, and the page.
const RESPONSE_HEADERS: [(&str, &str); 4] = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Server", "nginx"),
    ("Cache-Control", "no-cache"),
    ("Date", "Sat, 28 Nov 2026 23:00:00 GMT"),
];
const PAGE: &[u8] = include_bytes!("../page.html");

pub const BENIGN: &[u8] = b"/products/list.php?category=books&page=2&sort=price&q=rust+programming";
pub const ATTACK: &[u8] = b"/products/list.php?category=books&page=2&sort=price&q=1%27%20UNION%20SELECT%20password%20FROM%20users--";

/// The CRS with the benchmark's settings; `None` when ../shared/crs is not there.
#[allow(dead_code)]
pub fn load() -> Option<Arc<RuleSet>> {
    load_with("")
}

/// [`load`], then the SecLang `extra` (e.g. `SecRuleRemoveById`).
pub fn load_with(extra: &str) -> Option<Arc<RuleSet>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs/v4.28.0");
    if !root.is_dir() {
        eprintln!("SKIPPED: CRS v4.28.0 not found at {}", root.display());
        return None;
    }
    let mut b = RuleSetBuilder::default();
    // Blocking mode at the default paranoia level 1 (crs-setup.conf.example defaults).
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
    if !extra.is_empty() {
        b.add_text(extra, "extra", Path::new(".")).unwrap();
    }
    Some(Arc::new(b.build().unwrap()))
}

fn request(rs: &Arc<RuleSet>, uri: &[u8]) -> PooledTransaction {
    // As the module starts them.
    let mut tx = rs.pooled_transaction(TxInput {
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
    tx
}

/// A GET of `uri` through phases 1-2; whether it was blocked.
pub fn one(rs: &Arc<RuleSet>, uri: &[u8]) -> bool {
    let mut tx = request(rs, uri);
    tx.process_request_headers().is_some() || tx.process_request_body().is_some()
}

/// [`one`], then the log phase and the logging rules an audit record holds, copied out as
/// the module copies them into its event (each text once), as it does for every
/// transaction; whether it was blocked. Profiled (`crs_profile`), not timed by the
/// criterion bench.
#[allow(dead_code)]
pub fn one_logged(rs: &Arc<RuleSet>, uri: &[u8]) -> bool {
    let mut tx = request(rs, uri);
    let blocked = tx.process_request_headers().is_some() || tx.process_request_body().is_some();
    tx.process_logging();
    // As the module makes text of bytes.
    let text = honeytrap_seclang::lossy_string;
    let mut record = Vec::with_capacity(tx.logged().count());
    for m in tx.logged() {
        let data = if m.logdata.is_empty() {
            m.matched_var
        } else {
            m.logdata
        };
        record.push((
            m.id,
            text(m.msg),
            Arc::clone(m.tags),
            text(m.matched_var_name),
            text(data),
        ));
    }
    // The event names its most severe rule by id, as text.
    let named = record.first().map(|r| r.0.to_string());
    std::hint::black_box((record, named, tx.anomaly_scores()));
    blocked
}

/// A GET of `uri`, then its response through phases 3 and 4; whether it was blocked.
pub fn with_response(rs: &Arc<RuleSet>, uri: &[u8]) -> bool {
    let mut tx = request(rs, uri);
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
