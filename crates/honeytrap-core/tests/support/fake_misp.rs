//! A contract fake of MISP for tests: a small threaded HTTP/1.1 server on 127.0.0.1 (std::net
//! only) that checks every request against MISP's OpenAPI description and keeps state like
//! MISP does.
//!
//! Checks, each recorded as a violation (and answered 4xx) when broken:
//! * `Authorization` equals the key (otherwise MISP's 403 "Authentication failed"),
//!   `Accept: application/json`, and `Content-Type: application/json` on requests with a body;
//! * the method and path exist in `shared/misp/openapi.yaml`, path parameters match their
//!   schemas;
//! * the JSON body validates against the operation's request body schema (`$ref`s followed;
//!   type, nullable, enum, properties, required, items, additionalProperties, allOf/anyOf/oneOf,
//!   maxLength/minLength, minimum/maximum, simple patterns, uuid/date/date-time formats).
//!   Stricter than the spec in one way: unknown object keys are violations (the spec never
//!   says `additionalProperties: false`, but a misspelled key is silently ignored by MISP,
//!   which is exactly the bug a contract test should catch). The one documented extra is
//!   `Tag` (a tag list) on event add/edit;
//! * the fake's own answers validate against the response schemas (a fake that drifts from
//!   MISP would prove nothing).
//!
//! Behaviour can be switched at runtime: OK, 500, 403 (key refused), slow, down (the port
//! refuses connections and comes back on the same port), or fail after N requests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// `<CARGO_MANIFEST_DIR>/../../../shared/misp/openapi.yaml`
pub fn openapi_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/misp/openapi.yaml")
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: operations and schema validation

pub struct Spec {
    doc: Value,
    /// `EventNoId` plus the `Tag` list MISP takes on event add/edit.
    event_with_tags: Value,
}

impl Spec {
    pub fn load() -> Spec {
        let path = openapi_path();
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value = serde_yaml::from_str(&text).expect("openapi.yaml parses");
        let event_with_tags = json!({
            "allOf": [
                {"$ref": "#/components/schemas/EventNoId"},
                {"type": "object", "properties": {"Tag": {"$ref": "#/components/schemas/TagList"}}}
            ]
        });
        Spec {
            doc,
            event_with_tags,
        }
    }

