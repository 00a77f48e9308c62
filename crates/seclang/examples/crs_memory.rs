//! Memory the full CRS v4.28.0 (the bench's workload) costs once built, and what running
//! transactions adds, as the kernel counts it (VmRSS, VmHWM):
//!
//! ```text
//! cargo build --release -p honeytrap-seclang --example crs_memory
//! target/release/examples/crs_memory benign 1000      # or attack, response, varied
//! valgrind --tool=dhat target/release/examples/crs_memory benign 50
//! ```
//!
//! `varied` sends GETs whose query value differs every time (attack fragments and a
//! counter), as real traffic does: the regexes' lazy DFAs meet new inputs and grow their
//! caches, which repeating one request does not show.
//!
//! It exits without dropping the rule set, so under `valgrind --tool=dhat` the bytes live
//! at exit ("t-end") are what the built rule set and the transactions left behind, each
//! with its allocation stack; "t-gmax" is the heap's high-water mark, building included.

#[path = "../benches/workload/mod.rs"]
mod workload;
use workload::{load, one, with_response, ATTACK, BENIGN};

/// VmRSS and VmHWM of this process, in kB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The i-th of the `varied` requests: two attack fragments and `i`, percent-encoded.
fn varied(i: usize) -> Vec<u8> {
    const FRAGMENTS: [&str; 10] = [
        "' or 1=1-- ",
        "<script>alert(",
        "../../etc/passwd",
        ";cat /etc/shadow",
        " union select ",
        "${jndi:ldap://",
        "<?php system(",
        "eval(base64_decode(",
        "\" onerror=",
        "/bin/bash -c ",
    ];
    let value = format!(
        "{}{}{i}",
        FRAGMENTS[i % FRAGMENTS.len()],
        FRAGMENTS[(i / FRAGMENTS.len()) % FRAGMENTS.len()]
    );
    let mut uri = b"/products/list.php?category=books&q=".to_vec();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() {
            uri.push(b);
        } else {
            uri.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    uri
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "benign".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let uri = if which == "attack" { ATTACK } else { BENIGN };
    let Some(rs) = load() else { return };
    let (built, built_peak) = rss();
    println!("rule set built: VmRSS {built} kB, VmHWM {built_peak} kB");
    for i in 0..n {
        std::hint::black_box(match which.as_str() {
            "response" => with_response(&rs, uri),
            "varied" => one(&rs, &varied(i)),
            _ => one(&rs, uri),
        });
    }
    let (after, peak) = rss();
    println!("after {which} x{n}: VmRSS {after} kB, VmHWM {peak} kB");
    // Not dropped: what is live at exit is what a heap profiler should attribute.
    std::process::exit(0);
}
