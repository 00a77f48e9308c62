//! The ECS document of an [`Event`], written as JSON by hand.
//!
//! Everything derived (ids printed, URL split, headers merged, constants) happens here, on the
//! shipper thread, so the request path only copies what it saw. The writer is hand-made
//! because this runs once per event on the worker's CPU: serde_json's string escaping looks at
//! one byte at a time and was most of the cost, and the layout is fixed anyway. Fields appear in
//! a fixed order and `None` or empty ones are left out; the output is byte for byte what the
//! serde-derived reference in `doc_reference.rs` writes (tests compare them).

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use super::text::{host_without_port, split_target};
use super::{Event, Kind, MitreRef};

pub const ECS_VERSION: &str = "9.4.0";
pub const DATASET: &str = "honeytrap.events";
pub(super) const MODULE: &str = "honeytrap";
pub(super) const PRODUCT: &str = "ngx-honeytrap";
pub(super) const CATEGORY: [&str; 2] = ["intrusion_detection", "web"];

/// The document as one JSON line; `id` is the event's id as printed (the caller needs it too).
pub fn to_json(event: &Event, id: &str) -> String {
    let mut out = String::with_capacity(size_hint(event));
    write_document(&mut out, event, id);
    out
}

#[cfg(test)]
fn rfc3339_millis(t: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339_millis(&mut out, t);
    out
}

/// `2024-05-23T08:05:34.853Z`, as ECS dates are usually written. Every event has one or two
/// dates: years 1970 to 9999 are written here, by calendar arithmetic, for a fraction of what
/// the general formatter costs; earlier ones (a clock set before 1970) by it.
fn push_rfc3339_millis(out: &mut String, t: SystemTime) {
    /// 10000-01-01T00:00:00Z.
    const YEAR_10000: u64 = 253_402_300_800;
    let since_epoch = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) if d.as_secs() < YEAR_10000 => d,
        // Beyond what the time crate converts (it panics): the same stand-in as its errors.
        Ok(_) => return out.push_str(UNWRITABLE_DATE),
        Err(_) => return out.push_str(&rfc3339_millis_by_time(t)),
    };
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_date(secs / 86_400);
    let of_day = secs % 86_400;
    push_padded(out, year, 4);
    out.push('-');
    push_padded(out, month, 2);
    out.push('-');
    push_padded(out, day, 2);
    out.push('T');
    push_padded(out, of_day / 3600, 2);
    out.push(':');
    push_padded(out, of_day / 60 % 60, 2);
    out.push(':');
    push_padded(out, of_day % 60, 2);
    out.push('.');
    push_padded(out, u64::from(since_epoch.subsec_millis()), 3);
    out.push('Z');
}

/// `n` in `width` (at most 4) digits, zeros first.
fn push_padded(out: &mut String, mut n: u64, width: usize) {
    let mut buf = [b'0'; 4];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for &b in &buf[..width] {
        out.push(char::from(b));
    }
}

/// (year, month, day) of the proleptic Gregorian calendar for a count of days since 1970-01-01:
/// H. Hinnant's `civil_from_days`, on unsigned numbers as days are never negative here. Years
/// are counted from March so that the leap day falls last.
fn civil_date(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, the start of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Written for a date that cannot be written.
const UNWRITABLE_DATE: &str = "1970-01-01T00:00:00.000Z";

pub(super) fn rfc3339_millis_by_time(t: SystemTime) -> String {
    const FORMAT: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from(t)
        .format(FORMAT)
        .unwrap_or_else(|_| UNWRITABLE_DATE.to_owned())
}

/// Enough room for the whole document in one allocation in the usual case: the constant part
/// plus the variable text, the URL counted twice for its path and query.
fn size_hint(e: &Event) -> usize {
    let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let headers: usize = e.headers.iter().map(|(n, v)| n.len() + v.len() + 6).sum();
    let rules: usize = e
        .rules
        .iter()
        .map(|r| {
            10 + len(&r.msg)
                + len(&r.matched_var)
                + len(&r.matched_data)
                + r.tags.iter().map(|t| t.len() + 3).sum::<usize>()
                + 96
        })
        .sum();
    let rule = e.rule.as_ref().map_or(0, |r| len(&r.name) + 64);
    768 + 2 * len(&e.url)
        + len(&e.host)
        + 2 * len(&e.user_agent)
        + len(&e.body)
        + headers
        + rules
        + rule
}

/// An object being written: the opening brace is out, each field puts its comma before it.
struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, empty: true }
    }

    /// Writes `"key":` (the key is one of ours: plain ASCII, nothing to escape) and hands back
    /// the buffer for the value.
    fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    fn str(&mut self, key: &str, value: &str) {
        push_str_value(self.key(key), value);
    }

    /// A number as a JSON string (`"942100"`).
    fn decimal_str(&mut self, key: &str, value: u64) {
        let out = self.key(key);
        out.push('"');
        push_decimal(out, value);
        out.push('"');
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    fn num(&mut self, key: &str, value: impl Into<u64>) {
        push_decimal(self.key(key), value.into());
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key).push_str(if value { "true" } else { "false" });
    }

    fn ip(&mut self, key: &str, ip: IpAddr) {
        push_ip(self.key(key), ip);
    }

    fn strs<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) {
        push_strs(self.key(key), values);
    }

    fn object(&mut self, key: &str) -> Object<'_> {
        Object::open(self.key(key))
    }

    fn close(self) {
        self.out.push('}');
    }
}

