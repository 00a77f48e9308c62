//! The MISP sink against a contract fake of MISP (tests/support/fake_misp.rs): every request is
//! checked against shared/misp/openapi.yaml, and the fake keeps events, attributes, sightings
//! and tags the way MISP does.

#[path = "support/fake_misp.rs"]
mod fake_misp;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use fake_misp::{Behavior, FakeMisp, State};
use honeytrap_core::sink::misp::{MispSettings, MispSink};
use honeytrap_core::sink::{Record, Sink};
use serde_json::{json, Value};

const KEY: &str = "fK9pQ2sV7wX1yZ3aB5cD8eG0hJ4kL6mN9oP1qR3s";
const SENSOR: &str = "sensor-1";

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel)
}

struct Env {
    dir: tempfile::TempDir,
    fake: FakeMisp,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            fake: FakeMisp::start(KEY),
        }
    }

    fn key_file(&self, key: &str) -> PathBuf {
        let path = self.dir.path().join(format!("key-{}", key.len()));
        std::fs::write(&path, format!("{key}\n")).unwrap();
        path
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Settings with small timings; `extra` overrides or adds keys.
    fn settings_with_key(&self, key: &str, extra: &[&str]) -> MispSettings {
        let url = self.fake.url();
        let kf = format!("key_file={}", self.key_file(key).display());
        let mut args: Vec<String> = vec![url, kf];
        let defaults = [
            "flush=20ms",
            "backoff=20ms",
            "backoff_max=100ms",
            "timeout=2s",
        ];
        for d in defaults {
            let name = d.split('=').next().unwrap();
            if !extra.iter().any(|e| e.starts_with(&format!("{name}="))) {
                args.push(d.to_string());
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        MispSettings::parse(&refs).unwrap()
    }

    fn sink(&self, extra: &[&str]) -> MispSink {
        MispSink::new(self.settings_with_key(KEY, extra)).unwrap()
    }
}

const PATHS: [&str; 4] = ["/.env", "/wp-login.php", "/.git/config", "/phpmyadmin/"];
const AGENTS: [&str; 5] = [
    "zgrab/0.x",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "sqlmap/1.8.3#stable (https://sqlmap.org)",
    "curl/8.5.0",
    "python-requests/2.31.0",
];
const SQLI: &str = "/index.php?id=1' OR 1=1--";
const BAIT_URL: &str = "/wp-admin/admin-ajax.php";

fn ip(i: usize) -> String {
    format!("203.0.113.{}", 10 + i % 5)
}

/// One ECS document shaped like the event module's: 60% decoy hits, 20% rule matches with
/// matched data, 20% bait logins with credentials.
fn doc(i: usize, day: &str) -> Value {
    let ts = format!(
        "{day}T10:{:02}:{:02}.{:03}Z",
        (i / 60) % 60,
        i % 60,
        i % 1000
    );
    let id = format!("{day}-{i:06}");
    let mut d = json!({
        "@timestamp": ts,
        "ecs": {"version": "9.4.0"},
        "event": {"kind": "alert", "category": ["intrusion_detection", "web"], "type": ["access"], "id": id,
                  "dataset": "honeytrap.events", "module": "honeytrap"},
        "observer": {"name": SENSOR, "type": "honeypot", "vendor": "ngx-honeytrap", "product": "ngx-honeytrap"},
        "source": {"ip": ip(i), "port": 40000 + i},
        "user_agent": {"original": AGENTS[i % 5]},
    });
    match i % 10 {
        0..=5 => {
            let path = PATHS[(i / 5) % 4];
            d["event"]["action"] = json!("decoy-hit");
            d["event"]["severity"] = json!(4);
            d["url"] = json!({"original": path, "path": path});
            d["http"] = json!({"request": {"method": "GET"}});
            d["threat"] = json!({"framework": "MITRE ATT&CK", "technique": {"id": ["T1595.003"], "name": ["Wordlist Scanning"]}});
            d["honeytrap"] = json!({"kind": "decoy", "flagged": false});
        }
        6..=7 => {
            d["event"]["action"] = json!("rule-matched");
            d["event"]["severity"] = json!(2);
            d["url"] = json!({"original": SQLI, "path": "/index.php", "query": "id=1' OR 1=1--"});
            d["http"] = json!({"request": {"method": "GET"}});
            d["rule"] =
                json!({"id": "942100", "name": "SQL Injection Attack Detected via libinjection"});
            d["threat"] = json!({"framework": "MITRE ATT&CK", "technique": {"id": ["T1190"], "name": ["Exploit Public-Facing Application"]}});
            d["honeytrap"] = json!({"kind": "rules", "flagged": false, "rules": [
                {"id": "942100", "msg": "SQL Injection Attack Detected via libinjection", "tags": ["attack-sqli"],
                 "severity": 2, "matched_var": "ARGS:id", "matched_data": "1' OR 1=1--"}
            ]});
        }
        _ => {
            d["event"]["action"] = json!("bait-touched");
            d["event"]["severity"] = json!(2);
            d["url"] = json!({"original": BAIT_URL, "path": BAIT_URL});
            d["http"] = json!({"request": {"method": "POST"}});
            d["threat"] = json!({"framework": "MITRE ATT&CK", "technique": {"id": ["T1078"], "name": ["Valid Accounts"]}});
            let password = ["123456", "password"][i % 2];
            d["honeytrap"] = json!({"kind": "bait", "flagged": false,
                "bait": {"type": "credential", "name": "wp-admin", "token": "tok-1"},
                "credentials": {"username": "admin", "password": password}});
        }
    }
    d
}

fn records(n: usize, day: &str) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let d = doc(i, day);
            Record {
                id: d["event"]["id"].as_str().unwrap().to_string(),
                json: d.to_string(),
            }
        })
        .collect()
}

