//! A contract fake of Elasticsearch for tests: a small threaded HTTP/1.1 server on
//! 127.0.0.1 (std::net only) that checks every request the way the real server would read it,
//! stores documents by `_id` with `create` semantics (409 for a duplicate), and can be switched
//! at runtime into failure modes.
//!
//! Use it from another test crate with
//! `#[path = "<relative path>/support/fake_es.rs"] mod fake_es;` (it needs `serde_json`).
//!
//! What it checks, recorded as violations (see [`FakeEs::violations`]):
//! * `_bulk`: `POST`, `Content-Type: application/x-ndjson`, body of action line + document line
//!   pairs ending with a newline, each action `{"create":{"_id":"..."}}`, each document a JSON
//!   object with a string `@timestamp`;
//! * `_index_template`: `GET`/`PUT`, a JSON body with `index_patterns`, `data_stream` and an
//!   `@timestamp` date mapping;
//! * the `Authorization` header, when [`FakeEs::expect_auth`] set one;
//! * anything else is unexpected.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How the fake answers, switchable at any time with [`FakeEs::set_mode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Like a healthy cluster.
    Ok,
    /// Bulk items fail by the order in which their id was first seen (1-based): every
    /// `reject_every`-th id is always answered 400 `mapper_parsing_exception`; every
    /// `throttle_every`-th (not rejected) is answered 429 the first time only. 0 disables.
    Partial {
        reject_every: u64,
        throttle_every: u64,
    },
    /// Every request is answered with this status as a whole (e.g. 429, 500, 503), nothing is
    /// stored.
    Status(u16),
    /// Requests are handled (documents stored) but answered only after this delay.
    Slow(Duration),
    /// Not listening: connections are refused, open ones are closed. Leaving this mode binds
    /// the same port again.
    Down,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_bulk(&self) -> bool {
        self.path
            .split('?')
            .next()
            .unwrap_or("")
            .ends_with("/_bulk")
    }

    /// The `_id`s of a bulk request, in order.
    pub fn bulk_ids(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.body);
        text.split('\n')
            .step_by(2)
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|a| a["create"]["_id"].as_str().map(str::to_owned))
            .collect()
    }
}

#[derive(Default)]
struct State {
    mode: Option<Mode>,
    expected_auth: Option<String>,
    fail_templates: bool,
    poison: Option<String>,
    /// Stored documents by `_id`: (index, document).
    docs: BTreeMap<String, (String, Value)>,
    /// Ids in the order they were stored.
    arrival: Vec<String>,
    templates: BTreeMap<String, Value>,
    requests: Vec<Request>,
    violations: Vec<String>,
    /// First-seen order of every id, for `Mode::Partial`.
    ordinals: HashMap<String, u64>,
    rejected: BTreeSet<String>,
    throttled: BTreeSet<String>,
    conflicts: u64,
}

struct Shared {
    state: Mutex<State>,
    down: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A failed assertion in a test thread must not hide the fake's own records.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn closing(&self) -> bool {
        self.down.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst)
    }
}

