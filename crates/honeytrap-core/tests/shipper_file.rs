//! The pipeline end to end: producers push events, the shipper thread writes them to a file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use honeytrap_core::event::{Event, Kind, Limits, Observer};
use honeytrap_core::queue::EventQueue;
use honeytrap_core::shipper::{Level, LogFn, Shipper, ShipperHandle, ShipperSettings};
use honeytrap_core::sink::file::FileSink;

fn event(observer: &Arc<Observer>, n: usize) -> Event {
    let mut e = Event::new(Kind::Decoy, observer.clone());
    e.source = Some(([203, 0, 113, (n % 250) as u8], 40_000 + (n % 1000) as u16).into());
    e.set_method(b"GET");
    e.set_url(format!("/wp-login.php?n={n}").as_bytes());
    e.add_header(b"User-Agent", b"curl/8.5", &Limits::default());
    e
}

fn start(queue: &Arc<EventQueue>, path: &Path) -> (ShipperHandle, Arc<Mutex<Vec<String>>>) {
    let sink = FileSink::open(path).unwrap();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = errors.clone();
    let log: LogFn = Box::new(move |level, line: &str| {
        if level == Level::Error {
            seen.lock().unwrap().push(line.to_owned());
        }
    });
    let mut settings = ShipperSettings::new(queue.clone(), vec![Box::new(sink)], log);
    settings.tick_interval = Duration::from_millis(20);
    (Shipper::spawn(settings).unwrap(), errors)
}

/// event.id -> how many lines carry it; every line must be a whole JSON document.
fn ids_in(path: &Path) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut ids = HashMap::new();
    for line in text.lines() {
        let doc: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:.80}"));
        let id = doc["event"]["id"].as_str().expect("event.id").to_owned();
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ten_thousand_events_from_four_threads_land_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    // Smaller than the total, so producers do meet a full queue while the shipper drains.
    let queue = Arc::new(EventQueue::new(1024));
    let (handle, errors) = start(&queue, &path);
    let observer = Arc::new(Observer::new("it"));

    let producers: Vec<_> = (0..4)
        .map(|p| {
            let (queue, observer) = (queue.clone(), observer.clone());
            thread::spawn(move || {
                let mut ids = Vec::with_capacity(2500);
                let mut refused = 0u64;
                for n in 0..2500 {
                    let e = event(&observer, p * 2500 + n);
                    ids.push(e.id.to_string());
                    // The request path would drop a refused event; here we count it and try
                    // again with a copy so that the file must hold all 10,000.
                    while !queue.try_push(e.clone()) {
                        refused += 1;
                        thread::yield_now();
                    }
                }
                (ids, refused)
            })
        })
        .collect();
    let mut pushed = Vec::new();
    let mut refused = 0;
    for producer in producers {
        let (ids, r) = producer.join().unwrap();
        pushed.extend(ids);
        refused += r;
    }

    let stats = handle.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(stats.queue.queued, 10_000);
    assert_eq!(
        stats.queue.dropped, refused,
        "every refused push is counted, and only those"
    );
    assert_eq!(stats.sinks[0].counters.shipped, 10_000);
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );

    let ids = ids_in(&path);
    assert_eq!(ids.len(), 10_000);
    for id in &pushed {
        assert_eq!(ids.get(id), Some(&1), "event {id}");
    }
}

#[test]
fn a_full_queue_drops_exactly_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let queue = Arc::new(EventQueue::new(8));
    let observer = Arc::new(Observer::new("it"));
    // No shipper yet: nothing drains.
    let mut accepted = Vec::new();
    for n in 0..20 {
        let e = event(&observer, n);
        let id = e.id.to_string();
        if queue.try_push(e) {
            accepted.push(id);
        }
    }
    assert_eq!(accepted.len(), 8);
    let stats = queue.stats();
    assert_eq!((stats.queued, stats.dropped, stats.len), (8, 12, 8));

    // Once a shipper runs, exactly the accepted ones reach the file.
    let (handle, _) = start(&queue, &path);
    let stats = handle.shutdown(Duration::from_secs(2)).unwrap();
    assert_eq!((stats.queue.queued, stats.queue.dropped), (8, 12));
    let ids = ids_in(&path);
    assert_eq!(ids.len(), 8);
    assert!(accepted.iter().all(|id| ids.get(id) == Some(&1)));
}

#[test]
fn reopen_after_rename_starts_a_new_file_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let rotated = dir.path().join("events.ndjson.1");
    let queue = Arc::new(EventQueue::new(4096));
    let (handle, errors) = start(&queue, &path);
    let observer = Arc::new(Observer::new("it"));
    let push = |range: std::ops::Range<usize>| -> Vec<String> {
        range
            .map(|n| {
                let e = event(&observer, n);
                let id = e.id.to_string();
                assert!(queue.try_push(e));
                id
            })
            .collect()
    };

    let before = push(0..300);
    eventually("some events written", || {
        std::fs::metadata(&path)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    });
    // Rotate while events may still be on their way: those go to the renamed file.
    std::fs::rename(&path, &rotated).unwrap();
    let during = push(300..600);
    handle.request_reopen();
    eventually("reopen carried out", || handle.stats().reopens == 1);
    let after = push(600..900);
    handle.shutdown(Duration::from_secs(2)).unwrap();
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );

    let old = ids_in(&rotated);
    let new = ids_in(&path);
    for id in before.iter().chain(&during).chain(&after) {
        let count = old.get(id).unwrap_or(&0) + new.get(id).unwrap_or(&0);
        assert_eq!(count, 1, "event {id} written {count} times");
    }
    assert_eq!(old.len() + new.len(), 900);
    assert!(
        after.iter().all(|id| new.contains_key(id)),
        "events after the reopen went to the old file"
    );
    assert!(!old.is_empty(), "nothing was written before the rename");
}