/// The indicators of `n` generated documents per event key, computed independently of the
/// sink: (type, value) -> occurrences.
fn expected(n: usize, by_ip: bool) -> BTreeMap<String, BTreeMap<(String, String), usize>> {
    let mut out: BTreeMap<String, BTreeMap<(String, String), usize>> = BTreeMap::new();
    for i in 0..n {
        let d = doc(i, "2026-05-01");
        let key = if by_ip { ip(i) } else { SENSOR.to_string() };
        let e = out.entry(key).or_default();
        let mut add = |t: &str, v: &str| *e.entry((t.to_string(), v.to_string())).or_default() += 1;
        add("ip-src", d["source"]["ip"].as_str().unwrap());
        add("url", d["url"]["original"].as_str().unwrap());
        add("user-agent", d["user_agent"]["original"].as_str().unwrap());
        add(
            "http-method",
            d["http"]["request"]["method"].as_str().unwrap(),
        );
        if let Some(rules) = d["honeytrap"]["rules"].as_array() {
            for r in rules {
                add("pattern-in-traffic", r["matched_data"].as_str().unwrap());
            }
        }
        if let Some(c) = d["honeytrap"].get("credentials") {
            add(
                "text",
                &format!(
                    "{}:{}",
                    c["username"].as_str().unwrap(),
                    c["password"].as_str().unwrap()
                ),
            );
        }
    }
    out
}

/// Every machine tag of the three taxonomies, as MISP spells them.
fn taxonomy_tags() -> HashSet<String> {
    let mut out = HashSet::new();
    for name in ["tlp", "honeypot-basic", "rsit"] {
        let text =
            std::fs::read_to_string(shared(&format!("misp/taxonomies/{name}/machinetag.json")))
                .unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let ns = doc["namespace"].as_str().unwrap();
        let values = doc["values"].as_array().cloned().unwrap_or_default();
        for p in doc["predicates"].as_array().unwrap() {
            let p = p["value"].as_str().unwrap();
            let entries: Vec<String> = values
                .iter()
                .filter(|v| v["predicate"] == p)
                .flat_map(|v| v["entry"].as_array().unwrap().iter())
                .map(|e| e["value"].as_str().unwrap().to_string())
                .collect();
            if entries.is_empty() {
                out.insert(format!("{ns}:{p}"));
            }
            for e in entries {
                out.insert(format!("{ns}:{p}=\"{e}\""));
            }
        }
    }
    out
}