/// Rules' tag lists by list, written: a rule's list is one `Arc` that every event it matches
/// in shares, so its JSON array is written once per thread instead of once per event (per
/// attack event of bench/crs, `bench_to_record`: 27.7 k → 22.4 k instructions). Direct-mapped by
/// the list's address; an entry holds its `Arc`, so no other list can have that address
/// while it is here.
const TAG_ARRAY_SLOTS: usize = 64;

type TagArrays = Vec<Option<(Arc<[String]>, Box<str>)>>;

thread_local! {
    static TAG_ARRAYS: RefCell<TagArrays> = const { RefCell::new(Vec::new()) };
}

/// `tags` as a JSON array of strings.
fn push_tags(out: &mut String, tags: &Arc<[String]>) {
    // The address's low bits are alignment, the same for every list.
    let slot = (Arc::as_ptr(tags).cast::<String>() as usize >> 4) % TAG_ARRAY_SLOTS;
    TAG_ARRAYS.with_borrow_mut(|arrays| {
        if arrays.is_empty() {
            arrays.resize_with(TAG_ARRAY_SLOTS, || None);
        }
        if let Some((list, json)) = &arrays[slot] {
            if Arc::ptr_eq(list, tags) {
                out.push_str(json);
                return;
            }
        }
        let mut json = String::new();
        push_strs(&mut json, tags.iter().map(String::as_str));
        out.push_str(&json);
        arrays[slot] = Some((Arc::clone(tags), json.into_boxed_str()));
    });
}

fn push_strs<'s>(out: &mut String, values: impl IntoIterator<Item = &'s str>) {
    out.push('[');
    for (at, value) in values.into_iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        push_str_value(out, value);
    }
    out.push(']');
}

/// A JSON string as serde_json writes it: `"` and `\` escaped, control characters as their
/// short escapes or `\u00xx`, everything else (DEL, non-ASCII) as it is.
fn push_str_value(out: &mut String, value: &str) {
    out.push('"');
    push_escaped(out, value);
    out.push('"');
}