pub struct FakeEs {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl FakeEs {
    pub fn start() -> FakeEs {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mode: Some(Mode::Ok),
                ..State::default()
            }),
            down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let acceptor = spawn_acceptor(Arc::clone(&shared), listener);
        FakeEs {
            shared,
            addr,
            acceptor: Mutex::new(Some(acceptor)),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn mode(&self) -> Mode {
        self.shared.lock().mode.clone().unwrap_or(Mode::Ok)
    }

    pub fn set_mode(&self, mode: Mode) {
        let was_down = self.shared.down.load(Ordering::SeqCst);
        self.shared.lock().mode = Some(mode.clone());
        match (was_down, mode == Mode::Down) {
            (false, true) => {
                self.shared.down.store(true, Ordering::SeqCst);
                // Once this returns the port refuses connections.
                if let Some(handle) = self.acceptor.lock().unwrap().take() {
                    let _ = handle.join();
                }
            }
            (true, false) => {
                let listener = rebind(self.addr);
                self.shared.down.store(false, Ordering::SeqCst);
                *self.acceptor.lock().unwrap() =
                    Some(spawn_acceptor(Arc::clone(&self.shared), listener));
            }
            _ => {}
        }
    }

    /// Requires this exact `Authorization` header on every request (401 and a violation
    /// otherwise).
    pub fn expect_auth(&self, header: Option<&str>) {
        self.shared.lock().expected_auth = header.map(str::to_owned);
    }

    /// Template requests fail with 500 while events are still accepted.
    pub fn fail_templates(&self, on: bool) {
        self.shared.lock().fail_templates = on;
    }

    /// A bulk request with a document containing `marker` is rejected as a whole with 400, as
    /// Elasticsearch does for a body it cannot parse.
    pub fn reject_requests_containing(&self, marker: Option<&str>) {
        self.shared.lock().poison = marker.map(str::to_owned);
    }

    /// Stores a document as if it had been indexed earlier.
    pub fn insert_doc(&self, index: &str, id: &str, doc: Value) {
        let mut st = self.shared.lock();
        st.docs.insert(id.to_owned(), (index.to_owned(), doc));
        st.arrival.push(id.to_owned());
    }

    pub fn docs(&self) -> BTreeMap<String, Value> {
        self.shared
            .lock()
            .docs
            .iter()
            .map(|(id, (_, doc))| (id.clone(), doc.clone()))
            .collect()
    }

    pub fn doc_count(&self) -> usize {
        self.shared.lock().docs.len()
    }

    /// Index each document was written to, by id.
    pub fn doc_indices(&self) -> BTreeMap<String, String> {
        self.shared
            .lock()
            .docs
            .iter()
            .map(|(id, (index, _))| (id.clone(), index.clone()))
            .collect()
    }

    /// Ids in the order they were first stored.
    pub fn arrival_order(&self) -> Vec<String> {
        self.shared.lock().arrival.clone()
    }

    pub fn templates(&self) -> BTreeMap<String, Value> {
        self.shared.lock().templates.clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    pub fn bulk_requests(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::is_bulk)
            .collect()
    }

    pub fn count_requests(&self, method: &str, path_prefix: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .count()
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    #[track_caller]
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "requests broke the Elasticsearch contract:\n{}",
            v.join("\n")
        );
    }

    /// Ids answered 400 `mapper_parsing_exception` in `Mode::Partial`.
    pub fn rejected_ids(&self) -> BTreeSet<String> {
        self.shared.lock().rejected.clone()
    }

    /// Ids answered 429 once in `Mode::Partial`.
    pub fn throttled_ids(&self) -> BTreeSet<String> {
        self.shared.lock().throttled.clone()
    }

    /// Items answered 409 because the id was already stored.
    pub fn conflicts(&self) -> u64 {
        self.shared.lock().conflicts
    }

    /// Waits until `n` documents are stored; false on timeout.
    pub fn wait_for_docs(&self, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.doc_count() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        self.doc_count() >= n
    }
}

impl Drop for FakeEs {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self
            .acceptor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = handle.join();
        }
    }
}

fn rebind(addr: SocketAddr) -> TcpListener {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr) {
            Ok(listener) => return listener,
            Err(e) if Instant::now() < end => {
                let _ = e;
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("cannot bind {addr} again: {e}"),
        }
    }
}

fn spawn_acceptor(shared: Arc<Shared>, listener: TcpListener) -> JoinHandle<()> {
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        // Polling lets `Down` close the listener promptly; dropping it refuses connections.
        while !shared.closing() {
            match listener.accept() {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    thread::spawn(move || serve(shared, stream));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(2))
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    })
}

struct Parsed {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

enum Parse {
    Incomplete,
    Done(Parsed, usize),
    Bad(String),
}

fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match parse_request(&buf) {
            Parse::Done(req, used) => {
                buf.drain(..used);
                if shared.closing() {
                    return;
                }
                let close = req.close;
                let (status, body, delay) = handle(&shared, req);
                if !delay.is_zero() {
                    thread::sleep(delay);
                }
                if shared.closing()
                    || write_response(&mut stream, status, &body, close).is_err()
                    || close
                {
                    return;
                }
            }
            Parse::Bad(why) => {
                shared
                    .lock()
                    .violations
                    .push(format!("malformed HTTP request: {why}"));
                let _ = write_response(
                    &mut stream,
                    400,
                    &error_body(400, "parse_exception", &why),
                    true,
                );
                return;
            }
            Parse::Incomplete => match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if shared.closing() {
                        // Down: drop idle connections too, like a dead server.
                        return;
                    }
                }
                Err(_) => return,
            },
        }
    }
}