fn assert_tags_exist(state: &State) {
    let known = taxonomy_tags();
    for e in &state.events {
        assert_eq!(
            e.tags.iter().filter(|t| t.starts_with("tlp:")).count(),
            1,
            "exactly one TLP: {:?}",
            e.tags
        );
        for t in &e.tags {
            if let Some(rest) = t.strip_prefix("misp-galaxy:mitre-attack-pattern=\"") {
                let (name, id) = rest
                    .trim_end_matches('"')
                    .rsplit_once(" - ")
                    .expect("<name> - <id>");
                assert!(!name.is_empty() && id.starts_with('T'), "{t}");
                continue;
            }
            assert!(
                known.contains(t),
                "{t} is not a tag of the tlp, honeypot-basic or rsit taxonomies"
            );
        }
    }
}

/// Checks the fake's state for one event against the expected indicators: each once, repeats
/// sighted, nothing else.
fn assert_event_matches(
    state: &State,
    info: &str,
    want: &BTreeMap<(String, String), usize>,
    sightings_per_repeat: usize,
) {
    let matching: Vec<_> = state.events.iter().filter(|e| e.info == info).collect();
    assert_eq!(
        matching.len(),
        1,
        "exactly one MISP event {info}: {:?}",
        state.events.iter().map(|e| &e.info).collect::<Vec<_>>()
    );
    let event = matching[0];
    let attrs = state.attributes_of(event.id);
    let got: BTreeMap<(String, String), u64> = attrs
        .iter()
        .map(|a| ((a.kind.clone(), a.value.clone()), a.id))
        .collect();
    assert_eq!(got.len(), attrs.len(), "no duplicate attributes in {info}");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "attributes of {info}"
    );
    for (key, occurrences) in want {
        let sighted = state.sightings_of(got[key]);
        if *occurrences > 1 {
            assert_eq!(
                sighted, sightings_per_repeat,
                "{key:?} seen {occurrences} times"
            );
        } else {
            assert_eq!(sighted, 0, "{key:?} seen once: no sighting");
        }
    }
    for a in &attrs {
        assert!(!a.comment.is_empty(), "{a:?}");
        let ids = match a.kind.as_str() {
            "ip-src" => true,
            // Decoy paths only: a rule match or a bait's login URL is ordinary elsewhere.
            "url" => PATHS.contains(&a.value.as_str()),
            _ => false,
        };
        assert_eq!(a.to_ids, ids, "to_ids of {} {}", a.kind, a.value);
    }
}

fn tick_until(sink: &mut MispSink, what: &str, done: impl Fn(&MispSink) -> bool) -> Vec<String> {
    let start = Instant::now();
    let mut errors = Vec::new();
    while !done(sink) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}; errors: {errors:?}"
        );
        if let Err(e) = sink.tick(Instant::now()) {
            errors.push(e.0);
        }
        thread::sleep(Duration::from_millis(5));
    }
    errors
}

fn deliver_all(sink: &mut MispSink, batch: &[Record]) {
    sink.send(batch).unwrap();
    let errors = tick_until(sink, "delivery", |s| s.pending() == 0);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn daily_mode_aggregates_200_events_into_one_misp_event() {
    let env = Env::new();
    let mut sink = env.sink(&[]);
    deliver_all(&mut sink, &records(200, "2026-05-01"));

    let state = env.fake.state();
    assert_eq!(state.events.len(), 1);
    let want = &expected(200, false)[SENSOR];
    assert_eq!(want.keys().filter(|(t, _)| t == "ip-src").count(), 5);
    assert_event_matches(&state, "ngx-honeytrap sensor-1 2026-05-01", want, 1);
    let event = &state.events[0];
    assert_eq!(event.date, "2026-05-01");
    assert_eq!(
        event.threat_level_id, "2",
        "worst severity 2 (critical) is Medium"
    );
    assert_eq!(event.distribution, "0");
    assert_eq!(event.analysis, "0");
    assert!(!event.published, "publish=off");
    for t in [
        "tlp:green",
        "honeypot-basic:interaction-level=\"low\"",
        "rsit:information-gathering=\"scanner\"",
        "rsit:intrusion-attempts=\"ids-alert\"",
        "rsit:intrusion-attempts=\"brute-force\"",
        "misp-galaxy:mitre-attack-pattern=\"Exploit Public-Facing Application - T1190\"",
        "misp-galaxy:mitre-attack-pattern=\"Wordlist Scanning - T1595.003\"",
    ] {
        assert!(
            event.tags.contains(&t.to_string()),
            "{t} in {:?}",
            event.tags
        );
    }
    assert_tags_exist(&state);

    // Aggregated: a handful of requests, not one per record.
    let requests = env.fake.requests();
    let count = |m: &str, p: &str| {
        requests
            .iter()
            .filter(|r| r.method == m && r.path.starts_with(p))
            .count()
    };
    assert_eq!(count("GET", "/events/view/"), 1);
    assert_eq!(count("POST", "/events/add"), 1);
    assert_eq!(count("POST", "/attributes/add/"), want.len());
    assert_eq!(
        count("POST", "/sightings/add"),
        1,
        "one sightings request per event and batch"
    );
    assert_eq!(requests.len(), want.len() + 3);
    for r in &requests {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some(KEY)
        );
        assert_eq!(
            r.headers.get("accept").map(String::as_str),
            Some("application/json")
        );
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
    }
    let c = sink.counters().snapshot();
    assert_eq!(
        (c.shipped, c.spooled, c.dead_lettered, c.failed_requests),
        (200, 0, 0, 0)
    );
    let stats = sink.stats().snapshot();
    assert_eq!(stats.events_created, 1);
    assert_eq!(stats.attributes_added, want.len() as u64);
    env.fake.assert_clean();
}

