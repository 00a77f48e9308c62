//! What the honeypot saw, as one Elastic Common Schema (ECS 9.4) document per event.
//!
//! An [`Event`] is filled on the nginx request path, so it holds only owned data in the cheapest
//! form at hand (an address, a `SystemTime`, bytes made into capped strings) and derives
//! nothing. The shipper thread turns it into JSON once ([`Event::to_record`]): that is where
//! ids are printed, URLs split, headers merged and constant ECS fields added (see `doc.rs`).
//!
//! ECS names are used where ECS has a field; everything else lives under `honeytrap.*`.

mod doc;
#[cfg(test)]
mod doc_reference;
mod id;
mod text;

#[cfg(test)]
mod ecs_conformance;

pub use id::{EventId, IdSequence};
pub use text::ip_string;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::sink::Record;

/// Which part of the honeypot produced the event (`honeytrap.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request reached a decoy location (a fake admin page, `/.env`, ...).
    Decoy,
    /// Someone used a bait we planted (a fake credential, a canary token).
    Bait,
    /// SecLang rules matched the request.
    Rules,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Decoy => "decoy",
            Kind::Bait => "bait",
            Kind::Rules => "rules",
        }
    }

    /// `event.action`.
    pub fn action(self) -> &'static str {
        match self {
            Kind::Decoy => "decoy-hit",
            Kind::Bait => "bait-touched",
            Kind::Rules => "rule-matched",
        }
    }

    /// `event.severity` before any rule lowers it. The scale is SecLang's and syslog's
    /// (0 emergency ... 7 debug, lower is worse) so that rule severities carry over as they are.
    pub fn default_severity(self) -> u8 {
        match self {
            // A used bait means someone acts on stolen data: no scanner noise.
            Kind::Bait => 2,
            Kind::Decoy => 4,
            Kind::Rules => 5,
        }
    }
}

/// Caps on attacker-sized values; what is cut is listed in `honeytrap.truncated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `http.request.body.content`, in bytes.
    pub body: usize,
    /// Each request header value, the user agent, host and credentials, in bytes.
    pub header_value: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body: 8 * 1024,
            header_value: 1024,
        }
    }
}

/// This sensor (`observer.*`); one per nginx configuration, shared by all its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observer {
    pub name: String,
    pub vendor: String,
    pub version: String,
}