fn parse_request(buf: &[u8]) -> Parse {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Parse::Bad("header section larger than 64 KiB".into());
        }
        return Parse::Incomplete;
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
        return Parse::Bad("header section is not UTF-8".into());
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    if parts.len() != 3 || !parts[2].starts_with("HTTP/1.") {
        return Parse::Bad(format!("request line {request_line:?}"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parse::Bad(format!("header line {line:?}"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
        || parts[2] == "HTTP/1.0";
    let start = head_end + 4;
    let (body, used) =
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            match dechunk(&buf[start..]) {
                Ok(Some((body, n))) => (body, start + n),
                Ok(None) => return Parse::Incomplete,
                Err(e) => return Parse::Bad(e),
            }
        } else {
            let len = match header("content-length").map(str::parse::<usize>) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => return Parse::Bad("bad Content-Length".into()),
            };
            if buf.len() < start + len {
                return Parse::Incomplete;
            }
            (buf[start..start + len].to_vec(), start + len)
        };
    Parse::Done(
        Parsed {
            method: parts[0].to_owned(),
            path: parts[1].to_owned(),
            headers,
            body,
            close,
        },
        used,
    )
}

/// Decodes a chunked body; `Ok(None)` if it is not complete yet.
fn dechunk(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = data[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[at..at + line_end]).map_err(|_| "chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("chunk size {size_text:?}"))?;
        at += line_end + 2;
        if size == 0 {
            // No trailers expected: just the final CRLF.
            if data.len() < at + 2 {
                return Ok(None);
            }
            return Ok(Some((body, at + 2)));
        }
        if data.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[at..at + size]);
        at += size + 2;
    }
}

fn write_response(stream: &mut TcpStream, status: u16, body: &str, close: bool) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nX-elastic-product: Elasticsearch\r\n\
         Content-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn error_body(status: u16, kind: &str, reason: &str) -> String {
    json!({
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status,
    })
    .to_string()
}

/// Answers one request: (status, body, delay before answering).
fn handle(shared: &Shared, req: Parsed) -> (u16, String, Duration) {
    let mut st = shared.lock();
    let mode = st.mode.clone().unwrap_or(Mode::Ok);
    let (status, body) = answer(&mut st, &mode, &req);
    st.requests.push(Request {
        at: Instant::now(),
        method: req.method,
        path: req.path,
        headers: req.headers,
        body: req.body,
        status,
    });
    let delay = match mode {
        Mode::Slow(d) => d,
        _ => Duration::ZERO,
    };
    (status, body, delay)
}

fn answer(st: &mut State, mode: &Mode, req: &Parsed) -> (u16, String) {
    let header = |n: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    if let Some(expected) = st.expected_auth.clone() {
        if header("authorization") != Some(expected.as_str()) {
            let got = if header("authorization").is_some() {
                "a wrong"
            } else {
                "no"
            };
            st.violations.push(format!(
                "{} {}: {got} Authorization header",
                req.method, req.path
            ));
            return (
                401,
                error_body(
                    401,
                    "security_exception",
                    "missing authentication credentials",
                ),
            );
        }
    }
    let path = req.path.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", [""]) => (200, json!({"name": "fake", "version": {"number": "8.15.0"}, "tagline": "You Know, for Search"}).to_string()),
        (method, ["_index_template", name]) => template(st, mode, method, name, req),
        (method, [index, "_bulk"]) => bulk(st, mode, method, Some(index), req),
        (method, ["_bulk"]) => bulk(st, mode, method, None, req),
        _ => {
            st.violations.push(format!("unexpected request {} {}", req.method, req.path));
            (404, error_body(404, "resource_not_found_exception", "no handler"))
        }
    }
}

