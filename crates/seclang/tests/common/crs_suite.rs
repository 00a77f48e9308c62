//! The CRS regression suite's go-ftw YAML (from ../shared/crs): its stages, and the request
//! each stage sends. Shared by the in-process runner (`crs_regression.rs` here) and the run
//! through nginx (`tests/crs_nginx.rs` at the repository root, which includes this file by
//! path), so both send the same requests and read the same expectations.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
struct TestFile {
    /// Absent in files whose tests are all commented out.
    rule_id: Option<u32>,
    #[serde(default)]
    tests: Vec<Test>,
}

#[derive(Deserialize)]
struct Test {
    test_id: Option<u32>,
    stages: Vec<RawStage>,
}

#[derive(Deserialize)]
struct RawStage {
    input: Input,
    output: Output,
}

#[derive(Deserialize, Default, Clone)]
pub struct Input {
    pub method: Option<String>,
    pub uri: Option<String>,
    pub version: Option<String>,
    pub headers: Option<serde_yaml::Mapping>,
    pub data: Option<Value>,
    pub encoded_request: Option<String>,
    pub autocomplete_headers: Option<bool>,
}

#[derive(Deserialize, Default, Clone, Debug)]
pub struct Output {
    pub log: Option<Log>,
    /// The HTTP status the server must answer with.
    pub status: Option<u16>,
    /// The server must close the connection without an HTTP answer.
    pub expect_error: Option<bool>,
}

#[derive(Deserialize, Default, Clone, Debug)]
pub struct Log {
    pub expect_ids: Option<Vec<u32>>,
    pub no_expect_ids: Option<Vec<u32>>,
    /// A regex the server's log must (must not) match: go-ftw reads ModSecurity's error log.
    pub match_regex: Option<String>,
    pub no_match_regex: Option<String>,
}

/// A rule that logged, as far as the log expectations look at it.
#[derive(Clone, Debug)]
pub struct LoggedRule {
    pub id: u32,
    pub msg: String,
    /// The expanded `logdata`.
    pub data: String,
}

impl LoggedRule {
    /// The rule's entry written as ModSecurity writes the parts of its error log entries the
    /// suite's regexes look at: one line, control characters as `\xHH`.
    fn log_line(&self) -> String {
        let escape = |s: &str| {
            s.chars()
                .map(|c| match c {
                    c if c.is_control() => format!("\\x{:02x}", u32::from(c)),
                    c => c.to_string(),
                })
                .collect::<String>()
        };
        format!(
            "[id \"{}\"] [msg \"{}\"] [data \"{}\"]",
            self.id,
            escape(&self.msg),
            escape(&self.data)
        )
    }
}

/// One stage of a test, named `<rule>-<test>-<stage>` as the known-failures lists name it.
pub struct Stage {
    /// The directory of its test file, named after the rule file (`REQUEST-920-...`).
    pub rule_file: String,
    pub rule_id: u32,
    pub test_id: u32,
    pub name: String,
    pub input: Input,
    pub output: Output,
}

/// A request as a stage sends it.
pub struct Request {
    pub method: Vec<u8>,
    pub uri: Vec<u8>,
    pub version: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The exact bytes of an `encoded_request`, which go on the wire as they are.
    pub raw: Option<Vec<u8>>,
}