#[test]
fn attacker_mode_makes_one_event_per_source_ip() {
    let env = Env::new();
    let mut sink = env.sink(&["mode=attacker"]);
    deliver_all(&mut sink, &records(200, "2026-05-01"));

    let state = env.fake.state();
    assert_eq!(state.events.len(), 5);
    for (ip, want) in expected(200, true) {
        assert_event_matches(
            &state,
            &format!("ngx-honeytrap sensor-1 {ip} 2026-05-01"),
            &want,
            1,
        );
        let event = state.events.iter().find(|e| e.info.contains(&ip)).unwrap();
        let ips: Vec<String> = state
            .attributes_of(event.id)
            .iter()
            .filter(|a| a.kind == "ip-src")
            .map(|a| a.value.clone())
            .collect();
        assert_eq!(ips, vec![ip.clone()]);
    }
    let uuids: HashSet<&str> = state.events.iter().map(|e| e.uuid.as_str()).collect();
    assert_eq!(uuids.len(), 5);
    assert_tags_exist(&state);
    env.fake.assert_clean();
}

#[test]
fn emitted_tags_exist_in_the_taxonomies_whatever_the_mix() {
    let env = Env::new();
    let mut sink = env.sink(&[
        "mode=attacker",
        "tags=tlp:amber,honeypot-basic:containment=\"none\"",
    ]);
    // Decoys only, rules only, baits only: each IP's event gets a different tag mix.
    let only = |keep: &[usize]| -> Vec<Record> {
        records(200, "2026-05-02")
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(&(i % 10)))
            .map(|(_, r)| r)
            .collect()
    };
    deliver_all(&mut sink, &only(&[0, 1, 2, 3, 4, 5]));
    deliver_all(&mut sink, &only(&[6, 7]));
    deliver_all(&mut sink, &only(&[8, 9]));
    let state = env.fake.state();
    assert!(!state.events.is_empty());
    assert_tags_exist(&state);
    for e in &state.events {
        assert!(
            e.tags.contains(&"tlp:amber".to_string()),
            "configured TLP replaces the default: {:?}",
            e.tags
        );
        assert!(!e.tags.contains(&"tlp:green".to_string()));
    }
    env.fake.assert_clean();
}

#[test]
fn misp_down_then_back_delivers_the_day_once() {
    let env = Env::new();
    let mut sink = env.sink(&[&format!("spool={}", env.spool().display())]);
    env.fake.set_behavior(Behavior::Down);

    let all = records(200, "2026-05-01");
    sink.send(&all[..120]).unwrap();
    let errors = tick_until(&mut sink, "spooling", |s| s.spooled() == 120);
    assert!(
        errors.iter().any(|e| e.contains("unreachable")),
        "{errors:?}"
    );
    assert!(sink.retry_at().is_some());
    // More records while MISP is still down join the spool at the next flush.
    sink.send(&all[120..]).unwrap();
    tick_until(&mut sink, "spooling the rest", |s| s.spooled() == 200);
    assert!(env.fake.state().events.is_empty());
    let c = sink.counters().snapshot();
    assert_eq!(c.spooled, 200);
    assert!(c.failed_requests >= 1);

    env.fake.set_behavior(Behavior::Ok);
    let errors = tick_until(&mut sink, "recovery", |s| s.pending() == 0);
    assert!(
        errors.iter().all(|e| e.contains("unreachable")),
        "{errors:?}"
    );
    let state = env.fake.state();
    assert_event_matches(
        &state,
        "ngx-honeytrap sensor-1 2026-05-01",
        &expected(200, false)[SENSOR],
        1,
    );
    assert_eq!(state.events.len(), 1);
    assert_eq!(sink.counters().snapshot().shipped, 200);
    assert!(sink.retry_at().is_none(), "backoff reset after success");
    env.fake.assert_clean();
}