fn whole_status(mode: &Mode) -> Option<u16> {
    match mode {
        Mode::Status(s) => Some(*s),
        _ => None,
    }
}

fn status_error(status: u16) -> String {
    match status {
        429 => error_body(
            429,
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation",
        ),
        503 => error_body(
            503,
            "cluster_block_exception",
            "blocked by: [SERVICE_UNAVAILABLE/2/no master]",
        ),
        _ => error_body(status, "internal_server_error", "fake failure"),
    }
}

fn template(st: &mut State, mode: &Mode, method: &str, name: &str, req: &Parsed) -> (u16, String) {
    let header = |n: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    match method {
        "GET" => {}
        "PUT" => {
            if !header("content-type").is_some_and(|v| v.starts_with("application/json")) {
                st.violations.push(format!(
                    "PUT _index_template/{name}: Content-Type {:?}",
                    header("content-type")
                ));
            }
            match serde_json::from_slice::<Value>(&req.body) {
                Ok(t) => {
                    let patterns_ok = t["index_patterns"]
                        .as_array()
                        .is_some_and(|p| !p.is_empty() && p.iter().all(Value::is_string));
                    let ds_ok = t["data_stream"].is_object();
                    let ts_ok =
                        t["template"]["mappings"]["properties"]["@timestamp"]["type"] == "date";
                    if !(patterns_ok && ds_ok && ts_ok) {
                        st.violations.push(format!(
                            "PUT _index_template/{name}: needs index_patterns ({patterns_ok}), data_stream ({ds_ok}), @timestamp date ({ts_ok})"
                        ));
                        return (
                            400,
                            error_body(400, "illegal_argument_exception", "bad template"),
                        );
                    }
                }
                Err(e) => {
                    st.violations
                        .push(format!("PUT _index_template/{name}: body is not JSON: {e}"));
                    return (
                        400,
                        error_body(400, "x_content_parse_exception", "bad JSON"),
                    );
                }
            }
        }
        _ => {
            st.violations.push(format!(
                "{method} _index_template/{name}: unexpected method"
            ));
            return (405, error_body(405, "method_not_allowed", method));
        }
    }
    if let Some(status) = whole_status(mode) {
        return (status, status_error(status));
    }
    if st.fail_templates {
        return (500, status_error(500));
    }
    if method == "PUT" {
        let t: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        st.templates.insert(name.to_owned(), t);
        return (200, json!({"acknowledged": true}).to_string());
    }
    match st.templates.get(name) {
        Some(t) => (
            200,
            json!({"index_templates": [{"name": name, "index_template": t}]}).to_string(),
        ),
        None => (
            404,
            error_body(
                404,
                "resource_not_found_exception",
                &format!("index template matching [{name}] not found"),
            ),
        ),
    }
}

