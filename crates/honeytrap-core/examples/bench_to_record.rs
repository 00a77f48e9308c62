//! The shipper's per-event serialization alone: `Event::to_record` on bench/crs's attack
//! event (see `support::events::crs_attack_event`), N times, with nothing else on the clock.
//!
//! Made for instruction counts, which a busy machine does not disturb: run it under callgrind
//! at two N and divide the difference by the difference of N (start-up cancels out):
//!
//! ```text
//! cargo build --release -p honeytrap-core --example bench_to_record
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/bench_to_record --events 1000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/bench_to_record --events 11000
//! ```
//!
//! It prints a digest of every document written: the same digest before and after a change
//! means the documents are byte-identical (ids and times are fixed per event number).

mod support;

use std::hash::Hasher;
use std::sync::Arc;
use std::time::Instant;

use honeytrap_core::event::Observer;

use support::events::crs_attack_event;

fn main() {
    let mut events: u64 = 100_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|n| n.parse().ok())) {
            ("--events", Some(n)) => events = n,
            _ => {
                eprintln!("usage: bench_to_record [--events N]");
                std::process::exit(2);
            }
        }
    }
    let observer = Arc::new(Observer::new("bench-sensor"));
    // A handful of distinct events, built once: building is the request path's cost, not this.
    let built: Vec<_> = (0..16).map(|n| crs_attack_event(&observer, n)).collect();
    // The digest is taken outside the counted loop: hashing would cost as much as writing.
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    for record in built.iter().map(|e| e.to_record()) {
        digest.write(record.id.as_bytes());
        digest.write(record.json.as_bytes());
    }
    let mut bytes = 0u64;
    let started = Instant::now();
    for n in 0..events {
        bytes += built[(n % 16) as usize].to_record().json.len() as u64;
    }
    let elapsed = started.elapsed();
    println!(
        "{events} records, {} bytes each on average, digest {:016x}, {:.0} ns per record (wall clock, noisy on a shared machine)",
        bytes / events.max(1),
        digest.finish(),
        elapsed.as_nanos() as f64 / events.max(1) as f64
    );
}