#[test]
fn server_errors_and_slow_answers_back_off_and_keep_records() {
    let env = Env::new();
    let mut sink = env.sink(&["timeout=200ms", "backoff=50ms", "backoff_max=200ms"]);
    env.fake.set_behavior(Behavior::ServerError);
    sink.send(&records(30, "2026-05-01")).unwrap();
    let errors = tick_until(&mut sink, "a 500", |s| s.retry_at().is_some());
    assert!(errors.iter().any(|e| e.contains("HTTP 500")), "{errors:?}");
    // Backing off: no request until retry_at.
    let seen = env.fake.requests().len();
    let retry_at = sink.retry_at().unwrap();
    sink.tick(Instant::now()).ok();
    if Instant::now() < retry_at {
        assert_eq!(
            env.fake.requests().len(),
            seen,
            "no request while backing off"
        );
    }

    env.fake
        .set_behavior(Behavior::Slow(Duration::from_millis(600)));
    let errors = tick_until(&mut sink, "a timeout", |s| {
        s.retry_at().is_some_and(|t| t > retry_at)
    });
    assert!(errors.iter().any(|e| e.contains("timed out")), "{errors:?}");
    assert_eq!(sink.pending(), 30);

    env.fake.set_behavior(Behavior::Ok);
    tick_until(&mut sink, "recovery", |s| s.pending() == 0);
    let state = env.fake.state();
    assert_eq!(
        state.events.len(),
        1,
        "slow answers that arrived late did not duplicate the event"
    );
    let attrs = state.attributes_of(state.events[0].id);
    let unique: HashSet<(String, String)> = attrs
        .iter()
        .map(|a| (a.kind.clone(), a.value.clone()))
        .collect();
    assert_eq!(unique.len(), attrs.len());
    env.fake.assert_clean();
}

#[test]
fn restart_after_a_crash_finds_the_event_by_uuid() {
    let env = Env::new();
    let spool = format!("spool={}", env.spool().display());
    let all = records(200, "2026-05-01");
    {
        let mut first = env.sink(&[&spool]);
        // view (404), add event, 5 attributes, then MISP fails: the batch stays spooled.
        env.fake.fail_after(7, 500);
        first.send(&all).unwrap();
        tick_until(&mut first, "the failure", |s| s.spooled() == 200);
        let state = env.fake.state();
        assert_eq!(state.events.len(), 1);
        assert_eq!(state.attributes.len(), 5);
        // Dropped without flush: a crash.
    }
    env.fake.set_behavior(Behavior::Ok);
    let mut second = env.sink(&[&spool]);
    assert_eq!(second.spooled(), 200, "recovered from the spool");
    tick_until(&mut second, "replay", |s| s.pending() == 0);

    let state = env.fake.state();
    assert_eq!(state.events.len(), 1, "no second MISP event");
    let requests = env.fake.requests();
    let adds = requests.iter().filter(|r| r.path == "/events/add").count();
    assert_eq!(adds, 1, "found by uuid, not created again");
    let event = &state.events[0];
    assert!(requests.iter().any(|r| r.method == "GET"
        && r.path == format!("/events/view/{}", event.uuid)
        && r.status == 200));
    let want = &expected(200, false)[SENSOR];
    let attrs = state.attributes_of(event.id);
    let got: HashSet<(String, String)> = attrs
        .iter()
        .map(|a| (a.kind.clone(), a.value.clone()))
        .collect();
    assert_eq!(got.len(), attrs.len(), "no duplicate attribute");
    assert_eq!(got, want.keys().cloned().collect::<HashSet<_>>());
    // The 5 attributes created before the crash were found in MISP; their first occurrence in
    // the replay counts as a repeat (at-least-once), the others are sighted once.
    for a in &attrs {
        assert!(state.sightings_of(a.id) <= 1, "{a:?}");
    }
    assert_eq!(second.stats().snapshot().events_found, 1);
    env.fake.assert_clean();
}