fn bulk(
    st: &mut State,
    mode: &Mode,
    method: &str,
    index: Option<&str>,
    req: &Parsed,
) -> (u16, String) {
    let header = |n: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let what = format!("{method} {}", req.path);
    if method != "POST" && method != "PUT" {
        st.violations.push(format!("{what}: _bulk must be POST"));
        return (405, error_body(405, "method_not_allowed", method));
    }
    if method != "POST" {
        st.violations.push(format!("{what}: expected POST"));
    }
    if header("content-type")
        .is_none_or(|v| v.split(';').next().unwrap_or("").trim() != "application/x-ndjson")
    {
        st.violations.push(format!(
            "{what}: Content-Type {:?}, expected application/x-ndjson",
            header("content-type")
        ));
    }
    let Ok(text) = std::str::from_utf8(&req.body) else {
        st.violations.push(format!("{what}: body is not UTF-8"));
        return (400, error_body(400, "parse_exception", "not UTF-8"));
    };
    if text.is_empty() || !text.ends_with('\n') {
        st.violations
            .push(format!("{what}: body must end with a newline"));
        return (
            400,
            error_body(
                400,
                "illegal_argument_exception",
                "The bulk request must be terminated by a newline [\\n]",
            ),
        );
    }
    let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
    if lines.len() % 2 != 0 {
        st.violations.push(format!(
            "{what}: {} lines, expected action + document pairs",
            lines.len()
        ));
        return (
            400,
            error_body(400, "illegal_argument_exception", "odd number of lines"),
        );
    }

    let mut ops = Vec::new();
    for (n, pair) in lines.chunks(2).enumerate() {
        let action: Value = match serde_json::from_str(pair[0]) {
            Ok(v) => v,
            Err(e) => {
                st.violations
                    .push(format!("{what}: action {n} is not JSON: {e}"));
                return (
                    400,
                    error_body(
                        400,
                        "illegal_argument_exception",
                        "Malformed action/metadata line",
                    ),
                );
            }
        };
        let meta = action
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("create"));
        let Some(id) = meta.and_then(|m| m["_id"].as_str()) else {
            st.violations.push(format!(
                "{what}: action {n} is not {{\"create\":{{\"_id\":...}}}}: {action}"
            ));
            return (
                400,
                error_body(
                    400,
                    "illegal_argument_exception",
                    "Malformed action/metadata line",
                ),
            );
        };
        let target = meta
            .and_then(|m| m["_index"].as_str())
            .or(index)
            .map(str::to_owned);
        let Some(target) = target else {
            st.violations
                .push(format!("{what}: action {n} names no index"));
            return (
                400,
                error_body(
                    400,
                    "action_request_validation_exception",
                    "index is missing",
                ),
            );
        };
        let doc: Value = match serde_json::from_str(pair[1]) {
            Ok(v) => v,
            Err(e) => {
                st.violations
                    .push(format!("{what}: document {n} ({id}) is not JSON: {e}"));
                return (
                    400,
                    error_body(400, "x_content_parse_exception", "document is not JSON"),
                );
            }
        };
        if !doc.is_object() || !doc["@timestamp"].is_string() {
            st.violations.push(format!(
                "{what}: document {n} ({id}) has no string @timestamp"
            ));
        }
        ops.push((id.to_owned(), target, doc, pair[1]));
    }

    if let Some(status) = whole_status(mode) {
        return (status, status_error(status));
    }
    if let Some(marker) = st.poison.clone() {
        if ops.iter().any(|(_, _, _, raw)| raw.contains(&marker)) {
            return (
                400,
                error_body(
                    400,
                    "x_content_parse_exception",
                    "[1:2] Unexpected character",
                ),
            );
        }
    }

    let mut items = Vec::new();
    let mut errors = false;
    for (id, target, doc, _) in ops {
        let next = st.ordinals.len() as u64 + 1;
        let ordinal = *st.ordinals.entry(id.clone()).or_insert(next);
        let result = if st.docs.contains_key(&id) {
            st.conflicts += 1;
            Err((
                409,
                "version_conflict_engine_exception",
                format!("[{id}]: version conflict, document already exists (current version [1])"),
            ))
        } else {
            match *mode {
                Mode::Partial { reject_every, .. }
                    if reject_every > 0 && ordinal % reject_every == 0 =>
                {
                    st.rejected.insert(id.clone());
                    Err((
                        400,
                        "mapper_parsing_exception",
                        format!("failed to parse field [source.ip] of type [ip] in document with id '{id}'"),
                    ))
                }
                Mode::Partial { throttle_every, .. }
                    if throttle_every > 0
                        && ordinal % throttle_every == 0
                        && !st.throttled.contains(&id) =>
                {
                    st.throttled.insert(id.clone());
                    Err((
                        429,
                        "es_rejected_execution_exception",
                        "rejected execution of primary operation".to_owned(),
                    ))
                }
                _ => Ok(()),
            }
        };
        let item = match result {
            Ok(()) => {
                st.docs.insert(id.clone(), (target.clone(), doc));
                st.arrival.push(id.clone());
                json!({"create": {"_index": target, "_id": id, "_version": 1, "result": "created", "status": 201}})
            }
            Err((status, kind, reason)) => {
                errors = true;
                json!({"create": {"_index": target, "_id": id, "status": status,
                                  "error": {"type": kind, "reason": reason}}})
            }
        };
        items.push(item);
    }
    (
        200,
        json!({"took": 1, "errors": errors, "items": items}).to_string(),
    )
}
