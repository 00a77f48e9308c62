//! Memory of a worker whose event queue is full because its shipper is stuck: the shipper is
//! blocked in a request to an Elasticsearch that accepts the connection but never answers
//! (until the 60 s timeout), while requests keep pushing events until the queue refuses them.
//!
//! That is the case where the queue fills. An Elasticsearch that refuses connections does not
//! fill it: the sink fails at once and the shipper moves events to the spool, on disk in the
//! module, so the queue keeps draining.
//!
//! Each case runs in a fresh child process (this program, re-run with `--case`), so that one
//! case's freed memory cannot hide the next one's growth. RSS is read from /proc:
//! * before: the process with the fake server running, before the queue exists;
//! * stuck: queue allocated (crossbeam allocates and initialises every slot up front),
//!   shipper started and blocked holding the events it had already taken;
//! * full: after pushing until the queue is full.
//!
//! `cargo run --release -p honeytrap-core --example bench_queue_memory`

mod support;

use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use honeytrap_core::event::{Event, Observer};
use honeytrap_core::queue::EventQueue;
use honeytrap_core::shipper::{LogFn, Shipper, ShipperSettings};
use honeytrap_core::sink::elasticsearch::{ElasticsearchSettings, ElasticsearchSink};

use support::events::{decoy_event, Shape};
use support::lean_es::{LeanEs, Mode};

const CAPACITIES: [usize; 2] = [4096, 65536];
const SHAPES: [Shape; 2] = [Shape::Typical, Shape::Large];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--case") {
        let capacity = args[1].parse().expect("capacity");
        let shape = Shape::parse(&args[2]).expect("shape");
        child(capacity, shape);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut rows = Vec::new();
    for capacity in CAPACITIES {
        for shape in SHAPES {
            let output = Command::new(&exe)
                .args(["--case", &capacity.to_string(), shape.arg()])
                .output()
                .expect("run a case");
            assert!(
                output.status.success(),
                "case {capacity} {shape:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let line = String::from_utf8_lossy(&output.stdout);
            let f: Vec<u64> = line
                .split_whitespace()
                .map(|v| v.parse().expect("a number"))
                .collect();
            let [json, slot, in_flight, before, stuck, full, added] = f[..] else {
                panic!("unexpected case output {line:?}");
            };
            let growth = full - before;
            rows.push(vec![
                support::thousands(capacity as u64),
                shape.name().to_owned(),
                support::thousands(json),
                support::mib(before),
                support::mib(full),
                format!("**{}**", support::mib(growth)),
                support::thousands(growth / capacity as u64),
                support::thousands(slot + (full - stuck) / added.max(1)),
                support::thousands(in_flight),
            ]);
        }
    }
    println!(
        "Memory with a full queue: shipper stuck on an Elasticsearch that never answers \
         (event struct {} bytes)",
        std::mem::size_of::<Event>()
    );
    print!(
        "{}",
        support::table(
            &[
                "queue capacity",
                "event shape",
                "JSON bytes/doc",
                "RSS before (MB)",
                "RSS full (MB)",
                "growth (MB)",
                "growth / capacity (B)",
                "per queued event (B)",
                "events held by the stuck shipper",
            ],
            &rows
        )
    );
    println!(
        "per queued event = queue slot (struct + stamp) + its heap (strings), from the \
         growth between stuck and full; growth includes the slots, the stuck batch and the thread"
    );
}

/// One case; prints `json slot in_flight rss_before rss_stuck rss_full added`.
fn child(capacity: usize, shape: Shape) {
    let es = LeanEs::start("127.0.0.1:0").expect("start the lean ES");
    es.set_mode(Mode::Hang).expect("hang mode");
    let observer = Arc::new(Observer::new("bench-sensor"));
    let json = (0..64)
        .map(|i| decoy_event(&observer, i, shape).to_record().json.len())
        .sum::<usize>()
        / 64;
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        decoy_event(&observer, n, shape)
    };

    let before = support::rss_bytes();
    let queue = Arc::new(EventQueue::new(capacity));
    let url = es.url();
    let settings = ElasticsearchSettings::parse(&[&url, "timeout=60s"]).expect("settings");
    let sink = ElasticsearchSink::new(settings).expect("ES sink");
    let log: LogFn = Box::new(|_, line: &str| eprintln!("{line}"));
    let handle = Shipper::spawn(ShipperSettings::new(
        queue.clone(),
        vec![Box::new(sink)],
        log,
    ))
    .expect("spawn the shipper");

    // More than the shipper takes at once; it blocks in its first request (the index template
    // check or a `_bulk`) holding what it took.
    for _ in 0..600 {
        assert!(queue.try_push(next()));
    }
    let taken = |q: &EventQueue| {
        let s = q.stats();
        s.queued - s.len as u64
    };
    let until = Instant::now() + Duration::from_secs(10);
    let mut last = (taken(&queue), Instant::now());
    loop {
        thread::sleep(Duration::from_millis(20));
        let now = taken(&queue);
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > 0 && last.1.elapsed() > Duration::from_millis(300) {
            break;
        }
        assert!(
            Instant::now() < until,
            "the shipper did not get stuck: it took {now} events, {:?}",
            handle.stats()
        );
    }
    let in_flight = last.0;
    let stuck = support::rss_bytes();

    let mut added = 0u64;
    while queue.try_push(next()) {
        added += 1;
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(taken(&queue), in_flight, "the shipper moved on");
    assert_eq!(queue.len(), capacity, "the queue is full");
    let full = support::rss_bytes();
    // crossbeam's slot: a stamp and the value, laid out like this pair.
    let slot = std::mem::size_of::<(std::sync::atomic::AtomicUsize, Event)>();
    println!("{json} {slot} {in_flight} {before} {stuck} {full} {added}");
    // Not waiting for the 60 s timeout: the process ends here.
    drop(handle);
    std::process::exit(0);
}
