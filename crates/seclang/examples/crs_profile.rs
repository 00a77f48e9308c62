//! Runs the bench's benign or attack GET (phases 1-2), the benign GET with its HTML
//! response (`response`: phases 1-4), or a GET then its log phase and the audit record's
//! rules (`benign-logged`, `attack-logged`), many times, for instruction-count profiling:
//!
//! ```text
//! cargo build --release -p honeytrap-seclang --example crs_profile
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='crs_profile::counted' \
//!     target/release/examples/crs_profile benign 200
//! ```
//!
//! Instructions per transaction = collected total / iterations (loading is not counted).
//!
//! `browsers <rounds>` runs 120 GETs as browsers send them instead (`workload::browse`;
//! toggle `crs_profile::counted_browsing`; instructions per request = total / 120 /
//! rounds): a check that a change does not only suit the one benign GET.
//!
//! `--without <ids>` (after the other arguments) removes rules first (`SecRuleRemoveById
//! <ids>`): what a rule costs is the difference (`bench/rule-costs` does it for each).
//!
//! A third argument `cold` also times each transaction after writing over 2 MB of other
//! memory (more than this machine's 1 MB L2), as a worker's request does after the kernel's
//! network path and nginx have run: the time the engine spends waiting on memory shows there
//! and not in the loop above, which keeps its working set cached. For where it waits, with a
//! simulated cache (misses per transaction = `DLmr` / iterations):
//!
//! ```text
//! valgrind --tool=callgrind --cache-sim=yes --LL=1048576,8,64 --collect-atstart=no \
//!     --toggle-collect='crs_profile::counted_cold' --toggle-collect='crs_profile::evict' \
//!     target/release/examples/crs_profile benign 100 cold
//! ```

use std::sync::Arc;

use honeytrap_seclang::RuleSet;

#[path = "../benches/workload/mod.rs"]
mod workload;
use workload::{
    browse, browser_requests, load_with, one, one_logged, with_response, ATTACK, BENIGN,
};

/// What one transaction goes through.
#[derive(Clone, Copy, PartialEq)]
enum Steps {
    Request,
    Response,
    Logged,
}

fn run(rs: &Arc<RuleSet>, uri: &[u8], steps: Steps) -> bool {
    match steps {
        Steps::Request => one(rs, uri),
        Steps::Response => with_response(rs, uri),
        Steps::Logged => one_logged(rs, uri),
    }
}

/// The only function callgrind counts (`--toggle-collect`).
#[inline(never)]
fn counted(rs: &Arc<RuleSet>, uri: &[u8], n: usize, steps: Steps) {
    for _ in 0..n {
        let uri = std::hint::black_box(uri);
        std::hint::black_box(run(rs, uri, steps));
    }
}

/// `browse` over the browsers' 120 GETs `n` times, for `browsers` (instructions per request
/// = collected total / 120 / n).
#[inline(never)]
fn counted_browsing(
    rs: &Arc<RuleSet>,
    requests: &[(String, Vec<(&'static str, String)>)],
    n: usize,
) {
    for _ in 0..n {
        std::hint::black_box(browse(rs, std::hint::black_box(requests)));
    }
}

/// Bytes written over before each cold transaction.
const EVICT_BYTES: usize = 2 << 20;

/// Writes one byte per cache line of `buf`: the lines it held before are gone from L1 and L2.
#[inline(never)]
fn evict(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(64) {
        buf[i] = buf[i].wrapping_add(1);
    }
    std::hint::black_box(buf);
}

/// The transaction `counted` runs, after each eviction; returns the time spent evicting.
#[inline(never)]
fn counted_cold(rs: &Arc<RuleSet>, uri: &[u8], n: usize, steps: Steps) -> std::time::Duration {
    let mut buf = vec![0u8; EVICT_BYTES];
    let mut evicting = std::time::Duration::ZERO;
    for _ in 0..n {
        let t = std::time::Instant::now();
        evict(&mut buf);
        evicting += t.elapsed();
        counted(rs, uri, 1, steps);
    }
    evicting
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let without = match args.iter().position(|a| a == "--without") {
        Some(at) => {
            let ids = args.get(at + 1).cloned().unwrap_or_default();
            args.truncate(at);
            format!("SecRuleRemoveById {ids}\n")
        }
        None => String::new(),
    };
    let mut args = args.into_iter();
    let which = args.next().unwrap_or_else(|| "benign".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let cold = args.next().is_some_and(|a| a == "cold");
    let uri = if which.starts_with("attack") {
        ATTACK
    } else {
        BENIGN
    };
    let steps = match which.as_str() {
        "response" => Steps::Response,
        w if w.ends_with("-logged") => Steps::Logged,
        _ => Steps::Request,
    };
    let Some(rs) = load_with(&without) else {
        return;
    };
    if which == "browsers" {
        let requests = browser_requests();
        // Uncounted first, as below.
        let blocked = browse(&rs, &requests);
        let t = std::time::Instant::now();
        counted_browsing(&rs, &requests, n);
        let per_request = t.elapsed().as_secs_f64() * 1e6 / (n * requests.len()) as f64;
        println!(
            "browsers: {} requests, {blocked} blocked, {per_request:.2} µs/request over {n} rounds",
            requests.len()
        );
        return;
    }
    // One uncounted run first: it builds the engines its operators need (on first search)
    // and fills their lazy caches.
    let first = std::time::Instant::now();
    let blocked = run(&rs, uri, steps);
    let first = first.elapsed();
    let t = std::time::Instant::now();
    counted(&rs, uri, n, steps);
    let el = t.elapsed();
    let per_tx = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{which}: blocked={blocked} {:.2} µs/tx over {n} (the first, building engines: {:.2} ms)",
        per_tx(el),
        first.as_secs_f64() * 1e3
    );
    if cold {
        let t = std::time::Instant::now();
        let evicting = counted_cold(&rs, uri, n, steps);
        println!(
            "{which}, caches evicted before each: {:.2} µs/tx",
            per_tx(t.elapsed() - evicting)
        );
    }
}
