//! ModSecurity v3 JSON audit log: each event as one line in the shape libmodsecurity writes with
//! `SecAuditLogFormat JSON` and `SecAuditLogType Serial`, so that pipelines built for
//! ModSecurity (Elastic's ModSecurity integration, Filebeat/Logstash configs that read
//! `transaction.*`) take our events unchanged.
//!
//! The shape is libmodsecurity's `Transaction::toJSON` (owasp-modsecurity/ModSecurity,
//! src/transaction.cc, read at commits 035f71c7 and 6e24e60a) for `SecAuditLogParts ABCFHZ`: keys in its order; `client_port`, `host_port` and `http_code` JSON
//! integers; `http_version` a JSON number (`1.1`, `2.0`); every field of `messages[].details`
//! a string, numbers included (`"ruleId":"942100"`, `"severity":"2"`, `"lineNumber":"0"`), as
//! its `LOGFY_ADD(.., std::to_string(..))` writes them; `time_stamp` in `ctime()` form
//! (`Tue Nov 14 22:13:20 2023`, day padded with a space). No response body (part E): we do
//! not keep one.
//!
//! Writing is [`FileSink`]'s: records are converted and the lines handed to a `FileSink`, so
//! whole-line `O_APPEND` writes, the retry buffer and reopen behave exactly as for the NDJSON
//! file.
//!
//! # Mapping (ECS document → audit log)
//!
//! | audit log | from |
//! |---|---|
//! | `client_ip`, `client_port` | `source.ip`, `source.port` (`""`, `0` when unknown) |
//! | `time_stamp` | `@timestamp`, in UTC (libmodsecurity uses local time: set the pipeline's time zone to UTC) |
//! | `server_id` | `observer.name` (the sensor; libmodsecurity writes a host hash) |
//! | `host_ip`, `host_port` | `destination.ip`, `destination.port` |
//! | `unique_id` | `event.id` (one line per id, as ModSecurity has one line per transaction id) |
//! | `request.method` | `http.request.method` (`-` when unknown, as libmodsecurity) |
//! | `request.http_version` | `http.version` as a number, `2` → `2.0` (1.0 when unknown, as ModSecurity-nginx) |
//! | `request.uri` | `url.original` |
//! | `request.body` | `http.request.body.content` (capped as in the ECS document) |
//! | `request.headers` | `honeytrap.request.headers`, names in canonical case (`user-agent` → `User-Agent`); `Host` from `url.domain` and `User-Agent` from `user_agent.original` if missing |
//! | `response.http_code` | `http.response.status_code` (200 when unknown, libmodsecurity's initial value) |
//! | `response.headers` | `Server: nginx` and `Date` from `@timestamp` (see below) |
//! | `producer.modsecurity` | `<observer.vendor> v<observer.version> (<OS>)` |
//! | `producer.connector` | `ngx_http_honeytrap_module v<observer.version>` |
//! | `producer.secrules_engine` | `Enabled` when `event.type` is `denied`, else `DetectionOnly` |
//! | `producer.components` | `<observer.vendor>/<observer.version>`, then [`AuditLogSink::with_components`] |
//! | `messages[]` | one per `honeytrap.rules[]`, then the synthetic ones below |
//! | `message` | rule `msg` |
//! | `details.ruleId`, `tags`, `severity`, `data` | rule `id`, `tags`, `severity` (`"0"` when unset, as libmodsecurity), `matched_data` |
//! | `details.match` | ``Matched against variable `ARGS:id'`` from `matched_var` (the operator is not recorded) |
//! | `details.reference`, `file`, `ver`, `rev` | `""`; `lineNumber`, `maturity`, `accuracy` `"0"` (not recorded) |
//!
//! Elastic's integration routes a line to its nginx pipeline only when
//! `response.headers.Server` names nginx, and reads `request.headers.Host` and `User-Agent`
//! in that case; hence the canonical header names and the `Server` header. This sensor is
//! nginx; the actual `Server` value sent (`server_tokens`) is not recorded.
//!
//! Not carried (no slot in the format): `transaction.id` (nginx `$request_id`),
//! `honeytrap.anomaly_score`, `honeytrap.truncated`, `url.*` parts, `related.*`, `rule.*`.
//!
//! # Synthetic messages
//!
//! Baits and decoys match no SecLang rule, yet a ModSecurity pipeline only sees what is in
//! `messages`. So each bait or decoy event gets a message of its own, with a rule id from
//! [`SYNTHETIC_RULE_IDS`] (4,800,000–4,800,099: in 4,200,000–8,999,999, which the rule id
//! reservations in coreruleset/documentation `content/rules/ruleid.md` list as unused; the
//! seed's own honeytrap rules sat at 999004–999014, inside the Core Rule Set's reserved
//! 900,000–999,999), a message in the seed's
//! `HoneyTrap Alert: ...` wording, and tags `ngx-honeytrap`, `honeytrap/<bait type>`, the
//! event's `tags` and `mitre-attack/<id>` per ATT&CK technique and tactic:
//!
//! | ruleId | when | message |
//! |---|---|---|
//! | 4800001 | bait `robots` | HoneyTrap Alert: Disallowed robots.txt Entry Accessed. |
//! | 4800002 | bait `comment` | HoneyTrap Alert: Fake HTML Comment Data Used. |
//! | 4800003 | bait `form-field` | HoneyTrap Alert: Fake Hidden Form Data Manipulated. |
//! | 4800004 | bait `cookie` | HoneyTrap Alert: Fake Cookie Data Manipulation. |
//! | 4800005 | bait `decoy-path` | HoneyTrap Alert: Decoy Path Accessed. |
//! | 4800006 | bait `tripwire` | HoneyTrap Alert: Scanner Tripwire Path Accessed. |
//! | 4800007 | bait `decoy-server` | HoneyTrap Alert: Traffic Received on Fake Port. |
//! | 4800010 | credentials captured | HoneyTrap Alert: Authentication Attempt to Fake Resource. |
//! | 4800020 | a bait type this version does not know | HoneyTrap Alert: Bait Touched. |
//! | 4800030 | a decoy or bait event without bait details | HoneyTrap Alert: Decoy Hit. |
//! | 4800099 | a record that is not an event document | ngx-honeytrap: event not converted. |
//!
//! Their `details.match` reads like ModSecurity's (``Matched "Operator `honeytrap' with
//! parameter `cookie:role' against variable `REQUEST_COOKIES:role' (Value: `...' )``, value
//! hex-escaped and cut at 100 bytes as libmodsecurity does), `details.data` lists the bait,
//! token and attribution as `key=value` pairs (for credentials: `Credentials used: user:pass`,
//! the seed's wording), `details.severity` is `event.severity` and `details.ver`
//! `<observer.vendor>/<observer.version>`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use super::file::FileSink;
use super::{Record, Sink, SinkCounters, SinkError, SinkResult};
use crate::bait::BaitKind;