/// The inside of a JSON string, without the quotes.
fn push_escaped(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    // Most strings of an event (tags, messages, names) need no escaping: one pass without a
    // branch per byte or word tells, and they are copied whole (per attack event of
    // bench/crs, `bench_to_record`: 30.9 k → 28.3 k instructions; 22.4 k → 21.8 k a word at
    // a time).
    if !needs_escape(bytes) {
        out.push_str(value);
        return;
    }
    let mut written = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Text from requests seldom needs escaping: skip it a word at a time, and look at single
        // bytes only in a word that has one to escape. The last few bytes are tested as a word
        // too: the string's last 8 (the ones before them were found clean already), or, in a
        // string shorter than 8, its bytes padded with clean ones.
        let end = (at + 8).min(bytes.len());
        let word = match bytes.get(at..at + 8) {
            Some(word) => word.try_into().expect("8 bytes"),
            None if bytes.len() >= 8 => bytes[bytes.len() - 8..].try_into().expect("8 bytes"),
            None => {
                let mut padded = [b'a'; 8];
                padded[..bytes.len()].copy_from_slice(bytes);
                padded
            }
        };
        if !word_needs_escape(u64::from_le_bytes(word)) {
            at = end;
            continue;
        }
        for (offset, &b) in bytes[at..end].iter().enumerate() {
            if !byte_needs_escape(b) {
                continue;
            }
            let here = at + offset;
            // `b` is ASCII, so both cuts fall on character boundaries.
            out.push_str(&value[written..here]);
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                0x08 => out.push_str("\\b"),
                0x0C => out.push_str("\\f"),
                _ => {
                    out.push_str("\\u00");
                    out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
                    out.push(char::from(HEX_DIGITS[usize::from(b & 0xf)]));
                }
            }
            written = here + 1;
        }
        at = end;
    }
    out.push_str(&value[written..]);
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Whether any byte of `bytes` needs escaping: a word at a time, the last word overlapping
/// the one before it (a byte at a time, an event's short strings cost most in the tail).
fn needs_escape(bytes: &[u8]) -> bool {
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.iter().any(|&b| byte_needs_escape(b));
    };
    bytes.chunks_exact(8).fold(
        word_needs_escape(u64::from_le_bytes(*last)),
        |dirty, word| {
            dirty | word_needs_escape(u64::from_le_bytes(word.try_into().expect("8 bytes")))
        },
    )
}

fn byte_needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any of the 8 bytes in `word` needs escaping, tested on all of them at once: the
/// classic "has a byte less than n" and "has a zero byte" bit tricks, exact as yes/no answers.
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // (w - n per byte) & !w has high bits set iff some byte is below n (n <= 0x80); a byte
    // equal to c is a zero byte, below 1, in w ^ c. The three tests are or-ed before a single
    // branch: this runs on every word of every string.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    (below(word, 0x20) | below(quote, 1) | below(backslash, 1)) & HIGHS != 0
}

/// `n` in decimal, without going through `fmt` (its padding logic costs more than the digits).
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// An address as a JSON string. An address's text is digits, dots, colons and hex: nothing
/// to escape.
fn push_ip(out: &mut String, ip: IpAddr) {
    out.push('"');
    super::text::push_ip(out, ip);
    out.push('"');
}

/// An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; ECS wants a.b.c.d.
fn endpoint(doc: &mut Object<'_>, key: &str, addr: Option<SocketAddr>) {
    if let Some(addr) = addr {
        let mut endpoint = doc.object(key);
        endpoint.ip("ip", addr.ip().to_canonical());
        endpoint.num("port", addr.port());
        endpoint.close();
    }
}

