//! Turning event records into MISP work: which event each record belongs to, which
//! attributes and tags it brings, and — given what MISP already has — what to create, add,
//! sight or edit. Pure logic, no I/O.
//!
//! The OWASP Honeypot project created one MISP event per log line; here a day (or an attacker's
//! day) is one event, each indicator one attribute, and an indicator seen again a sighting.
//!
//! * `mode=daily`: one event per sensor per UTC day, info `ngx-honeytrap <sensor> <date>`.
//! * `mode=attacker`: one event per sensor, source IP and UTC day, info
//!   `ngx-honeytrap <sensor> <ip> <date>`. The sensor stays in the key so that each sensor only
//!   ever edits its own events; MISP's correlation links the same IP across sensors.
//!
//! Attributes, de-duplicated per event by type and value (first occurrence gives the comment):
//!
//! | type                 | from                                | to_ids                     |
//! |----------------------|-------------------------------------|----------------------------|
//! | `ip-src`             | `source.ip`                         | yes: it attacked a decoy   |
//! | `url`                | `url.original`                      | for decoy hits             |
//! | `user-agent`         | `user_agent.original`               | no: trivially forged       |
//! | `http-method`        | `http.request.method`               | no                         |
//! | `pattern-in-traffic` | matched data of `honeytrap.rules[]` | no: context for analysts   |
//! | `text`               | `honeytrap.credentials` as `u:p`    | no                         |
//!
//! `to_ids` is MISP's "usable for automatic detection" flag: set only where a match in
//! someone else's traffic means an attack — the address that probed a decoy or used a bait,
//! a decoy path (no legitimate client knows it). A user agent, a method, a bait's login URL or
//! a payload fragment alone would flag innocent traffic.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use super::ids::{Uuid, NAMESPACE};
use super::settings::{MispSettings, Mode, ThreatLevel, ThreatLevelSetting};
use super::tags;
use crate::sink::Record;

/// Longest attribute value kept; longer ones are cut (at a character boundary).
pub const VALUE_MAX: usize = 4096;
const COMMENT_MAX: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    DecoyHit,
    BaitTouched,
    RuleMatched,
    Other,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleHit {
    pub id: Option<String>,
    pub msg: Option<String>,
    /// What the rule matched in the request.
    pub data: Vec<String>,
}

/// What one record says, extracted from its ECS document.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub event_id: String,
    /// `@timestamp`, Unix seconds.
    pub timestamp: i64,
    /// UTC day of `@timestamp`.
    pub date: Date,
    pub sensor: String,
    pub action: Action,
    pub action_name: String,
    /// `event.severity`, 0 emergency … 7 debug (lower is worse); out-of-range values clamp.
    pub severity: Option<u8>,
    /// Canonical text form of `source.ip`, when it is an IP address.
    pub source_ip: Option<String>,
    pub url: Option<String>,
    pub user_agent: Option<String>,
    pub method: Option<String>,
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    pub rules: Vec<RuleHit>,
    /// ATT&CK technique ids, with the name when the event gives one.
    pub techniques: Vec<(String, Option<String>)>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `honeytrap.kind`: decoy, bait or rules.
    pub kind: Option<String>,
    /// `honeytrap.bait` as words, e.g. `credential bait "wp-admin"`.
    pub bait: Option<String>,
    /// `honeytrap.attribution.served_to_ip` of a verified bait token, when it is not the
    /// source: the address that collected the bait someone else is now using.
    pub served_to: Option<String>,
}

/// Looks up `a.b.c` in nested objects, dotted keys, or a mix of both.
fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    if let Some(found) = obj.get(path) {
        return Some(found);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(inner) = obj.get(&path[..i]) {
            if let Some(found) = lookup(inner, &path[i + 1..]) {
                return Some(found);
            }
        }
    }
    None
}

