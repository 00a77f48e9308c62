//! `honeytrap events report`: one streaming pass over NDJSON events files into counters, then
//! plain tables (and, with `--html`, the page of [`crate::html`]).
//!
//! Memory grows with what is distinct (sources, rules, hours), not with the number of lines:
//! each line is parsed into borrowed fields and dropped.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::progress::Progress;
use crate::{Failure, Outcome, ReportArgs};

/// The event kinds, in the order tables and charts show them.
pub const KINDS: [&str; 4] = ["decoy", "bait", "rules", "other"];

// The fields a report reads; everything else in a line is skipped without being built.
#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(rename = "@timestamp", borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event: Option<EventF<'a>>,
    #[serde(borrow)]
    source: Option<SourceF<'a>>,
    #[serde(borrow)]
    rule: Option<RuleF<'a>>,
    #[serde(borrow)]
    threat: Option<ThreatF<'a>>,
    #[serde(borrow)]
    honeytrap: Option<HoneytrapF<'a>>,
}

#[derive(Deserialize)]
struct EventF<'a> {
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct SourceF<'a> {
    #[serde(borrow)]
    ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RuleF<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ThreatF<'a> {
    #[serde(borrow)]
    technique: Option<IdsNames<'a>>,
}

#[derive(Deserialize)]
struct IdsNames<'a> {
    #[serde(borrow, default)]
    id: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct HoneytrapF<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    bait: Option<BaitF<'a>>,
    #[serde(borrow)]
    attribution: Option<AttributionF<'a>>,
    #[serde(borrow, default)]
    rules: Vec<RuleMatchF<'a>>,
}

#[derive(Deserialize)]
struct BaitF<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AttributionF<'a> {
    #[serde(borrow)]
    served_to_ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RuleMatchF<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    msg: Option<Cow<'a, str>>,
}

/// Per source address: events by kind.
#[derive(Default, Clone, Debug)]
pub struct SourceStats {
    pub by_kind: [u64; 4],
}

impl SourceStats {
    pub fn total(&self) -> u64 {
        self.by_kind.iter().sum()
    }
}

#[derive(Default, Debug)]
pub struct BaitStats {
    pub events: u64,
    pub sources: HashSet<String>,
}

/// A bait served to one address and used from another.
#[derive(Default, Debug)]
pub struct Reuse {
    pub events: u64,
    pub first: Option<i64>,
}

/// Everything one pass collects.
#[derive(Default, Debug)]
pub struct Stats {
    pub lines: u64,
    /// Lines of the file being read, for messages.
    pub file_lines: u64,
    pub events: u64,
    pub bad_lines: u64,
    /// First few unreadable lines: (file index, line number, why).
    pub bad_examples: Vec<(usize, u64, String)>,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub by_kind: [u64; 4],
    /// Events per hour (Unix seconds / 3600) by kind.
    pub hourly: BTreeMap<i64, [u64; 4]>,
    pub sources: HashMap<String, SourceStats>,
    pub baits: HashMap<(String, String), BaitStats>,
    /// Rule id → (events, message).
    pub rules: HashMap<String, (u64, String)>,
    /// Technique id → (events, name).
    pub techniques: HashMap<String, (u64, String)>,
    /// (served to, used by, bait) → reuse.
    pub reuse: HashMap<(String, String, String), Reuse>,
}

fn kind_index(kind: Option<&str>, action: Option<&str>) -> usize {
    match (kind, action) {
        (Some("decoy"), _) | (None, Some("decoy-hit")) => 0,
        (Some("bait"), _) | (None, Some("bait-touched")) => 1,
        (Some("rules"), _) | (None, Some("rule-matched")) => 2,
        _ => 3,
    }
}