fn write_document(out: &mut String, e: &Event, id: &str) {
    let mut doc = Object::open(out);
    let timestamp = doc.key("@timestamp");
    timestamp.push('"');
    push_rfc3339_millis(timestamp, e.timestamp);
    timestamp.push('"');
    let mut ecs = doc.object("ecs");
    ecs.str("version", ECS_VERSION);
    ecs.close();

    let mut event = doc.object("event");
    event.str("kind", "alert");
    event.strs("category", CATEGORY);
    let event_type = if e.denied {
        "denied"
    } else {
        match e.kind {
            Kind::Decoy | Kind::Bait => "access",
            Kind::Rules => "info",
        }
    };
    event.strs("type", [event_type]);
    event.str("action", e.kind.action());
    event.num("severity", e.severity);
    event.str("id", id);
    event.str("dataset", DATASET);
    event.str("module", MODULE);
    event.close();

    endpoint(&mut doc, "source", e.source);
    endpoint(&mut doc, "destination", e.destination);

    let domain = e.host.as_deref().map(host_without_port);
    if e.url.is_some() || domain.is_some() {
        let mut url = doc.object("url");
        if let Some(original) = &e.url {
            let (path, query) = split_target(original);
            url.str("original", original);
            url.str("path", path);
            url.opt_str("query", query);
        }
        url.opt_str("domain", domain);
        url.close();
    }

    let has_body = e.body.is_some() || e.body_bytes.is_some();
    let has_request = e.method.is_some() || has_body;
    if has_request || e.http_version.is_some() || e.status_code.is_some() {
        let mut http = doc.object("http");
        if has_request {
            let mut request = http.object("request");
            request.opt_str("method", e.method.as_deref());
            if has_body {
                let mut body = request.object("body");
                body.opt_str("content", e.body.as_deref());
                if let Some(bytes) = e.body_bytes {
                    body.num("bytes", bytes);
                }
                body.close();
            }
            request.close();
        }
        http.opt_str("version", e.http_version.as_deref());
        if let Some(status_code) = e.status_code {
            let mut response = http.object("response");
            response.num("status_code", status_code);
            response.close();
        }
        http.close();
    }

    if let Some(original) = &e.user_agent {
        let mut user_agent = doc.object("user_agent");
        user_agent.str("original", original);
        user_agent.close();
    }

    if let Some(r) = &e.rule {
        let mut rule = doc.object("rule");
        rule.opt_str("id", r.id.as_deref());
        rule.opt_str("name", r.name.as_deref());
        rule.opt_str("category", r.category.as_deref());
        rule.close();
    }

    if !e.techniques.is_empty() || !e.tactics.is_empty() {
        let mut threat = doc.object("threat");
        threat.str("framework", "MITRE ATT&CK");
        ids_and_names(&mut threat, "technique", &e.techniques);
        ids_and_names(&mut threat, "tactic", &e.tactics);
        threat.close();
    }

    let mut observer = doc.object("observer");
    observer.str("name", &e.observer.name);
    observer.str("type", "honeypot");
    observer.str("vendor", &e.observer.vendor);
    observer.str("product", PRODUCT);
    observer.str("version", &e.observer.version);
    observer.close();

    if let Some(id) = &e.transaction_id {
        let mut transaction = doc.object("transaction");
        transaction.str("id", id);
        transaction.close();
    }

    related(&mut doc, e);
    if !e.tags.is_empty() {
        doc.strs("tags", e.tags.iter().map(String::as_str));
    }
    honeytrap(&mut doc, e);
    doc.close();
}

/// ECS keeps technique ids and names in two parallel arrays.
fn ids_and_names(threat: &mut Object<'_>, key: &str, refs: &[MitreRef]) {
    if refs.is_empty() {
        return;
    }
    let mut object = threat.object(key);
    object.strs("id", refs.iter().map(|r| r.id.as_str()));
    object.strs("name", refs.iter().map(|r| r.name.as_str()));
    object.close();
}

/// `related.ip`: the attacker-side addresses, to pivot on (not the sensor's own address).
fn related(doc: &mut Object<'_>, e: &Event) {
    let mut ips: [Option<IpAddr>; 2] = [
        e.source.map(|s| s.ip().to_canonical()),
        e.attribution
            .as_ref()
            .and_then(|a| a.served_to_ip)
            .map(|ip| ip.to_canonical()),
    ];
    if ips[0].is_some() && ips[0] == ips[1] {
        ips[1] = None;
    }
    if ips.iter().all(Option::is_none) {
        return;
    }
    let out = doc.key("related");
    out.push_str("{\"ip\":[");
    for (at, ip) in ips.into_iter().flatten().enumerate() {
        if at > 0 {
            out.push(',');
        }
        push_ip(out, ip);
    }
    out.push_str("]}");
}

fn honeytrap(doc: &mut Object<'_>, e: &Event) {
    let mut h = doc.object("honeytrap");
    h.str("kind", e.kind.as_str());
    if let Some(b) = &e.bait {
        let mut bait = h.object("bait");
        bait.str("type", &b.kind);
        bait.str("name", &b.name);
        bait.opt_str("token", b.token.as_deref());
        bait.close();
    }
    if let Some(a) = &e.attribution {
        let mut attribution = h.object("attribution");
        if let Some(ip) = a.served_to_ip {
            attribution.ip("served_to_ip", ip.to_canonical());
        }
        if let Some(at) = a.served_at {
            let served_at = attribution.key("served_at");
            served_at.push('"');
            push_rfc3339_millis(served_at, at);
            served_at.push('"');
        }
        attribution.opt_str("token_id", a.token_id.as_deref());
        attribution.bool("valid", a.valid);
        attribution.close();
    }
    if let Some(s) = &e.anomaly_score {
        let mut score = h.object("anomaly_score");
        score.num("inbound", s.inbound);
        score.num("outbound", s.outbound);
        score.close();
    }
    if !e.rules.is_empty() {
        let out = h.key("rules");
        out.push('[');
        for (at, r) in e.rules.iter().enumerate() {
            if at > 0 {
                out.push(',');
            }
            let mut rule = Object::open(out);
            rule.decimal_str("id", r.id.into());
            rule.opt_str("msg", r.msg.as_deref());
            if !r.tags.is_empty() {
                push_tags(rule.key("tags"), &r.tags);
            }
            if let Some(severity) = r.severity {
                rule.num("severity", severity);
            }
            rule.opt_str("matched_var", r.matched_var.as_deref());
            rule.opt_str("matched_data", r.matched_data.as_deref());
            rule.close();
        }
        out.push(']');
    }
    if let Some(c) = &e.credentials {
        let mut credentials = h.object("credentials");
        credentials.opt_str("username", c.username.as_deref());
        credentials.opt_str("password", c.password.as_deref());
        credentials.close();
    }
    h.bool("flagged", e.flagged);
    if !e.truncated.is_empty() {
        h.strs("truncated", e.truncated.iter().map(String::as_str));
    }
    if !e.headers.is_empty() {
        let mut request = h.object("request");
        headers(&mut request, &e.headers);
        request.close();
    }
    h.close();
}

