//! `honeytrap es setup` against the Elasticsearch contract fake, and a one-request Kibana
//! stand-in that checks the saved objects import (multipart, `kbn-xsrf`, credentials).

#[path = "../../honeytrap-core/tests/support/fake_es.rs"]
mod fake_es;
#[path = "support/run.rs"]
mod run;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use base64::Engine;
use fake_es::FakeEs;
use honeytrap_core::sink::elasticsearch::index_template;
use run::honeytrap;
use serde_json::Value;

/// `honeytrap es setup` against `url`, importing `objects` into the Kibana at `kibana`.
fn setup_with_kibana(url: &str, kibana: &str, objects: &str, cwd: &Path) -> Output {
    let args = [
        "es",
        "setup",
        "--url",
        url,
        "--kibana-url",
        kibana,
        "--kibana-objects",
        objects,
    ];
    honeytrap(&args, cwd)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn setup_installs_the_module_template_with_an_api_key_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("es.key"), "kid:ksecret\n").unwrap();
    let es = FakeEs::start();
    es.expect_auth(Some(&format!("ApiKey {}", b64("kid:ksecret"))));
    let url = es.url();
    for _ in 0..2 {
        let o = honeytrap(
            &["es", "setup", "--url", &url, "--api-key-file", "es.key"],
            dir.path(),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.contains("index template logs-honeytrap.events-default installed"),
            "{out}"
        );
    }
    es.assert_no_violations();
    let templates = es.templates();
    assert_eq!(templates.len(), 1);
    let want: Value =
        serde_json::from_str(&index_template("logs-honeytrap.events-default")).unwrap();
    assert_eq!(templates["logs-honeytrap.events-default"], want);
}

#[test]
fn setup_with_basic_auth_custom_index_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    let es = FakeEs::start();
    es.expect_auth(Some(&format!("Basic {}", b64("elastic:s3cret"))));
    let url = es.url();
    let o = honeytrap(
        &[
            "es",
            "setup",
            "--url",
            &url,
            "--index",
            "logs-honeytrap.events-lab",
            "--user",
            "elastic",
            "--password-file",
            "pw",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(es.templates().contains_key("logs-honeytrap.events-lab"));

    // Wrong password: the fake answers 401, the tool says what to check.
    std::fs::write(dir.path().join("pw"), "wrong\n").unwrap();
    let o = honeytrap(
        &[
            "es",
            "setup",
            "--url",
            &url,
            "--user",
            "elastic",
            "--password-file",
            "pw",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("credentials were refused"), "{err}");

    // Flags that do not go together are refused before any request.
    let o = honeytrap(
        &[
            "es",
            "setup",
            "--url",
            &url,
            "--api-key-file",
            "k",
            "--user",
            "u",
            "--password-file",
            "pw",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let o = honeytrap(&["es", "setup", "--url", &url, "--user", "u"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--password-file"));
}

/// Serves one request with `answer` and hands back what it received.
fn one_shot_kibana(answer: &'static str) -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        // Read the head, then as many body bytes as Content-Length says.
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let _ = s.write_all(resp.as_bytes());
        let _ = tx.send(got);
    });
    (url, rx)
}

#[test]
fn setup_imports_kibana_saved_objects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("es.key"), "encodedkey==\n").unwrap();
    let objects = "{\"type\":\"index-pattern\",\"id\":\"honeytrap\",\"attributes\":{\"title\":\"logs-honeytrap.events-*\"}}\n\
                   {\"type\":\"dashboard\",\"id\":\"honeytrap-overview\",\"attributes\":{\"title\":\"Honeytrap\"}}\n";
    std::fs::write(dir.path().join("objects.ndjson"), objects).unwrap();
    let es = FakeEs::start();
    let (kibana, got) = one_shot_kibana(r#"{"success":true,"successCount":2,"errors":[]}"#);
    let url = es.url();
    let o = honeytrap(
        &[
            "es",
            "setup",
            "--url",
            &url,
            "--api-key-file",
            "es.key",
            "--kibana-url",
            &kibana,
            "--kibana-objects",
            "objects.ndjson",
        ],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("Kibana: 2 saved object(s) imported"), "{out}");
    let req = String::from_utf8(got.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert!(
        req.starts_with("POST /api/saved_objects/_import?overwrite=true HTTP/1.1\r\n"),
        "{req}"
    );
    let lower = req.to_lowercase();
    assert!(lower.contains("\r\nkbn-xsrf: true\r\n"), "{req}");
    assert!(
        lower.contains("\r\nauthorization: apikey encodedkey==\r\n"),
        "{req}"
    );
    assert!(
        lower.contains("content-type: multipart/form-data; boundary="),
        "{req}"
    );
    assert!(
        req.contains("name=\"file\"; filename=\"export.ndjson\""),
        "{req}"
    );
    assert!(req.contains(objects), "{req}");
    es.assert_no_violations();
}

#[test]
fn setup_reports_kibana_import_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("objects.ndjson"),
        "{\"type\":\"dashboard\",\"id\":\"x\"}\n",
    )
    .unwrap();
    let es = FakeEs::start();
    let (kibana, _got) = one_shot_kibana(
        r#"{"success":false,"successCount":0,"errors":[{"id":"x","error":{"type":"missing_references"}}]}"#,
    );
    let url = es.url();
    let o = setup_with_kibana(&url, &kibana, "objects.ndjson", dir.path());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("imported 0 of 1") && err.contains("missing_references"),
        "{err}"
    );
}

#[test]
fn setup_passes_the_stacks_own_saved_objects_through_unchanged() {
    let objects =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kibana/honeytrap.ndjson");
    if !objects.exists() {
        println!("SKIPPED: {} not in this checkout", objects.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let es = FakeEs::start();
    let (kibana, got) = one_shot_kibana(r#"{"success":true,"successCount":10,"errors":[]}"#);
    let url = es.url();
    let path = objects.display().to_string();
    let o = setup_with_kibana(&url, &kibana, &path, dir.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let req = got.recv_timeout(Duration::from_secs(10)).unwrap();
    let file = std::fs::read(&objects).unwrap();
    assert!(
        req.windows(file.len()).any(|w| w == file.as_slice()),
        "the file was altered"
    );
}
