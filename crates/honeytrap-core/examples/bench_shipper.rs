//! Shipper throughput: how many events per second one worker's shipper thread delivers end to
//! end (every document written, or acknowledged by Elasticsearch), with the module's settings:
//! queue of 4096, shipper batches of 256, a 200 ms tick, `_bulk` batches of 500.
//!
//! Events are built before the clock starts (on the request path that is the worker's job,
//! not the shipper's), then pushed from one producer thread as fast as the queue accepts them:
//! when it is full the producer waits for room instead of dropping, so that all N arrive.
//! The clock stops when every sink counts N shipped; the counts on the receiving side are
//! checked too. Elasticsearch is played by `support::lean_es`, a real HTTP server on loopback
//! answering real `_bulk` responses, in this process (it shares the machine's CPUs).
//!
//! `cargo run --release -p honeytrap-core --example bench_shipper [-- --events N --repeat N]`

mod support;

use std::fs;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use honeytrap_core::event::{Event, Observer};
use honeytrap_core::queue::EventQueue;
use honeytrap_core::shipper::{Level, LogFn, Shipper, ShipperSettings};
use honeytrap_core::sink::elasticsearch::{ElasticsearchSettings, ElasticsearchSink};
use honeytrap_core::sink::file::FileSink;
use honeytrap_core::sink::Sink;

use support::events::{decoy_event, Shape};
use support::lean_es::LeanEs;

const QUEUE: usize = 4096;
/// Longest one case may take before it is reported as not finished.
const CASE_LIMIT: Duration = Duration::from_secs(60);

struct Case {
    label: &'static str,
    file: bool,
    /// `_bulk` batch size when Elasticsearch is a sink.
    es_batch: Option<usize>,
    shape: Shape,
    /// Share of `--events` this case ships (large events are ten times fewer).
    divisor: u64,
}

struct Outcome {
    seconds: f64,
    events: u64,
    doc_bytes: u64,
    bulk_requests: Option<u64>,
    producer_waits: u64,
    shipper_cpu: Option<Duration>,
    verified: Result<(), String>,
}

fn main() {
    let mut events: u64 = 250_000;
    let mut repeat: usize = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|n| n.parse().ok());
        match arg.as_str() {
            "--events" => events = value().expect("--events N"),
            "--repeat" => repeat = value().expect("--repeat N") as usize,
            other => panic!("unknown argument {other:?} (expected --events N, --repeat N)"),
        }
    }
    let repeat = repeat.max(1);
    let cases = [
        Case {
            label: "file (NDJSON) alone",
            file: true,
            es_batch: None,
            shape: Shape::Typical,
            divisor: 1,
        },
        Case {
            label: "Elasticsearch alone, batch=500 (default)",
            file: false,
            es_batch: Some(500),
            shape: Shape::Typical,
            divisor: 1,
        },
        Case {
            label: "Elasticsearch alone, batch=2000",
            file: false,
            es_batch: Some(2000),
            shape: Shape::Typical,
            divisor: 1,
        },
        Case {
            label: "file + Elasticsearch, batch=500 (module default)",
            file: true,
            es_batch: Some(500),
            shape: Shape::Typical,
            divisor: 1,
        },
        Case {
            label: "file + Elasticsearch, batch=500, large events",
            file: true,
            es_batch: Some(500),
            shape: Shape::Large,
            divisor: 10,
        },
    ];

    let mut rows = Vec::new();
    for case in &cases {
        // A multiple of the bulk batch: no tail waits for the 1 s flush timer.
        let batch = case.es_batch.unwrap_or(500) as u64;
        let n = (events / case.divisor).div_ceil(batch) * batch;
        // Runs of a few seconds on a shared machine vary: report the median run and the range.
        let mut outcomes: Vec<Outcome> = (0..repeat).map(|_| run(case, n)).collect();
        outcomes.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let rate_of = |o: &Outcome| o.events as f64 / o.seconds;
        let range = format!(
            "{}–{}",
            support::thousands(rate_of(&outcomes[repeat - 1]) as u64),
            support::thousands(rate_of(&outcomes[0]) as u64)
        );
        let failed = outcomes.iter().find_map(|o| o.verified.clone().err());
        let mut outcome = outcomes.swap_remove(repeat / 2);
        if let Some(why) = failed {
            outcome.verified = Err(why);
        }
        let rate = rate_of(&outcome);
        rows.push(vec![
            case.label.to_owned(),
            case.shape.name().to_owned(),
            support::thousands(outcome.events),
            format!("{}", outcome.doc_bytes / outcome.events.max(1)),
            format!("{:.2}", outcome.seconds),
            format!("**{}**", support::thousands(rate as u64)),
            range,
            format!(
                "{:.1}",
                rate * (outcome.doc_bytes / outcome.events.max(1)) as f64 / 1e6
            ),
            outcome
                .shipper_cpu
                .map(|cpu| format!("{:.1}", cpu.as_secs_f64() * 1e6 / outcome.events as f64))
                .unwrap_or_else(|| "?".into()),
            outcome
                .bulk_requests
                .map(support::thousands)
                .unwrap_or_else(|| "-".into()),
            support::thousands(outcome.producer_waits),
            match &outcome.verified {
                Ok(()) => "yes".to_owned(),
                Err(why) => format!("NO: {why}"),
            },
        ]);
    }
    println!(
        "Shipper throughput: one shipper thread, queue {QUEUE}, shipper batch 256, tick 200 ms; \
         median of {repeat} runs"
    );
    print!(
        "{}",
        support::table(
            &[
                "sinks",
                "event shape",
                "n",
                "bytes/doc",
                "s",
                "events/s (median)",
                "range",
                "MB/s",
                "shipper CPU µs/event",
                "_bulk requests",
                "producer waits (queue full)",
                "all delivered",
            ],
            &rows
        )
    );
}

