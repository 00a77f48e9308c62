//! The module loads, merges `honeytrap on|off`, hooks requests nginx answers early, filters
//! only enabled locations, leaves content unchanged, and survives its own panics.

mod harness;

use harness::{http, test_config, Config, Nginx};

fn conf_line_of(prefix: &std::path::Path, needle: &str) -> usize {
    let conf = std::fs::read_to_string(prefix.join("conf/nginx.conf")).unwrap();
    conf.lines()
        .position(|l| l.contains(needle))
        .expect("needle in conf")
        + 1
}

#[test]
fn config_accepts_honeytrap_in_http_server_and_location() {
    let config = Config::new(
        "honeytrap on;
         server { listen 127.0.0.1:{port0}; honeytrap off;
                  location / { honeytrap on; } }",
    );
    let (output, _prefix) = test_config(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nginx -t failed:\n{stderr}");
    assert!(stderr.contains("test is successful"), "{stderr}");
}

#[test]
fn config_rejects_bad_values_with_file_line_and_reason() {
    let cases = [
        (
            "honeytrap maybe;",
            "invalid value \"maybe\" in \"honeytrap\" directive, it must be \"on\" or \"off\"",
        ),
        (
            "honeytrap on off;",
            "invalid number of arguments in \"honeytrap\" directive",
        ),
    ];
    for (directive, reason) in cases {
        let config = Config::new(&format!(
            "server {{ listen 127.0.0.1:{{port0}};\n location / {{\n {directive}\n }} }}"
        ));
        let (output, prefix) = test_config(&config);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{directive} accepted:\n{stderr}");
        assert!(
            stderr.contains("[emerg]") && stderr.contains(reason),
            "{directive}: {stderr}"
        );
        let line = conf_line_of(prefix.path(), directive);
        let place = format!("{}:{line}", prefix.path().join("conf/nginx.conf").display());
        assert!(
            stderr.contains(&place),
            "{directive}: expected {place} in {stderr}"
        );
    }
}

#[test]
fn config_rejects_honeytrap_outside_http() {
    let config = Config::new("server { listen 127.0.0.1:{port0}; }").main("honeytrap on;");
    let (output, prefix) = test_config(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let line = conf_line_of(prefix.path(), "honeytrap on;");
    assert!(
        stderr.contains("\"honeytrap\" directive is not allowed here"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("nginx.conf:{line}")), "{stderr}");
}

fn log_has(nginx: &Nginx, needle: &str) -> bool {
    nginx.error_log().contains(needle)
}

fn traced(log: &str, what: &str, uri: &str) -> bool {
    log.contains(&format!("honeytrap trace: {what} uri=\"{uri}\""))
}

#[test]
fn filters_run_for_enabled_locations_only_and_content_is_unchanged() {
    let page: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("<p>line {i}</p>\n").into_bytes())
        .collect();
    let nginx = Nginx::start(
        Config::new(
            "server { listen 127.0.0.1:{port1};
                      location /chunked/ { return 200 \"$request_uri upstream body\"; chunked_transfer_encoding on; }
                      location / { root {prefix}/html; } }
             server { listen 127.0.0.1:{port0};
                      location /static-on/ { honeytrap on; alias {prefix}/html/; }
                      location /static-off/ { honeytrap off; alias {prefix}/html/; }
                      location /proxy-on/ { honeytrap on; proxy_pass http://127.0.0.1:{port1}/; }
                      location /proxy-off/ { proxy_pass http://127.0.0.1:{port1}/; } }",
        )
        .file("html/page.html", page.clone()),
    );

    for path in [
        "/static-on/page.html",
        "/static-off/page.html",
        "/proxy-on/page.html",
        "/proxy-off/page.html",
    ] {
        let response = nginx.get(path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.body, page, "{path}: body changed");
        assert_eq!(
            response.header("Content-Length"),
            Some(page.len().to_string().as_str()),
            "{path}"
        );
    }
    // Our body filter sits below the copy filter, as nginx places C filter modules: static
    // file contents reach it read into memory, never as file-backed buffers.
    assert!(
        !log_has(&nginx, "file-backed"),
        "body filter above the copy filter\n{}",
        nginx.error_log()
    );

    let proxied = nginx.get("/proxy-on/chunked/x");
    assert_eq!(proxied.text(), "/chunked/x upstream body");

    let log = nginx.error_log();
    for uri in [
        "/static-on/page.html",
        "/proxy-on/page.html",
        "/proxy-on/chunked/x",
    ] {
        assert!(
            traced(&log, "Rewrite", uri),
            "{uri}: request hook not called\n{log}"
        );
        assert!(
            traced(&log, "header_filter", uri),
            "{uri}: header filter not called\n{log}"
        );
        assert!(
            traced(&log, "body_filter last", uri),
            "{uri}: body filter not called\n{log}"
        );
    }
    for uri in [
        "/static-off/page.html",
        "/proxy-off/page.html",
        "/page.html",
        "/chunked/x",
    ] {
        for what in [
            "ServerRewrite",
            "Rewrite",
            "header_filter",
            "body_filter",
            "body_filter last",
        ] {
            assert!(
                !traced(&log, what, uri),
                "{uri}: {what} called while honeytrap is off\n{log}"
            );
        }
    }
}

#[test]
fn child_blocks_turn_it_off_and_on_again() {
    let nginx = Nginx::start(Config::new(
        "honeytrap on;
         server { listen 127.0.0.1:{port0};
                  location /inherit { return 200; }
                  location /off { honeytrap off;
                                  location /off/on { honeytrap on; return 200; }
                                  return 200; } }",
    ));
    for path in ["/inherit", "/off", "/off/on"] {
        assert_eq!(nginx.get(path).status, 200);
    }
    let log = nginx.error_log();
    assert!(traced(&log, "Rewrite", "/inherit"), "{log}");
    assert!(!traced(&log, "Rewrite", "/off"), "{log}");
    assert!(!traced(&log, "header_filter", "/off"), "{log}");
    assert!(traced(&log, "Rewrite", "/off/on"), "{log}");
    assert!(traced(&log, "header_filter", "/off/on"), "{log}");
}

#[test]
fn requests_answered_by_return_are_seen() {
    let nginx = Nginx::start(Config::new(
        "server { listen 127.0.0.1:{port0}; honeytrap on;
                  location /decoy { return 200 \"ok\"; } }
         server { listen 127.0.0.1:{port1}; honeytrap on; return 403; }",
    ));
    assert_eq!(nginx.get("/decoy").text(), "ok");
    assert_eq!(http::get(nginx.port(1), "/anything").status, 403);
    let log = nginx.error_log();
    assert!(
        traced(&log, "Rewrite", "/decoy"),
        "location-level return not seen\n{log}"
    );
    assert!(
        traced(&log, "ServerRewrite", "/anything"),
        "server-level return not seen\n{log}"
    );
}

fn worker_pid(response: &http::Response) -> String {
    response
        .header("X-Worker")
        .expect("X-Worker header")
        .to_owned()
}

#[test]
fn a_panic_fails_only_that_request_and_the_worker_lives_on() {
    let nginx = Nginx::start(
        Config::new(
            "add_header X-Worker $pid always;
             server { listen 127.0.0.1:{port0}; honeytrap on;
                      location /ok { return 200 \"fine\"; }
                      location /panic-request { honeytrap_test_panic request; return 200 \"never\"; }
                      location /panic-header { honeytrap_test_panic header; return 200 \"never\"; }
                      location /panic-body { honeytrap_test_panic body; return 200 \"never\"; } }",
        )
        .expect_fatal("honeytrap: panic in "),
    );
    let before = nginx.get("/ok");
    assert_eq!(before.status, 200);
    let pid = worker_pid(&before);

    for (path, entry_point) in [
        ("/panic-request", "request handler"),
        ("/panic-header", "header filter"),
    ] {
        let failed = nginx.get(path);
        assert_eq!(failed.status, 500, "{path}");
        let after = nginx.get("/ok");
        assert_eq!(
            (after.status, after.text().as_str()),
            (200, "fine"),
            "after {path}"
        );
        assert_eq!(worker_pid(&after), pid, "after {path}: worker restarted");
        let log = nginx.error_log();
        let alert = log
            .lines()
            .find(|l| l.contains("[alert]") && l.contains(&format!("panic in {entry_point}")));
        let alert = alert.unwrap_or_else(|| panic!("no alert for {path}\n{log}"));
        assert!(
            alert.contains("forced panic") && alert.contains(&format!("request: \"GET {path}")),
            "{alert}"
        );
    }

    // Headers are already out when the body filter runs: the response is aborted.
    let aborted = http::request(
        nginx.port(0),
        b"GET /panic-body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        !matches!(&aborted, Ok(r) if r.status == 200 && r.text() == "never"),
        "{aborted:?}"
    );
    let after = nginx.get("/ok");
    assert_eq!(worker_pid(&after), pid);
    assert!(nginx.error_log().contains("panic in body filter"));
    assert_eq!(nginx.worker_pids().len(), 1);
}

/// A port taken between the harness picking it and nginx binding it (another test's client
/// socket can take it) makes nginx give up on that attempt; the harness starts again on new
/// ports, and the abandoned attempt's bind errors do not fail the test.
#[test]
fn a_port_taken_before_nginx_binds_it_is_retried_on_new_ports() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let config = Config::new(
        "server { listen 127.0.0.1:{port0}; honeytrap on;
                  location / { return 200 \"served\"; } }",
    );
    let nginx = Nginx::start_with_first_ports(config, Some(vec![taken_port]));
    assert_ne!(nginx.port(0), taken_port);
    let response = nginx.get("/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"served");
    drop(nginx);
    drop(taken);
}
