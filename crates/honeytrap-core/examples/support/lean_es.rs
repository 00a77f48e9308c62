//! A lean stand-in for Elasticsearch, for throughput benchmarks: a real HTTP/1.1 server on
//! loopback (keep-alive, Content-Length or chunked bodies) that answers `_bulk` with a real
//! bulk response, one item per document, after checking the framing the sink must produce
//! (`{"create":{"_id":"..."}}` + document line pairs, newline-terminated). Unlike the contract
//! fake in `tests/support/fake_es.rs` it keeps no documents and parses no JSON, so it costs
//! the shipper's machine little CPU and no memory growth; it only counts.
//!
//! Modes, switchable at any time: `Ok`, `Down` (port closed: connections refused, open ones
//! dropped), `Slow(d)` (documents accepted, answers delayed by `d`), `Hang` (requests read,
//! never answered while the mode lasts).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Down,
    Slow(Duration),
    Hang,
}

impl Mode {
    /// `ok`, `down`, `hang`, `slow` (2 s) or `slow=<ms>`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "ok" => Some(Mode::Ok),
            "down" => Some(Mode::Down),
            "hang" => Some(Mode::Hang),
            "slow" => Some(Mode::Slow(Duration::from_secs(2))),
            _ => {
                let ms = s.strip_prefix("slow=")?.parse().ok()?;
                Some(Mode::Slow(Duration::from_millis(ms)))
            }
        }
    }

    pub fn label(self) -> String {
        match self {
            Mode::Ok => "ok".into(),
            Mode::Down => "down".into(),
            Mode::Hang => "hang".into(),
            Mode::Slow(d) => format!("slow={}", d.as_millis()),
        }
    }
}

struct Shared {
    mode: Mutex<Mode>,
    /// Set while `Down`: the acceptor and every connection end.
    down: AtomicBool,
    docs: AtomicU64,
    bulk_requests: AtomicU64,
    bad_requests: AtomicU64,
    body_bytes: AtomicU64,
    seq_no: AtomicU64,
}

impl Shared {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct LeanEs {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

/// What the server counted so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Documents acknowledged with status 201.
    pub docs: u64,
    pub bulk_requests: u64,
    /// Requests answered 4xx (bad framing, unknown path).
    pub bad_requests: u64,
    pub body_bytes: u64,
}

impl LeanEs {
    /// Listens on `addr` (e.g. `127.0.0.1:0`) in `Ok` mode.
    pub fn start(addr: &str) -> io::Result<LeanEs> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Ok),
            down: AtomicBool::new(false),
            docs: AtomicU64::new(0),
            bulk_requests: AtomicU64::new(0),
            bad_requests: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            seq_no: AtomicU64::new(0),
        });
        let acceptor = spawn_acceptor(shared.clone(), listener);
        Ok(LeanEs {
            shared,
            addr,
            acceptor: Mutex::new(Some(acceptor)),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn mode(&self) -> Mode {
        self.shared.mode()
    }

    pub fn counts(&self) -> Counts {
        let s = &self.shared;
        Counts {
            docs: s.docs.load(Ordering::Relaxed),
            bulk_requests: s.bulk_requests.load(Ordering::Relaxed),
            bad_requests: s.bad_requests.load(Ordering::Relaxed),
            body_bytes: s.body_bytes.load(Ordering::Relaxed),
        }
    }

    pub fn set_mode(&self, mode: Mode) -> io::Result<()> {
        let was_down = self.shared.down.load(Ordering::SeqCst);
        *self.shared.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
        let mut acceptor = self.acceptor.lock().unwrap_or_else(|e| e.into_inner());
        match (was_down, mode == Mode::Down) {
            (false, true) => {
                self.shared.down.store(true, Ordering::SeqCst);
                // A blocking accept() only returns for a connection: make one, so the
                // acceptor sees the flag and drops the listener (the port then refuses).
                let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
                if let Some(handle) = acceptor.take() {
                    let _ = handle.join();
                }
            }
            (true, false) => {
                let listener = rebind(self.addr)?;
                self.shared.down.store(false, Ordering::SeqCst);
                *acceptor = Some(spawn_acceptor(self.shared.clone(), listener));
            }
            _ => {}
        }
        Ok(())
    }
}

fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    // The old listener's port can linger for a moment after it is closed.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() > until => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn spawn_acceptor(shared: Arc<Shared>, listener: TcpListener) -> JoinHandle<()> {
    thread::spawn(move || {
        for stream in listener.incoming() {
            if shared.down.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(stream) = stream {
                let shared = shared.clone();
                thread::spawn(move || serve(&shared, stream));
            }
        }
    })
}