#[test]
fn a_refused_key_is_reported_counted_and_records_are_kept() {
    let env = Env::new();
    let wrong = "Wr0ngKeyWr0ngKeyWr0ngKeyWr0ngKeyWr0ngKey";
    let settings = env.settings_with_key(wrong, &[&format!("spool={}", env.spool().display())]);
    let mut sink = MispSink::new(settings).unwrap();
    sink.send(&records(50, "2026-05-01")).unwrap();
    let errors = tick_until(&mut sink, "the refusal", |s| s.spooled() == 50);
    let err = errors
        .iter()
        .find(|e| e.contains("refused the API key"))
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(err.contains("50 records kept"), "{err}");
    assert!(env.fake.state().events.is_empty());
    let stats = sink.stats().snapshot();
    assert!(stats.auth_failures >= 1);
    assert!(stats
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("refused the API key"));
    let c = sink.counters().snapshot();
    assert!(c.failed_requests >= 1);
    assert_eq!(c.dead_lettered, 0, "kept, not dropped");
    assert_eq!(sink.pending(), 50);

    // The key shows nowhere: errors, status, Debug of settings and sink, spool files.
    let mut seen = errors.join("\n");
    seen.push_str(&format!("{:?}\n{sink:?}\n{:?}", sink.settings(), stats));
    for entry in std::fs::read_dir(env.spool()).unwrap() {
        seen.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    assert!(!seen.contains(wrong), "the key leaked");
    assert!(!seen.contains(KEY));
    env.fake.assert_clean();
}

#[test]
fn forced_403_is_an_auth_error_even_with_the_right_key() {
    let env = Env::new();
    let mut sink = env.sink(&[]);
    env.fake.set_behavior(Behavior::RejectKey);
    sink.send(&records(5, "2026-05-01")).unwrap();
    let errors = tick_until(&mut sink, "the refusal", |s| s.retry_at().is_some());
    assert!(
        errors.iter().any(|e| e.contains("refused the API key")),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| !e.contains(KEY)));
    env.fake.set_behavior(Behavior::Ok);
    tick_until(&mut sink, "recovery", |s| s.pending() == 0);
    assert_eq!(env.fake.state().events.len(), 1);
}

#[test]
fn later_flushes_sight_repeats_raise_the_threat_level_and_add_tags() {
    let env = Env::new();
    let mut sink = env.sink(&["publish=on"]);
    let day = records(200, "2026-05-01");
    let decoys: Vec<Record> = day
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 < 6)
        .map(|(_, r)| r.clone())
        .collect();
    deliver_all(&mut sink, &decoys[..60]);
    let state = env.fake.state();
    assert_eq!(state.events.len(), 1);
    let e = &state.events[0];
    assert_eq!(e.threat_level_id, "3", "decoys only: Low");
    assert!(!e.tags.iter().any(|t| t.contains("intrusion-attempts")));
    assert!(e.published);
    let attrs_before = state.attributes.len();

    // Same indicators again: sightings only.
    deliver_all(&mut sink, &decoys[60..]);
    let state = env.fake.state();
    assert_eq!(state.attributes.len(), attrs_before, "nothing new");
    assert!(
        state
            .attributes
            .iter()
            .all(|a| state.sightings_of(a.id) >= 1),
        "every indicator was seen again"
    );

    // Rule matches and baits: new attributes, threat level raised, new tags.
    deliver_all(&mut sink, &day);
    let state = env.fake.state();
    assert_eq!(state.events.len(), 1);
    let e = &state.events[0];
    assert_eq!(e.threat_level_id, "2");
    assert!(e
        .tags
        .contains(&"rsit:intrusion-attempts=\"ids-alert\"".to_string()));
    assert!(e
        .tags
        .contains(&"rsit:intrusion-attempts=\"brute-force\"".to_string()));
    assert!(e.published, "re-published after the change");
    assert!(e.publish_count >= 2);
    let edits = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(edits, 1);
    let got: HashSet<(String, String)> = state
        .attributes
        .iter()
        .map(|a| (a.kind.clone(), a.value.clone()))
        .collect();
    assert_eq!(got.len(), state.attributes.len(), "no duplicate attribute");
    assert_eq!(
        got,
        expected(200, false)[SENSOR]
            .keys()
            .cloned()
            .collect::<HashSet<_>>()
    );
    env.fake.assert_clean();
}