fn run(case: &Case, n: u64) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let file_path = dir.path().join("events.ndjson");
    let es = case
        .es_batch
        .map(|_| LeanEs::start("127.0.0.1:0").expect("start the lean ES"));

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if case.file {
        sinks.push(Box::new(
            FileSink::open(&file_path).expect("open events file"),
        ));
    }
    if let (Some(es), Some(batch)) = (&es, case.es_batch) {
        let url = es.url();
        let batch = format!("batch={batch}");
        let settings =
            ElasticsearchSettings::parse(&[&url, &batch]).expect("Elasticsearch settings");
        sinks.push(Box::new(ElasticsearchSink::new(settings).expect("ES sink")));
    }
    let sink_count = sinks.len();

    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = errors.clone();
    let log: LogFn = Box::new(move |level, line: &str| {
        if matches!(level, Level::Error | Level::Warn) {
            seen.lock().unwrap().push(line.to_owned());
        }
    });

    let observer = Arc::new(Observer::new("bench-sensor"));
    let events: Vec<Event> = (0..n)
        .map(|i| decoy_event(&observer, i, case.shape))
        .collect();

    let queue = Arc::new(EventQueue::new(QUEUE));
    let settings = ShipperSettings::new(queue.clone(), sinks, log);
    let handle = Shipper::spawn(settings).expect("spawn the shipper");
    // The thread names itself once running; its CPU time is read by that name.
    let mut cpu_before = shipper_cpu();
    let named_by = Instant::now() + Duration::from_secs(1);
    while cpu_before.is_none() && Instant::now() < named_by {
        thread::sleep(Duration::from_millis(1));
        cpu_before = shipper_cpu();
    }

    let start = Instant::now();
    let mut producer_waits = 0;
    for event in events {
        // One producer: once there is room, nobody else can take it.
        while queue.len() >= queue.capacity() {
            producer_waits += 1;
            thread::sleep(Duration::from_micros(50));
        }
        assert!(queue.try_push(event), "room was checked");
    }
    let mut finished = false;
    while start.elapsed() < CASE_LIMIT {
        let stats = handle.stats();
        if stats.sinks.iter().all(|s| s.counters.shipped >= n) {
            finished = true;
            break;
        }
        thread::sleep(Duration::from_micros(500));
    }
    let seconds = start.elapsed().as_secs_f64();
    let shipper_cpu = match (cpu_before, shipper_cpu()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };

    let stats = handle
        .shutdown(Duration::from_secs(5))
        .map_err(|e| e.to_string());
    let mut verified = Ok(());
    let mut problem = |why: String| {
        if verified.is_ok() {
            verified = Err(why);
        }
    };
    if !finished {
        problem(format!("not all shipped within {}s", CASE_LIMIT.as_secs()));
    }
    match &stats {
        Ok(stats) => {
            if stats.sinks.len() != sink_count {
                problem("a sink is missing".into());
            }
            for sink in &stats.sinks {
                let c = &sink.counters;
                if sink.disabled || c.shipped != n || c.dead_lettered + c.spooled + c.retried > 0 {
                    problem(format!("{}: {c:?}", sink.name));
                }
            }
        }
        Err(e) => problem(e.clone()),
    }
    let mut doc_bytes = 0;
    if case.file {
        let text = fs::read(&file_path).expect("read events file");
        let lines = text.iter().filter(|&&b| b == b'\n').count() as u64;
        if lines != n {
            problem(format!("file has {lines} lines"));
        }
        doc_bytes = text.len() as u64 - lines;
    }
    let mut bulk_requests = None;
    if let Some(es) = &es {
        let counts = es.counts();
        if counts.docs != n || counts.bad_requests > 0 {
            problem(format!("fake ES acknowledged {counts:?}"));
        }
        bulk_requests = Some(counts.bulk_requests);
        if doc_bytes == 0 {
            // Body bytes less the action lines (`{"create":{"_id":"<32 hex>"}}` + 2 newlines).
            doc_bytes = counts.body_bytes.saturating_sub(n * (17 + 32 + 4 + 2));
        }
    }
    if let Some(first) = errors.lock().unwrap().first() {
        problem(format!("logged: {first}"));
    }
    Outcome {
        seconds,
        events: n,
        doc_bytes,
        bulk_requests,
        producer_waits,
        shipper_cpu,
        verified,
    }
}

/// CPU time the `honeytrap-ship` thread has used (`/proc/self/task/*/schedstat`, first field,
/// nanoseconds on a CPU); `None` if that thread is not there.
fn shipper_cpu() -> Option<Duration> {
    for task in fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "honeytrap-ship" {
            let schedstat = fs::read_to_string(task.path().join("schedstat")).ok()?;
            let ns = schedstat.split_whitespace().next()?.parse().ok()?;
            return Some(Duration::from_nanos(ns));
        }
    }
    None
}