/// One parsed HTTP request.
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub close: bool,
}

/// Reads one request from `stream`, keeping what follows it in `buf` for the next call.
/// `Ok(None)`: the peer closed cleanly. A read timeout on the stream comes back as an error
/// of kind `WouldBlock`/`TimedOut` with the partial request kept in `buf`.
pub fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut scanned = 0;
    let head_end = loop {
        if let Some(at) = memchr::memmem::find(&buf[scanned..], b"\r\n\r\n") {
            break scanned + at;
        }
        scanned = buf.len().saturating_sub(3);
        if buf.len() > 64 * 1024 {
            return Err(bad("header section over 64 KiB"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(bad("connection closed inside a request"))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("header not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(path), Some(version)) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(bad("bad request line"));
    };
    let (mut length, mut chunked, mut close) = (0usize, false, version == "HTTP/1.0");
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().map_err(|_| bad("bad Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let (method, path) = (method.to_owned(), path.to_owned());
    let start = head_end + 4;
    let (body, used) = loop {
        if chunked {
            if let Some(done) = dechunk(&buf[start..])? {
                break (done.0, start + done.1);
            }
        } else if buf.len() >= start + length {
            break (buf[start..start + length].to_vec(), start + length);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("connection closed inside a body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    buf.drain(..used);
    Ok(Some(Request {
        method,
        path,
        body,
        close,
    }))
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

/// A complete chunked body and the bytes it took, or `None` while incomplete.
fn dechunk(data: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = memchr::memmem::find(&data[at..], b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[at..at + eol]).map_err(|_| bad("chunk size"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("chunk size"))?;
        at += eol + 2;
        if data.len() < at + size + 2 {
            return Ok(None);
        }
        if size == 0 {
            return Ok(Some((body, at + 2)));
        }
        body.extend_from_slice(&data[at..at + size]);
        at += size + 2;
    }
}

pub fn write_response(stream: &mut TcpStream, status: u16, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        _ => "Other",
    };
    // One write: header and body leave in the same segment (TCP_NODELAY is set).
    let mut out = Vec::with_capacity(body.len() + 160);
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nX-elastic-product: Elasticsearch\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    out.extend_from_slice(body.as_bytes());
    stream.write_all(&out)
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Wakes an idle read now and then, so that `Down` also drops kept-alive connections.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    loop {
        if shared.down.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        let request = match read_request(&mut stream, &mut buf) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                shared.bad_requests.fetch_add(1, Ordering::Relaxed);
                let _ = write_response(
                    &mut stream,
                    400,
                    &error_body(400, "parse_exception", &e.to_string()),
                );
                return;
            }
            Err(_) => return,
        };
        // Hang: hold the request until the mode changes; the client's timeout decides.
        while shared.mode() == Mode::Hang && !shared.down.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
        }
        if shared.down.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        let (status, body) = handle(shared, &request);
        if let Mode::Slow(delay) = shared.mode() {
            thread::sleep(delay);
        }
        if write_response(&mut stream, status, &body).is_err() || request.close {
            return;
        }
    }
}

fn handle(shared: &Shared, request: &Request) -> (u16, String) {
    let path = request.path.split('?').next().unwrap_or("");
    if let Some(name) = path.strip_prefix("/_index_template/") {
        // The template "exists": the sink checks with GET and installs with PUT if missing.
        return match request.method.as_str() {
            "GET" => (
                200,
                format!(
                    "{{\"index_templates\":[{{\"name\":\"{name}\",\"index_template\":\
                     {{\"index_patterns\":[\"{name}\"],\"data_stream\":{{}}}}}}]}}"
                ),
            ),
            "PUT" => (200, "{\"acknowledged\":true}".into()),
            _ => (405, error_body(405, "method_not_allowed", &request.method)),
        };
    }
    if let Some(index) = path.strip_suffix("/_bulk") {
        if request.method != "POST" {
            return (405, error_body(405, "method_not_allowed", &request.method));
        }
        shared
            .body_bytes
            .fetch_add(request.body.len() as u64, Ordering::Relaxed);
        return match bulk(shared, index.trim_start_matches('/'), &request.body) {
            Ok(answer) => {
                shared.bulk_requests.fetch_add(1, Ordering::Relaxed);
                (200, answer)
            }
            Err(why) => {
                shared.bad_requests.fetch_add(1, Ordering::Relaxed);
                (400, error_body(400, "illegal_argument_exception", &why))
            }
        };
    }
    shared.bad_requests.fetch_add(1, Ordering::Relaxed);
    (404, error_body(404, "resource_not_found_exception", path))
}

/// Checks the NDJSON framing and answers every document `201 created`, as a data stream does.
fn bulk(shared: &Shared, index: &str, body: &[u8]) -> Result<String, String> {
    if body.last() != Some(&b'\n') {
        return Err("The bulk request must be terminated by a newline [\\n]".into());
    }
    let mut ids = Vec::new();
    let mut lines = body[..body.len() - 1].split(|&b| b == b'\n');
    while let Some(action) = lines.next() {
        let id = action
            .strip_prefix(b"{\"create\":{\"_id\":\"")
            .and_then(|rest| rest.strip_suffix(b"\"}}"))
            .ok_or_else(|| format!("line {}: expected a create action", ids.len() * 2 + 1))?;
        let doc = lines
            .next()
            .ok_or_else(|| "action without a document line".to_owned())?;
        if doc.first() != Some(&b'{') || doc.last() != Some(&b'}') {
            return Err(format!(
                "line {}: document is not a JSON object",
                ids.len() * 2 + 2
            ));
        }
        ids.push(id);
    }
    let first_seq = shared.seq_no.fetch_add(ids.len() as u64, Ordering::Relaxed);
    let backing_index = format!(".ds-{index}-2026.01.01-000001");
    let mut out = String::with_capacity(64 + ids.len() * (backing_index.len() + 190));
    out.push_str("{\"errors\":false,\"took\":1,\"items\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let id = String::from_utf8_lossy(id);
        let seq = first_seq + i as u64;
        out.push_str(&format!(
            "{{\"create\":{{\"_index\":\"{backing_index}\",\"_id\":\"{id}\",\"_version\":1,\
             \"result\":\"created\",\"_shards\":{{\"total\":1,\"successful\":1,\"failed\":0}},\
             \"_seq_no\":{seq},\"_primary_term\":1,\"status\":201}}}}"
        ));
    }
    out.push_str("]}");
    shared.docs.fetch_add(ids.len() as u64, Ordering::Relaxed);
    Ok(out)
}

/// Elasticsearch's error document.
fn error_body(status: u16, kind: &str, reason: &str) -> String {
    let reason = reason.replace(['"', '\\'], "'");
    format!(
        "{{\"error\":{{\"root_cause\":[{{\"type\":\"{kind}\",\"reason\":\"{reason}\"}}],\
         \"type\":\"{kind}\",\"reason\":\"{reason}\"}},\"status\":{status}}}"
    )
}
