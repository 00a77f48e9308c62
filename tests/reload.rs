//! Reloads under traffic: no alerts, no failed request, the worker count stays as configured.

mod harness;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use harness::{http, Config, Nginx};

#[test]
fn twenty_reloads_under_light_load() {
    let nginx = Nginx::start(
        Config::new(
            "honeytrap on;
             server { listen 127.0.0.1:{port0};
                      location / { return 200 \"ok\"; }
                      location /off { honeytrap off; return 200 \"ok\"; } }",
        )
        .workers(2),
    );
    let port = nginx.port(0);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let path = if n % 2 == 0 { "/" } else { "/off" };
                match http::request(
                    port,
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                ) {
                    Ok(r) if r.status == 200 && r.text() == "ok" => {
                        ok.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                n += 1;
                thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let master_fds = harness::fd_count(nginx.master_pid());
    for _ in 0..20 {
        nginx.reload();
        assert_eq!(nginx.worker_pids().len(), 2);
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );
    assert!(ok.load(Ordering::Relaxed) > 20, "load generator barely ran");
    assert_eq!(
        harness::fd_count(nginx.master_pid()),
        master_fds,
        "master leaks fds across reloads"
    );
    let log = nginx.error_log();
    assert_eq!(
        log.matches("signal 1 (SIGHUP) received").count(),
        20,
        "{log}"
    );
}
