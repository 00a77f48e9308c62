//! The event pipeline through real nginx: decoy servers produce one ECS event per request,
//! the shipper thread writes them to the events file and Elasticsearch, survives reopen,
//! reloads and a server that is down, and reports its counters.

mod harness;

#[path = "../crates/honeytrap-core/tests/support/fake_es.rs"]
mod fake_es;

use std::collections::BTreeSet;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use harness::{field, http, wait_for_events, Config, Nginx};

fn decoy_config(extra_http: &str) -> Config {
    Config::new(&format!(
        "honeytrap_events_file {{prefix}}/logs/events.ndjson;
         {extra_http}
         server {{ listen 127.0.0.1:{{port0}}; honeytrap_decoy on; }}
         server {{ listen 127.0.0.1:{{port1}}; honeytrap_decoy on; return 403; }}
         server {{ listen 127.0.0.1:{{port2}}; honeytrap on; location / {{ return 200 \"site\"; }}
                   location /status {{ honeytrap_status; }} }}"
    ))
}

fn send(port: u16, raw: &str) -> http::Response {
    http::request(port, raw.as_bytes()).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
}

#[test]
fn every_decoy_request_is_one_event_with_its_details() {
    let nginx = Nginx::start(decoy_config(""));
    let events_path = nginx.prefix().join("logs/events.ndjson");
    let p0 = nginx.port(0);

    let home = send(p0, "GET / HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Nikto/2.5\r\nConnection: close\r\n\r\n");
    assert_eq!(home.status, 200);
    assert!(home.text().contains("Welcome to nginx!"), "{}", home.text());
    let missing = send(
        p0,
        "GET /admin/config.php?debug=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(missing.status, 404);
    let body = "username=admin&password=hunter2";
    let posted = send(
        p0,
        &format!("POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
    );
    assert_eq!(posted.status, 404);
    let head = send(
        p0,
        "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((head.status, head.body.len()), (200, 0));
    let invalid = http::request(
        p0,
        b"GET /\xff\xfe%C0%AF HTTP/1.1\r\nHost: x\r\nX-Bin: \xc3\x28\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(invalid.status, 404);
    let returned = send(
        nginx.port(1),
        "GET /wp-login.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(returned.status, 403);
    // The real site (honeytrap on, no bait touched) produces nothing.
    assert_eq!(http::get(nginx.port(2), "/").text(), "site");

    let events = wait_for_events(&events_path, 6);
    thread::sleep(Duration::from_millis(500));
    let events_after = wait_for_events(&events_path, 6);
    assert_eq!(
        events_after.len(),
        6,
        "one event per decoy request, none for the site"
    );

    let by_path = |path: &str| {
        events
            .iter()
            .find(|e| field(e, "url.path") == path)
            .unwrap_or_else(|| panic!("no event for {path}: {events:#?}"))
    };
    let first = by_path("/");
    for (dotted, expected) in [
        ("event.kind", "alert"),
        ("event.action", "decoy-hit"),
        ("honeytrap.kind", "decoy"),
        ("source.ip", "127.0.0.1"),
        ("destination.ip", "127.0.0.1"),
        ("user_agent.original", "Nikto/2.5"),
        ("url.domain", "shop.example"),
        ("http.request.method", "GET"),
        ("http.version", "1.1"),
        ("ecs.version", "9.4.0"),
    ] {
        assert_eq!(field(first, dotted), expected, "{dotted} in {first:#}");
    }
    assert_eq!(field(first, "destination.port"), p0);
    assert_eq!(field(first, "http.response.status_code"), 200);
    assert_eq!(field(first, "threat.technique.id")[0], "T1595");
    assert!(field(first, "source.port").as_u64().unwrap() > 0);

    let admin = by_path("/admin/config.php");
    assert_eq!(field(admin, "url.original"), "/admin/config.php?debug=1");
    assert_eq!(field(admin, "url.query"), "debug=1");
    assert_eq!(field(admin, "http.response.status_code"), 404);

    let login = by_path("/login");
    assert_eq!(field(login, "http.request.method"), "POST");
    assert_eq!(field(login, "http.request.body.content"), body);

    assert_eq!(
        field(by_path("/wp-login.php"), "http.response.status_code"),
        403
    );
    let head_event = events
        .iter()
        .find(|e| field(e, "http.request.method") == "HEAD")
        .unwrap();
    assert_eq!(field(head_event, "http.response.status_code"), 200);

    // Bytes that are not UTF-8 arrive replaced, never as broken JSON.
    let odd = events.iter().find(|e| {
        field(e, "url.original")
            .as_str()
            .unwrap()
            .contains('\u{fffd}')
    });
    let odd = odd.unwrap_or_else(|| panic!("no event for the invalid UTF-8 request: {events:#?}"));
    assert!(field(odd, "honeytrap.request.headers.x-bin")
        .as_str()
        .unwrap()
        .contains('\u{fffd}'));

    let ids: BTreeSet<_> = events
        .iter()
        .map(|e| field(e, "event.id").as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 6, "event ids are unique");
}

#[test]
fn status_endpoint_reports_the_pipeline_counters() {
    let nginx = Nginx::start(decoy_config(""));
    for _ in 0..3 {
        http::get(nginx.port(0), "/probe");
    }
    wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 3);
    let status = http::get(nginx.port(2), "/status");
    assert_eq!(status.status, 200);
    assert_eq!(status.header("Content-Type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(json["pid"].as_u64().unwrap() as u32, nginx.worker_pids()[0]);
    assert_eq!(json["pipeline"]["queue"]["queued"], 3, "{json:#}");
    assert_eq!(json["pipeline"]["queue"]["dropped"], 0);
    let high_water = json["pipeline"]["queue"]["high_water"].as_u64().unwrap();
    assert!((1..=3).contains(&high_water), "{json:#}");
    let sinks = json["pipeline"]["sinks"].as_array().unwrap();
    assert_eq!(sinks.len(), 1);
    assert_eq!(
        (sinks[0]["name"].as_str(), sinks[0]["shipped"].as_u64()),
        (Some("file"), Some(3))
    );
}

/// The events each release of memory by the shipper followed (its debug lines), in order.
fn releases(nginx: &Nginx) -> Vec<u64> {
    nginx
        .error_log()
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("idle after ")?;
            let (n, rest) = rest.split_once(" events; ")?;
            rest.starts_with("buffers released in")
                .then(|| n.parse().unwrap())
        })
        .collect()
}

/// Waits until the shipper's releases account for `events` events in all.
fn wait_for_releases(nginx: &Nginx, events: u64) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let released = releases(nginx);
        if released.iter().sum::<u64>() >= events {
            return released;
        }
        assert!(
            Instant::now() < deadline,
            "releases {released:?}, expected them to cover {events} events"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_shipper_releases_memory_after_a_burst_and_not_while_idle_or_for_a_trickle() {
    // The module keeps the shipper's default: a release needs 64 events since the last one.
    let nginx = Nginx::start(decoy_config("").main("error_log logs/error.log debug;"));
    let path = nginx.prefix().join("logs/events.ndjson");
    for i in 0..70 {
        http::get(nginx.port(0), &format!("/first-{i}"));
    }
    wait_for_events(&path, 70);
    let first = wait_for_releases(&nginx, 64);
    // Several idle ticks (200 ms each) later, nothing more; nor after a trickle of 3.
    for i in 0..3 {
        http::get(nginx.port(0), &format!("/trickle-{i}"));
    }
    wait_for_events(&path, 73);
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(releases(&nginx), first);
    for i in 0..61 {
        http::get(nginx.port(0), &format!("/second-{i}"));
    }
    wait_for_events(&path, 134);
    let all = wait_for_releases(&nginx, 134);
    assert_eq!(all.iter().sum::<u64>(), 134, "{all:?}");
    assert_eq!(all[..first.len()], first[..]);
}

/// glibc's thread arenas in `pid`'s memory map: anonymous mappings that start on a 64 MiB
/// boundary (glibc's `HEAP_MAX_SIZE`) and, with the reserved rest that follows them, span
/// exactly 64 MiB.
fn thread_arenas(pid: u32) -> usize {
    const HEAP_MAX: u64 = 64 << 20;
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let anonymous: Vec<(u64, u64)> = maps
        .lines()
        .filter(|line| line.split_whitespace().nth(5).is_none())
        .map(|line| {
            let range = line.split_whitespace().next().unwrap();
            let (start, end) = range.split_once('-').unwrap();
            let hex = |s| u64::from_str_radix(s, 16).unwrap();
            (hex(start), hex(end))
        })
        .collect();
    anonymous
        .iter()
        .enumerate()
        .filter(|(_, (start, _))| start % HEAP_MAX == 0)
        .filter(|(i, (start, _))| {
            let mut end = *start;
            for (s, e) in &anonymous[*i..] {
                if *s != end || e - start > HEAP_MAX {
                    break;
                }
                end = *e;
            }
            end - start == HEAP_MAX
        })
        .count()
}

#[test]
fn the_shipper_allocates_from_the_main_heap_not_an_arena_of_its_own() {
    let nginx = Nginx::start(decoy_config(""));
    for i in 0..20 {
        http::get(nginx.port(0), &format!("/probe-{i}"));
    }
    wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 20);
    let worker = nginx.worker_pids()[0];
    assert_eq!(harness::thread_count(worker), 2, "worker and shipper");
    assert_eq!(thread_arenas(worker), 0);
}

#[test]
fn reopen_moves_new_events_to_the_new_file_and_loses_none() {
    let nginx = Nginx::start(decoy_config(""));
    let path = nginx.prefix().join("logs/events.ndjson");
    let rotated = nginx.prefix().join("logs/events.ndjson.1");
    for i in 0..5 {
        http::get(nginx.port(0), &format!("/before-{i}"));
    }
    wait_for_events(&path, 5);
    fs::rename(&path, &rotated).unwrap();
    nginx.signal(libc::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "nginx did not recreate the events file"
        );
        thread::sleep(Duration::from_millis(10));
    }
    // The shipper reopens on its next tick; until then it may still write to the old file.
    thread::sleep(Duration::from_millis(600));
    for i in 0..5 {
        http::get(nginx.port(0), &format!("/after-{i}"));
    }
    let new = wait_for_events(&path, 5);
    let old = wait_for_events(&rotated, 5);
    assert!(
        new.iter().all(|e| field(e, "url.path")
            .as_str()
            .unwrap()
            .starts_with("/after-")),
        "{new:#?}"
    );
    assert!(
        old.iter().all(|e| field(e, "url.path")
            .as_str()
            .unwrap()
            .starts_with("/before-")),
        "{old:#?}"
    );
    assert_eq!((old.len(), new.len()), (5, 5));
}

#[test]
fn the_pipeline_runs_in_workers_only_and_only_when_used() {
    let used = Nginx::start(decoy_config("").workers(2));
    // Listening sockets are the master's, so nginx answers before a worker has finished
    // init_process: wait for both workers to say their shipper started.
    let deadline = Instant::now() + Duration::from_secs(20);
    while used.error_log().matches("ships events").count() < 2 {
        assert!(Instant::now() < deadline, "{}", used.error_log());
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        harness::thread_count(used.master_pid()),
        1,
        "no thread in the master"
    );
    for pid in used.worker_pids() {
        assert_eq!(
            harness::thread_count(pid),
            2,
            "worker {pid}: main thread + shipper"
        );
    }
    assert!(
        used.error_log().matches("ships events").count() == 2,
        "{}",
        used.error_log()
    );

    let unused = Nginx::start(Config::new(
        "server { listen 127.0.0.1:{port0}; location / { return 200; } }",
    ));
    for pid in unused.worker_pids() {
        assert_eq!(
            harness::thread_count(pid),
            1,
            "honeytrap unused: no shipper"
        );
    }
    assert!(!unused
        .prefix()
        .join("logs/honeytrap_events.ndjson")
        .exists());
}

#[test]
fn the_default_events_file_is_under_logs() {
    let nginx = Nginx::start(Config::new(
        "server { listen 127.0.0.1:{port0}; honeytrap_decoy on; }",
    ));
    http::get(nginx.port(0), "/x");
    let events = wait_for_events(&nginx.prefix().join("logs/honeytrap_events.ndjson"), 1);
    assert_eq!(field(&events[0], "url.path"), "/x");
}

#[test]
fn bad_pipeline_directives_fail_nginx_t_with_file_line_and_reason() {
    let cases = [
        (
            "honeytrap_elasticsearch ftp://es.example;",
            "honeytrap_elasticsearch: ",
        ),
        (
            "honeytrap_elasticsearch http://es.example batch=lots;",
            "honeytrap_elasticsearch: ",
        ),
        (
            "honeytrap_elasticsearch http://es.example api_key_file=/nonexistent/key;",
            "/nonexistent/key",
        ),
        (
            "honeytrap_queue_size 3;",
            "honeytrap_queue_size: invalid size \"3\"",
        ),
        ("honeytrap_sensor \"\";", "honeytrap_sensor: name must be"),
        (
            "honeytrap_events_file /nonexistent-dir/events.ndjson;",
            "/nonexistent-dir/events.ndjson",
        ),
    ];
    for (directive, reason) in cases {
        // A missing directory is reported by nginx when it opens the file, without a line.
        let with_line = !directive.starts_with("honeytrap_events_file");
        harness::assert_rejected(
            directive,
            "server { listen 127.0.0.1:{port0}; honeytrap_decoy on; }",
            reason,
            with_line,
        );
    }
}

fn es_config(es_url: &str) -> Config {
    decoy_config(&format!(
        "honeytrap_elasticsearch {es_url} flush=100ms backoff=100ms backoff_max=300ms timeout=2s;"
    ))
}

fn file_ids(events: &[serde_json::Value]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| field(e, "event.id").as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn events_reach_elasticsearch_with_the_same_ids_as_the_file() {
    let es = fake_es::FakeEs::start();
    let nginx = Nginx::start(es_config(&es.url()));
    for i in 0..20 {
        http::get(nginx.port(0), &format!("/scan-{i}"));
    }
    let events = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 20);
    assert!(
        es.wait_for_docs(20, Duration::from_secs(15)),
        "only {} docs",
        es.doc_count()
    );
    es.assert_no_violations();
    let docs = es.docs();
    assert_eq!(
        docs.keys().cloned().collect::<BTreeSet<_>>(),
        file_ids(&events)
    );
    assert_eq!(es.templates().len(), 1, "index template installed once");
    let doc = docs.values().next().unwrap();
    assert_eq!(field(doc, "event.action"), "decoy-hit");
}

#[test]
fn elasticsearch_down_then_back_every_event_arrives_once() {
    let es = fake_es::FakeEs::start();
    let nginx = Nginx::start(es_config(&es.url()));
    http::get(nginx.port(0), "/warm-up");
    assert!(es.wait_for_docs(1, Duration::from_secs(15)));

    es.set_mode(fake_es::Mode::Down);
    for i in 0..30 {
        let response = http::get(nginx.port(0), &format!("/while-down-{i}"));
        assert_eq!(response.status, 404);
    }
    let events = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 31);
    thread::sleep(Duration::from_millis(500));
    let status: serde_json::Value =
        serde_json::from_slice(&http::get(nginx.port(2), "/status").body).unwrap();
    let es_sink = status["pipeline"]["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "elasticsearch")
        .cloned();
    let es_sink = es_sink.unwrap_or_else(|| panic!("{status:#}"));
    // Spooled to disk under honeytrap_spool/, which nginx created for the workers' user.
    assert!(
        es_sink["spooled"].as_u64().unwrap() > 0,
        "{status:#}\n{}",
        nginx.error_log()
    );
    let spool = nginx.prefix().join("honeytrap_spool/elasticsearch");
    assert!(spool.is_dir(), "no spool at {}", spool.display());

    es.set_mode(fake_es::Mode::Ok);
    assert!(
        es.wait_for_docs(31, Duration::from_secs(20)),
        "only {} of 31 docs",
        es.doc_count()
    );
    thread::sleep(Duration::from_millis(500));
    assert_eq!(es.doc_count(), 31);
    assert_eq!(
        es.docs().keys().cloned().collect::<BTreeSet<_>>(),
        file_ids(&events)
    );
    es.assert_no_violations();
}

#[test]
fn fifty_reloads_under_traffic_lose_no_event_and_leak_nothing() {
    let nginx = Nginx::start(decoy_config("").workers(2));
    let path = nginx.prefix().join("logs/events.ndjson");
    let port = nginx.port(0);
    let master_fds = harness::fd_count(nginx.master_pid());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        thread::spawn(move || {
            let (mut answered, deadline) = (0u32, Instant::now() + Duration::from_secs(240));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let raw =
                    format!("GET /r-{answered} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                if matches!(http::request(port, raw.as_bytes()), Ok(r) if r.status == 404) {
                    answered += 1;
                }
                thread::sleep(Duration::from_millis(3));
            }
            answered
        })
    };
    for _ in 0..50 {
        nginx.reload();
        for pid in nginx.worker_pids() {
            let threads = harness::thread_count(pid);
            assert!(threads <= 2, "worker {pid} has {threads} threads");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = load.join().unwrap() as usize;
    assert!(answered > 50, "the load barely ran: {answered}");
    assert_eq!(
        harness::fd_count(nginx.master_pid()),
        master_fds,
        "master fds grew"
    );

    wait_for_events(&path, answered);
    thread::sleep(Duration::from_millis(500));
    let events = wait_for_events(&path, answered);
    assert_eq!(
        events.len(),
        answered,
        "events lost or duplicated across reloads"
    );
    assert_eq!(file_ids(&events).len(), answered, "duplicate event ids");
}

#[test]
fn the_audit_log_carries_the_same_events_in_modsecurity_format() {
    let nginx = Nginx::start(decoy_config(
        "honeytrap_audit_log {prefix}/logs/modsec_audit.json;",
    ));
    http::get(nginx.port(0), "/phpmyadmin/?x=1");
    let events = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 1);
    let audit = wait_for_events(&nginx.prefix().join("logs/modsec_audit.json"), 1);
    let tx = &audit[0]["transaction"];
    assert_eq!(&tx["unique_id"], field(&events[0], "event.id"));
    assert_eq!(tx["client_ip"], "127.0.0.1");
    assert_eq!(tx["request"]["uri"], "/phpmyadmin/?x=1");
    assert_eq!(tx["response"]["http_code"], 404);
    assert!(!tx["messages"].as_array().unwrap().is_empty(), "{tx:#}");
}