#[test]
fn an_attribute_misp_refuses_is_skipped_not_retried() {
    let env = Env::new();
    let mut sink = env.sink(&[]);
    env.fake.refuse_values(&["curl/8.5.0"]);
    sink.send(&records(50, "2026-05-01")).unwrap();
    let errors = tick_until(&mut sink, "delivery", |s| s.pending() == 0);
    assert!(
        errors.is_empty(),
        "a refused attribute does not fail the batch: {errors:?}"
    );
    let state = env.fake.state();
    assert!(state.attributes.iter().all(|a| a.value != "curl/8.5.0"));
    assert_eq!(
        state.attributes.len(),
        expected(50, false)[SENSOR].len() - 1
    );
    let stats = sink.stats().snapshot();
    assert_eq!(stats.rejected, 1);
    assert!(stats.last_error.unwrap().contains("curl/8.5.0"));
    let sightings = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.path == "/sightings/add")
        .map(|r| r.body.clone())
        .collect::<Vec<_>>();
    assert!(
        sightings.iter().all(|b| !b.contains("curl/8.5.0")),
        "not sighted either"
    );

    // The next batch neither re-sends nor sights it.
    let before = env.fake.requests().len();
    deliver_all(&mut sink, &records(50, "2026-05-01")[..10]);
    let later: Vec<_> = env.fake.requests()[before..].to_vec();
    assert!(
        later.iter().all(|r| !r.body.contains("curl/8.5.0")),
        "{later:?}"
    );
    assert_eq!(sink.counters().snapshot().shipped, 60);
    env.fake.assert_clean();
}

#[test]
fn an_event_deleted_in_misp_is_looked_up_again() {
    let env = Env::new();
    let mut sink = env.sink(&[]);
    let day = records(40, "2026-05-01");
    deliver_all(&mut sink, &day[..20]);
    let first = env.fake.state().events[0].clone();
    env.fake.delete_event(first.id);

    // Only repeats: their sightings find nothing, which makes the sink look the event up again.
    deliver_all(&mut sink, &day[20..30]);
    assert_eq!(sink.stats().snapshot().rejected, 1, "the lost sightings");
    let mut newcomer: Value = serde_json::from_str(&day[30].json).unwrap();
    newcomer["source"]["ip"] = json!("198.51.100.200");
    let mut rest = day[31..].to_vec();
    rest.push(Record {
        id: "newcomer".into(),
        json: newcomer.to_string(),
    });
    deliver_all(&mut sink, &rest);
    assert_eq!(sink.stats().snapshot().events_created, 2);
    let state = env.fake.state();
    assert_eq!(state.events.len(), 1);
    assert_eq!(
        state.events[0].uuid, first.uuid,
        "re-created under the same UUID"
    );
    assert_ne!(state.events[0].id, first.id);
    let got: HashSet<String> = state.attributes.iter().map(|a| a.value.clone()).collect();
    assert!(
        got.contains(&ip(31)) && got.contains("198.51.100.200"),
        "{got:?}"
    );

    // Deleted again, and this time the batch brings a new indicator: its attribute is refused
    // for the missing event, and the batch is retried against a re-created one.
    env.fake.delete_event(state.events[0].id);
    newcomer["source"]["ip"] = json!("198.51.100.201");
    sink.send(&[Record {
        id: "newcomer-2".into(),
        json: newcomer.to_string(),
    }])
    .unwrap();
    let errors = tick_until(&mut sink, "recovery", |s| s.pending() == 0);
    assert!(
        errors.iter().any(|e| e.contains("is gone from MISP")),
        "{errors:?}"
    );
    assert_eq!(sink.stats().snapshot().events_created, 3);
    let state = env.fake.state();
    assert_eq!(state.events.len(), 1);
    assert!(state.attributes.iter().any(|a| a.value == "198.51.100.201"));
    env.fake.assert_clean();
}