impl Request {
    /// The bytes to send to a server: the raw request as written in the test, or one built
    /// from the request line, the headers in their order, and the body.
    pub fn wire(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = Vec::new();
        for part in [&self.method, &b" ".to_vec(), &self.uri, &b" ".to_vec()] {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.version);
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// The suite's directory: `<crs root>/v4.28.0/tests/regression`.
pub fn regression_dir(crs_root: &Path) -> PathBuf {
    crs_root.join("v4.28.0/tests/regression")
}

/// Every stage of the suite, in file name order, then test and stage order.
pub fn stages(crs_root: &Path) -> Vec<Stage> {
    let mut files = Vec::new();
    yaml_files(&regression_dir(crs_root).join("tests"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in &files {
        let tf: TestFile = serde_yaml::from_str(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let Some(rule_id) = tf.rule_id else { continue };
        let rule_file = f
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (ti, t) in tf.tests.into_iter().enumerate() {
            let test_id = t.test_id.unwrap_or(ti as u32 + 1);
            for (si, stage) in t.stages.into_iter().enumerate() {
                out.push(Stage {
                    rule_file: rule_file.clone(),
                    rule_id,
                    test_id,
                    name: format!("{rule_id}-{test_id}-{}", si + 1),
                    input: stage.input,
                    output: stage.output,
                });
            }
        }
    }
    out
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("tests dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// A known-failures list: `<rule>-<test>-<stage> <reason>` lines, `#` comments.
pub fn read_known_failures(path: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split_once(' ')
                .map_or((l.to_string(), String::new()), |(a, b)| {
                    (a.to_string(), b.to_string())
                })
        })
        .collect()
}

/// Whether the rules that logged meet a log expectation; the reason when they do not.
pub fn check_log(log: &Log, logged: &[LoggedRule]) -> Result<(), String> {
    let ids: Vec<u32> = logged.iter().map(|r| r.id).collect();
    let missing: Vec<u32> = log
        .expect_ids
        .iter()
        .flatten()
        .filter(|id| !ids.contains(id))
        .copied()
        .collect();
    let unexpected: Vec<u32> = log
        .no_expect_ids
        .iter()
        .flatten()
        .filter(|id| ids.contains(id))
        .copied()
        .collect();
    let mut reason = Vec::new();
    if !missing.is_empty() {
        reason.push(format!("expected {missing:?} did not match"));
    }
    if !unexpected.is_empty() {
        reason.push(format!("{unexpected:?} matched but must not"));
    }
    let text: Vec<String> = logged.iter().map(LoggedRule::log_line).collect();
    let text = text.join("\n");
    let found = |pattern: &str| {
        regex::Regex::new(pattern)
            .unwrap_or_else(|e| panic!("bad log regex {pattern:?}: {e}"))
            .is_match(&text)
    };
    if let Some(pattern) = &log.match_regex {
        if !found(pattern) {
            reason.push(format!("the log does not match {pattern:?}"));
        }
    }
    if let Some(pattern) = &log.no_match_regex {
        if found(pattern) {
            reason.push(format!("the log matches {pattern:?} but must not"));
        }
    }
    if reason.is_empty() {
        Ok(())
    } else {
        Err(reason.join("; "))
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&rest[..nl])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .unwrap_or(0);
        rest = &rest[nl + 2..];
        if size == 0 || size > rest.len() {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(b"");
    }
    out
}

/// Read a raw HTTP/1.x request (for `encoded_request`).
fn parse_raw(raw: Vec<u8>) -> Request {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let method = parts.next().unwrap_or("").as_bytes().to_vec();
    let uri = parts.next().unwrap_or("").as_bytes().to_vec();
    let version = parts.next().unwrap_or("").as_bytes().to_vec();
    let headers: Vec<(Vec<u8>, Vec<u8>)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().as_bytes().to_vec(), v.trim().as_bytes().to_vec()))
        .collect();
    let mut body = raw[split.min(raw.len())..].to_vec();
    if headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case(b"transfer-encoding") && v.eq_ignore_ascii_case(b"chunked")
    }) {
        body = dechunk(&body);
    }
    Request {
        method,
        uri,
        version,
        headers,
        body,
        raw: Some(raw),
    }
}

pub fn build_request(input: &Input) -> Request {
    if let Some(enc) = &input.encoded_request {
        let clean: String = enc.chars().filter(|c| !c.is_whitespace()).collect();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(clean)
            .unwrap_or_default();
        return parse_raw(raw);
    }
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = input
        .headers
        .iter()
        .flatten()
        .map(|(k, v)| (scalar(k).into_bytes(), scalar(v).into_bytes()))
        .collect();
    let body = match &input.data {
        Some(Value::Sequence(lines)) => lines
            .iter()
            .map(scalar)
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes(),
        Some(v) => scalar(v).into_bytes(),
        None => Vec::new(),
    };
    // go-ftw completes a body's Content-Type (form-urlencoded), and a Content-Length for a
    // body or a method that permits one (its regex `^POST|PUT|PATCH|DELETE$`, precedence
    // and all), unless told not to.
    let has = |hs: &[(Vec<u8>, Vec<u8>)], name: &[u8]| {
        hs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let method = input.method.as_deref().unwrap_or("GET");
    let method_has_body = method.starts_with("POST")
        || method.contains("PUT")
        || method.contains("PATCH")
        || method.ends_with("DELETE");
    if input.autocomplete_headers != Some(false) {
        if !body.is_empty() && !has(&headers, b"content-type") {
            headers.push((
                b"Content-Type".to_vec(),
                b"application/x-www-form-urlencoded".to_vec(),
            ));
        }
        if (!body.is_empty() || method_has_body) && !has(&headers, b"content-length") {
            headers.push((
                b"Content-Length".to_vec(),
                body.len().to_string().into_bytes(),
            ));
        }
    }
    Request {
        method: input
            .method
            .clone()
            .unwrap_or_else(|| "GET".into())
            .into_bytes(),
        uri: input.uri.clone().unwrap_or_else(|| "/".into()).into_bytes(),
        version: input
            .version
            .clone()
            .unwrap_or_else(|| "HTTP/1.1".into())
            .into_bytes(),
        headers,
        body,
        raw: None,
    }
}
