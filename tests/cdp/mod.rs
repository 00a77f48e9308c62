//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests that
//! need a real browser: its own HTML parser, cookie jar, form submission and subresource loads.
//!
//! The client is small on purpose: a WebSocket text-frame codec over a loopback `TcpStream`
//! and JSON commands on one page session (`Target.attachToTarget` with `flatten`).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one navigation or command may take before the test fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running headless Chromium with a fresh profile, and one page attached.
pub struct Browser {
    child: Child,
    profile: tempfile::TempDir,
    socket: WebSocket,
    session: String,
    next_id: u64,
    /// Events read while waiting for a command's answer.
    pending: VecDeque<Value>,
}

impl Browser {
    pub fn launch() -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("honeytrap-chromium-")
            .tempdir()
            .expect("profile dir");
        let log = fs::File::create(profile.path().join("chromium.log")).unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                // Any free port; Chromium writes the one it took into the profile.
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own group, so Drop can end the renderers and helpers with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run chromium ({e}): install it with `scripts/deps chromium`")
            });
        let mut browser_child = Some(child);
        let (port, path) = match wait_for_devtools(profile.path(), browser_child.as_mut().unwrap())
        {
            Ok(found) => found,
            Err(why) => {
                let mut child = browser_child.take().unwrap();
                kill_group(&mut child);
                let log =
                    fs::read_to_string(profile.path().join("chromium.log")).unwrap_or_default();
                panic!("chromium did not start: {why}\n{log}");
            }
        };
        let socket = WebSocket::connect(port, &path);
        let mut browser = Browser {
            child: browser_child.take().unwrap(),
            profile,
            socket,
            session: String::new(),
            next_id: 0,
            pending: VecDeque::new(),
        };
        let target = browser.browser_command("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = browser.browser_command(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        browser.command("Page.enable", json!({}));
        browser
    }

    /// The browser's own User-Agent, as sent in requests.
    pub fn user_agent(&mut self) -> String {
        let version = self.browser_command("Browser.getVersion", json!({}));
        version["userAgent"].as_str().unwrap().to_owned()
    }

    /// Types `url` into the address bar, in effect, and waits until the page has loaded.
    pub fn navigate(&mut self, url: &str) {
        self.pending.clear();
        let result = self.command("Page.navigate", json!({"url": url}));
        assert!(
            result.get("errorText").is_none(),
            "navigating to {url}: {result}"
        );
        self.wait_for_event("Page.loadEventFired");
    }

    /// Reloads the page (as F5 does: conditional requests for what is cached).
    pub fn reload(&mut self) {
        self.pending.clear();
        self.command("Page.reload", json!({}));
        self.wait_for_event("Page.loadEventFired");
    }

    /// Runs `script`, which must start a navigation (a click on a link, a form submission),
    /// and waits until the new page has loaded.
    pub fn navigate_by(&mut self, script: &str) {
        self.pending.clear();
        self.eval(script);
        self.wait_for_event("Page.loadEventFired");
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.command(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {:#}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    pub fn eval_string(&mut self, expression: &str) -> String {
        match self.eval(expression) {
            Value::String(s) => s,
            other => panic!("{expression}: not a string: {other}"),
        }
    }

    /// A command to the attached page.
    pub fn command(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(method, params, Some(&session))
    }

    /// A command to the browser itself (targets, version).
    pub fn browser_command(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params, None)
    }

    fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket.send_text(&message.to_string());
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let answer = self.socket.read_json(deadline, method);
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
            if answer.get("method").is_some() {
                self.pending.push_back(answer);
            }
        }
    }

    /// The next event `method` of our page, read or already pending.
    pub fn wait_for_event(&mut self, method: &str) -> Value {
        let ours = |e: &Value, session: &str| e["method"] == method && e["sessionId"] == session;
        if let Some(i) = self.pending.iter().position(|e| ours(e, &self.session)) {
            let event = self.pending.remove(i).unwrap();
            self.pending.drain(..i);
            return event;
        }
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let event = self.socket.read_json(deadline, method);
            if ours(&event, &self.session) {
                return event;
            }
        }
    }

    pub fn profile(&self) -> &Path {
        self.profile.path()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A clean close first, then whatever is left of the process group goes.
        self.next_id += 1;
        let close = json!({"id": self.next_id, "method": "Browser.close"});
        self.socket.send_text(&close.to_string());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        kill_group(&mut self.child);
    }
}

/// SIGKILL to the group the browser leads (its helpers are in it), then reaps the browser.
fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) on the process group we created for this child.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.wait();
}

/// Chromium writes `<port>\n<browser websocket path>` to `DevToolsActivePort` once it listens.
fn wait_for_devtools(profile: &Path, child: &mut Child) -> Result<(u16, String), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("chromium exited with {status}"));
        }
        let text = fs::read_to_string(profile.join("DevToolsActivePort")).unwrap_or_default();
        let mut lines = text.lines();
        if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
            if let Ok(port) = port.parse() {
                return Ok((port, path.to_owned()));
            }
        }
        if Instant::now() > deadline {
            return Err("no DevToolsActivePort after 30 s".into());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The client side of a WebSocket (RFC 6455), text messages only.
struct WebSocket {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl WebSocket {
    fn connect(port: u16, path: &str) -> WebSocket {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
        let mut writer = stream.try_clone().unwrap();
        // The key only proves to the server that this is a WebSocket client; any 16 bytes do.
        write!(
            writer,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        stream
            .set_read_timeout(Some(STEP_TIMEOUT))
            .expect("read timeout");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("handshake answer");
        assert!(
            status.starts_with("HTTP/1.1 101"),
            "DevTools refused the WebSocket: {status}"
        );
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("handshake headers");
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        WebSocket { reader, writer }
    }

    fn send_text(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes());
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        // Clients must mask; the key need not be secret here (no proxy between us).
        let key = [0x5a, 0xc3, 0x17, 0x8e];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        // A browser already gone (Drop after a failure) is not a second failure.
        let _ = self.writer.write_all(&frame);
    }

    /// The next text message as JSON; panics at the deadline, naming what was awaited.
    fn read_json(&mut self, deadline: Instant, awaiting: &str) -> Value {
        let mut message = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {awaiting} from chromium in time");
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            let mut head = [0u8; 2];
            self.read_exact(&mut head, awaiting);
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let len = match head[1] & 0x7f {
                126 => {
                    let mut n = [0u8; 2];
                    self.read_exact(&mut n, awaiting);
                    u16::from_be_bytes(n) as usize
                }
                127 => {
                    let mut n = [0u8; 8];
                    self.read_exact(&mut n, awaiting);
                    u64::from_be_bytes(n) as usize
                }
                n => n as usize,
            };
            // Servers never mask their frames.
            assert_eq!(head[1] & 0x80, 0, "masked frame from the server");
            let mut payload = vec![0u8; len];
            self.read_exact(&mut payload, awaiting);
            match opcode {
                0x0 | 0x1 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return serde_json::from_slice(&message)
                            .unwrap_or_else(|e| panic!("DevTools sent bad JSON: {e}"));
                    }
                }
                0x8 => panic!("chromium closed the DevTools connection awaiting {awaiting}"),
                0x9 => self.send_frame(0xa, &payload),
                _ => {}
            }
        }
    }

    fn read_exact(&mut self, buf: &mut [u8], awaiting: &str) {
        self.reader
            .read_exact(buf)
            .unwrap_or_else(|e| panic!("reading from chromium awaiting {awaiting}: {e}"));
    }
}