    /// Follows `$ref` chains (`#/...` pointers into the document).
    pub fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let pointer = r
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("external $ref {r}"));
                    v = self
                        .doc
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("dangling $ref {r}"));
                }
                None => return v,
            }
        }
        panic!("$ref loop")
    }

    /// The path template and operation for a concrete request, most specific first.
    pub fn operation(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(String, &Value, BTreeMap<String, String>)> {
        let method = method.to_ascii_lowercase();
        let paths = self.doc.get("paths")?.as_object()?;
        let mut best: Option<(usize, String, &Value, BTreeMap<String, String>)> = None;
        for (template, item) in paths {
            let Some(op) = item.get(&method) else {
                continue;
            };
            if let Some(params) = match_template(template, path) {
                let score = params.len();
                if best.as_ref().is_none_or(|b| score < b.0) {
                    best = Some((score, template.clone(), op, params));
                }
            }
        }
        best.map(|(_, t, op, p)| (t, op, p))
    }

    fn path_param_schema<'a>(
        &'a self,
        template: &str,
        op: &'a Value,
        name: &str,
    ) -> Option<&'a Value> {
        let item = self.doc["paths"].get(template)?;
        let lists = [op.get("parameters"), item.get("parameters")];
        for list in lists.into_iter().flatten() {
            for p in list.as_array()? {
                let p = self.resolve(p);
                if p["in"] == "path" && p["name"] == name {
                    return p.get("schema");
                }
            }
        }
        None
    }

    /// Request body schema of an operation, and whether a body is required.
    pub fn request_schema<'a>(&'a self, op: &'a Value) -> Option<(&'a Value, bool)> {
        let body = self.resolve(op.get("requestBody")?);
        let required = body
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Some((body.pointer("/content/application~1json/schema")?, required))
    }

    pub fn response_schema<'a>(&'a self, op: &'a Value, status: u16) -> Option<&'a Value> {
        let responses = op.get("responses")?;
        let r = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))?;
        self.resolve(r).pointer("/content/application~1json/schema")
    }

    /// Validates `v`; returns the violations, each with its JSON path.
    pub fn validate(&self, schema: &Value, v: &Value, strict: bool) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(schema, v, "$", strict, true, &mut errs);
        errs
    }

    fn check(
        &self,
        schema: &Value,
        v: &Value,
        at: &str,
        strict: bool,
        own_keys: bool,
        errs: &mut Vec<String>,
    ) {
        let s = self.resolve(schema);
        if v.is_null() {
            if s.get("nullable").and_then(Value::as_bool) == Some(true) || s.get("type").is_none() {
                return;
            }
            errs.push(format!("{at}: null where {} is expected", s["type"]));
            return;
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for branch in all {
                self.check(branch, v, at, strict, false, errs);
            }
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            if !any.iter().any(|b| self.validate_sub(b, v, at, strict)) {
                errs.push(format!("{at}: matches none of anyOf"));
            }
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
            let n = one
                .iter()
                .filter(|b| self.validate_sub(b, v, at, strict))
                .count();
            if n != 1 {
                errs.push(format!(
                    "{at}: matches {n} branches of oneOf, not exactly one ({v})"
                ));
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
            if !allowed.contains(v) {
                errs.push(format!(
                    "{at}: {v} is not one of {}",
                    Value::Array(allowed.clone())
                ));
            }
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "string" => v.is_string(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                "array" => v.is_array(),
                "object" => v.is_object(),
                _ => true,
            };
            if !ok {
                errs.push(format!("{at}: {v} is not of type {t}"));
                return;
            }
        }
        match v {
            Value::String(text) => self.check_string(s, text, at, errs),
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0);
                if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                    if x < min {
                        errs.push(format!("{at}: {x} < minimum {min}"));
                    }
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                    if x > max {
                        errs.push(format!("{at}: {x} > maximum {max}"));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}[{i}]"), strict, true, errs);
                    }
                }
            }
            Value::Object(map) => self.check_object(s, map, at, strict, own_keys, errs),
            _ => {}
        }
    }

    fn validate_sub(&self, schema: &Value, v: &Value, at: &str, strict: bool) -> bool {
        let mut e = Vec::new();
        self.check(schema, v, at, strict, true, &mut e);
        e.is_empty()
    }

    fn check_string(&self, s: &Value, text: &str, at: &str, errs: &mut Vec<String>) {
        let len = text.chars().count() as u64;
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                errs.push(format!("{at}: {len} characters > maxLength {max}"));
            }
        }
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if len < min {
                errs.push(format!("{at}: {len} characters < minLength {min}"));
            }
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            match Pattern::compile(p) {
                Ok(re) if re.is_match(text) => {}
                Ok(_) => errs.push(format!("{at}: {text:?} does not match {p}")),
                Err(e) => errs.push(format!("{at}: pattern {p} not supported by the fake: {e}")),
            }
        }
        let format_ok = match s.get("format").and_then(Value::as_str) {
            Some("uuid") => is_uuid(text),
            Some("date-time") => is_date_time(text),
            Some("date") => is_date(text),
            _ => true,
        };
        if !format_ok {
            errs.push(format!("{at}: {text:?} is not a valid {}", s["format"]));
        }
    }

    fn check_object(
        &self,
        s: &Value,
        map: &Map<String, Value>,
        at: &str,
        strict: bool,
        own_keys: bool,
        errs: &mut Vec<String>,
    ) {
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = req.as_str() {
                if !map.contains_key(name) {
                    errs.push(format!("{at}: required property {name} missing"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in map {
            if let Some(p) = props.and_then(|p| p.get(k)) {
                self.check(p, val, &format!("{at}.{k}"), strict, true, errs);
            }
        }
        if !own_keys {
            return;
        }
        match s.get("additionalProperties") {
            Some(Value::Bool(false)) => {
                for k in map.keys() {
                    if props.is_none_or(|p| !p.contains_key(k)) {
                        errs.push(format!("{at}: additional property {k} not allowed"));
                    }
                }
            }
            Some(extra @ Value::Object(_)) => {
                for (k, val) in map {
                    if props.is_none_or(|p| !p.contains_key(k)) {
                        self.check(extra, val, &format!("{at}.{k}"), strict, true, errs);
                    }
                }
            }
            _ => {
                if strict {
                    if let Some(known) = self.known_keys(s) {
                        for k in map.keys() {
                            if !known.iter().any(|n| n == k) {
                                errs.push(format!("{at}: unknown property {k} (not in the schema; MISP would ignore it)"));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Property names a schema declares, through `allOf`; `None` when it cannot tell
    /// (`anyOf`/`oneOf`, or declared additional properties).
    fn known_keys(&self, schema: &Value) -> Option<Vec<String>> {
        let s = self.resolve(schema);
        if s.get("anyOf").is_some()
            || s.get("oneOf").is_some()
            || s.get("additionalProperties").is_some()
        {
            return None;
        }
        let mut out: Vec<String> = s
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        for branch in s
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(self.known_keys(branch)?);
        }
        if out.is_empty() && s.get("allOf").is_none() {
            // A bare `type: object` declares nothing: anything goes.
            return None;
        }
        Some(out)
    }
}

/// Matches `/events/view/{eventId}` against `/events/view/12`; placeholders may sit inside a
/// segment (`local:{local}`).
fn match_template(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (ts, ps) in t.iter().zip(&p) {
        match (ts.find('{'), ts.find('}')) {
            (Some(open), Some(close)) if close > open => {
                let (prefix, suffix) = (&ts[..open], &ts[close + 1..]);
                if ps.len() <= prefix.len() + suffix.len()
                    || !ps.starts_with(prefix)
                    || !ps.ends_with(suffix)
                {
                    return None;
                }
                params.insert(
                    ts[open + 1..close].to_string(),
                    ps[prefix.len()..ps.len() - suffix.len()].to_string(),
                );
            }
            _ if ts == ps => {}
            _ => return None,
        }
    }
    Some(params)
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn is_date_time(s: &str) -> bool {
    s.len() >= 20 && is_date(&s[..10]) && matches!(&s[10..11], "T" | "t" | " ")
}

/// The regular expressions OpenAPI patterns use here: anchors, `|`, `\d \w \s .`, literals,
/// `* + ?`. Anything else is reported rather than guessed.
struct Pattern {
    alternatives: Vec<Alternative>,
}

/// One `|` branch: anchored at the start, at the end, and its atoms with (min, max) repeats.
struct Alternative {
    start: bool,
    end: bool,
    pieces: Vec<Piece>,
}

type Piece = (Atom, usize, usize);

#[derive(Clone, Copy)]
enum Atom {
    Digit,
    Word,
    Space,
    Any,
    Lit(char),
}

impl Atom {
    fn matches(self, c: char) -> bool {
        match self {
            Atom::Digit => c.is_ascii_digit(),
            Atom::Word => c.is_alphanumeric() || c == '_',
            Atom::Space => c.is_whitespace(),
            Atom::Any => c != '\n',
            Atom::Lit(l) => l == c,
        }
    }
}

impl Pattern {
    fn compile(p: &str) -> Result<Pattern, String> {
        let mut alternatives = Vec::new();
        for alt in p.split('|') {
            let mut chars = alt.chars().peekable();
            let start = chars.peek() == Some(&'^');
            if start {
                chars.next();
            }
            let mut pieces: Vec<Piece> = Vec::new();
            let mut end = false;
            while let Some(c) = chars.next() {
                if end {
                    return Err("text after $".into());
                }
                let atom = match c {
                    '$' => {
                        end = true;
                        continue;
                    }
                    '\\' => match chars.next() {
                        Some('d') => Atom::Digit,
                        Some('w') => Atom::Word,
                        Some('s') => Atom::Space,
                        Some(c) if !c.is_alphanumeric() => Atom::Lit(c),
                        other => return Err(format!("escape \\{other:?}")),
                    },
                    '.' => Atom::Any,
                    '(' | ')' | '[' | ']' | '{' | '}' => return Err(format!("'{c}'")),
                    '*' | '+' | '?' => return Err("quantifier without atom".into()),
                    c => Atom::Lit(c),
                };
                let (min, max) = match chars.peek() {
                    Some('*') => (0, usize::MAX),
                    Some('+') => (1, usize::MAX),
                    Some('?') => (0, 1),
                    _ => (1, 1),
                };
                if (min, max) != (1, 1) {
                    chars.next();
                }
                pieces.push((atom, min, max));
            }
            alternatives.push(Alternative { start, end, pieces });
        }
        Ok(Pattern { alternatives })
    }

    fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        self.alternatives.iter().any(|alt| {
            let starts: Vec<usize> = if alt.start {
                vec![0]
            } else {
                (0..=chars.len()).collect()
            };
            starts
                .into_iter()
                .any(|i| Self::here(&alt.pieces, &chars, i, alt.end))
        })
    }

    fn here(pieces: &[Piece], chars: &[char], pos: usize, end: bool) -> bool {
        let Some(&(atom, min, max)) = pieces.first() else {
            return !end || pos == chars.len();
        };
        let mut n = 0;
        while n < max && pos + n < chars.len() && atom.matches(chars[pos + n]) {
            n += 1;
        }
        // Greedy with backtracking.
        (min..=n)
            .rev()
            .any(|k| Self::here(&pieces[1..], chars, pos + k, end))
    }
}

// ---------------------------------------------------------------------------------------------
// MISP state

#[derive(Clone, Debug)]
pub struct FakeEvent {
    pub id: u64,
    pub uuid: String,
    pub info: String,
    pub date: String,
    pub distribution: String,
    pub threat_level_id: String,
    pub analysis: String,
    pub published: bool,
    pub tags: Vec<String>,
    pub timestamp: u64,
    pub publish_count: u32,
}

#[derive(Clone, Debug)]
pub struct FakeAttribute {
    pub id: u64,
    pub event_id: u64,
    pub uuid: String,
    pub kind: String,
    pub category: String,
    pub value: String,
    pub to_ids: bool,
    pub comment: String,
    pub distribution: String,
    pub timestamp: u64,
}

#[derive(Clone, Debug)]
pub struct FakeSighting {
    pub id: u64,
    pub attribute_id: u64,
    pub event_id: u64,
    pub date_sighting: String,
    pub uuid: String,
}

#[derive(Clone, Debug, Default)]
pub struct State {
    pub events: Vec<FakeEvent>,
    pub attributes: Vec<FakeAttribute>,
    pub sightings: Vec<FakeSighting>,
    /// Tag names by id (id = position + 1), created on first use like MISP's captureTag.
    pub tags: Vec<String>,
    /// Last ids given out: like MISP's auto-increment, never reused after a delete.
    seq: [u64; 3],
}

impl State {
    pub fn event_by_uuid(&self, uuid: &str) -> Option<&FakeEvent> {
        self.events.iter().find(|e| e.uuid == uuid)
    }

    pub fn attributes_of(&self, event_id: u64) -> Vec<&FakeAttribute> {
        self.attributes
            .iter()
            .filter(|a| a.event_id == event_id)
            .collect()
    }

    pub fn sightings_of(&self, attribute_id: u64) -> usize {
        self.sightings
            .iter()
            .filter(|s| s.attribute_id == attribute_id)
            .count()
    }

    fn next_id(&mut self, table: usize) -> u64 {
        self.seq[table] += 1;
        self.seq[table]
    }

    fn find_event(&self, id_or_uuid: &str) -> Option<usize> {
        self.events
            .iter()
            .position(|e| e.id.to_string() == id_or_uuid || e.uuid == id_or_uuid)
    }

    fn tag_id(&mut self, name: &str) -> usize {
        match self.tags.iter().position(|t| t == name) {
            Some(i) => i + 1,
            None => {
                self.tags.push(name.to_string());
                self.tags.len()
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A uuid v4-shaped id for what the fake creates itself (sightings, missing uuids).
fn fake_uuid(n: u64, salt: u64) -> String {
    let x = (n as u128) << 64 | salt as u128 | 0x4000_8000_0000_0000_0000;
    let h = format!("{:032x}", x);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

// ---------------------------------------------------------------------------------------------
// Behaviour switches

#[derive(Clone, Debug, PartialEq)]
pub enum Behavior {
    Ok,
    /// Every request answers 500.
    ServerError,
    /// Every request answers MISP's 403 "Authentication failed", whatever the key.
    RejectKey,
    /// Answers after this delay.
    Slow(Duration),
    /// The port refuses connections; open connections are cut.
    Down,
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub status: u16,
}

impl RecordedRequest {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct Inner {
    spec: Spec,
    key: String,
    addr: SocketAddr,
    behavior: Mutex<Behavior>,
    /// (requests still answered normally, status afterwards)
    fail_after: Mutex<Option<(usize, u16)>>,
    /// Attribute values refused like MISP refuses an invalid value.
    refused_values: Mutex<Vec<String>>,
    state: Mutex<State>,
    requests: Mutex<Vec<RecordedRequest>>,
    violations: Mutex<Vec<String>>,
    want_up: AtomicBool,
    listening: AtomicBool,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

pub struct FakeMisp {
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeMisp {
    pub fn start(key: &str) -> FakeMisp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            spec: Spec::load(),
            key: key.to_string(),
            addr,
            behavior: Mutex::new(Behavior::Ok),
            fail_after: Mutex::new(None),
            refused_values: Mutex::new(Vec::new()),
            state: Mutex::new(State::default()),
            requests: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            want_up: AtomicBool::new(true),
            listening: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let inner = Arc::clone(&inner);
            thread::spawn(move || accept_loop(inner, Some(listener)))
        };
        FakeMisp {
            inner,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    pub fn set_behavior(&self, b: Behavior) {
        let down = b == Behavior::Down;
        *self.inner.behavior.lock().unwrap() = b;
        *self.inner.fail_after.lock().unwrap() = None;
        self.inner.want_up.store(!down, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.inner.listening.load(Ordering::SeqCst) == down {
            assert!(
                Instant::now() < deadline,
                "fake MISP did not switch listening state"
            );
            thread::sleep(Duration::from_millis(2));
        }
        if down {
            cut_connections(&self.inner);
        }
    }

    /// Answers the next `n` requests normally, then `status` to everything until
    /// `set_behavior` is called again.
    pub fn fail_after(&self, n: usize, status: u16) {
        *self.inner.fail_after.lock().unwrap() = Some((n, status));
    }

    /// Refuses attributes with these values (403 with a validation error), as MISP does for a
    /// value its type validation rejects.
    pub fn refuse_values(&self, values: &[&str]) {
        *self.inner.refused_values.lock().unwrap() = values.iter().map(|v| v.to_string()).collect();
    }

    /// Deletes an event and its attributes, as an analyst might.
    pub fn delete_event(&self, id: u64) {
        let mut state = self.inner.state.lock().unwrap();
        state.events.retain(|e| e.id != id);
        state.attributes.retain(|a| a.event_id != id);
    }

    pub fn state(&self) -> State {
        self.inner.state.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.violations.lock().unwrap().clone()
    }

    /// Panics with every contract violation seen so far.
    pub fn assert_clean(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "MISP contract violations:\n{}", v.join("\n"));
    }

    pub fn spec(&self) -> &Spec {
        &self.inner.spec
    }
}

impl Drop for FakeMisp {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        cut_connections(&self.inner);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn cut_connections(inner: &Inner) {
    for c in inner.conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
}

fn accept_loop(inner: Arc<Inner>, mut listener: Option<TcpListener>) {
    if let Some(l) = &listener {
        l.set_nonblocking(true).unwrap();
    }
    while !inner.stop.load(Ordering::SeqCst) {
        let want_up = inner.want_up.load(Ordering::SeqCst);
        match (&listener, want_up) {
            (Some(_), false) => {
                listener = None;
                inner.listening.store(false, Ordering::SeqCst);
                continue;
            }
            (None, true) => {
                // Same port again (std sets SO_REUSEADDR); retry while the kernel lets go.
                match TcpListener::bind(inner.addr) {
                    Ok(l) => {
                        l.set_nonblocking(true).unwrap();
                        listener = Some(l);
                        inner.listening.store(true, Ordering::SeqCst);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
                continue;
            }
            (None, false) => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            (Some(_), true) => {}
        }
        match listener.as_ref().unwrap().accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                if let Ok(clone) = stream.try_clone() {
                    inner.conns.lock().unwrap().push(clone);
                }
                let inner = Arc::clone(&inner);
                thread::spawn(move || {
                    let _ = serve_connection(&inner, stream);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1))
            }
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad request line {line:?}"),
        ));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

fn serve_connection(inner: &Inner, stream: TcpStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader)? {
        if !inner.want_up.load(Ordering::SeqCst) || inner.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let behavior = inner.behavior.lock().unwrap().clone();
        if let Behavior::Slow(d) = behavior {
            thread::sleep(d);
        }
        let (status, body) = handle(inner, &req, &behavior);
        let text = body.to_string();
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            415 => "Unsupported Media Type",
            500 => "Internal Server Error",
            _ => "Status",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        // One write: head and body in separate segments would meet Nagle and delayed ACKs.
        writer.write_all(format!("{head}{text}").as_bytes())?;
        writer.flush()?;
        if req
            .headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            return Ok(());
        }
    }
    Ok(())
}

fn api_error(name: &str, path: &str) -> Value {
    json!({"name": name, "message": name, "url": path})
}

const AUTH_FAILED: &str =
    "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";

fn handle(inner: &Inner, req: &Request, behavior: &Behavior) -> (u16, Value) {
    let body_text = String::from_utf8_lossy(&req.body).to_string();
    let mut violations = Vec::new();
    let (status, answer) = route(inner, req, &body_text, behavior, &mut violations);
    inner.requests.lock().unwrap().push(RecordedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        headers: req.headers.clone(),
        body: body_text,
        status,
    });
    if !violations.is_empty() {
        let mut v = inner.violations.lock().unwrap();
        for x in violations {
            v.push(format!("{} {}: {x}", req.method, req.path));
        }
    }
    (status, answer)
}

fn route(
    inner: &Inner,
    req: &Request,
    body_text: &str,
    behavior: &Behavior,
    violations: &mut Vec<String>,
) -> (u16, Value) {
    let path = req.path.as_str();
    match behavior {
        Behavior::ServerError => return (500, api_error("Internal Server Error", path)),
        Behavior::RejectKey => return (403, api_error(AUTH_FAILED, path)),
        _ => {}
    }
    {
        let mut fail = inner.fail_after.lock().unwrap();
        if let Some((left, status)) = fail.as_mut() {
            if *left == 0 {
                let s = *status;
                return (s, api_error("Injected failure", path));
            }
            *left -= 1;
        }
    }
    // MISP checks the key before anything else.
    if req.headers.get("authorization").map(String::as_str) != Some(inner.key.as_str()) {
        return (403, api_error(AUTH_FAILED, path));
    }
    let spec = &inner.spec;
    if !req
        .headers
        .get("accept")
        .is_some_and(|a| a.contains("application/json"))
    {
        violations.push(format!(
            "Accept is {:?}, not application/json",
            req.headers.get("accept")
        ));
        return (406, api_error("Accept application/json", path));
    }
    let has_body = !req.body.is_empty();
    if has_body
        && !req
            .headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    {
        violations.push(format!(
            "Content-Type is {:?}, not application/json",
            req.headers.get("content-type")
        ));
        return (415, api_error("Content-Type application/json", path));
    }
    let Some((template, op, params)) = spec.operation(&req.method, path) else {
        violations.push("no such operation in openapi.yaml".into());
        return (405, api_error("No such endpoint", path));
    };
    for (name, value) in &params {
        match spec.path_param_schema(&template, op, name) {
            Some(schema) => {
                for e in spec.validate(schema, &Value::String(value.clone()), false) {
                    violations.push(format!("path parameter {name}: {e}"));
                }
            }
            None => violations.push(format!("path parameter {name} not described")),
        }
    }
    let body: Value = if has_body {
        match serde_json::from_str(body_text) {
            Ok(v) => v,
            Err(e) => {
                violations.push(format!("body is not JSON: {e}"));
                return (400, api_error("Invalid JSON", path));
            }
        }
    } else {
        Value::Null
    };
    match spec.request_schema(op) {
        Some((schema, required)) => {
            if !has_body && required {
                violations.push("request body required".into());
            }
            if has_body {
                let schema = if template == "/events/add" || template == "/events/edit/{eventId}" {
                    &spec.event_with_tags
                } else {
                    schema
                };
                for e in spec.validate(schema, &body, true) {
                    violations.push(format!("request body: {e}"));
                }
            }
        }
        None if has_body && body != json!({}) => {
            violations.push("body sent to an operation that takes none".into())
        }
        None => {}
    }
    if !violations.is_empty() {
        return (400, api_error("Request does not match openapi.yaml", path));
    }

    let refused = template == "/attributes/add/{eventId}"
        && str_field(&body, "value")
            .is_some_and(|v| inner.refused_values.lock().unwrap().iter().any(|r| r == v));
    let (status, answer) = if refused {
        (
            403,
            json!({"name": "Could not add Attribute", "message": "Could not add Attribute", "url": "/attributes/add",
                     "errors": {"value": ["Invalid value for this type."]}}),
        )
    } else {
        let mut state = inner.state.lock().unwrap();
        dispatch(&mut state, &template, &params, &body, path)
    };
    if status == 501 {
        violations.push(format!(
            "{template} is in the spec but not implemented by the fake"
        ));
    }
    match spec.response_schema(op, status) {
        Some(schema) => {
            for e in spec.validate(schema, &answer, false) {
                violations.push(format!("fake's own {status} answer: {e}"));
            }
        }
        None => violations.push(format!("no response schema for {status}")),
    }
    (status, answer)
}

fn event_json(state: &State, e: &FakeEvent, with_attributes: bool) -> Value {
    let attrs: Vec<Value> = if with_attributes {
        state
            .attributes_of(e.id)
            .into_iter()
            .map(attribute_json)
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "id": e.id.to_string(),
        "org_id": "1",
        "orgc_id": "1",
        "info": e.info,
        "uuid": e.uuid,
        "date": e.date,
        "distribution": e.distribution,
        "threat_level_id": e.threat_level_id,
        "analysis": e.analysis,
        "published": e.published,
        "attribute_count": state.attributes_of(e.id).len().to_string(),
        "timestamp": e.timestamp.to_string(),
        "publish_timestamp": "0",
        "sighting_timestamp": "0",
        "sharing_group_id": "0",
        "locked": false,
        "disable_correlation": false,
        "extends_uuid": "",
        "Orgc": {"id": "1", "name": "ORGNAME", "uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b"},
        "Attribute": attrs,
        "Tag": e.tags.iter().map(|t| {
            let id = state.tags.iter().position(|n| n == t).map_or(0, |i| i + 1);
            json!({"id": id.to_string(), "name": t, "colour": "#ffffff", "exportable": true, "hide_tag": false, "is_galaxy": t.starts_with("misp-galaxy:")})
        }).collect::<Vec<_>>(),
    })
}

fn attribute_json(a: &FakeAttribute) -> Value {
    json!({
        "id": a.id.to_string(),
        "event_id": a.event_id.to_string(),
        "object_id": "0",
        "object_relation": null,
        "category": a.category,
        "type": a.kind,
        "value": a.value,
        "to_ids": a.to_ids,
        "uuid": a.uuid,
        "timestamp": a.timestamp.to_string(),
        "distribution": a.distribution,
        "sharing_group_id": "0",
        "comment": a.comment,
        "deleted": false,
        "disable_correlation": false,
        "first_seen": null,
        "last_seen": null,
    })
}

/// Categories MISP allows per attribute type, for the types a honeypot sends.
fn category_allowed(kind: &str, category: &str) -> bool {
    let allowed: &[&str] = match kind {
        "ip-src" => &["Network activity", "Payload delivery", "External analysis"],
        "url" => &[
            "Network activity",
            "Payload delivery",
            "Payload installation",
            "External analysis",
        ],
        "user-agent" => &[
            "Network activity",
            "Payload delivery",
            "Payload installation",
        ],
        "http-method" => &["Network activity"],
        "pattern-in-traffic" => &[
            "Network activity",
            "Payload delivery",
            "Payload installation",
        ],
        "text" => return true,
        _ => return true,
    };
    allowed.contains(&category)
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn dispatch(
    state: &mut State,
    template: &str,
    params: &BTreeMap<String, String>,
    body: &Value,
    path: &str,
) -> (u16, Value) {
    let now = now_secs();
    match template {
        "/events/add" => {
            let e = body.get("Event").unwrap_or(body);
            let Some(info) = str_field(e, "info").filter(|i| !i.is_empty()) else {
                return (
                    403,
                    json!({"name": "Could not add Event", "message": "Could not add Event", "url": path, "errors": {"Event": {"info": ["Info cannot be empty."]}}}),
                );
            };
            let uuid = str_field(e, "uuid")
                .map(str::to_string)
                .unwrap_or_else(|| fake_uuid(state.seq[0] + 1, 1));
            if state.event_by_uuid(&uuid).is_some() {
                return (
                    403,
                    json!({"name": "Event already exists, if you would like to edit it, use the url in the location header.", "message": "Event already exists, if you would like to edit it, use the url in the location header.", "url": path, "errors": {"Event": {"uuid": ["An event with this UUID already exists."]}}}),
                );
            }
            let tags: Vec<String> = e
                .get("Tag")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| str_field(t, "name").map(str::to_string))
                .collect();
            for t in &tags {
                state.tag_id(t);
            }
            let event = FakeEvent {
                id: state.next_id(0),
                uuid,
                info: info.to_string(),
                date: str_field(e, "date").unwrap_or("2026-01-01").to_string(),
                distribution: str_field(e, "distribution").unwrap_or("1").to_string(),
                threat_level_id: str_field(e, "threat_level_id").unwrap_or("4").to_string(),
                analysis: str_field(e, "analysis").unwrap_or("0").to_string(),
                published: e.get("published").and_then(Value::as_bool).unwrap_or(false),
                tags,
                timestamp: now,
                publish_count: 0,
            };
            state.events.push(event.clone());
            (200, json!({"Event": event_json(state, &event, true)}))
        }
        "/events/view/{eventId}" => match state.find_event(&params["eventId"]) {
            Some(i) => {
                let e = state.events[i].clone();
                (200, json!({"Event": event_json(state, &e, true)}))
            }
            None => (404, api_error("Invalid event.", path)),
        },
        "/events/edit/{eventId}" => {
            let Some(i) = state.find_event(&params["eventId"]) else {
                return (404, api_error("Invalid event.", path));
            };
            let e = body.get("Event").unwrap_or(body);
            let new_tags: Vec<String> = e
                .get("Tag")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| str_field(t, "name").map(str::to_string))
                .collect();
            for t in &new_tags {
                state.tag_id(t);
            }
            let ev = &mut state.events[i];
            for (field, slot) in [
                ("threat_level_id", &mut ev.threat_level_id),
                ("info", &mut ev.info),
                ("analysis", &mut ev.analysis),
                ("distribution", &mut ev.distribution),
                ("date", &mut ev.date),
            ] {
                if let Some(v) = str_field(e, field) {
                    *slot = v.to_string();
                }
            }
            for t in new_tags {
                if !ev.tags.contains(&t) {
                    ev.tags.push(t);
                }
            }
            // Like MISP: an edit unpublishes.
            ev.published = false;
            ev.timestamp = now;
            let e = ev.clone();
            (200, json!({"Event": event_json(state, &e, true)}))
        }
        "/events/publish/{eventId}" => {
            let Some(i) = state.find_event(&params["eventId"]) else {
                return (404, api_error("Invalid event.", path));
            };
            let ev = &mut state.events[i];
            ev.published = true;
            ev.publish_count += 1;
            let id = ev.id.to_string();
            (
                200,
                json!({"name": "Publish", "message": "Job queued", "url": format!("/events/publish/{id}"), "id": id}),
            )
        }
        "/events/restSearch" => {
            let matches: Vec<Value> = state
                .events
                .iter()
                .filter(|e| str_field(body, "uuid").is_none_or(|u| e.uuid == u))
                .filter(|e| str_field(body, "eventid").is_none_or(|id| e.id.to_string() == id))
                .map(|e| json!({"Event": event_json(state, e, true)}))
                .collect();
            (200, json!({"response": matches}))
        }
        "/attributes/add/{eventId}" => {
            let Some(i) = state.find_event(&params["eventId"]) else {
                return (404, api_error("Invalid event.", path));
            };
            let a = body.get("Attribute").unwrap_or(body);
            let fail = |field: &str, msg: &str| {
                (
                    403,
                    json!({"name": "Could not add Attribute", "message": "Could not add Attribute", "url": "/attributes/add", "errors": {field: [msg]}}),
                )
            };
            let (Some(kind), Some(value)) = (str_field(a, "type"), str_field(a, "value")) else {
                return fail("value", "Please fill in this field");
            };
            let value = value.trim().to_string();
            let category = str_field(a, "category").unwrap_or("Other").to_string();
            if !category_allowed(kind, &category) {
                return fail("category", "Options depend on the selected type.");
            }
            let event_id = state.events[i].id;
            if let Some(uuid) = str_field(a, "uuid") {
                if state.attributes.iter().any(|x| x.uuid == uuid) {
                    return fail("uuid", "An attribute with this uuid already exists.");
                }
            }
            if state
                .attributes
                .iter()
                .any(|x| x.event_id == event_id && x.kind == kind && x.value == value)
            {
                return fail(
                    "value",
                    "A similar attribute already exists for this event.",
                );
            }
            let id = state.next_id(1);
            let attr = FakeAttribute {
                id,
                event_id,
                uuid: str_field(a, "uuid")
                    .map(str::to_string)
                    .unwrap_or_else(|| fake_uuid(id, 2)),
                kind: kind.to_string(),
                category,
                value,
                to_ids: a.get("to_ids").and_then(Value::as_bool).unwrap_or(true),
                comment: str_field(a, "comment").unwrap_or("").to_string(),
                distribution: str_field(a, "distribution").unwrap_or("5").to_string(),
                timestamp: now,
            };
            state.attributes.push(attr.clone());
            state.events[i].published = false;
            (200, json!({"Attribute": attribute_json(&attr)}))
        }
        "/sightings/add" => {
            let values: Vec<&str> = body
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let filters = body.get("filters").cloned().unwrap_or(Value::Null);
            let by_uuid = str_field(body, "uuid").or_else(|| str_field(&filters, "uuid"));
            let event_id = str_field(&filters, "eventid");
            let kind = str_field(&filters, "type");
            let hits: Vec<(u64, u64, String)> = state
                .attributes
                .iter()
                .filter(|a| values.is_empty() || values.contains(&a.value.as_str()))
                .filter(|a| by_uuid.is_none_or(|u| a.uuid == u))
                .filter(|a| event_id.is_none_or(|id| a.event_id.to_string() == id))
                .filter(|a| kind.is_none_or(|k| a.kind == k))
                .map(|a| (a.id, a.event_id, a.uuid.clone()))
                .collect();
            if hits.is_empty() || (values.is_empty() && by_uuid.is_none()) {
                return (404, api_error("Could not add the Sighting. Reason: No valid attributes found that match the criteria.", path));
            }
            let date = str_field(body, "timestamp")
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| now.to_string());
            let mut last = Value::Null;
            for (attribute_id, event_id, attribute_uuid) in hits {
                let id = state.next_id(2);
                let s = FakeSighting {
                    id,
                    attribute_id,
                    event_id,
                    date_sighting: date.clone(),
                    uuid: fake_uuid(id, 3),
                };
                last = json!({
                    "id": id.to_string(), "attribute_id": attribute_id.to_string(), "event_id": event_id.to_string(),
                    "org_id": "1", "date_sighting": s.date_sighting, "uuid": s.uuid, "source": "", "type": "0",
                    "attribute_uuid": attribute_uuid,
                });
                state.sightings.push(s);
            }
            (200, last)
        }
        _ => (501, api_error("Not implemented by the fake", path)),
    }
}

// ---------------------------------------------------------------------------------------------
// Self-tests of the fake (run with the MISP tests)

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = Pattern::compile(r"^\d+$|^$").unwrap();
        assert!(p.is_match("123"));
        assert!(p.is_match(""));
        assert!(!p.is_match("12a"));
        assert!(!Pattern::compile(r"^\d+$").unwrap().is_match(""));
        assert!(Pattern::compile(r"ab?c").unwrap().is_match("xxacx"));
        assert!(Pattern::compile("[a-z]").is_err());
    }
}
