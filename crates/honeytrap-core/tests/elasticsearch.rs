//! The Elasticsearch sink against a contract fake of Elasticsearch (tests/support/fake_es.rs):
//! happy path, partial failures, whole-request failures with backoff, timeouts, an outage with
//! spooling and exactly-once replay.

#[path = "support/fake_es.rs"]
mod fake_es;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use fake_es::{FakeEs, Mode};
use honeytrap_core::sink::elasticsearch::{ElasticsearchSettings, ElasticsearchSink};
use honeytrap_core::sink::{Record, Sink};
use serde_json::Value;

const INDEX: &str = "logs-honeytrap-test";
/// An "encoded" API key as Elasticsearch hands it out (base64 of id:key).
const API_KEY: &str = "dGVzdC1pZDp0ZXN0LWtleS1TRUNSRVQ=";

struct Env {
    fake: FakeEs,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let fake = FakeEs::start();
        fake.expect_auth(Some(&format!("ApiKey {API_KEY}")));
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("api.key"), format!("{API_KEY}\n")).unwrap();
        Env { fake, dir }
    }

    fn dead_letter_path(&self) -> PathBuf {
        self.dir.path().join("dead.ndjson")
    }

    /// Settings for tests: small batches, short flush, timeouts and backoff. `extra` entries
    /// (`key=value`) replace the defaults with the same key; `key=` drops it.
    fn settings(&self, extra: &[&str]) -> ElasticsearchSettings {
        let mut args: Vec<(String, String)> = [
            ("index", INDEX.to_owned()),
            (
                "api_key_file",
                self.dir.path().join("api.key").display().to_string(),
            ),
            ("spool", self.dir.path().join("spool").display().to_string()),
            ("dead_letter", self.dead_letter_path().display().to_string()),
            ("batch", "10".into()),
            ("flush", "30ms".into()),
            ("timeout", "2s".into()),
            ("backoff", "20ms".into()),
            ("backoff_max", "200ms".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for e in extra {
            let (k, v) = e.split_once('=').unwrap();
            args.retain(|(key, _)| key != k);
            if !v.is_empty() {
                args.push((k.to_owned(), v.to_owned()));
            }
        }
        let mut strings = vec![self.fake.url()];
        strings.extend(args.iter().map(|(k, v)| format!("{k}={v}")));
        let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
        ElasticsearchSettings::parse(&refs).unwrap()
    }

    fn sink(&self, extra: &[&str]) -> ElasticsearchSink {
        ElasticsearchSink::new(self.settings(extra)).unwrap()
    }

    fn dead_letters(&self) -> Vec<Value> {
        match fs::read_to_string(self.dead_letter_path()) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn rec(i: usize) -> Record {
    let id = format!("ev-{i:05}");
    Record {
        json: format!(
            r#"{{"@timestamp":"2024-05-23T08:05:{:02}.853Z","event":{{"id":"{id}","kind":"alert"}},"source":{{"ip":"203.0.113.7"}},"n":{i}}}"#,
            i % 60
        ),
        id,
    }
}

fn recs(range: std::ops::Range<usize>) -> Vec<Record> {
    range.map(rec).collect()
}

fn ids(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

/// Ticks the sink (as the shipper does) until `done` or `within` has passed.
fn drive(
    sink: &mut ElasticsearchSink,
    within: Duration,
    mut done: impl FnMut(&ElasticsearchSink) -> bool,
) -> bool {
    let end = Instant::now() + within;
    loop {
        let _ = sink.tick(Instant::now());
        if done(sink) {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// How many `create` actions each id appeared in, over all bulk requests.
fn sends_per_id(fake: &FakeEs) -> HashMap<String, usize> {
    let mut sends = HashMap::new();
    for r in fake.bulk_requests() {
        for id in r.bulk_ids() {
            *sends.entry(id).or_insert(0) += 1;
        }
    }
    sends
}

#[track_caller]
fn assert_stored_exactly(fake: &FakeEs, expected: &[String]) {
    let stored: BTreeSet<String> = fake.docs().into_keys().collect();
    let expected_set: BTreeSet<String> = expected.iter().cloned().collect();
    let missing: Vec<_> = expected_set.difference(&stored).collect();
    let extra: Vec<_> = stored.difference(&expected_set).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    // The fake stores an id once and answers 409 after: arrival has no duplicates either.
    let arrival = fake.arrival_order();
    assert_eq!(arrival.len(), expected.len(), "an id was stored twice");
}

#[test]
fn happy_path_batches_by_size_and_time() {
    let env = Env::new();
    let mut sink = env.sink(&[]);
    let records = recs(0..25);

    sink.send(&records[..7]).unwrap();
    assert_eq!(
        env.fake.bulk_requests().len(),
        0,
        "waits for the batch to fill or age"
    );
    sink.send(&records[7..25]).unwrap();
    // 25 pending, batch=10: two full batches go at once, 5 wait for the flush interval.
    assert_eq!(env.fake.doc_count(), 20);
    assert_eq!(sink.pending_len(), 5);
    assert!(drive(&mut sink, Duration::from_secs(2), |s| s
        .pending_len()
        == 0));

    assert_stored_exactly(&env.fake, &ids(&records));
    assert_eq!(env.fake.arrival_order(), ids(&records), "order kept");
    let bulks = env.fake.bulk_requests();
    assert_eq!(bulks.len(), 3);
    for b in &bulks {
        assert_eq!(b.path, format!("/{INDEX}/_bulk"));
        assert_eq!(b.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(
            b.header("authorization"),
            Some(format!("ApiKey {API_KEY}").as_str())
        );
        assert!(b.body.ends_with(b"\n"));
    }
    // Documents arrive unchanged.
    let doc = &env.fake.docs()["ev-00003"];
    assert_eq!(doc, &serde_json::from_str::<Value>(&rec(3).json).unwrap());
    assert!(env.fake.doc_indices().values().all(|i| i == INDEX));

    let c = sink.counters().snapshot();
    assert_eq!(
        (c.shipped, c.spooled, c.dead_lettered, c.failed_requests),
        (25, 0, 0, 0)
    );
    assert!(env.dead_letters().is_empty());
    env.fake.assert_no_violations();
}

#[test]
fn template_is_installed_once_before_the_first_bulk() {
    let env = Env::new();
    let mut sink = env.sink(&[]);
    for _ in 0..5 {
        sink.tick(Instant::now()).unwrap();
    }
    sink.send(&recs(0..10)).unwrap();
    assert!(sink.template_installed());
    assert_eq!(env.fake.count_requests("GET", "/_index_template/"), 1);
    assert_eq!(env.fake.count_requests("PUT", "/_index_template/"), 1);
    let template = &env.fake.templates()[INDEX];
    assert_eq!(template["index_patterns"], serde_json::json!([INDEX]));
    assert_eq!(template["data_stream"], serde_json::json!({}));
    assert_eq!(
        template["template"]["mappings"]["properties"]["source"]["properties"]["ip"]["type"],
        "ip"
    );

    let requests = env.fake.requests();
    let put = requests.iter().position(|r| r.method == "PUT").unwrap();
    let first_bulk = requests.iter().position(|r| r.is_bulk()).unwrap();
    assert!(put < first_bulk);

    // A restarted worker finds it and leaves it alone.
    let mut again = env.sink(&[]);
    again.tick(Instant::now()).unwrap();
    assert!(again.template_installed());
    assert_eq!(env.fake.count_requests("GET", "/_index_template/"), 2);
    assert_eq!(env.fake.count_requests("PUT", "/_index_template/"), 1);

    // template=off: never asks.
    let mut off = env.sink(&["template=off"]);
    off.tick(Instant::now()).unwrap();
    assert_eq!(env.fake.count_requests("GET", "/_index_template/"), 2);
    env.fake.assert_no_violations();
}

#[test]
fn template_failure_does_not_hold_events_back() {
    let env = Env::new();
    env.fake.fail_templates(true);
    let mut sink = env.sink(&[]);
    let err = sink.send(&recs(0..10)).unwrap_err();
    assert!(err.to_string().contains("index template"), "{err}");
    assert_eq!(env.fake.doc_count(), 10, "events shipped anyway");
    assert!(!sink.template_installed());

    env.fake.fail_templates(false);
    assert!(drive(&mut sink, Duration::from_secs(2), |s| s
        .template_installed()));
    assert_eq!(env.fake.count_requests("PUT", "/_index_template/"), 1);
    env.fake.assert_no_violations();
}

#[test]
fn partial_failure_retries_429_items_and_dead_letters_400_items() {
    let env = Env::new();
    env.fake.set_mode(Mode::Partial {
        reject_every: 5,
        throttle_every: 3,
    });
    let mut sink = env.sink(&[]);
    let records = recs(0..30);
    let _ = sink.send(&records);
    assert!(drive(&mut sink, Duration::from_secs(3), |s| s
        .backlog_len()
        == 0
        && s.pending_len() == 0));
    // Every 5th id is rejected for good, every 3rd (else) throttled once.
    let rejected = env.fake.rejected_ids();
    let throttled = env.fake.throttled_ids();
    assert_eq!(rejected.len(), 6);
    assert_eq!(throttled.len(), 8);

    let expected: Vec<String> = ids(&records)
        .into_iter()
        .filter(|id| !rejected.contains(id))
        .collect();
    assert_stored_exactly(&env.fake, &expected);
    for id in &throttled {
        assert!(
            env.fake.docs().contains_key(id),
            "throttled {id} arrived on retry"
        );
    }

    let dead = env.dead_letters();
    let dead_ids: BTreeSet<String> = dead
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(dead_ids, rejected);
    for d in &dead {
        assert!(
            d["reason"]
                .as_str()
                .unwrap()
                .starts_with("400 mapper_parsing_exception"),
            "{d}"
        );
        assert_eq!(
            d["event"]["event"]["id"], d["id"],
            "the original event is kept"
        );
    }
    let c = sink.counters().snapshot();
    assert_eq!(c.shipped, 24);
    assert_eq!(c.dead_lettered, 6);
    assert!(c.retried >= throttled.len() as u64);
    env.fake.assert_no_violations();
}

#[test]
fn whole_429_backs_off_exponentially_then_delivers() {
    let env = Env::new();
    env.fake.set_mode(Mode::Status(429));
    let mut sink = env.sink(&["backoff=40ms", "backoff_max=2s", "template=off"]);
    let records = recs(0..10);
    let err = sink.send(&records).unwrap_err();
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(sink.backlog_len(), 10);

    // Keep failing for a while and look at the spacing of the attempts.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(700) {
        let _ = sink.tick(Instant::now());
        thread::sleep(Duration::from_millis(2));
    }
    let at: Vec<Instant> = env.fake.bulk_requests().iter().map(|r| r.at).collect();
    assert!(at.len() >= 3, "{} attempts", at.len());
    assert!(
        at.len() <= 6,
        "{} attempts in 700 ms: no backoff?",
        at.len()
    );
    for (i, pair) in at.windows(2).enumerate() {
        // Equal jitter: the n-th wait is at least half of base * 2^(n-1).
        let floor = Duration::from_millis(40 << i) / 2;
        assert!(
            pair[1] - pair[0] >= floor,
            "wait {i}: {:?} < {floor:?}",
            pair[1] - pair[0]
        );
    }

    env.fake.set_mode(Mode::Ok);
    assert!(drive(&mut sink, Duration::from_secs(3), |s| s
        .backlog_len()
        == 0));
    assert_stored_exactly(&env.fake, &ids(&records));
    let c = sink.counters().snapshot();
    assert_eq!(c.shipped, 10);
    assert_eq!(c.spooled, 10);
    assert!(c.failed_requests >= 3);
    env.fake.assert_no_violations();
}

#[test]
fn whole_500_is_retried_and_new_records_queue_behind() {
    let env = Env::new();
    env.fake.set_mode(Mode::Status(500));
    let mut sink = env.sink(&["template=off"]);
    let _ = sink.send(&recs(0..10));
    // Newer records wait behind the failed batch.
    let _ = sink.send(&recs(10..20));
    assert_eq!(sink.backlog_len(), 20);

    env.fake.set_mode(Mode::Ok);
    let _ = sink.send(&recs(20..30));
    assert!(drive(&mut sink, Duration::from_secs(3), |s| s
        .backlog_len()
        == 0
        && s.pending_len() == 0));
    assert_stored_exactly(&env.fake, &ids(&recs(0..30)));
    assert_eq!(
        env.fake.arrival_order(),
        ids(&recs(0..30)),
        "replayed oldest first, before newer"
    );
    env.fake.assert_no_violations();
}

#[test]
fn slow_server_within_the_timeout_is_fine() {
    let env = Env::new();
    env.fake.set_mode(Mode::Slow(Duration::from_millis(150)));
    let mut sink = env.sink(&["timeout=2s", "template=off"]);
    sink.send(&recs(0..10)).unwrap();
    assert_eq!(sink.counters().snapshot().shipped, 10);
    assert_eq!(sink.backlog_len(), 0);
    env.fake.assert_no_violations();
}

#[test]
fn slow_server_past_the_timeout_is_replayed_without_duplicates() {
    let env = Env::new();
    env.fake.set_mode(Mode::Slow(Duration::from_millis(800)));
    let mut sink = env.sink(&["timeout=150ms", "template=off"]);
    let started = Instant::now();
    let err = sink.send(&recs(0..10)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "the timeout bounds the call"
    );
    assert!(
        err.to_string().to_lowercase().contains("timeout") || err.to_string().contains("timed out"),
        "{err}"
    );
    assert_eq!(sink.backlog_len(), 10);
    // The server indexed them anyway, as a real one may.
    assert_eq!(env.fake.doc_count(), 10);

    env.fake.set_mode(Mode::Ok);
    assert!(drive(&mut sink, Duration::from_secs(3), |s| s
        .backlog_len()
        == 0));
    assert_eq!(
        env.fake.conflicts(),
        10,
        "replayed creates met the stored documents"
    );
    assert_stored_exactly(&env.fake, &ids(&recs(0..10)));
    let c = sink.counters().snapshot();
    assert_eq!(c.shipped, 10, "409 counts as delivered, once");
    assert_eq!(c.dead_lettered, 0);
    env.fake.assert_no_violations();
}

#[test]
fn outage_spools_in_order_and_every_record_arrives_exactly_once() {
    let env = Env::new();
    let mut sink = env.sink(&[]);
    let records = recs(0..137);

    sink.send(&records[..30]).unwrap();
    assert_eq!(env.fake.doc_count(), 30);

    env.fake.set_mode(Mode::Down);
    let mut fed = 30;
    for chunk in [7, 13, 20, 4, 16] {
        let _ = sink.send(&records[fed..fed + chunk]);
        let _ = sink.tick(Instant::now());
        fed += chunk;
        thread::sleep(Duration::from_millis(15));
    }
    assert!(drive(&mut sink, Duration::from_secs(1), |s| s
        .pending_len()
        == 0));
    assert_eq!(sink.backlog_len() as usize, fed - 30);
    assert!(sink.counters().snapshot().failed_requests >= 1);

    // The worker restarts during the outage: the spool carries over.
    drop(sink);
    let mut sink = env.sink(&[]);
    assert_eq!(sink.backlog_len() as usize, fed - 30);
    let _ = sink.send(&records[fed..fed + 20]);
    fed += 20;

    env.fake.set_mode(Mode::Ok);
    let _ = sink.send(&records[fed..]);
    assert!(drive(&mut sink, Duration::from_secs(5), |s| s
        .backlog_len()
        == 0
        && s.pending_len() == 0));

    assert_stored_exactly(&env.fake, &ids(&records));
    assert_eq!(
        env.fake.arrival_order(),
        ids(&records),
        "spool replayed oldest first, before newer records"
    );
    let sends = sends_per_id(&env.fake);
    assert!(
        sends.values().all(|&n| n == 1),
        "nothing re-sent after success"
    );
    assert!(env.dead_letters().is_empty());
    assert!(
        !env.dir
            .path()
            .join("spool")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().starts_with("seg-") }),
        "spool emptied"
    );
    env.fake.assert_no_violations();
}

#[test]
fn full_spool_dead_letters_the_overflow() {
    let env = Env::new();
    env.fake.set_mode(Mode::Down);
    // Room for a handful of records only.
    let one = rec(0).json.len() as u64 + 60;
    let mut sink = env.sink(&[&format!("spool_size={}", one * 12), "template=off"]);
    let records = recs(0..40);
    let err = sink.send(&records).unwrap_err();
    assert!(!err.to_string().contains(API_KEY));

    let spooled = sink.backlog_len() as usize;
    assert!((1..40).contains(&spooled), "{spooled}");
    let dead = env.dead_letters();
    assert_eq!(dead.len(), 40 - spooled);
    assert!(dead.iter().all(|d| d["reason"] == "spool full"));
    let c = sink.counters().snapshot();
    assert_eq!(c.spooled as usize, spooled);
    assert_eq!(c.dead_lettered as usize, 40 - spooled);

    env.fake.set_mode(Mode::Ok);
    assert!(drive(&mut sink, Duration::from_secs(3), |s| s
        .backlog_len()
        == 0));
    // Each record either arrived or is in the dead-letter file, never both, none lost.
    let stored: BTreeSet<String> = env.fake.docs().into_keys().collect();
    let dead_ids: BTreeSet<String> = dead
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(stored.is_disjoint(&dead_ids));
    assert_eq!(stored.len() + dead_ids.len(), 40);
    assert_eq!(
        ids(&records[..spooled]),
        env.fake.arrival_order(),
        "the oldest were kept"
    );
    env.fake.assert_no_violations();
}

#[test]
fn request_rejected_as_a_whole_is_split_to_find_the_bad_document() {
    let env = Env::new();
    env.fake.reject_requests_containing(Some("\"n\":6}"));
    let mut sink = env.sink(&["template=off"]);
    let records = recs(0..10);
    let _ = sink.send(&records);
    let expected: Vec<String> = ids(&records)
        .into_iter()
        .filter(|id| id != "ev-00006")
        .collect();
    assert_stored_exactly(&env.fake, &expected);
    let dead = env.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], "ev-00006");
    assert!(dead[0]["reason"].as_str().unwrap().contains("HTTP 400"));
    assert_eq!(sink.backlog_len(), 0);
    env.fake.assert_no_violations();
}

#[test]
fn documents_already_indexed_count_as_delivered() {
    let env = Env::new();
    for r in recs(0..3) {
        env.fake
            .insert_doc(INDEX, &r.id, serde_json::from_str(&r.json).unwrap());
    }
    let mut sink = env.sink(&["template=off"]);
    sink.send(&recs(0..10)).unwrap();
    assert_eq!(env.fake.conflicts(), 3);
    assert_eq!(sink.counters().snapshot().shipped, 10);
    assert!(env.dead_letters().is_empty());
    env.fake.assert_no_violations();
}

#[test]
fn flush_delivers_pending_records_before_the_deadline() {
    let env = Env::new();
    let mut sink = env.sink(&["flush=1h"]);
    sink.send(&recs(0..4)).unwrap();
    assert_eq!(env.fake.doc_count(), 0);
    sink.flush(Instant::now() + Duration::from_secs(2)).unwrap();
    assert_stored_exactly(&env.fake, &ids(&recs(0..4)));
    env.fake.assert_no_violations();
}

#[test]
fn flush_while_down_spools_for_the_next_worker() {
    let env = Env::new();
    env.fake.set_mode(Mode::Down);
    let mut sink = env.sink(&["flush=1h", "template=off"]);
    let _ = sink.send(&recs(0..4));
    let started = Instant::now();
    let _ = sink.flush(Instant::now() + Duration::from_millis(500));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(sink.backlog_len(), 4);
    drop(sink);

    env.fake.set_mode(Mode::Ok);
    let mut next = env.sink(&["template=off"]);
    assert!(drive(&mut next, Duration::from_secs(3), |s| s
        .backlog_len()
        == 0));
    assert_stored_exactly(&env.fake, &ids(&recs(0..4)));
    env.fake.assert_no_violations();
}

#[test]
fn without_a_spool_the_backlog_is_in_memory_and_dead_lettered_at_exit() {
    let env = Env::new();
    env.fake.set_mode(Mode::Down);
    let mut sink = env.sink(&["spool=", "template=off"]);
    let _ = sink.send(&recs(0..10));
    assert_eq!(sink.backlog_len(), 10);
    env.fake.set_mode(Mode::Ok);
    assert!(drive(&mut sink, Duration::from_secs(3), |s| s
        .backlog_len()
        == 0));
    assert_stored_exactly(&env.fake, &ids(&recs(0..10)));

    env.fake.set_mode(Mode::Down);
    let _ = sink.send(&recs(10..20));
    let _ = sink.flush(Instant::now() + Duration::from_millis(300));
    let dead = env.dead_letters();
    assert_eq!(dead.len(), 10);
    assert!(dead[0]["reason"].as_str().unwrap().contains("no spool"));
}

#[test]
fn basic_auth_header() {
    let env = Env::new();
    fs::write(env.dir.path().join("pw"), "correct horse\n").unwrap();
    // base64("elastic:correct horse")
    env.fake
        .expect_auth(Some("Basic ZWxhc3RpYzpjb3JyZWN0IGhvcnNl"));
    let pw = format!("password_file={}", env.dir.path().join("pw").display());
    let mut sink = env.sink(&["api_key_file=", "user=elastic", &pw]);
    sink.send(&recs(0..10)).unwrap();
    assert_eq!(env.fake.doc_count(), 10);
    env.fake.assert_no_violations();
}

#[test]
fn wrong_credentials_are_retried_not_dropped() {
    let env = Env::new();
    env.fake.expect_auth(Some("ApiKey something-else"));
    let mut sink = env.sink(&["template=off"]);
    let err = sink.send(&recs(0..10)).unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(sink.backlog_len(), 10);
    assert!(env.dead_letters().is_empty());
}

#[test]
fn the_key_never_appears_in_debug_output_or_errors() {
    let env = Env::new();
    env.fake.set_mode(Mode::Status(500));
    let settings = env.settings(&[]);
    let mut sink = ElasticsearchSink::new(settings.clone()).unwrap();
    let err = sink.send(&recs(0..10)).unwrap_err();
    for text in [
        format!("{settings:?}"),
        format!("{settings:#?}"),
        format!("{sink:?}"),
        err.to_string(),
    ] {
        assert!(!text.contains(API_KEY), "{text}");
        assert!(!text.contains("test-key-SECRET"), "{text}");
    }
}

#[test]
fn failed_tls_handshake_spools_the_records() {
    // The fake speaks plain HTTP, so the handshake fails: nothing is sent in clear text and
    // the records wait in the spool.
    let env = Env::new();
    let mut args = vec![env.fake.url().replace("http://", "https://")];
    args.push(format!("spool={}", env.dir.path().join("spool").display()));
    args.push("template=off".into());
    args.push("timeout=1s".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut sink = ElasticsearchSink::new(ElasticsearchSettings::parse(&refs).unwrap()).unwrap();
    let _ = sink.flush(Instant::now() + Duration::from_secs(1));
    let _ = sink.send(&recs(0..1));
    let _ = sink.flush(Instant::now() + Duration::from_secs(1));
    assert_eq!(sink.backlog_len(), 1);
    assert_eq!(env.fake.doc_count(), 0);
}