/// Rule ids of the synthetic messages (see the module documentation).
pub const SYNTHETIC_RULE_IDS: RangeInclusive<u32> = 4_800_000..=4_800_099;
const CREDENTIALS_RULE: u32 = 4_800_010;
const UNKNOWN_BAIT_RULE: u32 = 4_800_020;
const DECOY_HIT_RULE: u32 = 4_800_030;
const UNCONVERTED_RULE: u32 = 4_800_099;

/// libmodsecurity cuts the value in `details.match` to this many bytes.
const MATCH_VALUE_LIMIT: usize = 100;

/// Appends events to a file as ModSecurity v3 JSON audit log lines.
pub struct AuditLogSink {
    file: FileSink,
    components: Vec<String>,
    lines: Vec<Record>,
}

impl AuditLogSink {
    /// Opens (creating, mode 0640 minus the umask) `path` for appending, as [`FileSink::open`].
    pub fn open(path: impl Into<PathBuf>) -> Result<AuditLogSink, SinkError> {
        Ok(AuditLogSink::wrap(FileSink::open(path)?))
    }

    /// Writes to `file`, already open for appending (by the nginx master), and reopens `path`
    /// on [`Sink::reopen`], as [`FileSink::from_file`].
    pub fn from_file(path: impl Into<PathBuf>, file: File) -> AuditLogSink {
        AuditLogSink::wrap(FileSink::from_file(path, file))
    }