impl Observer {
    pub fn new(name: impl Into<String>) -> Observer {
        Observer {
            name: name.into(),
            vendor: "ngx-honeytrap".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The rule an event is about (`rule.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

fn decimal_string<S: serde::Serializer>(n: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}

fn no_tags(tags: &std::sync::Arc<[String]>) -> bool {
    tags.is_empty()
}

/// One matched SecLang rule (`honeytrap.rules[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    /// Kept as the rule's number, printed (as a JSON string, as ModSecurity logs it) only
    /// when the document is written, off the request path.
    #[serde(serialize_with = "decimal_string")]
    pub id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// The rule's own list, shared (not copied) by every event it matches in.
    #[serde(skip_serializing_if = "no_tags")]
    pub tags: std::sync::Arc<[String]>,
    /// SecLang numbering: 0 emergency ... 7 debug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// The variable that matched, e.g. `ARGS:id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_var: Option<String>,
    /// What it matched, as the rule's `logdata` or the matched value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_data: Option<String>,
}

/// A MITRE ATT&CK technique or tactic (`threat.technique.*`, `threat.tactic.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MitreRef {
    pub id: String,
    pub name: String,
}

impl MitreRef {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> MitreRef {
        MitreRef {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// The bait that was touched (`honeytrap.bait.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bait {
    /// e.g. `credential`, `api-key`, `url`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Who a bait was served to, as recorded when it was served (`honeytrap.attribution.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribution {
    pub served_to_ip: Option<IpAddr>,
    pub served_at: Option<SystemTime>,
    pub token_id: Option<String>,
    /// The token's signature checked out (it is one of ours, not a guess).
    pub valid: bool,
}

/// SecLang anomaly scores (`honeytrap.anomaly_score.*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AnomalyScore {
    pub inbound: u32,
    pub outbound: u32,
}

/// Credentials an attacker tried (`honeytrap.credentials.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Credentials {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// One event. Fields map to the document as their comments say; `None` and empty fields are
/// left out of it. Fill text from the wire with the `set_*`/`add_*` methods: they cap it and
/// record what they cut.
#[derive(Clone, Debug)]
pub struct Event {
    /// `event.id`.
    pub id: EventId,
    /// `@timestamp`.
    pub timestamp: SystemTime,
    /// `honeytrap.kind`, `event.action`.
    pub kind: Kind,
    /// The request was refused: `event.type` is `denied`.
    pub denied: bool,
    /// `event.severity` (0 emergency ... 7 debug).
    pub severity: u8,
    pub observer: Arc<Observer>,
    /// `source.ip`, `source.port`.
    pub source: Option<SocketAddr>,
    /// `destination.ip`, `destination.port`.
    pub destination: Option<SocketAddr>,
    /// `url.original`; `url.path` and `url.query` are derived from it.
    pub url: Option<String>,
    /// The `Host` header; `url.domain` is derived from it.
    pub host: Option<String>,
    /// `http.request.method`.
    pub method: Option<String>,
    /// `http.version`, e.g. `1.1`, `2`.
    pub http_version: Option<String>,
    /// `http.response.status_code`.
    pub status_code: Option<u16>,
    /// `user_agent.original`.
    pub user_agent: Option<String>,
    /// `http.request.body.content`, capped.
    pub body: Option<String>,
    /// `http.request.body.bytes`: the size before the cap.
    pub body_bytes: Option<u64>,
    /// `honeytrap.request.headers`, in arrival order; names are lowercased and repeated
    /// names joined when serialized.
    pub headers: Vec<(String, String)>,
    /// `rule.*`.
    pub rule: Option<RuleRef>,
    /// `honeytrap.rules[]`.
    pub rules: Vec<RuleMatch>,
    /// `threat.technique.*`.
    pub techniques: Vec<MitreRef>,
    /// `threat.tactic.*`.
    pub tactics: Vec<MitreRef>,
    /// `transaction.id` (nginx `$request_id`).
    pub transaction_id: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `honeytrap.bait`.
    pub bait: Option<Bait>,
    /// `honeytrap.attribution`.
    pub attribution: Option<Attribution>,
    /// `honeytrap.anomaly_score`.
    pub anomaly_score: Option<AnomalyScore>,
    /// `honeytrap.credentials`.
    pub credentials: Option<Credentials>,
    /// `honeytrap.flagged`: the source is already known as hostile.
    pub flagged: bool,
    /// `honeytrap.truncated`: dotted names of the fields that were cut.
    pub truncated: Vec<String>,
}

impl Event {
    /// An event stamped now, with a fresh id and the kind's default severity.
    pub fn new(kind: Kind, observer: Arc<Observer>) -> Event {
        Event::with_id(kind, observer, EventId::random())
    }

    /// [`Event::new`] with the id given (from an [`IdSequence`](crate::event::IdSequence)).
    pub fn with_id(kind: Kind, observer: Arc<Observer>, id: EventId) -> Event {
        Event {
            id,
            timestamp: SystemTime::now(),
            kind,
            denied: false,
            severity: kind.default_severity(),
            observer,
            source: None,
            destination: None,
            url: None,
            host: None,
            method: None,
            http_version: None,
            status_code: None,
            user_agent: None,
            body: None,
            body_bytes: None,
            headers: Vec::new(),
            rule: None,
            rules: Vec::new(),
            techniques: Vec::new(),
            tactics: Vec::new(),
            transaction_id: None,
            tags: Vec::new(),
            bait: None,
            attribution: None,
            anomaly_score: None,
            credentials: None,
            flagged: false,
            truncated: Vec::new(),
        }
    }

    /// The request target as received (`url.original`); not capped: nginx already bounds it.
    pub fn set_url(&mut self, raw: &[u8]) {
        self.url = Some(text::lossy(raw));
    }

    pub fn set_method(&mut self, raw: &[u8]) {
        self.method = Some(text::lossy(raw));
    }

    pub fn set_host(&mut self, raw: &[u8], limits: &Limits) {
        self.host = Some(self.capped(raw, limits.header_value, "url.domain"));
    }

    pub fn set_user_agent(&mut self, raw: &[u8], limits: &Limits) {
        self.user_agent = Some(self.capped(raw, limits.header_value, "user_agent.original"));
    }

    /// The request body as read; `http.request.body.bytes` keeps its full size.
    pub fn set_body(&mut self, raw: &[u8], limits: &Limits) {
        self.body = Some(self.capped(raw, limits.body, "http.request.body.content"));
        self.body_bytes = Some(raw.len() as u64);
    }

    pub fn add_header(&mut self, name: &[u8], value: &[u8], limits: &Limits) {
        // Real names are short; a huge one is an attack on whatever indexes the document.
        const NAME_CAP: usize = 256;
        let (name, name_cut) = text::lossy_capped(name, NAME_CAP);
        let (value, value_cut) = text::lossy_capped(value, limits.header_value);
        if name_cut || value_cut {
            self.truncated.push(format!(
                "honeytrap.request.headers.{}",
                name.to_ascii_lowercase()
            ));
        }
        self.headers.push((name, value));
    }

    pub fn set_credentials(
        &mut self,
        username: Option<&[u8]>,
        password: Option<&[u8]>,
        limits: &Limits,
    ) {
        let username =
            username.map(|u| self.capped(u, limits.header_value, "honeytrap.credentials.username"));
        let password =
            password.map(|p| self.capped(p, limits.header_value, "honeytrap.credentials.password"));
        self.credentials = Some(Credentials { username, password });
    }

    /// Adds a matched rule; the event is as severe as its most severe rule.
    pub fn add_rule(&mut self, rule: RuleMatch) {
        if let Some(severity) = rule.severity {
            self.severity = self.severity.min(severity);
        }
        self.rules.push(rule);
    }

    /// The ECS document as one JSON line, with its id. Runs on the shipper thread.
    pub fn to_record(&self) -> Record {
        let id = self.id.to_string();
        let json = doc::to_json(self, &id);
        Record { id, json }
    }

    fn capped(&mut self, raw: &[u8], cap: usize, field: &str) -> String {
        let (text, cut) = text::lossy_capped(raw, cap);
        if cut {
            self.truncated.push(field.to_owned());
        }
        text
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// An event with every optional field set, for tests that must see all fields.
    pub(crate) fn full_event() -> Event {
        let limits = Limits {
            body: 16,
            header_value: 12,
        };
        let mut e = Event::new(Kind::Bait, Arc::new(Observer::new("sensor-1")));
        e.denied = true;
        e.source = Some("203.0.113.7:51234".parse().unwrap());
        e.destination = Some("[2001:db8::1]:443".parse().unwrap());
        e.set_url(b"/admin/login.php?user=root&x=\xff");
        e.set_host(b"shop.example:443", &limits);
        e.set_method(b"POST");
        e.http_version = Some("1.1".to_owned());
        e.status_code = Some(403);
        e.set_user_agent(b"sqlmap/1.8.3#stable", &limits);
        e.set_body(b"user=root&pass=hunter2hunter2hunter2", &limits);
        e.add_header(b"Host", b"shop.example:443", &limits);
        e.add_header(b"X-Forwarded-For", b"10.0.0.1", &limits);
        e.add_header(b"x-forwarded-for", b"10.0.0.2", &limits);
        e.rule = Some(RuleRef {
            id: Some("942100".into()),
            name: Some("SQL Injection Attack Detected via libinjection".into()),
            category: Some("attack-sqli".into()),
        });
        e.add_rule(RuleMatch {
            id: 942100,
            msg: Some("SQL Injection Attack Detected via libinjection".into()),
            tags: ["attack-sqli".to_owned(), "OWASP_CRS".to_owned()].into(),
            severity: Some(2),
            matched_var: Some("ARGS:user".into()),
            matched_data: Some("root' OR 1=1".into()),
        });
        e.techniques = vec![MitreRef::new("T1190", "Exploit Public-Facing Application")];
        e.tactics = vec![MitreRef::new("TA0001", "Initial Access")];
        e.transaction_id = Some("5f2c0b3e9a4d4e1f8a7b6c5d4e3f2a1b".into());
        e.tags = vec!["honeytrap".into(), "bait".into()];
        e.bait = Some(Bait {
            kind: "credential".into(),
            name: "wp-admin".into(),
            token: Some("tok-1".into()),
        });
        e.attribution = Some(Attribution {
            served_to_ip: Some("198.51.100.9".parse().unwrap()),
            served_at: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
            token_id: Some("t-42".into()),
            valid: true,
        });
        e.anomaly_score = Some(AnomalyScore {
            inbound: 10,
            outbound: 0,
        });
        e.set_credentials(Some(b"root"), Some(b"hunter2"), &limits);
        e.flagged = true;
        e
    }

    #[test]
    fn new_event_has_fresh_id_and_kind_defaults() {
        let observer = Arc::new(Observer::new("s"));
        let a = Event::new(Kind::Decoy, observer.clone());
        let b = Event::new(Kind::Decoy, observer);
        assert_ne!(a.id, b.id);
        assert_eq!(a.severity, Kind::Decoy.default_severity());
        assert!(a.truncated.is_empty());
    }

    #[test]
    fn setters_cap_and_record_what_they_cut() {
        let limits = Limits {
            body: 4,
            header_value: 3,
        };
        let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("s")));
        e.set_body(b"abcdef", &limits);
        e.add_header(b"Cookie", b"abcdef", &limits);
        e.add_header(b"X-Ok", b"ab", &limits);
        let long_name = "X".repeat(300);
        e.add_header(long_name.as_bytes(), b"v", &limits);
        e.set_user_agent(b"ab", &limits);
        assert_eq!(e.body.as_deref(), Some("abcd"));
        assert_eq!(e.body_bytes, Some(6));
        assert_eq!(e.headers[0], ("Cookie".to_owned(), "abc".to_owned()));
        assert_eq!(e.headers[1], ("X-Ok".to_owned(), "ab".to_owned()));
        assert_eq!(e.headers[2], (long_name[..256].to_owned(), "v".to_owned()));
        assert_eq!(e.user_agent.as_deref(), Some("ab"));
        assert_eq!(
            e.truncated,
            [
                "http.request.body.content".to_owned(),
                "honeytrap.request.headers.cookie".to_owned(),
                format!("honeytrap.request.headers.{}", "x".repeat(256)),
            ]
        );
    }

    #[test]
    fn invalid_utf8_from_the_wire_is_replaced() {
        let limits = Limits::default();
        let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("s")));
        e.set_url(b"/a\xffb");
        e.set_user_agent(b"\xc3\x28", &limits);
        e.add_header(b"X-\xfe", b"v\x80", &limits);
        e.set_body(b"\xf0\x9f\x92", &limits);
        assert_eq!(e.url.as_deref(), Some("/a\u{FFFD}b"));
        assert_eq!(e.user_agent.as_deref(), Some("\u{FFFD}("));
        assert_eq!(
            e.headers[0],
            ("X-\u{FFFD}".to_owned(), "v\u{FFFD}".to_owned())
        );
        assert_eq!(e.body.as_deref(), Some("\u{FFFD}"));
        assert!(e.truncated.is_empty());
        // And the document is valid JSON carrying the replacement characters.
        let doc: serde_json::Value = serde_json::from_str(&e.to_record().json).unwrap();
        assert_eq!(doc["url"]["original"], "/a\u{FFFD}b");
    }

    #[test]
    fn the_most_severe_rule_sets_the_event_severity() {
        let mut e = Event::new(Kind::Rules, Arc::new(Observer::new("s")));
        e.add_rule(RuleMatch {
            id: 1,
            severity: Some(4),
            ..RuleMatch::default()
        });
        e.add_rule(RuleMatch {
            id: 2,
            severity: Some(2),
            ..RuleMatch::default()
        });
        e.add_rule(RuleMatch {
            id: 3,
            severity: Some(3),
            ..RuleMatch::default()
        });
        e.add_rule(RuleMatch {
            id: 4,
            severity: None,
            ..RuleMatch::default()
        });
        assert_eq!(e.severity, 2);
        assert_eq!(e.rules.len(), 4);
    }

    #[test]
    fn record_carries_the_event_id() {
        let e = full_event();
        let record = e.to_record();
        assert_eq!(record.id, e.id.to_string());
        let doc: serde_json::Value = serde_json::from_str(&record.json).unwrap();
        assert_eq!(doc["event"]["id"], record.id);
        assert!(!record.json.contains('\n'));
    }
}