/// A non-empty trimmed string (numbers are accepted as their text).
fn text(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// A string or array of strings as a list.
fn texts(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(|i| text(Some(i))).collect(),
        other => text(other).into_iter().collect(),
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn bait_label(doc: &Value) -> Option<String> {
    let kind = text(lookup(doc, "honeytrap.bait.type"));
    let name = text(lookup(doc, "honeytrap.bait.name"));
    match (kind, name) {
        (Some(k), Some(n)) => Some(format!("{k} bait \"{n}\"")),
        (None, Some(n)) => Some(format!("bait \"{n}\"")),
        (Some(k), None) => Some(format!("{k} bait")),
        (None, None) => None,
    }
}

fn served_to(doc: &Value, source_ip: Option<&str>) -> Option<String> {
    // Only a token whose signature checked out ties the two addresses together.
    if lookup(doc, "honeytrap.attribution.valid").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let ip = text(lookup(doc, "honeytrap.attribution.served_to_ip"))?
        .parse::<IpAddr>()
        .ok()?
        .to_string();
    (Some(ip.as_str()) != source_ip).then_some(ip)
}

impl Observation {
    pub fn parse(record: &Record) -> Result<Observation, String> {
        let doc: Value =
            serde_json::from_str(&record.json).map_err(|e| format!("not JSON: {e}"))?;
        if !doc.is_object() {
            return Err("not a JSON object".into());
        }
        let ts_text = text(lookup(&doc, "@timestamp")).ok_or("no @timestamp")?;
        let ts = OffsetDateTime::parse(&ts_text, &Rfc3339)
            .map_err(|e| format!("@timestamp {ts_text:?} is not RFC 3339: {e}"))?
            .to_offset(UtcOffset::UTC);

        let action_name = text(lookup(&doc, "event.action")).unwrap_or_default();
        let action = match action_name.as_str() {
            "decoy-hit" => Action::DecoyHit,
            "bait-touched" => Action::BaitTouched,
            "rule-matched" => Action::RuleMatched,
            _ => Action::Other,
        };
        let severity = match lookup(&doc, "event.severity") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|s| s.is_finite())
        .map(|s| s.clamp(0.0, 7.0) as u8);
        let source_ip = text(lookup(&doc, "source.ip"))
            .and_then(|s| s.parse::<IpAddr>().ok())
            .map(|ip| ip.to_string());
        let method = text(lookup(&doc, "http.request.method"))
            .map(|m| m.to_ascii_uppercase())
            .filter(|m| {
                m.len() <= 32
                    && m.bytes()
                        .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
            });

        let rules = match lookup(&doc, "honeytrap.rules") {
            Some(Value::Array(items)) => items
                .iter()
                .filter(|i| i.is_object())
                .map(|i| RuleHit {
                    id: text(lookup(i, "id")),
                    msg: text(lookup(i, "msg")).or_else(|| text(lookup(i, "message"))),
                    // The rule engine's field name for what it matched; accept the usual ones.
                    data: ["matched_data", "data", "matched", "match"]
                        .iter()
                        .flat_map(|k| texts(lookup(i, k)))
                        .collect(),
                })
                .collect(),
            _ => Vec::new(),
        };

        let ids = texts(lookup(&doc, "threat.technique.id"));
        let names = texts(lookup(&doc, "threat.technique.name"));
        let techniques = ids
            .iter()
            .enumerate()
            // Names pair with ids by position only when both lists line up.
            .map(|(i, id)| {
                (
                    id.clone(),
                    names.get(i).filter(|_| names.len() == ids.len()).cloned(),
                )
            })
            .collect();

        let sensor = text(lookup(&doc, "observer.name"))
            .or_else(|| text(lookup(&doc, "observer.hostname")))
            .or_else(|| text(lookup(&doc, "host.name")))
            .unwrap_or_else(|| "unnamed".into());

        Ok(Observation {
            event_id: text(lookup(&doc, "event.id")).unwrap_or_else(|| record.id.clone()),
            timestamp: ts.unix_timestamp(),
            date: ts.date(),
            sensor: cut(sensor, 200),
            action,
            action_name,
            severity,
            url: text(lookup(&doc, "url.original")).map(|u| cut(u, VALUE_MAX)),
            user_agent: text(lookup(&doc, "user_agent.original")).map(|u| cut(u, VALUE_MAX)),
            method,
            rule_id: text(lookup(&doc, "rule.id")),
            rule_name: text(lookup(&doc, "rule.name")),
            rules,
            techniques,
            username: text(lookup(&doc, "honeytrap.credentials.username")),
            password: lookup(&doc, "honeytrap.credentials.password")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            kind: text(lookup(&doc, "honeytrap.kind")),
            bait: bait_label(&doc),
            served_to: served_to(&doc, source_ip.as_deref()),
            source_ip,
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.username.is_some() || self.password.as_deref().is_some_and(|p| !p.is_empty())
    }

    /// Less severe than `min_severity` (a record without a severity counts as debug).
    pub fn below(&self, min_severity: u8) -> bool {
        self.severity.unwrap_or(7) > min_severity
    }

    /// Short description for attribute comments, e.g. `decoy-hit GET /.env`.
    fn what(&self) -> String {
        let mut s = if self.action_name.is_empty() {
            "request".to_string()
        } else {
            self.action_name.clone()
        };
        if let Some(m) = &self.method {
            s.push(' ');
            s.push_str(m);
        }
        if let Some(u) = &self.url {
            s.push(' ');
            s.push_str(&cut(u.clone(), 200));
        }
        s
    }

    fn rule_label(&self) -> Option<String> {
        let id = self
            .rule_id
            .clone()
            .or_else(|| self.rules.first().and_then(|r| r.id.clone()))?;
        let name = self
            .rule_name
            .clone()
            .or_else(|| self.rules.first().and_then(|r| r.msg.clone()));
        Some(match name {
            Some(n) => format!("rule {id} ({n})"),
            None => format!("rule {id}"),
        })
    }
}

/// Date as MISP writes it, `YYYY-MM-DD`.
pub fn day(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// What the aggregation needs from the settings.
#[derive(Clone, Debug)]
pub struct AggregateConfig {
    pub mode: Mode,
    /// Configured tags (with the TLP level) for every event.
    pub tags: Vec<String>,
    pub threat_level: ThreatLevelSetting,
    pub min_severity: u8,
}

impl From<&MispSettings> for AggregateConfig {
    fn from(s: &MispSettings) -> Self {
        AggregateConfig {
            mode: s.mode,
            tags: s.tags.clone(),
            threat_level: s.threat_level,
            min_severity: s.min_severity,
        }
    }
}

/// Which MISP event a record belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventKey {
    pub sensor: String,
    pub date: Date,
    /// Attacker mode only.
    pub source_ip: Option<String>,
}

impl EventKey {
    pub fn of(mode: Mode, obs: &Observation) -> Result<EventKey, String> {
        let source_ip = match mode {
            Mode::Daily => None,
            Mode::Attacker => Some(
                obs.source_ip
                    .clone()
                    .ok_or("mode=attacker needs source.ip, and it is missing or not an IP")?,
            ),
        };
        Ok(EventKey {
            sensor: obs.sensor.clone(),
            date: obs.date,
            source_ip,
        })
    }

    /// Stable: the same sensor, day (and IP) always name the same MISP event.
    pub fn uuid(&self) -> Uuid {
        let name = match &self.source_ip {
            None => format!(
                "ngx-honeytrap/v1/daily\n{}\n{}",
                self.sensor,
                day(self.date)
            ),
            Some(ip) => format!(
                "ngx-honeytrap/v1/attacker\n{}\n{}\n{}",
                self.sensor,
                ip,
                day(self.date)
            ),
        };
        Uuid::v5(&NAMESPACE, name.as_bytes())
    }

    pub fn info(&self) -> String {
        match &self.source_ip {
            None => format!("ngx-honeytrap {} {}", self.sensor, day(self.date)),
            Some(ip) => format!("ngx-honeytrap {} {} {}", self.sensor, ip, day(self.date)),
        }
    }
}

/// One attribute as it will be sent to MISP.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeSpec {
    pub uuid: Uuid,
    /// MISP attribute type.
    pub kind: &'static str,
    pub category: &'static str,
    pub value: String,
    pub to_ids: bool,
    pub comment: String,
}

impl AttributeSpec {
    fn new(
        event: &Uuid,
        kind: &'static str,
        category: &'static str,
        value: String,
        to_ids: bool,
        comment: String,
    ) -> Self {
        let value = cut(value, VALUE_MAX);
        // Derived from the event, so the same indicator in another event is another attribute.
        let uuid = Uuid::v5(event, format!("{kind}\n{value}").as_bytes());
        AttributeSpec {
            uuid,
            kind,
            category,
            value,
            to_ids,
            comment: cut(comment, COMMENT_MAX),
        }
    }
}

/// The attributes a record contributes to its event.
pub fn attributes_of(obs: &Observation, event: &Uuid) -> Vec<AttributeSpec> {
    const NET: &str = "Network activity";
    let mut out = Vec::new();
    let what = obs.what();
    // Only a decoy path is an indicator: no legitimate client requests it. The URL of a rule
    // match or of a bait login is an ordinary path on other sites.
    let decoy = obs.action == Action::DecoyHit;
    if let Some(ip) = &obs.source_ip {
        out.push(AttributeSpec::new(
            event,
            "ip-src",
            NET,
            ip.clone(),
            true,
            format!("Source of {what}"),
        ));
    }
    if let Some(ip) = &obs.served_to {
        let bait = obs.bait.as_deref().unwrap_or("a bait");
        let user = obs.source_ip.as_deref().unwrap_or("another address");
        out.push(AttributeSpec::new(
            event,
            "ip-src",
            NET,
            ip.clone(),
            true,
            format!("Collected {bait}, later used by {user}"),
        ));
    }
    if let Some(url) = &obs.url {
        let comment = match (obs.action, &obs.bait) {
            (Action::DecoyHit, _) => "Decoy path: no legitimate client requests it".to_string(),
            (Action::BaitTouched, Some(bait)) => format!("Bait touched: {bait}"),
            (Action::BaitTouched, None) => "Bait touched".to_string(),
            _ => match obs.rule_label() {
                Some(rule) => format!("Request matched {rule}"),
                None => format!("Requested in {}", obs.what()),
            },
        };
        out.push(AttributeSpec::new(
            event,
            "url",
            NET,
            url.clone(),
            decoy,
            comment,
        ));
    }
    if let Some(ua) = &obs.user_agent {
        let who = obs.source_ip.as_deref().unwrap_or("a client");
        out.push(AttributeSpec::new(
            event,
            "user-agent",
            NET,
            ua.clone(),
            false,
            format!("User-Agent sent by {who} ({what})"),
        ));
    }
    if let Some(m) = &obs.method {
        out.push(AttributeSpec::new(
            event,
            "http-method",
            NET,
            m.clone(),
            false,
            format!("HTTP method of {what}"),
        ));
    }
    for rule in &obs.rules {
        let label = match (&rule.id, &rule.msg) {
            (Some(id), Some(msg)) => format!("rule {id}: {msg}"),
            (Some(id), None) => format!("rule {id}"),
            (None, Some(msg)) => format!("rule: {msg}"),
            (None, None) => "a rule".to_string(),
        };
        for data in &rule.data {
            out.push(AttributeSpec::new(
                event,
                "pattern-in-traffic",
                NET,
                data.clone(),
                false,
                format!("Matched by {label}"),
            ));
        }
    }
    if obs.has_credentials() {
        let value = format!(
            "{}:{}",
            obs.username.as_deref().unwrap_or(""),
            obs.password.as_deref().unwrap_or("")
        );
        let bait = obs.bait.as_deref().unwrap_or("a decoy");
        let at = obs
            .url
            .as_deref()
            .map(|u| format!(" at {}", cut(u.to_string(), 200)))
            .unwrap_or_default();
        out.push(AttributeSpec::new(
            event,
            "text",
            "Other",
            value,
            false,
            format!("Credentials (username:password) submitted to {bait}{at}"),
        ));
    }
    out
}

/// The tags a record adds to its event, on top of the configured and base tags.
pub fn tags_of(obs: &Observation) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(obs.action, Action::DecoyHit | Action::BaitTouched) {
        out.push(tags::RSIT_SCANNER.to_string());
    }
    if obs.action == Action::RuleMatched || !obs.rules.is_empty() {
        out.push(tags::RSIT_KNOWN_EXPLOIT.to_string());
        out.push(tags::CAPTURE_ATTACKS.to_string());
    }
    if obs.has_credentials() {
        out.push(tags::RSIT_LOGIN_ATTEMPTS.to_string());
    }
    for (id, name) in &obs.techniques {
        if let Some(tag) = tags::mitre_tag(id, name.as_deref()) {
            out.push(tag);
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedAttribute {
    pub spec: AttributeSpec,
    /// Records of this batch that carried it.
    pub occurrences: u32,
    /// Latest `@timestamp` among them.
    pub last_seen: i64,
}

/// Everything a batch of records says about one MISP event.
#[derive(Clone, Debug)]
pub struct EventPlan {
    pub key: EventKey,
    pub uuid: Uuid,
    pub info: String,
    pub date: String,
    /// Configured tags, base tags, then those the records brought, without repeats.
    pub tags: Vec<String>,
    /// Lowest (worst) `event.severity` of the records.
    pub worst_severity: Option<u8>,
    /// In order of first appearance.
    pub attributes: Vec<PlannedAttribute>,
    pub records: u64,
    /// Positions of those records in the aggregated slice (to dead-letter them if MISP
    /// refuses the event).
    pub record_indices: Vec<usize>,
    index: HashMap<Uuid, usize>,
}

impl EventPlan {
    fn new(cfg: &AggregateConfig, key: EventKey) -> EventPlan {
        let mut plan = EventPlan {
            uuid: key.uuid(),
            info: key.info(),
            date: day(key.date),
            key,
            tags: Vec::new(),
            worst_severity: None,
            attributes: Vec::new(),
            records: 0,
            record_indices: Vec::new(),
            index: HashMap::new(),
        };
        for t in cfg
            .tags
            .iter()
            .map(String::as_str)
            .chain(tags::BASE_TAGS.iter().copied())
        {
            plan.add_tag(t);
        }
        plan
    }

    fn add_tag(&mut self, tag: &str) {
        if !self.tags.iter().any(|t| t == tag) {
            self.tags.push(tag.to_string());
        }
    }

    fn add(&mut self, obs: &Observation) {
        self.records += 1;
        if let Some(s) = obs.severity {
            self.worst_severity = Some(self.worst_severity.map_or(s, |w| w.min(s)));
        }
        for t in tags_of(obs) {
            self.add_tag(&t);
        }
        for spec in attributes_of(obs, &self.uuid) {
            match self.index.get(&spec.uuid) {
                Some(&i) => {
                    let a = &mut self.attributes[i];
                    a.occurrences += 1;
                    a.last_seen = a.last_seen.max(obs.timestamp);
                }
                None => {
                    self.index.insert(spec.uuid, self.attributes.len());
                    self.attributes.push(PlannedAttribute {
                        spec,
                        occurrences: 1,
                        last_seen: obs.timestamp,
                    });
                }
            }
        }
    }

    pub fn threat_level(&self, setting: ThreatLevelSetting) -> ThreatLevel {
        match setting {
            ThreatLevelSetting::Fixed(level) => level,
            ThreatLevelSetting::Auto => ThreatLevel::from_severity(self.worst_severity),
        }
    }
}

/// A batch of records grouped into events.
#[derive(Debug, Default)]
pub struct Aggregation {
    /// In order of first appearance.
    pub events: Vec<EventPlan>,
    /// Records below `min_severity`.
    pub skipped: u64,
    /// Records that can never go to MISP: (position in the slice, reason).
    pub invalid: Vec<(usize, String)>,
}

pub fn aggregate(cfg: &AggregateConfig, records: &[Record]) -> Aggregation {
    let mut out = Aggregation::default();
    let mut by_key: HashMap<EventKey, usize> = HashMap::new();
    for (n, record) in records.iter().enumerate() {
        let obs = match Observation::parse(record) {
            Ok(obs) => obs,
            Err(why) => {
                out.invalid.push((n, why));
                continue;
            }
        };
        if obs.below(cfg.min_severity) {
            out.skipped += 1;
            continue;
        }
        let key = match EventKey::of(cfg.mode, &obs) {
            Ok(key) => key,
            Err(why) => {
                out.invalid.push((n, why));
                continue;
            }
        };
        let i = *by_key.entry(key.clone()).or_insert_with(|| {
            out.events.push(EventPlan::new(cfg, key));
            out.events.len() - 1
        });
        out.events[i].add(&obs);
        out.events[i].record_indices.push(n);
    }
    out
}

/// What MISP is known to hold for one event (from our own pushes or from a look-up).
#[derive(Clone, Debug)]
pub struct KnownEvent {
    /// MISP's numeric id.
    pub id: String,
    pub attributes: HashSet<Uuid>,
    /// (type, value) of every attribute, to recognise ones created with another UUID.
    pub values: HashSet<(String, String)>,
    pub tags: HashSet<String>,
    pub threat_level: ThreatLevel,
    /// Attributes MISP refused for their content: neither re-sent nor sighted.
    pub refused: HashSet<Uuid>,
}

impl KnownEvent {
    pub fn new(id: String, threat_level: ThreatLevel) -> KnownEvent {
        KnownEvent {
            id,
            attributes: HashSet::new(),
            values: HashSet::new(),
            tags: HashSet::new(),
            threat_level,
            refused: HashSet::new(),
        }
    }

    pub fn has(&self, spec: &AttributeSpec) -> bool {
        self.attributes.contains(&spec.uuid)
            || self
                .values
                .contains(&(spec.kind.to_string(), spec.value.clone()))
    }

    pub fn remember(&mut self, spec: &AttributeSpec) {
        self.attributes.insert(spec.uuid);
        self.values
            .insert((spec.kind.to_string(), spec.value.clone()));
    }
}

/// The requests one event needs, beyond finding or creating it.
#[derive(Debug, Default, PartialEq)]
pub struct EventWork<'a> {
    /// Raise the event's threat level to this.
    pub threat_level: Option<ThreatLevel>,
    pub new_tags: Vec<String>,
    pub add: Vec<&'a AttributeSpec>,
    /// Attributes seen again: one sighting each for this batch.
    pub sightings: Vec<&'a AttributeSpec>,
    /// Time of the latest of those repeats.
    pub sighting_time: i64,
}

impl EventWork<'_> {
    pub fn is_empty(&self) -> bool {
        self.threat_level.is_none()
            && self.new_tags.is_empty()
            && self.add.is_empty()
            && self.sightings.is_empty()
    }
}

/// Decides, for one planned event, what to send.
///
/// `added_by_this_batch` lists attributes an earlier, interrupted attempt at the same batch
/// already created: those are not "seen again" (their first occurrence is in this batch), so a
/// retry neither re-adds them nor turns their first occurrence into a sighting.
///
/// A repeat becomes one sighting per batch, whatever the count: the point of aggregating is a
/// bounded number of requests per flush, and MISP sightings carry no count.
pub fn plan_work<'a>(
    plan: &'a EventPlan,
    known: &KnownEvent,
    added_by_this_batch: &HashSet<Uuid>,
    setting: ThreatLevelSetting,
) -> EventWork<'a> {
    let mut work = EventWork::default();
    if setting == ThreatLevelSetting::Auto {
        // Only ever raised: an analyst's manual change is not undone by a lower severity.
        let wanted = plan.threat_level(setting);
        if wanted.rank() > known.threat_level.rank() {
            work.threat_level = Some(wanted);
        }
    }
    work.new_tags = plan
        .tags
        .iter()
        .filter(|t| !known.tags.contains(*t))
        .cloned()
        .collect();
    for a in plan
        .attributes
        .iter()
        .filter(|a| !known.refused.contains(&a.spec.uuid))
    {
        let ours_from_this_batch = added_by_this_batch.contains(&a.spec.uuid);
        let seen_before = known.has(&a.spec) && !ours_from_this_batch;
        if !seen_before && !ours_from_this_batch {
            work.add.push(&a.spec);
        }
        if seen_before || a.occurrences > 1 {
            work.sightings.push(&a.spec);
            work.sighting_time = work.sighting_time.max(a.last_seen);
        }
    }
    work
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::misp::tags::tests::{assert_known_tag, taxonomy_tags};
    use serde_json::json;

    fn record(doc: Value) -> Record {
        let id = doc["event"]["id"].as_str().unwrap_or("r").to_string();
        Record {
            id,
            json: doc.to_string(),
        }
    }

    fn hit(ip: &str, action: &str, url: &str, ts: &str) -> Value {
        json!({
            "@timestamp": ts,
            "event": {"id": format!("{ip}-{url}-{ts}"), "action": action, "severity": 4},
            "source": {"ip": ip},
            "url": {"original": url},
            "user_agent": {"original": "zgrab/0.x"},
            "http": {"request": {"method": "GET"}},
            "observer": {"name": "s1"},
        })
    }

    fn cfg(mode: Mode) -> AggregateConfig {
        AggregateConfig {
            mode,
            tags: vec!["tlp:green".into()],
            threat_level: ThreatLevelSetting::Auto,
            min_severity: 7,
        }
    }

    fn full_doc() -> Value {
        json!({
            "@timestamp": "2026-05-01T23:59:58.123+02:00",
            "event": {"id": "e1", "action": "rule-matched", "severity": 2, "kind": "alert"},
            "source": {"ip": "2001:DB8:0:0::1"},
            "url": {"original": "/index.php?id=1%27%20OR%201=1"},
            "user_agent": {"original": "sqlmap/1.8"},
            "http": {"request": {"method": "post"}},
            "rule": {"id": "942100", "name": "SQL Injection Attack Detected via libinjection"},
            "threat": {"technique": {"id": ["T1190", "T1595.002"], "name": ["Exploit Public-Facing Application", "Vulnerability Scanning"]}},
            "observer": {"name": "edge-7"},
            "honeytrap": {
                "kind": "rules",
                "bait": {"type": "credential", "name": "wp-admin", "token": "tok-1"},
                "attribution": {"served_to_ip": "198.51.100.9", "valid": true},
                "credentials": {"username": "admin", "password": "hunter2"},
                "rules": [
                    {"id": "942100", "msg": "SQL Injection", "matched_data": "1' OR 1=1"},
                    {"id": "932160", "msg": "Unix Shell Code", "data": ["/etc/passwd", "cat "]},
                    {"id": "900001", "msg": "no data"}
                ]
            }
        })
    }

    #[test]
    fn parses_nested_ecs() {
        let obs = Observation::parse(&record(full_doc())).unwrap();
        assert_eq!(obs.event_id, "e1");
        assert_eq!(day(obs.date), "2026-05-01", "UTC day of 23:59:58+02:00");
        assert_eq!(obs.timestamp, 1_777_672_798);
        assert_eq!(obs.sensor, "edge-7");
        assert_eq!(obs.action, Action::RuleMatched);
        assert_eq!(obs.severity, Some(2));
        assert_eq!(
            obs.source_ip.as_deref(),
            Some("2001:db8::1"),
            "canonical form"
        );
        assert_eq!(obs.method.as_deref(), Some("POST"));
        assert_eq!(obs.rules.len(), 3);
        assert_eq!(obs.rules[0].data, vec!["1' OR 1=1"]);
        assert_eq!(obs.rules[1].data, vec!["/etc/passwd", "cat"]);
        assert!(obs.rules[2].data.is_empty());
        assert_eq!(
            obs.techniques,
            vec![
                (
                    "T1190".to_string(),
                    Some("Exploit Public-Facing Application".to_string())
                ),
                (
                    "T1595.002".to_string(),
                    Some("Vulnerability Scanning".to_string())
                ),
            ]
        );
        assert_eq!(obs.username.as_deref(), Some("admin"));
        assert_eq!(obs.password.as_deref(), Some("hunter2"));
        assert_eq!(obs.kind.as_deref(), Some("rules"));
        assert_eq!(obs.bait.as_deref(), Some("credential bait \"wp-admin\""));
        assert_eq!(obs.served_to.as_deref(), Some("198.51.100.9"));
    }

    #[test]
    fn parses_dotted_keys_and_odd_values() {
        let doc = json!({
            "@timestamp": "2026-05-02T00:00:00Z",
            "event.action": "decoy-hit",
            "event.severity": "55",
            "source.ip": "not-an-ip",
            "url.original": "   ",
            "http.request.method": "G E T",
            "threat.technique.id": "T1595",
            "threat": {"technique": {"name": ["A", "B"]}},
        });
        let obs = Observation::parse(&Record {
            id: "rid".into(),
            json: doc.to_string(),
        })
        .unwrap();
        assert_eq!(obs.event_id, "rid", "falls back to the record id");
        assert_eq!(obs.action, Action::DecoyHit);
        assert_eq!(obs.severity, Some(7), "clamped to the scale");
        assert_eq!(obs.source_ip, None);
        assert_eq!(obs.url, None, "blank is absent");
        assert_eq!(obs.method, None, "not a method token");
        assert_eq!(
            obs.techniques,
            vec![("T1595".to_string(), None)],
            "names that do not line up are dropped"
        );
        assert_eq!(obs.sensor, "unnamed");
    }

    #[test]
    fn rejects_what_cannot_be_placed() {
        let bad = |json: &str| {
            Observation::parse(&Record {
                id: "x".into(),
                json: json.into(),
            })
            .unwrap_err()
        };
        assert!(bad("{").contains("not JSON"));
        assert!(bad("[1]").contains("not a JSON object"));
        assert!(bad("{}").contains("no @timestamp"));
        assert!(bad(r#"{"@timestamp":"yesterday"}"#).contains("not RFC 3339"));
    }

    #[test]
    fn event_keys_and_uuids() {
        let obs = Observation::parse(&record(hit(
            "198.51.100.7",
            "decoy-hit",
            "/.env",
            "2026-05-01T10:00:00Z",
        )))
        .unwrap();
        let daily = EventKey::of(Mode::Daily, &obs).unwrap();
        assert_eq!(daily.info(), "ngx-honeytrap s1 2026-05-01");
        let attacker = EventKey::of(Mode::Attacker, &obs).unwrap();
        assert_eq!(attacker.info(), "ngx-honeytrap s1 198.51.100.7 2026-05-01");
        assert_ne!(daily.uuid(), attacker.uuid());
        assert_eq!(
            daily.uuid(),
            EventKey::of(Mode::Daily, &obs).unwrap().uuid(),
            "stable"
        );

        let later = Observation::parse(&record(hit(
            "203.0.113.9",
            "decoy-hit",
            "/x",
            "2026-05-01T23:00:00Z",
        )))
        .unwrap();
        assert_eq!(
            EventKey::of(Mode::Daily, &later).unwrap().uuid(),
            daily.uuid(),
            "same sensor and day"
        );
        let next_day = Observation::parse(&record(hit(
            "198.51.100.7",
            "decoy-hit",
            "/.env",
            "2026-05-02T00:00:00Z",
        )))
        .unwrap();
        assert_ne!(
            EventKey::of(Mode::Daily, &next_day).unwrap().uuid(),
            daily.uuid()
        );

        let mut no_ip = obs.clone();
        no_ip.source_ip = None;
        assert!(EventKey::of(Mode::Attacker, &no_ip)
            .unwrap_err()
            .contains("source.ip"));
        assert!(EventKey::of(Mode::Daily, &no_ip).is_ok());
    }

    #[test]
    fn attributes_types_to_ids_and_comments() {
        let obs = Observation::parse(&record(full_doc())).unwrap();
        let ev = EventKey::of(Mode::Daily, &obs).unwrap().uuid();
        let attrs = attributes_of(&obs, &ev);
        let summary: Vec<(&str, &str, bool)> = attrs
            .iter()
            .map(|a| (a.kind, a.value.as_str(), a.to_ids))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("ip-src", "2001:db8::1", true),
                ("ip-src", "198.51.100.9", true),
                ("url", "/index.php?id=1%27%20OR%201=1", false),
                ("user-agent", "sqlmap/1.8", false),
                ("http-method", "POST", false),
                ("pattern-in-traffic", "1' OR 1=1", false),
                ("pattern-in-traffic", "/etc/passwd", false),
                ("pattern-in-traffic", "cat", false),
                ("text", "admin:hunter2", false),
            ]
        );
        assert_eq!(
            attrs[1].comment,
            "Collected credential bait \"wp-admin\", later used by 2001:db8::1"
        );
        let attrs: Vec<AttributeSpec> = attrs
            .into_iter()
            .filter(|a| a.value != "198.51.100.9")
            .collect();
        assert!(
            attrs[1]
                .comment
                .contains("rule 942100 (SQL Injection Attack Detected via libinjection)"),
            "{}",
            attrs[1].comment
        );
        assert_eq!(attrs[4].comment, "Matched by rule 942100: SQL Injection");
        assert!(
            attrs[7]
                .comment
                .contains("credential bait \"wp-admin\" at /index.php"),
            "{}",
            attrs[7].comment
        );
        assert_eq!(attrs[7].category, "Other");
        assert!(attrs[..7].iter().all(|a| a.category == "Network activity"));
        let uuids: HashSet<Uuid> = attrs.iter().map(|a| a.uuid).collect();
        assert_eq!(uuids.len(), attrs.len(), "distinct uuids");
        assert_eq!(attributes_of(&obs, &ev).len(), attrs.len() + 1, "stable");

        // An unverified token does not tie addresses together; nor does the same address.
        let mut doc = full_doc();
        doc["honeytrap"]["attribution"]["valid"] = json!(false);
        assert_eq!(Observation::parse(&record(doc)).unwrap().served_to, None);
        let mut doc = full_doc();
        doc["honeytrap"]["attribution"]["served_to_ip"] = json!("2001:db8::1");
        assert_eq!(Observation::parse(&record(doc)).unwrap().served_to, None);

        let decoy = Observation::parse(&record(hit(
            "198.51.100.7",
            "decoy-hit",
            "/.env",
            "2026-05-01T10:00:00Z",
        )))
        .unwrap();
        let attrs = attributes_of(&decoy, &ev);
        let url = attrs.iter().find(|a| a.kind == "url").unwrap();
        assert!(url.to_ids, "a decoy path is an indicator");
        assert!(url.comment.starts_with("Decoy path"));
        assert!(attrs
            .iter()
            .find(|a| a.kind == "user-agent")
            .unwrap()
            .comment
            .contains("198.51.100.7"));
        let mut bait = hit(
            "198.51.100.7",
            "bait-touched",
            "/wp-admin/admin-ajax.php",
            "2026-05-01T10:00:00Z",
        );
        bait["honeytrap"] =
            json!({"kind": "bait", "bait": {"type": "credential", "name": "wp-admin"}});
        let bait = Observation::parse(&record(bait)).unwrap();
        let url = attributes_of(&bait, &ev)
            .into_iter()
            .find(|a| a.kind == "url")
            .unwrap();
        assert!(
            !url.to_ids,
            "a bait's login URL is an ordinary path elsewhere"
        );
        assert_eq!(url.comment, "Bait touched: credential bait \"wp-admin\"");
        assert!(
            attrs.iter().all(|a| a.kind != "text"),
            "no credentials, no text"
        );
    }

    #[test]
    fn long_values_are_cut_at_a_char_boundary() {
        let mut doc = hit("198.51.100.7", "decoy-hit", "/", "2026-05-01T10:00:00Z");
        doc["url"]["original"] = json!(format!("/{}", "é".repeat(VALUE_MAX)));
        let obs = Observation::parse(&record(doc)).unwrap();
        let url = obs.url.unwrap();
        assert!(url.len() <= VALUE_MAX && url.len() >= VALUE_MAX - 1);
    }

    #[test]
    fn tags_come_from_the_taxonomies() {
        let known = taxonomy_tags();
        let obs = Observation::parse(&record(full_doc())).unwrap();
        let tags = tags_of(&obs);
        assert!(tags.contains(&tags::RSIT_KNOWN_EXPLOIT.to_string()));
        assert!(tags.contains(&tags::RSIT_LOGIN_ATTEMPTS.to_string()));
        assert!(tags.contains(
            &"misp-galaxy:mitre-attack-pattern=\"Exploit Public-Facing Application - T1190\""
                .to_string()
        ));
        assert!(tags.contains(
            &"misp-galaxy:mitre-attack-pattern=\"Vulnerability Scanning - T1595.002\"".to_string()
        ));
        let decoy = Observation::parse(&record(hit(
            "198.51.100.7",
            "decoy-hit",
            "/.env",
            "2026-05-01T10:00:00Z",
        )))
        .unwrap();
        assert_eq!(tags_of(&decoy), vec![tags::RSIT_SCANNER.to_string()]);

        let agg = aggregate(
            &cfg(Mode::Daily),
            &[
                record(full_doc()),
                record(hit(
                    "198.51.100.7",
                    "bait-touched",
                    "/b",
                    "2026-05-01T10:00:00Z",
                )),
            ],
        );
        for plan in &agg.events {
            assert_eq!(plan.tags[0], "tlp:green", "configured tags first");
            for tag in &plan.tags {
                assert_known_tag(&known, tag);
            }
        }
    }

    fn sample_day(n: usize, ips: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let ip = format!("198.51.100.{}", 10 + i % ips);
                let url = ["/.env", "/wp-login.php", "/.git/config"][i % 3];
                let ts = format!("2026-05-01T10:{:02}:{:02}Z", (i / 60) % 60, i % 60);
                record(hit(&ip, "decoy-hit", url, &ts))
            })
            .collect()
    }

    #[test]
    fn daily_mode_makes_one_event_with_unique_attributes() {
        let agg = aggregate(&cfg(Mode::Daily), &sample_day(200, 5));
        assert_eq!(agg.events.len(), 1);
        let plan = &agg.events[0];
        assert_eq!(plan.records, 200);
        assert_eq!(plan.info, "ngx-honeytrap s1 2026-05-01");
        assert_eq!(plan.date, "2026-05-01");
        // 5 ips + 3 urls + 1 user agent + 1 method.
        assert_eq!(plan.attributes.len(), 10);
        let ip_hits: u32 = plan
            .attributes
            .iter()
            .filter(|a| a.spec.kind == "ip-src")
            .map(|a| a.occurrences)
            .sum();
        assert_eq!(ip_hits, 200);
        assert_eq!(
            plan.attributes
                .iter()
                .find(|a| a.spec.kind == "http-method")
                .unwrap()
                .occurrences,
            200
        );
        assert_eq!(
            plan.threat_level(ThreatLevelSetting::Auto),
            ThreatLevel::Low,
            "severity 4 (decoy)"
        );
        assert_eq!(
            plan.threat_level(ThreatLevelSetting::Fixed(ThreatLevel::High)),
            ThreatLevel::High
        );
        let last = plan.attributes.iter().map(|a| a.last_seen).max().unwrap();
        assert_eq!(
            last,
            OffsetDateTime::parse("2026-05-01T10:03:19Z", &Rfc3339)
                .unwrap()
                .unix_timestamp()
        );
    }

    #[test]
    fn attacker_mode_makes_one_event_per_ip() {
        let agg = aggregate(&cfg(Mode::Attacker), &sample_day(200, 5));
        assert_eq!(agg.events.len(), 5);
        for plan in &agg.events {
            assert_eq!(plan.records, 40);
            assert_eq!(
                plan.attributes
                    .iter()
                    .filter(|a| a.spec.kind == "ip-src")
                    .count(),
                1
            );
            assert!(plan.info.contains(plan.key.source_ip.as_deref().unwrap()));
        }
        let uuids: HashSet<Uuid> = agg.events.iter().map(|e| e.uuid).collect();
        assert_eq!(uuids.len(), 5);
    }

    #[test]
    fn days_split_events_and_invalid_records_are_reported() {
        let mut records = sample_day(4, 2);
        records.push(record(hit(
            "198.51.100.1",
            "decoy-hit",
            "/",
            "2026-05-02T00:00:01Z",
        )));
        records.push(Record {
            id: "broken".into(),
            json: "{".into(),
        });
        let mut no_ip = hit("x", "decoy-hit", "/", "2026-05-01T00:00:01Z");
        no_ip["source"] = json!({});
        records.push(record(no_ip));
        let daily = aggregate(&cfg(Mode::Daily), &records);
        assert_eq!(daily.events.len(), 2);
        assert_eq!(daily.invalid.len(), 1);
        assert_eq!(daily.invalid[0].0, 5, "the broken record");
        assert_eq!(
            daily.events[0].record_indices,
            vec![0, 1, 2, 3, 6],
            "no IP is fine daily"
        );
        let attacker = aggregate(&cfg(Mode::Attacker), &records);
        assert_eq!(attacker.invalid.len(), 2, "no source ip in attacker mode");
    }

    #[test]
    fn min_severity_skips_and_counts() {
        let mut c = cfg(Mode::Daily);
        c.min_severity = 3;
        let mut records = sample_day(10, 2);
        let mut severe = hit(
            "198.51.100.99",
            "rule-matched",
            "/cgi-bin/x",
            "2026-05-01T11:00:00Z",
        );
        severe["event"]["severity"] = json!(1);
        records.push(record(severe));
        let mut unrated = hit("198.51.100.98", "decoy-hit", "/", "2026-05-01T11:00:00Z");
        unrated["event"].as_object_mut().unwrap().remove("severity");
        records.push(record(unrated));
        let agg = aggregate(&c, &records);
        assert_eq!(agg.skipped, 11, "ten at 4 and one without severity");
        assert_eq!(agg.events.len(), 1);
        assert_eq!(agg.events[0].records, 1);
        assert_eq!(
            agg.events[0].threat_level(ThreatLevelSetting::Auto),
            ThreatLevel::High
        );
    }

    fn known_for(plan: &EventPlan, upto: usize) -> KnownEvent {
        let mut known = KnownEvent::new("7".into(), ThreatLevel::Low);
        for a in &plan.attributes[..upto] {
            known.remember(&a.spec);
        }
        known.tags = plan.tags.iter().cloned().collect();
        known
    }

    #[test]
    fn new_event_adds_everything_and_sights_repeats() {
        let records = vec![
            record(hit(
                "198.51.100.1",
                "decoy-hit",
                "/.env",
                "2026-05-01T10:00:00Z",
            )),
            record(hit(
                "198.51.100.1",
                "decoy-hit",
                "/.env",
                "2026-05-01T10:00:05Z",
            )),
            record(hit(
                "198.51.100.2",
                "decoy-hit",
                "/admin",
                "2026-05-01T10:00:09Z",
            )),
        ];
        let agg = aggregate(&cfg(Mode::Daily), &records);
        let plan = &agg.events[0];
        let known = KnownEvent::new("7".into(), ThreatLevel::Undefined);
        let work = plan_work(plan, &known, &HashSet::new(), ThreatLevelSetting::Auto);
        assert_eq!(work.add.len(), plan.attributes.len());
        let sighted: Vec<(&str, &str)> = work
            .sightings
            .iter()
            .map(|a| (a.kind, a.value.as_str()))
            .collect();
        assert_eq!(
            sighted,
            vec![
                ("ip-src", "198.51.100.1"),
                ("url", "/.env"),
                ("user-agent", "zgrab/0.x"),
                ("http-method", "GET")
            ],
            "seen twice or more within the batch"
        );
        assert_eq!(
            work.sighting_time,
            OffsetDateTime::parse("2026-05-01T10:00:09Z", &Rfc3339)
                .unwrap()
                .unix_timestamp()
        );
        assert_eq!(
            work.threat_level,
            Some(ThreatLevel::Low),
            "raised from undefined"
        );
        assert_eq!(work.new_tags, plan.tags);
    }

    #[test]
    fn known_attributes_become_sightings() {
        let agg = aggregate(&cfg(Mode::Daily), &sample_day(6, 3));
        let plan = &agg.events[0];
        let known = known_for(plan, 2);
        let work = plan_work(plan, &known, &HashSet::new(), ThreatLevelSetting::Auto);
        assert!(work.add.iter().all(|a| !known.has(a)));
        assert_eq!(work.add.len(), plan.attributes.len() - 2);
        for a in &plan.attributes[..2] {
            assert!(
                work.sightings.contains(&&a.spec),
                "known {} is sighted even if seen once here",
                a.spec.value
            );
        }
        assert!(work.new_tags.is_empty());
        assert_eq!(work.threat_level, None, "low is not above low");

        // Same type and value under another UUID (added by hand in MISP): also a sighting.
        let mut by_value = KnownEvent::new("7".into(), ThreatLevel::Low);
        let ip = &plan.attributes[0].spec;
        by_value
            .values
            .insert((ip.kind.to_string(), ip.value.clone()));
        let work = plan_work(plan, &by_value, &HashSet::new(), ThreatLevelSetting::Auto);
        assert!(!work.add.contains(&ip));
        assert!(work.sightings.contains(&ip));
    }

    #[test]
    fn a_retried_batch_does_not_sight_its_own_first_occurrences() {
        let records = vec![
            record(hit(
                "198.51.100.1",
                "decoy-hit",
                "/.env",
                "2026-05-01T10:00:00Z",
            )),
            record(hit(
                "198.51.100.2",
                "decoy-hit",
                "/.env",
                "2026-05-01T10:00:01Z",
            )),
        ];
        let agg = aggregate(&cfg(Mode::Daily), &records);
        let plan = &agg.events[0];
        // An interrupted first attempt created the first two attributes (ip 1 and /.env).
        let mut known = KnownEvent::new("7".into(), ThreatLevel::Low);
        let mut added = HashSet::new();
        for a in &plan.attributes[..2] {
            known.remember(&a.spec);
            added.insert(a.spec.uuid);
        }
        let work = plan_work(plan, &known, &added, ThreatLevelSetting::Auto);
        let added_values: Vec<&str> = work.add.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(added_values, vec!["zgrab/0.x", "GET", "198.51.100.2"]);
        let sighted: Vec<&str> = work.sightings.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(
            sighted,
            vec!["/.env", "zgrab/0.x", "GET"],
            "ip 1 occurred once: no sighting"
        );
    }

    #[test]
    fn threat_level_only_rises_in_auto_mode() {
        let mut records = sample_day(3, 1);
        let mut severe = hit(
            "198.51.100.1",
            "rule-matched",
            "/shell.php",
            "2026-05-01T12:00:00Z",
        );
        severe["event"]["severity"] = json!(2);
        records.push(record(severe));
        let agg = aggregate(&cfg(Mode::Daily), &records);
        let plan = &agg.events[0];
        assert_eq!(plan.worst_severity, Some(2));
        let mut known = known_for(plan, 0);
        known.tags.clear();
        known.threat_level = ThreatLevel::Low;
        assert_eq!(
            plan_work(plan, &known, &HashSet::new(), ThreatLevelSetting::Auto).threat_level,
            Some(ThreatLevel::Medium)
        );
        known.threat_level = ThreatLevel::High;
        assert_eq!(
            plan_work(plan, &known, &HashSet::new(), ThreatLevelSetting::Auto).threat_level,
            None
        );
        known.threat_level = ThreatLevel::Undefined;
        assert_eq!(
            plan_work(
                plan,
                &known,
                &HashSet::new(),
                ThreatLevelSetting::Fixed(ThreatLevel::High)
            )
            .threat_level,
            None,
            "a fixed level is set at creation only"
        );
        let new_tags = plan_work(plan, &known, &HashSet::new(), ThreatLevelSetting::Auto).new_tags;
        assert!(new_tags.contains(&tags::RSIT_KNOWN_EXPLOIT.to_string()));
        assert!(new_tags.contains(&tags::CAPTURE_ATTACKS.to_string()));
    }

    #[test]
    fn nothing_new_means_no_work_but_sightings() {
        let agg = aggregate(&cfg(Mode::Daily), &sample_day(1, 1));
        let plan = &agg.events[0];
        let known = known_for(plan, plan.attributes.len());
        let work = plan_work(plan, &known, &HashSet::new(), ThreatLevelSetting::Auto);
        assert!(work.add.is_empty());
        assert_eq!(work.sightings.len(), plan.attributes.len());
        assert!(!work.is_empty());
        assert!(EventWork::default().is_empty());
    }
}