/// Request headers as one object. Names are lowercased (HTTP names are case-insensitive and
/// HTTP/2 sends them lowercase anyway) and repeats joined with ", " as RFC 9110 allows, since
/// a JSON object with a repeated key is rejected by Elasticsearch. Keys come out sorted.
///
/// Names are attacker-chosen: map `honeytrap.request.headers` as `flattened` in the index
/// template, or random names will explode the mapping.
fn headers(request: &mut Object<'_>, headers: &[(String, String)]) {
    // Sorting (name, arrival) pairs puts repeats next to each other in arrival order; most
    // names need no lowercasing and are borrowed.
    let mut sorted: Vec<(Cow<'_, str>, &str)> = headers
        .iter()
        .map(|(name, value)| {
            let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name.as_str())
            };
            (name, value.as_str())
        })
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let out = request.key("headers");
    out.push('{');
    let mut previous: Option<&str> = None;
    for (name, value) in &sorted {
        let name: &str = name;
        if previous == Some(name) {
            // A repeat: close the value up to here with ", " and carry on inside it.
            out.pop();
            out.push_str(", ");
        } else {
            if previous.is_some() {
                out.push(',');
            }
            push_str_value(out, name);
            out.push_str(":\"");
        }
        push_escaped(out, value);
        out.push('"');
        previous = Some(name);
    }
    out.push('}');
}
#[cfg(test)]
mod tests {
    use super::super::tests::full_event;
    use super::super::{Attribution, Kind, Observer, RuleMatch};
    use super::*;
    use serde_json::{json, Value};
    use std::sync::Arc;
    use std::time::Duration;

    fn doc(e: &Event) -> Value {
        serde_json::from_str(&to_json(e, &e.id.to_string())).unwrap()
    }