    fn wrap(file: FileSink) -> AuditLogSink {
        AuditLogSink {
            file,
            components: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Rule set signatures listed in `producer.components` after ours, as `SecComponentSignature`
    /// lists them in ModSecurity (e.g. `OWASP_CRS/4.28.0`).
    pub fn with_components(mut self, components: Vec<String>) -> AuditLogSink {
        self.components = components;
        self
    }

    /// Bounds the memory held for retries, as [`FileSink::with_max_pending_bytes`].
    pub fn with_max_pending_bytes(mut self, bytes: usize) -> AuditLogSink {
        self.file = self.file.with_max_pending_bytes(bytes);
        self
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Lines waiting for a retry.
    pub fn pending(&self) -> usize {
        self.file.pending()
    }
}

impl Sink for AuditLogSink {
    fn name(&self) -> &str {
        "audit_log"
    }

    fn send(&mut self, batch: &[Record]) -> SinkResult {
        self.lines.clear();
        self.lines.extend(batch.iter().map(|record| Record {
            id: record.id.clone(),
            json: to_audit_line(record, &self.components),
        }));
        let result = self.file.send(&self.lines);
        self.lines.clear();
        result
    }

    fn tick(&mut self, now: Instant) -> SinkResult {
        self.file.tick(now)
    }

    fn flush(&mut self, deadline: Instant) -> SinkResult {
        self.file.flush(deadline)
    }

    fn reopen(&mut self) -> SinkResult {
        self.file.reopen()
    }

    fn release_buffers(&mut self) {
        self.lines = Vec::new();
        self.file.release_buffers();
    }

    fn counters(&self) -> &SinkCounters {
        self.file.counters()
    }
}

/// The audit log line (without newline) for one record; `components` follow our own signature
/// in `producer.components`. Never fails: a record that is not an event document still gives
/// a line, with its id and a message saying why it is empty, so that no event goes missing.
pub fn to_audit_line(record: &Record, components: &[String]) -> String {
    let (doc, problem) = match serde_json::from_str::<Doc>(&record.json) {
        Ok(doc) => (doc, None),
        Err(e) => (Doc::default(), Some(e.to_string())),
    };
    let line = AuditLine {
        transaction: Transaction::of(&doc, record, components, problem),
    };
    // Plain structs and string maps: serializing cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

// ---- The ECS document, as much of it as the audit log uses ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct Doc {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    event: EventIn,
    source: Option<EndpointIn>,
    destination: Option<EndpointIn>,
    url: UrlIn,
    http: HttpIn,
    user_agent: Option<UserAgentIn>,
    observer: ObserverIn,
    tags: Vec<String>,
    threat: ThreatIn,
    honeytrap: HoneytrapIn,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventIn {
    severity: Option<u8>,
    r#type: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EndpointIn {
    ip: String,
    port: u16,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UrlIn {
    original: Option<String>,
    domain: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HttpIn {
    request: HttpRequestIn,
    version: Option<String>,
    response: Option<ResponseIn>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HttpRequestIn {
    method: Option<String>,
    body: Option<BodyIn>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BodyIn {
    content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseIn {
    status_code: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserAgentIn {
    original: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ObserverIn {
    name: String,
    vendor: String,
    version: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ThreatIn {
    technique: IdsIn,
    tactic: IdsIn,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IdsIn {
    id: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HoneytrapIn {
    kind: String,
    bait: Option<BaitIn>,
    attribution: Option<AttributionIn>,
    rules: Vec<RuleIn>,
    credentials: Option<CredentialsIn>,
    flagged: bool,
    request: RequestIn,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BaitIn {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AttributionIn {
    served_to_ip: Option<String>,
    served_at: Option<String>,
    token_id: Option<String>,
    valid: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RuleIn {
    id: String,
    msg: Option<String>,
    tags: Vec<String>,
    severity: Option<u8>,
    matched_var: Option<String>,
    matched_data: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CredentialsIn {
    username: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RequestIn {
    headers: BTreeMap<String, String>,
}

// ---- The audit log line; field order is libmodsecurity's ----

#[derive(Serialize)]
struct AuditLine<'a> {
    transaction: Transaction<'a>,
}

#[derive(Serialize)]
struct Transaction<'a> {
    client_ip: &'a str,
    time_stamp: String,
    server_id: &'a str,
    client_port: u16,
    host_ip: &'a str,
    host_port: u16,
    unique_id: &'a str,
    request: Request<'a>,
    response: Response,
    producer: Producer,
    messages: Vec<Message>,
}

#[derive(Serialize)]
struct Request<'a> {
    method: &'a str,
    http_version: f64,
    uri: &'a str,
    body: &'a str,
    headers: Headers<'a>,
}

#[derive(Serialize)]
struct Response {
    http_code: u16,
    headers: ResponseHeaders,
}

#[derive(Serialize)]
struct ResponseHeaders {
    #[serde(rename = "Server")]
    server: &'static str,
    #[serde(rename = "Date")]
    date: String,
}

#[derive(Serialize)]
struct Producer {
    modsecurity: String,
    connector: String,
    secrules_engine: &'static str,
    components: Vec<String>,
}

#[derive(Serialize)]
struct Message {
    message: String,
    details: Details,
}

#[allow(non_snake_case)] // the key names are libmodsecurity's
#[derive(Serialize)]
struct Details {
    r#match: String,
    reference: String,
    ruleId: String,
    file: String,
    lineNumber: String,
    data: String,
    severity: String,
    ver: String,
    rev: String,
    tags: Vec<String>,
    maturity: String,
    accuracy: String,
}

impl Details {
    /// libmodsecurity's values for a message whose rule left these unset.
    fn new(rule_id: String) -> Details {
        Details {
            r#match: String::new(),
            reference: String::new(),
            ruleId: rule_id,
            file: String::new(),
            lineNumber: "0".to_owned(),
            data: String::new(),
            severity: "0".to_owned(),
            ver: String::new(),
            rev: String::new(),
            tags: Vec::new(),
            maturity: "0".to_owned(),
            accuracy: "0".to_owned(),
        }
    }
}

/// Request headers in canonical case, in the ECS document's (sorted) order.
struct Headers<'a>(Vec<(String, &'a str)>);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'a> Transaction<'a> {
    fn of(
        doc: &'a Doc,
        record: &'a Record,
        components: &[String],
        problem: Option<String>,
    ) -> Transaction<'a> {
        let time = OffsetDateTime::parse(&doc.timestamp, &Rfc3339)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let denied = doc.event.r#type.iter().any(|t| t == "denied");
        let mut messages = messages(doc);
        if let Some(problem) = problem {
            let mut details = Details::new(UNCONVERTED_RULE.to_string());
            details.data = problem;
            details.tags = vec!["ngx-honeytrap".to_owned()];
            messages.push(Message {
                message: "ngx-honeytrap: event not converted.".to_owned(),
                details,
            });
        }
        let (client_ip, client_port) = endpoint(doc.source.as_ref());
        let (host_ip, host_port) = endpoint(doc.destination.as_ref());
        Transaction {
            client_ip,
            time_stamp: format_time(time, CTIME),
            server_id: &doc.observer.name,
            client_port,
            host_ip,
            host_port,
            // The record id is event.id, and present even when the document is not.
            unique_id: &record.id,
            request: Request {
                method: doc
                    .http
                    .request
                    .method
                    .as_deref()
                    .filter(|m| !m.is_empty())
                    .unwrap_or("-"),
                http_version: http_version(doc.http.version.as_deref()),
                uri: doc.url.original.as_deref().unwrap_or(""),
                body: doc
                    .http
                    .request
                    .body
                    .as_ref()
                    .and_then(|b| b.content.as_deref())
                    .unwrap_or(""),
                headers: request_headers(doc),
            },
            response: Response {
                http_code: doc
                    .http
                    .response
                    .as_ref()
                    .and_then(|r| r.status_code)
                    .unwrap_or(200),
                headers: ResponseHeaders {
                    server: "nginx",
                    date: format_time(time, HTTP_DATE),
                },
            },
            producer: Producer {
                modsecurity: format!(
                    "{} v{} ({})",
                    doc.observer.vendor,
                    doc.observer.version,
                    platform()
                ),
                connector: format!("ngx_http_honeytrap_module v{}", doc.observer.version),
                secrules_engine: if denied { "Enabled" } else { "DetectionOnly" },
                components: std::iter::once(rule_set_version(doc))
                    .chain(components.iter().cloned())
                    .collect(),
            },
            messages,
        }
    }
}

fn endpoint(e: Option<&EndpointIn>) -> (&str, u16) {
    e.map_or(("", 0), |e| (e.ip.as_str(), e.port))
}

/// `ctime()`, as libmodsecurity's `ascTime`: `Mon May  9 09:41:59 2022`.
const CTIME: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
);

/// The HTTP `Date` header (RFC 9110 IMF-fixdate).
const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

fn format_time(time: OffsetDateTime, format: &[FormatItem<'static>]) -> String {
    time.format(format).unwrap_or_default()
}

/// ModSecurity-nginx passes `0.9`, `1.0`, `1.1`, `2.0`; ECS has `1.1`, `2`, `3`.
fn http_version(version: Option<&str>) -> f64 {
    version
        .map(|v| v.trim_start_matches("HTTP/"))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(1.0)
}

/// As libmodsecurity's `whoAmI()` names it.
fn platform() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "freebsd" => "FreeBSD",
        "macos" => "MacOSX",
        other => other,
    }
}

/// Our synthetic rules' version, as CRS writes `OWASP_CRS/4.28.0` in `ver` and components.
fn rule_set_version(doc: &Doc) -> String {
    format!("{}/{}", doc.observer.vendor, doc.observer.version)
}

fn request_headers(doc: &Doc) -> Headers<'_> {
    let ecs = &doc.honeytrap.request.headers;
    let mut headers: Vec<(String, &str)> = ecs
        .iter()
        .map(|(name, value)| (canonical_header_name(name), value.as_str()))
        .collect();
    // Pipelines read these two by name; the event may keep them only in their own fields.
    if !ecs.contains_key("host") {
        if let Some(domain) = &doc.url.domain {
            headers.push(("Host".to_owned(), domain));
        }
    }
    if !ecs.contains_key("user-agent") {
        if let Some(ua) = &doc.user_agent {
            headers.push(("User-Agent".to_owned(), &ua.original));
        }
    }
    Headers(headers)
}

/// `x-forwarded-for` → `X-Forwarded-For`: the ECS document lowercases names, while
/// ModSecurity logs them as clients send them and pipelines look up `User-Agent`, `Host`.
fn canonical_header_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut start = true;
    for c in name.chars() {
        out.push(if start {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        start = c == '-';
    }
    out
}

fn messages(doc: &Doc) -> Vec<Message> {
    let mut out: Vec<Message> = doc.honeytrap.rules.iter().map(rule_message).collect();
    let is_trap = matches!(doc.honeytrap.kind.as_str(), "decoy" | "bait");
    match &doc.honeytrap.bait {
        Some(bait) => out.push(bait_message(doc, bait)),
        None if is_trap => out.push(synthetic(
            doc,
            DECOY_HIT_RULE,
            "HoneyTrap Alert: Decoy Hit.",
            "decoy",
            "",
            "REQUEST_FILENAME",
            request_path(doc),
            trap_data(doc, None),
        )),
        None => {}
    }
    if let Some(c) = &doc.honeytrap.credentials {
        let username = c.username.as_deref().unwrap_or("");
        let password = c.password.as_deref().unwrap_or("");
        out.push(synthetic(
            doc,
            CREDENTIALS_RULE,
            "HoneyTrap Alert: Authentication Attempt to Fake Resource.",
            "credentials",
            "",
            "REQUEST_FILENAME",
            request_path(doc),
            format!("Credentials used: {username}:{password}"),
        ));
    }
    out
}

fn rule_message(rule: &RuleIn) -> Message {
    let mut details = Details::new(rule.id.clone());
    if let Some(var) = &rule.matched_var {
        details.r#match = format!("Matched against variable `{var}'");
    }
    details.data = rule.matched_data.clone().unwrap_or_default();
    if let Some(severity) = rule.severity {
        details.severity = severity.to_string();
    }
    details.tags = rule.tags.to_vec();
    Message {
        message: rule.msg.clone().unwrap_or_default(),
        details,
    }
}

/// What a touched bait looks like as a rule: (id, message, variable it lives in).
fn bait_rule(kind: BaitKind) -> (u32, &'static str, &'static str) {
    match kind {
        BaitKind::Robots => (
            4_800_001,
            "HoneyTrap Alert: Disallowed robots.txt Entry Accessed.",
            "REQUEST_FILENAME",
        ),
        BaitKind::Comment => (
            4_800_002,
            "HoneyTrap Alert: Fake HTML Comment Data Used.",
            "REQUEST_FILENAME",
        ),
        BaitKind::FormField => (
            4_800_003,
            "HoneyTrap Alert: Fake Hidden Form Data Manipulated.",
            "ARGS",
        ),
        BaitKind::Cookie => (
            4_800_004,
            "HoneyTrap Alert: Fake Cookie Data Manipulation.",
            "REQUEST_COOKIES",
        ),
        BaitKind::DecoyPath => (
            4_800_005,
            "HoneyTrap Alert: Decoy Path Accessed.",
            "REQUEST_FILENAME",
        ),
        BaitKind::Tripwire => (
            4_800_006,
            "HoneyTrap Alert: Scanner Tripwire Path Accessed.",
            "REQUEST_FILENAME",
        ),
        BaitKind::DecoyServer => (
            4_800_007,
            "HoneyTrap Alert: Traffic Received on Fake Port.",
            "SERVER_PORT",
        ),
    }
}

fn bait_message(doc: &Doc, bait: &BaitIn) -> Message {
    let kind = BaitKind::ALL.into_iter().find(|k| k.as_str() == bait.kind);
    let (id, message, variable) = kind.map_or(
        (
            UNKNOWN_BAIT_RULE,
            "HoneyTrap Alert: Bait Touched.",
            "REQUEST_FILENAME",
        ),
        bait_rule,
    );
    // Cookies and form fields are collections: ModSecurity names the member.
    let variable = match kind {
        Some(BaitKind::Cookie | BaitKind::FormField) => {
            Cow::Owned(format!("{variable}:{}", bait.name))
        }
        _ => Cow::Borrowed(variable),
    };
    let value = match kind {
        Some(BaitKind::Cookie | BaitKind::FormField) => {
            Cow::Borrowed(bait.token.as_deref().unwrap_or(""))
        }
        Some(BaitKind::DecoyServer) => Cow::Owned(
            doc.destination
                .as_ref()
                .map(|d| d.port.to_string())
                .unwrap_or_default(),
        ),
        _ => Cow::Borrowed(request_path(doc)),
    };
    synthetic(
        doc,
        id,
        message,
        &bait.kind,
        &bait.name,
        &variable,
        &value,
        trap_data(doc, Some(bait)),
    )
}

/// A message of ours, in the words libmodsecurity uses for an operator match.
#[allow(clippy::too_many_arguments)] // each is one field of the message; a struct adds nothing
fn synthetic(
    doc: &Doc,
    id: u32,
    message: &str,
    what: &str,
    name: &str,
    variable: &str,
    value: &str,
    data: String,
) -> Message {
    let parameter = if name.is_empty() {
        what.to_owned()
    } else {
        format!("{what}:{name}")
    };
    let mut details = Details::new(id.to_string());
    details.r#match = format!(
        "Matched \"Operator `honeytrap' with parameter `{parameter}' against variable \
         `{variable}' (Value: `{}' )",
        limit_to(MATCH_VALUE_LIMIT, hex_if_needed(value))
    );
    details.data = data;
    details.severity = doc.event.severity.unwrap_or(0).to_string();
    details.ver = rule_set_version(doc);
    details.tags = ["ngx-honeytrap".to_owned(), format!("honeytrap/{what}")]
        .into_iter()
        .chain(doc.tags.iter().cloned())
        .chain(
            doc.threat
                .technique
                .id
                .iter()
                .chain(&doc.threat.tactic.id)
                .map(|id| format!("mitre-attack/{id}")),
        )
        .collect();
    Message {
        message: message.to_owned(),
        details,
    }
}

/// `key=value` pairs about the bait and who it was served to, for `details.data`.
fn trap_data(doc: &Doc, bait: Option<&BaitIn>) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(bait) = bait {
        pairs.push(("bait_type", &bait.kind));
        pairs.push(("bait_name", &bait.name));
        if let Some(token) = &bait.token {
            pairs.push(("token", token));
        }
    }
    if let Some(a) = &doc.honeytrap.attribution {
        pairs.push(("token_valid", if a.valid { "true" } else { "false" }));
        let optional = [
            ("token_id", &a.token_id),
            ("served_to_ip", &a.served_to_ip),
            ("served_at", &a.served_at),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                pairs.push((key, value));
            }
        }
    }
    if doc.honeytrap.flagged {
        pairs.push(("flagged", "true"));
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn request_path(doc: &Doc) -> &str {
    let uri = doc.url.original.as_deref().unwrap_or("");
    uri.split_once('?').map_or(uri, |(path, _)| path)
}

/// libmodsecurity's `toHexIfNeeded`: bytes outside printable ASCII as `\xNN`.
fn hex_if_needed(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (32..=126).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// libmodsecurity's `limitTo`: the first `limit` bytes and how many were left out.
fn limit_to(limit: usize, value: String) -> String {
    if value.len() <= limit {
        return value;
    }
    // The input is ASCII (hex-escaped), so any byte index is a char boundary.
    let omitted = value.len() - limit;
    format!("{} ({omitted} characters omitted)", &value[..limit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attribution, Bait, Event, Kind, Limits, MitreRef, Observer, RuleMatch};
    use serde::de::{MapAccess, SeqAccess, Visitor};
    use serde::Deserializer;
    use serde_json::{json, Value};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// 2023-11-14T22:13:20.123Z, a Tuesday.
    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
    }

    fn base(kind: Kind) -> Event {
        let limits = Limits::default();
        let mut e = Event::new(kind, Arc::new(Observer::new("sensor-1")));
        e.timestamp = at();
        e.source = Some("203.0.113.7:51234".parse().unwrap());
        e.destination = Some("192.0.2.10:8080".parse().unwrap());
        e.set_method(b"GET");
        e.http_version = Some("1.1".to_owned());
        e.status_code = Some(200);
        e.set_host(b"shop.example:8080", &limits);
        e.add_header(b"Host", b"shop.example:8080", &limits);
        e.add_header(b"User-Agent", b"sqlmap/1.8", &limits);
        e.add_header(b"x-forwarded-for", b"10.0.0.1", &limits);
        e.set_user_agent(b"sqlmap/1.8", &limits);
        e
    }

    fn rules_event() -> Event {
        let mut e = base(Kind::Rules);
        e.set_url(b"/search?q=1'+OR+1=1--");
        e.set_body(b"a=b", &Limits::default());
        e.denied = true;
        e.status_code = Some(403);
        e.http_version = Some("2".to_owned());
        e.add_rule(RuleMatch {
            id: 942100,
            msg: Some("SQL Injection Attack Detected via libinjection".into()),
            tags: ["attack-sqli".to_owned(), "OWASP_CRS".to_owned()].into(),
            severity: Some(2),
            matched_var: Some("ARGS:q".into()),
            matched_data: Some("Matched Data: s&1c found within ARGS:q: 1' OR 1=1--".into()),
        });
        e.add_rule(RuleMatch {
            id: 949110,
            msg: Some("Inbound Anomaly Score Exceeded (Total Score: 5)".into()),
            ..RuleMatch::default()
        });
        e
    }

    fn bait_event() -> Event {
        let mut e = base(Kind::Bait);
        e.set_url(b"/account?x=1");
        e.bait = Some(Bait {
            kind: "cookie".into(),
            name: "role".into(),
            token: Some("admin.tok-1".into()),
        });
        e.attribution = Some(Attribution {
            served_to_ip: Some("198.51.100.9".parse().unwrap()),
            served_at: Some(UNIX_EPOCH + Duration::from_millis(1_699_999_000_000)),
            token_id: Some("t-42".into()),
            valid: true,
        });
        e.techniques = vec![MitreRef::new("T1190", "Exploit Public-Facing Application")];
        e.tactics = vec![MitreRef::new("TA0001", "Initial Access")];
        e.tags = vec!["cookie".into(), "cookie:value-changed".into()];
        e.flagged = true;
        e
    }

    fn decoy_event() -> Event {
        let mut e = base(Kind::Decoy);
        e.set_url(b"/");
        e.status_code = Some(401);
        e.bait = Some(Bait {
            kind: "decoy-server".into(),
            name: ":8080".into(),
            token: None,
        });
        e.set_credentials(Some(b"root"), Some(b"toor"), &Limits::default());
        e.techniques = vec![
            MitreRef::new("T1595", "Active Scanning"),
            MitreRef::new("T1110", "Brute Force"),
        ];
        e.tags = vec!["decoy-server".into()];
        e
    }

    fn line(e: &Event) -> String {
        to_audit_line(&e.to_record(), &[])
    }

    fn audit(e: &Event) -> Value {
        let l = line(e);
        assert!(!l.contains('\n'), "one line: {l}");
        serde_json::from_str(&l).unwrap()
    }

    #[test]
    fn rules_event_maps_field_by_field() {
        let e = rules_event();
        let t = &audit(&e)["transaction"];
        assert_eq!(t["client_ip"], "203.0.113.7");
        assert_eq!(t["client_port"], 51234);
        assert_eq!(t["host_ip"], "192.0.2.10");
        assert_eq!(t["host_port"], 8080);
        assert_eq!(t["time_stamp"], "Tue Nov 14 22:13:20 2023");
        assert_eq!(t["server_id"], "sensor-1");
        assert_eq!(t["unique_id"], e.id.to_string());
        let r = &t["request"];
        assert_eq!(r["method"], "GET");
        assert!(r["http_version"].is_f64());
        assert_eq!(r["http_version"], 2.0);
        assert_eq!(r["uri"], "/search?q=1'+OR+1=1--");
        assert_eq!(r["body"], "a=b");
        assert_eq!(
            r["headers"],
            json!({
                "Host": "shop.example:8080",
                "User-Agent": "sqlmap/1.8",
                "X-Forwarded-For": "10.0.0.1",
            })
        );
        assert_eq!(t["response"]["http_code"], 403);
        assert_eq!(
            t["response"]["headers"],
            json!({ "Server": "nginx", "Date": "Tue, 14 Nov 2023 22:13:20 GMT" })
        );
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            t["producer"],
            json!({
                "modsecurity": format!("ngx-honeytrap v{version} ({})", platform()),
                "connector": format!("ngx_http_honeytrap_module v{version}"),
                "secrules_engine": "Enabled",
                "components": [format!("ngx-honeytrap/{version}")],
            })
        );
        assert_eq!(
            t["messages"],
            json!([
                {
                    "message": "SQL Injection Attack Detected via libinjection",
                    "details": {
                        "match": "Matched against variable `ARGS:q'",
                        "reference": "",
                        "ruleId": "942100",
                        "file": "",
                        "lineNumber": "0",
                        "data": "Matched Data: s&1c found within ARGS:q: 1' OR 1=1--",
                        "severity": "2",
                        "ver": "",
                        "rev": "",
                        "tags": ["attack-sqli", "OWASP_CRS"],
                        "maturity": "0",
                        "accuracy": "0",
                    },
                },
                {
                    "message": "Inbound Anomaly Score Exceeded (Total Score: 5)",
                    "details": {
                        "match": "",
                        "reference": "",
                        "ruleId": "949110",
                        "file": "",
                        "lineNumber": "0",
                        "data": "",
                        "severity": "0",
                        "ver": "",
                        "rev": "",
                        "tags": [],
                        "maturity": "0",
                        "accuracy": "0",
                    },
                },
            ])
        );
    }

    #[test]
    fn bait_event_gets_a_synthetic_message() {
        let e = bait_event();
        let t = &audit(&e)["transaction"];
        assert_eq!(t["producer"]["secrules_engine"], "DetectionOnly");
        assert_eq!(t["request"]["http_version"], 1.1);
        assert_eq!(t["request"]["body"], "");
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            t["messages"],
            json!([{
                "message": "HoneyTrap Alert: Fake Cookie Data Manipulation.",
                "details": {
                    "match": "Matched \"Operator `honeytrap' with parameter `cookie:role' \
                              against variable `REQUEST_COOKIES:role' (Value: `admin.tok-1' )",
                    "reference": "",
                    "ruleId": "4800004",
                    "file": "",
                    "lineNumber": "0",
                    "data": "bait_type=cookie bait_name=role token=admin.tok-1 token_valid=true \
                             token_id=t-42 served_to_ip=198.51.100.9 \
                             served_at=2023-11-14T21:56:40.000Z flagged=true",
                    "severity": "2",
                    "ver": format!("ngx-honeytrap/{version}"),
                    "rev": "",
                    "tags": [
                        "ngx-honeytrap",
                        "honeytrap/cookie",
                        "cookie",
                        "cookie:value-changed",
                        "mitre-attack/T1190",
                        "mitre-attack/TA0001",
                    ],
                    "maturity": "0",
                    "accuracy": "0",
                },
            }])
        );
    }

    #[test]
    fn decoy_event_gets_a_decoy_and_a_credentials_message() {
        let e = decoy_event();
        let t = &audit(&e)["transaction"];
        assert_eq!(t["response"]["http_code"], 401);
        let m = t["messages"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0]["message"],
            "HoneyTrap Alert: Traffic Received on Fake Port."
        );
        let d = &m[0]["details"];
        assert_eq!(d["ruleId"], "4800007");
        assert_eq!(
            d["match"],
            "Matched \"Operator `honeytrap' with parameter `decoy-server::8080' against \
             variable `SERVER_PORT' (Value: `8080' )"
        );
        assert_eq!(d["data"], "bait_type=decoy-server bait_name=:8080");
        assert_eq!(d["severity"], Kind::Decoy.default_severity().to_string());
        assert_eq!(
            d["tags"],
            json!([
                "ngx-honeytrap",
                "honeytrap/decoy-server",
                "decoy-server",
                "mitre-attack/T1595",
                "mitre-attack/T1110",
            ])
        );
        assert_eq!(
            m[1]["message"],
            "HoneyTrap Alert: Authentication Attempt to Fake Resource."
        );
        let d = &m[1]["details"];
        assert_eq!(d["ruleId"], "4800010");
        assert_eq!(d["data"], "Credentials used: root:toor");
        assert_eq!(
            d["match"],
            "Matched \"Operator `honeytrap' with parameter `credentials' against variable \
             `REQUEST_FILENAME' (Value: `/' )"
        );
    }

    #[test]
    fn trap_events_without_bait_details_still_get_a_message() {
        let mut e = base(Kind::Decoy);
        e.set_url(b"/admin/?a=b");
        let m = &audit(&e)["transaction"]["messages"];
        assert_eq!(m.as_array().unwrap().len(), 1);
        assert_eq!(m[0]["details"]["ruleId"], DECOY_HIT_RULE.to_string());
        assert!(m[0]["details"]["match"]
            .as_str()
            .unwrap()
            .contains("(Value: `/admin/' )"));
        // A bait type from a newer sensor is still a message, under its own id.
        let mut e = base(Kind::Bait);
        e.bait = Some(Bait {
            kind: "canary-pdf".into(),
            name: "report.pdf".into(),
            token: None,
        });
        let m = &audit(&e)["transaction"]["messages"];
        assert_eq!(m[0]["details"]["ruleId"], UNKNOWN_BAIT_RULE.to_string());
        assert_eq!(m[0]["details"]["tags"][1], "honeytrap/canary-pdf");
        // A rules event without rules has no messages, as a ModSecurity transaction logged
        // for its status only.
        let e = base(Kind::Rules);
        assert_eq!(audit(&e)["transaction"]["messages"], json!([]));
    }

    #[test]
    fn every_bait_kind_has_its_own_id_in_the_synthetic_range() {
        let mut ids: Vec<u32> = BaitKind::ALL.into_iter().map(|k| bait_rule(k).0).collect();
        ids.extend([
            CREDENTIALS_RULE,
            UNKNOWN_BAIT_RULE,
            DECOY_HIT_RULE,
            UNCONVERTED_RULE,
        ]);
        for id in &ids {
            assert!(SYNTHETIC_RULE_IDS.contains(id), "{id}");
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for kind in BaitKind::ALL {
            let mut e = base(Kind::Bait);
            e.bait = Some(Bait {
                kind: kind.as_str().into(),
                name: "n".into(),
                token: None,
            });
            let m = &audit(&e)["transaction"]["messages"][0];
            assert_eq!(m["details"]["ruleId"], bait_rule(kind).0.to_string());
            assert_eq!(m["message"], bait_rule(kind).1);
        }
    }

    #[test]
    fn time_stamp_pads_the_day_as_ctime_and_elastic_expect() {
        // Elastic's pipeline parses `E MMM dd HH:mm:ss yyyy` or `E MMM  d HH:mm:ss yyyy`.
        let mut e = base(Kind::Decoy);
        e.timestamp = UNIX_EPOCH + Duration::from_secs(1_652_089_319);
        let t = &audit(&e)["transaction"];
        assert_eq!(t["time_stamp"], "Mon May  9 09:41:59 2022");
        assert_eq!(
            t["response"]["headers"]["Date"],
            "Mon, 09 May 2022 09:41:59 GMT"
        );
    }

    #[test]
    fn unknowns_get_libmodsecuritys_defaults() {
        let mut e = Event::new(Kind::Rules, Arc::new(Observer::new("s")));
        e.timestamp = at();
        let t = &audit(&e)["transaction"];
        assert_eq!(t["client_ip"], "");
        assert_eq!(t["client_port"], 0);
        assert_eq!(t["request"]["method"], "-");
        assert_eq!(t["request"]["http_version"], 1.0);
        assert_eq!(t["request"]["uri"], "");
        assert_eq!(t["request"]["headers"], json!({}));
        assert_eq!(t["response"]["http_code"], 200);
        assert_eq!(http_version(Some("HTTP/1.0")), 1.0);
        assert_eq!(http_version(Some("3")), 3.0);
        assert_eq!(http_version(Some("NaN")), 1.0);
        assert_eq!(http_version(Some("junk")), 1.0);
    }

    #[test]
    fn record_that_is_not_an_event_still_gives_a_line() {
        let record = Record {
            id: "abc".into(),
            json: "{not json".into(),
        };
        let v: Value = serde_json::from_str(&to_audit_line(&record, &[])).unwrap();
        let t = &v["transaction"];
        assert_eq!(t["unique_id"], "abc");
        assert_eq!(t["messages"][0]["details"]["ruleId"], "4800099");
        assert_eq!(
            t["messages"][0]["message"],
            "ngx-honeytrap: event not converted."
        );
        assert!(!t["messages"][0]["details"]["data"]
            .as_str()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn components_follow_our_own_signature() {
        let e = rules_event();
        let l = to_audit_line(&e.to_record(), &["OWASP_CRS/4.28.0".to_owned()]);
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(
            v["transaction"]["producer"]["components"],
            json!([
                format!("ngx-honeytrap/{}", env!("CARGO_PKG_VERSION")),
                "OWASP_CRS/4.28.0"
            ])
        );
    }

    #[test]
    fn header_names_become_canonical() {
        assert_eq!(canonical_header_name("user-agent"), "User-Agent");
        assert_eq!(canonical_header_name("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_header_name("dnt"), "Dnt");
        assert_eq!(canonical_header_name("-a--b"), "-A--B");
        assert_eq!(canonical_header_name("é-x"), "é-X");
        // Host and User-Agent come from their own fields when the headers lack them.
        let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("s")));
        e.set_host(b"h.example:81", &Limits::default());
        e.set_user_agent(b"curl/8", &Limits::default());
        assert_eq!(
            audit(&e)["transaction"]["request"]["headers"],
            json!({ "Host": "h.example", "User-Agent": "curl/8" })
        );
    }

    #[test]
    fn match_values_are_hex_escaped_and_cut_as_libmodsecurity_does() {
        assert_eq!(hex_if_needed("a\u{1}é\"\\"), "a\\x01\\xc3\\xa9\"\\");
        assert_eq!(limit_to(3, "abcdef".into()), "abc (3 characters omitted)");
        assert_eq!(limit_to(6, "abcdef".into()), "abcdef");
        let mut e = bait_event();
        e.bait.as_mut().unwrap().token = Some("x".repeat(150));
        let m = audit(&e)["transaction"]["messages"][0]["details"]["match"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            m.contains(&format!("`{} (50 characters omitted)' )", "x".repeat(100))),
            "{m}"
        );
    }

    #[test]
    fn invalid_utf8_and_control_bytes_survive_as_one_valid_line() {
        let limits = Limits::default();
        let mut e = base(Kind::Bait);
        e.set_url(b"/a\xffb?c=\xc3\x28");
        e.add_header(b"X-\xfe", b"v\x80\r\nInjected: 1", &limits);
        e.set_body(b"\xf0\x9f\x92 body\n\0end", &limits);
        e.bait = Some(Bait {
            kind: "form-field".into(),
            name: "debug".into(),
            token: Some(String::from_utf8_lossy(b"t\xff\n").into_owned()),
        });
        e.add_rule(RuleMatch {
            id: 1,
            matched_data: Some("line1\nline2\u{0}".into()),
            ..RuleMatch::default()
        });
        let l = line(&e);
        assert!(!l.contains('\n') && !l.contains('\r'), "{l}");
        let t = &serde_json::from_str::<Value>(&l).unwrap()["transaction"];
        assert_eq!(t["request"]["uri"], "/a\u{FFFD}b?c=\u{FFFD}(");
        assert_eq!(
            t["request"]["headers"]["X-\u{FFFD}"],
            "v\u{FFFD}\r\nInjected: 1"
        );
        assert_eq!(t["request"]["body"], "\u{FFFD} body\n\0end");
        assert_eq!(t["messages"][0]["details"]["data"], "line1\nline2\u{0}");
        let m = t["messages"][1]["details"]["match"].as_str().unwrap();
        assert!(
            m.contains("against variable `ARGS:debug' (Value: `t\\xef\\xbf\\xbd\\x0a' )"),
            "{m}"
        );
    }

    // ---- Golden shape ----

    /// A JSON value with its object keys in document order (serde_json's `Value` sorts them).
    #[derive(Debug)]
    enum J {
        Null,
        Bool,
        Int,
        Float,
        Str,
        Arr(Vec<J>),
        Obj(Vec<(String, J)>),
    }

    impl<'de> Deserialize<'de> for J {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
            d.deserialize_any(JVisitor)
        }
    }

    struct JVisitor;

    impl<'de> Visitor<'de> for JVisitor {
        type Value = J;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_unit<E>(self) -> Result<J, E> {
            Ok(J::Null)
        }
        fn visit_bool<E>(self, _: bool) -> Result<J, E> {
            Ok(J::Bool)
        }
        fn visit_i64<E>(self, _: i64) -> Result<J, E> {
            Ok(J::Int)
        }
        fn visit_u64<E>(self, _: u64) -> Result<J, E> {
            Ok(J::Int)
        }
        fn visit_f64<E>(self, _: f64) -> Result<J, E> {
            Ok(J::Float)
        }
        fn visit_str<E>(self, _: &str) -> Result<J, E> {
            Ok(J::Str)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(J::Arr(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry::<String, J>()? {
                entries.push(entry);
            }
            Ok(J::Obj(entries))
        }
    }

    /// What libmodsecurity writes at each place.
    enum Ty {
        Str,
        Int,
        Num,
        StrMap,
        StrArr,
        Obj(&'static [(&'static str, Ty)]),
        Arr(&'static Ty),
    }

    /// Every key libmodsecurity's `Transaction::toJSON` writes with `SecAuditLogParts ABCFHZ`,
    /// in its order, with the JSON type it gives it. Source: owasp-modsecurity/ModSecurity
    /// src/transaction.cc (commits 035f71c7, 6e24e60a): `LOGFY_ADD` writes strings,
    /// `LOGFY_ADD_NUM` integers, `LOGFY_ADD_INT` the http version as a raw number
    /// (headers/modsecurity/transaction.h); the details' numbers go through `std::to_string`
    /// into `LOGFY_ADD`, so they are strings.
    const MESSAGE: Ty = Ty::Obj(&[
        ("message", Ty::Str),
        (
            "details",
            Ty::Obj(&[
                ("match", Ty::Str),
                ("reference", Ty::Str),
                ("ruleId", Ty::Str),
                ("file", Ty::Str),
                ("lineNumber", Ty::Str),
                ("data", Ty::Str),
                ("severity", Ty::Str),
                ("ver", Ty::Str),
                ("rev", Ty::Str),
                ("tags", Ty::StrArr),
                ("maturity", Ty::Str),
                ("accuracy", Ty::Str),
            ]),
        ),
    ]);

    const AUDIT_LINE: Ty = Ty::Obj(&[(
        "transaction",
        Ty::Obj(&[
            ("client_ip", Ty::Str),
            ("time_stamp", Ty::Str),
            ("server_id", Ty::Str),
            ("client_port", Ty::Int),
            ("host_ip", Ty::Str),
            ("host_port", Ty::Int),
            ("unique_id", Ty::Str),
            (
                "request",
                Ty::Obj(&[
                    ("method", Ty::Str),
                    ("http_version", Ty::Num),
                    ("uri", Ty::Str),
                    ("body", Ty::Str),       // part C
                    ("headers", Ty::StrMap), // part B
                ]),
            ),
            (
                "response",
                Ty::Obj(&[
                    // "body" only with part E
                    ("http_code", Ty::Int),
                    ("headers", Ty::StrMap), // part F
                ]),
            ),
            (
                // part H
                "producer",
                Ty::Obj(&[
                    ("modsecurity", Ty::Str),
                    ("connector", Ty::Str),
                    ("secrules_engine", Ty::Str),
                    ("components", Ty::StrArr),
                ]),
            ),
            ("messages", Ty::Arr(&MESSAGE)),
        ]),
    )]);

    fn check(j: &J, ty: &Ty, at: &str) {
        match (ty, j) {
            (Ty::Str, J::Str) | (Ty::Int, J::Int) | (Ty::Num, J::Int | J::Float) => {}
            (Ty::StrMap, J::Obj(entries)) => {
                for (k, v) in entries {
                    assert!(matches!(v, J::Str), "{at}.{k}: {v:?} is not a string");
                }
            }
            (Ty::StrArr, J::Arr(items)) => {
                for v in items {
                    assert!(matches!(v, J::Str), "{at}[]: {v:?} is not a string");
                }
            }
            (Ty::Arr(item), J::Arr(items)) => {
                for v in items {
                    check(v, item, &format!("{at}[]"));
                }
            }
            (Ty::Obj(fields), J::Obj(entries)) => {
                let want: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
                let got: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
                assert_eq!(got, want, "keys of {at}");
                for ((_, ty), (k, v)) in fields.iter().zip(entries) {
                    check(v, ty, &format!("{at}.{k}"));
                }
            }
            (_, j) => panic!("{at}: {j:?} has the wrong JSON type"),
        }
    }

    #[test]
    fn golden_shape_has_every_libmodsecurity_key_with_its_type_in_its_order() {
        let not_an_event = Record {
            id: "x".into(),
            json: "[]".into(),
        };
        let lines = [
            line(&rules_event()),
            line(&bait_event()),
            line(&decoy_event()),
            line(&Event::new(Kind::Rules, Arc::new(Observer::new("s")))),
            line(&crate::event::tests::full_event()),
            to_audit_line(&not_an_event, &["OWASP_CRS/4.28.0".into()]),
        ];
        for l in &lines {
            let j: J = serde_json::from_str(l).unwrap();
            check(&j, &AUDIT_LINE, "");
            // Pipelines convert these to numbers.
            let v: Value = serde_json::from_str(l).unwrap();
            for m in v["transaction"]["messages"].as_array().unwrap() {
                for key in ["ruleId", "lineNumber", "severity", "maturity", "accuracy"] {
                    let s = m["details"][key].as_str().unwrap();
                    assert!(s.parse::<u32>().is_ok(), "{key} {s:?} is not a number");
                }
            }
            let engine = &v["transaction"]["producer"]["secrules_engine"];
            assert!(engine == "Enabled" || engine == "DetectionOnly", "{engine}");
        }
    }

    // ---- The sink ----

    fn file_lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn ids(lines: &[Value]) -> Vec<String> {
        lines
            .iter()
            .map(|v| v["transaction"]["unique_id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn sink_appends_one_audit_line_per_record_and_follows_a_rename_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modsec_audit.log");
        let rotated = dir.path().join("modsec_audit.log.1");
        let mut sink = AuditLogSink::open(&path)
            .unwrap()
            .with_components(vec!["OWASP_CRS/4.28.0".into()]);
        assert_eq!(sink.name(), "audit_log");
        assert_eq!(sink.path(), path);
        let a = [rules_event().to_record(), bait_event().to_record()];
        let b = [decoy_event().to_record()];
        sink.send(&a).unwrap();
        std::fs::rename(&path, &rotated).unwrap();
        sink.reopen().unwrap();
        sink.send(&b).unwrap();
        let old = file_lines(&rotated);
        assert_eq!(ids(&old), [a[0].id.clone(), a[1].id.clone()]);
        assert_eq!(
            old[0]["transaction"]["producer"]["components"][1],
            "OWASP_CRS/4.28.0"
        );
        assert_eq!(ids(&file_lines(&path)), [b[0].id.clone()]);
        assert_eq!(sink.counters().snapshot().shipped, 3);
    }

    #[test]
    fn from_file_writes_to_the_inherited_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let inherited = dir.path().join("inherited.log");
        let path = dir.path().join("modsec_audit.log");
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&inherited)
            .unwrap();
        let mut sink = AuditLogSink::from_file(&path, file);
        let r = rules_event().to_record();
        sink.send(std::slice::from_ref(&r)).unwrap();
        assert_eq!(ids(&file_lines(&inherited)), [r.id]);
        assert!(!path.exists(), "the path is only opened on reopen");
    }

    #[test]
    fn failed_writes_are_kept_and_retried_as_audit_lines() {
        if !Path::new("/dev/full").exists() {
            eprintln!("SKIPPED: /dev/full is missing, cannot make writes fail");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modsec_audit.log");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut sink = AuditLogSink::open(&path).unwrap();
        let batch = [rules_event().to_record(), decoy_event().to_record()];
        assert!(sink.send(&batch).is_err());
        assert_eq!(sink.pending(), 2);
        std::fs::remove_file(&path).unwrap();
        sink.reopen().unwrap();
        sink.tick(Instant::now()).unwrap();
        assert_eq!(sink.pending(), 0);
        let written = file_lines(&path);
        assert_eq!(ids(&written), [batch[0].id.clone(), batch[1].id.clone()]);
        let c = sink.counters().snapshot();
        assert_eq!((c.shipped, c.retried, c.failed_requests), (2, 2, 1));
    }
}