#[test]
fn two_days_are_two_events() {
    let env = Env::new();
    let mut sink = env.sink(&[]);
    let mut both = records(20, "2026-05-01");
    both.extend(records(20, "2026-05-02"));
    deliver_all(&mut sink, &both);
    let state = env.fake.state();
    let infos: HashSet<&str> = state.events.iter().map(|e| e.info.as_str()).collect();
    assert_eq!(
        infos,
        HashSet::from([
            "ngx-honeytrap sensor-1 2026-05-01",
            "ngx-honeytrap sensor-1 2026-05-02"
        ])
    );
    env.fake.assert_clean();
}

#[test]
fn the_fake_enforces_the_contract() {
    // A contract fake that accepts anything proves nothing: send it what MISP would refuse.
    let env = Env::new();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |path: &str, body: Value, key: &str| {
        agent
            .post(format!("{}{path}", env.fake.url()))
            .header("Authorization", key)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .send(body.to_string().as_str())
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post("/events/add", json!({"info": "x"}), "bad"), 403);
    assert!(
        env.fake.violations().is_empty(),
        "a bad key is MISP's business, not a violation"
    );

    let cases = [
        (
            "/events/add",
            json!({"info": "x", "threat_level_id": "5"}),
            "threat_level_id",
        ),
        (
            "/events/add",
            json!({"info": "x", "distribution": 0}),
            "distribution",
        ),
        (
            "/events/add",
            json!({"info": "x", "uuid": "not-a-uuid"}),
            "uuid",
        ),
        (
            "/events/add",
            json!({"info": "x", "threat_level": "1"}),
            "unknown property threat_level",
        ),
        (
            "/events/add",
            json!({"info": "x", "Tag": [{"name": "tlp:green", "colour": "#1234567"}]}),
            "maxLength",
        ),
        (
            "/attributes/add/1",
            json!({"type": "ip-source", "value": "1.2.3.4"}),
            "type",
        ),
        (
            "/attributes/add/abc",
            json!({"type": "ip-src", "value": "1.2.3.4"}),
            "eventId",
        ),
        ("/sightings/add", json!({"values": "1.2.3.4"}), "values"),
        (
            "/sightings/add",
            json!({"values": ["1.2.3.4"], "timestamp": "yesterday"}),
            "timestamp",
        ),
        ("/events/frobnicate", json!({}), "no such operation"),
    ];
    for (path, body, want) in cases {
        let before = env.fake.violations().len();
        let status = post(path, body.clone(), KEY);
        let v = env.fake.violations();
        assert!(status >= 400, "{path} {body}: {status}");
        assert!(
            v.len() > before && v[before..].iter().any(|x| x.contains(want)),
            "{path} {body}: {:?}",
            &v[before..]
        );
    }

    // And the good path is clean: event, attribute, duplicate refused like MISP.
    let env = Env::new();
    let ok = json!({"uuid": "0d3ab7a4-39c4-5d8b-9e3a-6b1c2d3e4f50", "info": "x", "date": "2026-05-01",
                    "threat_level_id": "4", "analysis": "0", "distribution": "0", "published": false,
                    "Tag": [{"name": "tlp:green"}]});
    let agent2: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post2 = |path: &str, body: &Value| {
        agent2
            .post(format!("{}{path}", env.fake.url()))
            .header("Authorization", KEY)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .send(body.to_string().as_str())
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post2("/events/add", &ok), 200);
    assert_eq!(post2("/events/add", &ok), 403, "uuid taken");
    let attr = json!({"type": "ip-src", "category": "Network activity", "value": "198.51.100.1", "to_ids": true});
    assert_eq!(post2("/attributes/add/1", &attr), 200);
    assert_eq!(post2("/attributes/add/1", &attr), 403, "similar attribute");
    env.fake.assert_clean();
}

#[test]
fn fake_misp_goes_down_and_comes_back_on_the_same_port() {
    let env = Env::new();
    let addr = env.fake.url().trim_start_matches("http://").to_string();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    env.fake.set_behavior(Behavior::Down);
    let err = std::net::TcpStream::connect(&addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    env.fake.set_behavior(Behavior::Ok);
    assert!(std::net::TcpStream::connect(&addr).is_ok());
}