    fn walk(v: &Value, path: &str, visit: &mut impl FnMut(&str, &Value)) {
        visit(path, v);
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    walk(child, &format!("{path}.{k}"), visit);
                }
            }
            Value::Array(items) => items.iter().for_each(|child| walk(child, path, visit)),
            _ => {}
        }
    }

    fn assert_same_as_reference(e: &Event) {
        let id = e.id.to_string();
        assert_eq!(to_json(e, &id), super::super::doc_reference::to_json(e));
    }

    #[test]
    fn documents_are_byte_identical_to_the_serde_reference() {
        assert_same_as_reference(&full_event());
        for kind in [Kind::Decoy, Kind::Bait, Kind::Rules] {
            assert_same_as_reference(&Event::new(kind, Arc::new(Observer::new("s"))));
        }
        // Only a served-to address, and one equal to the source: `related.ip` either way.
        let mut e = full_event();
        e.source = None;
        assert_same_as_reference(&e);
        e.source = Some("[::ffff:198.51.100.9]:1".parse().unwrap());
        assert_same_as_reference(&e);
        // Everything optional inside the optional objects left out.
        e.credentials = Some(Default::default());
        e.attribution = Some(Attribution {
            served_to_ip: None,
            served_at: None,
            token_id: None,
            valid: false,
        });
        e.body = None;
        e.rules = vec![RuleMatch {
            id: 1,
            ..RuleMatch::default()
        }];
        e.url = None;
        e.techniques.clear();
        assert_same_as_reference(&e);
    }

    #[test]
    fn attacker_text_is_escaped_as_serde_json_escapes_it() {
        let limits = super::super::Limits::default();
        // Every ASCII control, quotes and backslashes, DEL and non-ASCII, at every offset of a
        // block so that the fast skip and the byte loop both meet them.
        let mut nasty: Vec<u8> = (0u8..0x20).collect();
        nasty.extend_from_slice(b"\"\\\x7f/\xc3\xa9\xe2\x82\xac plain text to fill a block");
        for shift in 0..20 {
            let mut text = b"x".repeat(shift);
            text.extend_from_slice(&nasty);
            let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("s\"\n")));
            e.set_url(&text);
            e.set_user_agent(&text, &limits);
            e.set_body(&text, &limits);
            e.add_header(&text, &text, &limits);
            e.add_header(b"X-\"B", &text, &limits);
            e.add_header(b"x-\"b", b"again", &limits);
            e.tags = vec![String::from_utf8_lossy(&text).into_owned()];
            assert_same_as_reference(&e);
            // One byte to escape, last, in strings shorter and longer than a word.
            let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("s")));
            for last in [b'"', b'\\', b'\n', 0x01, 0x1f] {
                let mut text = b"y".repeat(shift);
                text.push(last);
                e.tags.push(String::from_utf8_lossy(&text).into_owned());
            }
            assert_same_as_reference(&e);
        }
    }

    #[test]
    fn random_attacker_text_is_written_as_the_reference_writes_it() {
        let limits = super::super::Limits::default();
        let mut rng = fastrand::Rng::with_seed(0x6865_7964);
        // Mostly plain bytes, with the ones that need escaping, and UTF-8 sequences whole and
        // cut, at random offsets and lengths (around the 8-byte words the writer skips by).
        let alphabet: Vec<u8> =
            b"aZ09 -/<>=&%\"\\\x00\x01\x08\x0c\x1f\x7f\x80\xc3\xa9\xe2\x82\xac\xff".to_vec();
        let text = |rng: &mut fastrand::Rng| -> Vec<u8> {
            let len = rng.usize(0..40);
            (0..len)
                .map(|_| {
                    if rng.u8(..) < 160 {
                        b'a' + rng.u8(0..26)
                    } else {
                        alphabet[rng.usize(0..alphabet.len())]
                    }
                })
                .collect()
        };
        for _ in 0..3000 {
            let mut e = Event::new(Kind::Rules, Arc::new(Observer::new("s")));
            e.set_url(&text(&mut rng));
            e.set_user_agent(&text(&mut rng), &limits);
            e.set_body(&text(&mut rng), &limits);
            for _ in 0..rng.usize(0..4) {
                e.add_header(&text(&mut rng), &text(&mut rng), &limits);
            }
            e.tags = (0..rng.usize(0..3))
                .map(|_| String::from_utf8_lossy(&text(&mut rng)).into_owned())
                .collect();
            e.rules = (0..rng.usize(0..3))
                .map(|_| {
                    let id = rng.u32(..);
                    let mut lossy = || String::from_utf8_lossy(&text(&mut rng)).into_owned();
                    RuleMatch {
                        id,
                        msg: Some(lossy()),
                        tags: vec![lossy(), lossy()].into(),
                        severity: Some(2),
                        matched_var: Some(lossy()),
                        matched_data: Some(lossy()),
                    }
                })
                .collect();
            assert_same_as_reference(&e);
        }
    }

    /// Rules' tag lists are shared `Arc`s whose JSON is remembered by address: more lists
    /// than remembered slots, met in random order (so that they evict each other), are each
    /// written as their own, and so is a list made after one was dropped (it may get the
    /// freed address).
    #[test]
    fn shared_tag_lists_are_written_as_their_own() {
        let mut rng = fastrand::Rng::with_seed(0x7461_6773);
        let lists: Vec<Arc<[String]>> = (0..3 * TAG_ARRAY_SLOTS)
            .map(|n| (0..1 + n % 4).map(|t| format!("tag-{n}-{t}")).collect())
            .collect();
        let event = |tags: &Arc<[String]>| {
            let mut e = Event::new(Kind::Rules, Arc::new(Observer::new("s")));
            e.rules = vec![RuleMatch {
                id: 1,
                tags: Arc::clone(tags),
                ..RuleMatch::default()
            }];
            e
        };
        for _ in 0..2000 {
            assert_same_as_reference(&event(&lists[rng.usize(..lists.len())]));
        }
        for n in 0..200 {
            let list: Arc<[String]> = vec![format!("fresh-{n}")].into();
            assert_same_as_reference(&event(&list));
        }
    }

    #[test]
    fn the_word_test_agrees_with_the_byte_test() {
        // Each byte value in each position, among neighbours that need no escaping (high
        // bytes included, as the subtraction's borrows are what could fool the word test).
        for filler in [b'a', 0x7f, 0x80, 0xff] {
            for b in 0..=255u8 {
                for at in 0..8 {
                    let mut word = [filler; 8];
                    word[at] = b;
                    assert_eq!(
                        word_needs_escape(u64::from_le_bytes(word)),
                        byte_needs_escape(b),
                        "byte {b:#04x} at {at} among {filler:#04x}"
                    );
                }
            }
        }
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            403,
            65_535,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = String::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn repeated_headers_merge_like_the_reference_whatever_their_order() {
        let limits = super::super::Limits::default();
        let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("s")));
        for (name, value) in [
            ("B", "1"),
            ("a", "2"),
            ("b", "3"),
            ("A-", "4"),
            ("A", "5"),
            ("b", "6"),
            ("", "7"),
        ] {
            e.add_header(name.as_bytes(), value.as_bytes(), &limits);
        }
        assert_same_as_reference(&e);
        assert_eq!(
            doc(&e)["honeytrap"]["request"]["headers"],
            json!({ "": "7", "a": "2, 5", "a-": "4", "b": "1, 3, 6" })
        );
    }

    #[test]
    fn dates_are_written_as_the_time_crate_writes_them() {
        let epoch = SystemTime::UNIX_EPOCH;
        let mut times = vec![
            epoch,
            epoch - Duration::from_millis(1),
            epoch - Duration::from_secs(86_400 * 400),
            // The last millisecond before year 10000.
            epoch + Duration::from_millis(253_402_300_799_999),
        ];
        // Every day from 1970 to 2500, at a time of day and millisecond that move along, so
        // that leap days and century rules (2000 is leap, 2100 is not) are all crossed.
        for day in 0..(530 * 366) {
            let secs = day * 86_400 + (day * 7_919) % 86_400;
            times.push(
                epoch + Duration::from_secs(secs) + Duration::from_micros(day * 997 % 1_000_000),
            );
        }
        for t in times {
            assert_eq!(rfc3339_millis(t), rfc3339_millis_by_time(t), "{t:?}");
        }
        // From year 10000 on, which the time crate cannot take, a stand-in instead of a panic.
        let far = epoch + Duration::from_secs(253_402_300_800);
        assert_eq!(rfc3339_millis(far), UNWRITABLE_DATE);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(rfc3339_millis(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn minimal_event_has_constants_and_nothing_absent() {
        let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("sensor-1")));
        e.timestamp = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000);
        let d = doc(&e);
        let expected = json!({
            "@timestamp": "1970-01-01T00:00:01.000Z",
            "ecs": { "version": "9.4.0" },
            "event": {
                "kind": "alert",
                "category": ["intrusion_detection", "web"],
                "type": ["access"],
                "action": "decoy-hit",
                "severity": Kind::Decoy.default_severity(),
                "id": e.id.to_string(),
                "dataset": "honeytrap.events",
                "module": "honeytrap",
            },
            "observer": {
                "name": "sensor-1",
                "type": "honeypot",
                "vendor": "ngx-honeytrap",
                "product": "ngx-honeytrap",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "honeytrap": { "kind": "decoy", "flagged": false },
        });
        assert_eq!(d, expected);
    }

    #[test]
    fn full_event_maps_every_field() {
        let e = full_event();
        let d = doc(&e);
        assert_eq!(d["event"]["type"], json!(["denied"]));
        assert_eq!(d["event"]["action"], "bait-touched");
        assert_eq!(d["event"]["severity"], 2);
        assert_eq!(d["source"], json!({ "ip": "203.0.113.7", "port": 51234 }));
        assert_eq!(
            d["destination"],
            json!({ "ip": "2001:db8::1", "port": 443 })
        );
        assert_eq!(
            d["url"],
            json!({
                "original": "/admin/login.php?user=root&x=\u{FFFD}",
                "path": "/admin/login.php",
                "query": "user=root&x=\u{FFFD}",
                "domain": "shop.example",
            })
        );
        assert_eq!(d["http"]["request"]["method"], "POST");
        assert_eq!(
            d["http"]["request"]["body"],
            json!({ "content": "user=root&pass=h", "bytes": 36 })
        );
        assert_eq!(d["http"]["version"], "1.1");
        assert_eq!(d["http"]["response"]["status_code"], 403);
        assert_eq!(d["user_agent"]["original"], "sqlmap/1.8.3");
        assert_eq!(d["rule"]["id"], "942100");
        assert_eq!(
            d["threat"],
            json!({
                "framework": "MITRE ATT&CK",
                "technique": { "id": ["T1190"], "name": ["Exploit Public-Facing Application"] },
                "tactic": { "id": ["TA0001"], "name": ["Initial Access"] },
            })
        );
        assert_eq!(d["transaction"]["id"], "5f2c0b3e9a4d4e1f8a7b6c5d4e3f2a1b");
        assert_eq!(d["related"]["ip"], json!(["203.0.113.7", "198.51.100.9"]));
        assert_eq!(d["tags"], json!(["honeytrap", "bait"]));
        let h = &d["honeytrap"];
        assert_eq!(h["kind"], "bait");
        assert_eq!(
            h["bait"],
            json!({ "type": "credential", "name": "wp-admin", "token": "tok-1" })
        );
        assert_eq!(
            h["attribution"],
            json!({
                "served_to_ip": "198.51.100.9",
                "served_at": "2023-11-14T22:13:20.123Z",
                "token_id": "t-42",
                "valid": true,
            })
        );
        assert_eq!(h["anomaly_score"], json!({ "inbound": 10, "outbound": 0 }));
        assert_eq!(h["rules"][0]["matched_var"], "ARGS:user");
        assert_eq!(h["rules"][0]["tags"], json!(["attack-sqli", "OWASP_CRS"]));
        assert_eq!(
            h["credentials"],
            json!({ "username": "root", "password": "hunter2" })
        );
        assert_eq!(h["flagged"], true);
        assert_eq!(
            h["request"]["headers"],
            json!({ "host": "shop.example", "x-forwarded-for": "10.0.0.1, 10.0.0.2" })
        );
        assert_eq!(
            h["truncated"],
            json!([
                "url.domain",
                "user_agent.original",
                "http.request.body.content",
                "honeytrap.request.headers.host",
            ])
        );
    }

    #[test]
    fn no_nulls_and_no_empty_containers() {
        for e in [
            full_event(),
            Event::new(Kind::Rules, Arc::new(Observer::new("s"))),
        ] {
            walk(&doc(&e), "", &mut |path, v| {
                assert!(!v.is_null(), "null at {path}");
                if let Value::Object(m) = v {
                    assert!(!m.is_empty(), "empty object at {path}");
                }
                if let Value::Array(a) = v {
                    assert!(!a.is_empty(), "empty array at {path}");
                }
            });
        }
    }

    #[test]
    fn mapped_ipv4_addresses_are_written_as_ipv4() {
        let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("s")));
        e.source = Some("[::ffff:192.0.2.1]:1234".parse().unwrap());
        let d = doc(&e);
        assert_eq!(d["source"]["ip"], "192.0.2.1");
        assert_eq!(d["related"]["ip"], json!(["192.0.2.1"]));
    }

    #[test]
    fn event_type_follows_kind_unless_denied() {
        let observer = Arc::new(Observer::new("s"));
        let mut rules = Event::new(Kind::Rules, observer);
        assert_eq!(doc(&rules)["event"]["type"], json!(["info"]));
        rules.denied = true;
        assert_eq!(doc(&rules)["event"]["type"], json!(["denied"]));
    }

    #[test]
    fn host_without_url_still_gives_a_domain() {
        let mut e = Event::new(Kind::Decoy, Arc::new(Observer::new("s")));
        e.set_host(b"[2001:db8::2]:8443", &super::super::Limits::default());
        assert_eq!(doc(&e)["url"], json!({ "domain": "[2001:db8::2]" }));
    }
}