pub fn parse_time(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

pub fn format_time(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

impl Stats {
    /// Adds one line (without its newline); blank lines are ignored.
    pub fn add_line(&mut self, file: usize, line: &[u8]) {
        self.lines += 1;
        self.file_lines += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let doc: Doc<'_> = match serde_json::from_slice(line) {
            Ok(d) => d,
            Err(e) => {
                self.bad_lines += 1;
                if self.bad_examples.len() < 5 {
                    self.bad_examples
                        .push((file, self.file_lines, e.to_string()));
                }
                return;
            }
        };
        self.events += 1;
        let ht = doc.honeytrap.as_ref();
        let k = kind_index(
            ht.and_then(|h| h.kind.as_deref()),
            doc.event.as_ref().and_then(|e| e.action.as_deref()),
        );
        self.by_kind[k] += 1;
        let ts = doc.timestamp.as_deref().and_then(parse_time);
        if let Some(t) = ts {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
            self.hourly.entry(t.div_euclid(3600)).or_default()[k] += 1;
        }
        let ip = doc.source.as_ref().and_then(|s| s.ip.as_deref());
        if let Some(ip) = ip {
            // Look up before inserting: most lines repeat a known source.
            match self.sources.get_mut(ip) {
                Some(s) => s.by_kind[k] += 1,
                None => {
                    let mut s = SourceStats::default();
                    s.by_kind[k] += 1;
                    self.sources.insert(ip.to_owned(), s);
                }
            }
        }
        let mut bait_label = None;
        if let Some(b) = ht.and_then(|h| h.bait.as_ref()) {
            let key = (
                b.kind.as_deref().unwrap_or("?").to_owned(),
                b.name.as_deref().unwrap_or("?").to_owned(),
            );
            bait_label = Some(format!("{} {}", key.0, key.1));
            let entry = self.baits.entry(key).or_default();
            entry.events += 1;
            if let Some(ip) = ip {
                if !entry.sources.contains(ip) {
                    entry.sources.insert(ip.to_owned());
                }
            }
        }
        let mut counted_rule = false;
        for r in ht.map(|h| h.rules.as_slice()).unwrap_or_default() {
            if let Some(id) = r.id.as_deref() {
                self.count_rule(id, r.msg.as_deref());
                counted_rule = true;
            }
        }
        if !counted_rule {
            if let Some(id) = doc.rule.as_ref().and_then(|r| r.id.as_deref()) {
                let name = doc.rule.as_ref().and_then(|r| r.name.as_deref());
                self.count_rule(id, name);
            }
        }
        if let Some(t) = doc.threat.as_ref().and_then(|t| t.technique.as_ref()) {
            for (i, id) in t.id.iter().enumerate() {
                let name = t.name.get(i).map(|n| n.as_ref()).unwrap_or("");
                match self.techniques.get_mut(id.as_ref()) {
                    Some(e) => e.0 += 1,
                    None => {
                        self.techniques.insert(id.to_string(), (1, name.to_owned()));
                    }
                }
            }
        }
        let served = ht
            .and_then(|h| h.attribution.as_ref())
            .and_then(|a| a.served_to_ip.as_deref());
        if let (Some(served), Some(ip)) = (served, ip) {
            if served != ip {
                let key = (
                    served.to_owned(),
                    ip.to_owned(),
                    bait_label.unwrap_or_else(|| "?".into()),
                );
                let r = self.reuse.entry(key).or_default();
                r.events += 1;
                if let Some(t) = ts {
                    r.first = Some(r.first.map_or(t, |f| f.min(t)));
                }
            }
        }
    }

    fn count_rule(&mut self, id: &str, msg: Option<&str>) {
        match self.rules.get_mut(id) {
            Some(e) => {
                e.0 += 1;
                if e.1.is_empty() {
                    if let Some(m) = msg {
                        e.1 = m.to_owned();
                    }
                }
            }
            None => {
                self.rules
                    .insert(id.to_owned(), (1, msg.unwrap_or("").to_owned()));
            }
        }
    }

    /// Reads a whole stream; `progress` hears about every line.
    pub fn read(
        &mut self,
        file: usize,
        input: impl Read,
        progress: &mut Progress,
    ) -> std::io::Result<()> {
        let mut reader = BufReader::with_capacity(1 << 20, input);
        let mut buf = Vec::with_capacity(4096);
        self.file_lines = 0;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            self.add_line(file, line);
            progress.advance(n as u64, self.lines);
        }
    }

    pub fn top_sources(&self, n: usize) -> Vec<(&str, &SourceStats)> {
        let mut v: Vec<(&str, &SourceStats)> =
            self.sources.iter().map(|(k, s)| (k.as_str(), s)).collect();
        v.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    pub fn top_rules(&self, n: usize) -> Vec<(&str, u64, &str)> {
        top_counted(&self.rules, n)
    }

    pub fn top_techniques(&self, n: usize) -> Vec<(&str, u64, &str)> {
        top_counted(&self.techniques, n)
    }

    pub fn baits_sorted(&self) -> Vec<(&(String, String), &BaitStats)> {
        let mut v: Vec<_> = self.baits.iter().collect();
        v.sort_by(|a, b| b.1.events.cmp(&a.1.events).then(a.0.cmp(b.0)));
        v
    }

    pub fn reuse_sorted(&self) -> Vec<(&(String, String, String), &Reuse)> {
        let mut v: Vec<_> = self.reuse.iter().collect();
        v.sort_by(|a, b| b.1.events.cmp(&a.1.events).then(a.0.cmp(b.0)));
        v
    }
}

fn top_counted(map: &HashMap<String, (u64, String)>, n: usize) -> Vec<(&str, u64, &str)> {
    let mut v: Vec<(&str, u64, &str)> = map
        .iter()
        .map(|(k, (c, m))| (k.as_str(), *c, m.as_str()))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(n);
    v
}

/// A plain text table: a header, then rows; numeric-looking columns are right-aligned.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self, out: &mut String) {
        out.push_str(&self.title);
        out.push('\n');
        if self.rows.is_empty() {
            out.push_str("  (none)\n\n");
            return;
        }
        let cols = self.header.len();
        let mut width = vec![0usize; cols];
        let mut numeric = vec![true; cols];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        for row in &self.rows {
            for (i, c) in row.iter().enumerate().take(cols) {
                numeric[i] &= c
                    .chars()
                    .all(|ch| ch.is_ascii_digit() || ".%,".contains(ch));
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            out.push(' ');
            for (i, c) in row.iter().enumerate().take(cols) {
                let pad = width[i] - c.chars().count();
                out.push_str("  ");
                if numeric[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if i + 1 < cols {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
}

/// Cuts a cell to `max` characters.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(max - 1).collect();
        c.push('…');
        c
    }
}

fn pct(n: u64, of: u64) -> String {
    format!("{:.1}%", 100.0 * n as f64 / of.max(1) as f64)
}

fn duration(secs: i64) -> String {
    let (d, h, m) = (secs / 86400, secs % 86400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {}s", secs % 60)
    }
}

/// The terminal report.
pub fn render_text(s: &Stats, files: usize, top: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "honeytrap events report: {} event(s) from {files} file(s)",
        s.events
    ));
    if s.bad_lines > 0 {
        out.push_str(&format!(", {} unreadable line(s) skipped", s.bad_lines));
    }
    out.push('\n');
    match (s.first, s.last) {
        (Some(a), Some(b)) => out.push_str(&format!(
            "time span: {} .. {} ({})\n\n",
            format_time(a),
            format_time(b),
            duration(b - a)
        )),
        _ => out.push_str("time span: no timestamps\n\n"),
    }

    let mut t = Table::new("events by kind", &["kind", "events", "share"]);
    for (i, k) in KINDS.iter().enumerate() {
        if s.by_kind[i] > 0 || i < 3 {
            t.row(vec![
                k.to_string(),
                s.by_kind[i].to_string(),
                pct(s.by_kind[i], s.events),
            ]);
        }
    }
    t.render(&mut out);

    let mut t = Table::new(
        format!("top sources ({} distinct)", s.sources.len()),
        &["source.ip", "events", "decoy", "bait", "rules"],
    );
    for (ip, st) in s.top_sources(top) {
        t.row(vec![
            ip.to_string(),
            st.total().to_string(),
            st.by_kind[0].to_string(),
            st.by_kind[1].to_string(),
            st.by_kind[2].to_string(),
        ]);
    }
    t.render(&mut out);

    let mut t = Table::new(
        format!("baits touched ({})", s.baits.len()),
        &["type", "name", "events", "sources"],
    );
    for ((kind, name), b) in s.baits_sorted().into_iter().take(top) {
        t.row(vec![
            kind.clone(),
            clip(name, 40),
            b.events.to_string(),
            b.sources.len().to_string(),
        ]);
    }
    t.render(&mut out);

    let mut t = Table::new(
        format!("top rules ({} distinct)", s.rules.len()),
        &["rule", "events", "message"],
    );
    for (id, n, msg) in s.top_rules(top) {
        t.row(vec![id.to_string(), n.to_string(), clip(msg, 60)]);
    }
    t.render(&mut out);

    let mut t = Table::new(
        format!(
            "top MITRE ATT&CK techniques ({} distinct)",
            s.techniques.len()
        ),
        &["technique", "events", "name"],
    );
    for (id, n, name) in s.top_techniques(top) {
        t.row(vec![id.to_string(), n.to_string(), clip(name, 50)]);
    }
    t.render(&mut out);

    let mut t = Table::new(
        format!(
            "attributed bait reuse: baits served to one address, used from another ({} pairs)",
            s.reuse.len()
        ),
        &["served to", "used by", "bait", "events", "first used"],
    );
    for ((served, used, bait), r) in s.reuse_sorted().into_iter().take(top) {
        t.row(vec![
            served.clone(),
            used.clone(),
            clip(bait, 40),
            r.events.to_string(),
            r.first.map(format_time).unwrap_or_default(),
        ]);
    }
    t.render(&mut out);

    for (file, line, why) in &s.bad_examples {
        out.push_str(&format!("skipped: file {} line {line}: {why}\n", file + 1));
    }
    out
}

pub fn run(args: &ReportArgs) -> Outcome {
    let total: u64 = args
        .files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .sum();
    let mut progress = Progress::new(total, !args.no_progress);
    let mut stats = Stats::default();
    for (i, path) in args.files.iter().enumerate() {
        let result = if path == Path::new("-") {
            stats.read(i, std::io::stdin().lock(), &mut progress)
        } else {
            let f = File::open(path)
                .map_err(|e| Failure::fatal(format!("cannot open {}: {e}", path.display())))?;
            stats.read(i, f, &mut progress)
        };
        result.map_err(|e| Failure::fatal(format!("reading {}: {e}", path.display())))?;
    }
    progress.finish();
    let text = render_text(&stats, args.files.len(), args.top);
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(text.as_bytes());
    if let Some(out) = &args.html {
        let page = crate::html::page(&stats, args.top);
        std::fs::write(out, page)
            .map_err(|e| Failure::fatal(format!("cannot write {}: {e}", out.display())))?;
        eprintln!("wrote {}", out.display());
    }
    if stats.events == 0 {
        return Err(Failure::fatal(
            "no events found: are these NDJSON files as the module's file sink writes them?",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: &str, kind: &str, ip: &str, extra: &str) -> String {
        format!(
            r#"{{"@timestamp":"{ts}","event":{{"action":"x"}},"source":{{"ip":"{ip}"}},"honeytrap":{{"kind":"{kind}"{extra}}}}}"#
        )
    }

    #[test]
    fn counts_kinds_sources_span_and_reuse() {
        let mut s = Stats::default();
        let lines = [
            line("2024-05-01T10:00:00.000Z", "decoy", "192.0.2.1", ""),
            line(
                "2024-05-01T12:30:00.000Z",
                "bait",
                "198.51.100.7",
                r#","bait":{"type":"credential","name":"wp-admin"},"attribution":{"served_to_ip":"192.0.2.1","valid":true}"#,
            ),
            line(
                "2024-05-01T11:00:00.000Z",
                "rules",
                "192.0.2.1",
                r#","rules":[{"id":"942100","msg":"SQLi"},{"id":"949110"}]"#,
            ),
            "not json".to_string(),
            String::new(),
        ];
        for l in &lines {
            s.add_line(0, l.as_bytes());
        }
        assert_eq!((s.events, s.bad_lines), (3, 1));
        assert_eq!(s.by_kind, [1, 1, 1, 0]);
        assert_eq!(s.last.unwrap() - s.first.unwrap(), 9000);
        assert_eq!(s.top_sources(1)[0].0, "192.0.2.1");
        assert_eq!(s.rules["942100"], (1, "SQLi".to_string()));
        let reuse = s.reuse_sorted();
        assert_eq!(reuse.len(), 1);
        assert_eq!(reuse[0].0 .0, "192.0.2.1");
        assert_eq!(reuse[0].0 .2, "credential wp-admin");
        let text = render_text(&s, 1, 10);
        assert!(text.contains("1 unreadable line(s)"), "{text}");
        assert!(text.contains("(2h 30m)"), "{text}");
    }

    #[test]
    fn same_ip_attribution_is_not_reuse() {
        let mut s = Stats::default();
        s.add_line(
            0,
            line(
                "2024-05-01T10:00:00Z",
                "bait",
                "192.0.2.1",
                r#","attribution":{"served_to_ip":"192.0.2.1"}"#,
            )
            .as_bytes(),
        );
        assert!(s.reuse.is_empty());
    }

    #[test]
    fn table_aligns_numbers_right() {
        let mut t = Table::new("t", &["name", "n"]);
        t.row(vec!["a".into(), "5".into()]);
        t.row(vec!["bbb".into(), "100".into()]);
        let mut out = String::new();
        t.render(&mut out);
        // Right-aligned: the numbers end in the same column.
        let lens: Vec<usize> = out.lines().skip(1).take(3).map(str::len).collect();
        assert_eq!(lens, vec![lens[0]; 3], "{out:?}");
        assert!(out.contains("   bbb   100\n"), "{out:?}");
    }
}
