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

use std::sync::Arc;

use honeytrap_seclang::RuleSet;

#[path = "../benches/workload/mod.rs"]
mod workload;
use workload::{load, one, with_response, ATTACK, BENIGN};

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
    let Some(rs) = load() else { return };
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
