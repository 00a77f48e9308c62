//! Blocking MISP REST client (ureq), used on the shipper thread only.
//!
//! Every request carries `Authorization: <key>`, `Accept: application/json` and
//! `Content-Type: application/json`, and has a timeout. Answers are sorted into what the sink
//! must do next: retry later (MISP down, overloaded), stop and keep the records (the key is
//! refused), or give up on that one item (MISP refuses its content; retrying cannot help).

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::aggregate::{AttributeSpec, EventPlan, KnownEvent};
use super::ids::Uuid;
use super::settings::{ApiKey, MispSettings, ThreatLevel};

/// A daily event with every attribute can be large; beyond this something is wrong.
const MAX_BODY: u64 = 64 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MispError {
    /// No answer: connection refused or reset, DNS, TLS, timeout.
    Unreachable(String),
    /// 5xx, 429 or 408: MISP is there but cannot take the request now.
    Unavailable { status: u16, message: String },
    /// 401, or 403 without validation errors: the API key is wrong, disabled or lacks rights.
    Auth { status: u16, message: String },
    /// MISP refused this request's content (validation, unknown id): retrying cannot help.
    Rejected { status: u16, message: String },
    /// A success status with a body that is not what MISP sends.
    BadResponse(String),
}

impl MispError {
    /// Whether the records concerned must be kept for a later attempt.
    pub fn keeps_records(&self) -> bool {
        !matches!(self, MispError::Rejected { .. })
    }
}

impl fmt::Display for MispError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MispError::Unreachable(why) => write!(f, "MISP unreachable: {why}"),
            MispError::Unavailable { status, message } => write!(f, "MISP unavailable (HTTP {status}): {message}"),
            MispError::Auth { status, message } => write!(
                f,
                "MISP refused the API key (HTTP {status}): {message}; check key_file and the user's role"
            ),
            MispError::Rejected { status, message } => write!(f, "MISP refused the request (HTTP {status}): {message}"),
            MispError::BadResponse(why) => write!(f, "unexpected answer from MISP: {why}"),
        }
    }
}

/// Outcome of adding one attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    Created,
    /// MISP already has it (same UUID, or same type and value in the event).
    AlreadyThere,
}

pub struct MispClient {
    base: String,
    key: ApiKey,
    agent: ureq::Agent,
    timeout: Duration,
}

impl fmt::Debug for MispClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MispClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One request's raw answer.
struct Answer {
    status: u16,
    body: String,
}

impl MispClient {
    pub fn new(settings: &MispSettings) -> MispClient {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &settings.ca {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&ca.0));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // Status codes are sorted below; as errors they would lose the body.
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .tls_config(tls.build())
            .user_agent(concat!("ngx-honeytrap/", env!("CARGO_PKG_VERSION")))
            .max_redirects(0)
            .build()
            .into();
        MispClient {
            base: settings.url.clone(),
            key: settings.key.clone(),
            agent,
            timeout: settings.timeout,
        }
    }

    fn timeout_until(&self, deadline: Option<Instant>) -> Duration {
        match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(self.timeout)
                .max(Duration::from_millis(1)),
            None => self.timeout,
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        deadline: Option<Instant>,
    ) -> Result<Answer, MispError> {
        let url = format!("{}{}", self.base, path);
        let timeout = Some(self.timeout_until(deadline));
        let result = match method {
            "GET" => self
                .agent
                .get(&url)
                .config()
                .timeout_global(timeout)
                .build()
                .header("Authorization", self.key.expose())
                .header("Accept", "application/json")
                .header("Content-Type", "application/json")
                .call(),
            _ => {
                let builder = if method == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                let builder = builder
                    .config()
                    .timeout_global(timeout)
                    .build()
                    .header("Authorization", self.key.expose())
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json");
                match body {
                    Some(b) => builder.send(b.to_string().as_str()),
                    None => builder.send_empty(),
                }
            }
        };
        let mut response = result.map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| transport_error(&e))?;
        Ok(Answer { status, body })
    }

    /// Sorts a non-success answer.
    fn failure(&self, op: &str, answer: &Answer) -> MispError {
        let parsed: Option<Value> = serde_json::from_str(&answer.body).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| {
                let msg = v
                    .get("message")
                    .or_else(|| v.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let errors = v
                    .get("errors")
                    .filter(|e| !e.is_null())
                    .map(|e| e.to_string());
                match (msg, errors) {
                    (Some(m), Some(e)) => Some(format!("{m} {e}")),
                    (m, e) => m.or(e),
                }
            })
            .unwrap_or_else(|| snippet(&answer.body));
        // A proxy or a debug page might echo the request's headers back.
        let message = message.replace(self.key.expose(), "<redacted>");
        let message = format!("{op}: {}", cut(&message, 300));
        let has_errors = parsed
            .as_ref()
            .and_then(|v| v.get("errors"))
            .is_some_and(|e| !e.is_null());
        match answer.status {
            408 | 429 | 500..=599 => MispError::Unavailable {
                status: answer.status,
                message,
            },
            401 => MispError::Auth {
                status: 401,
                message,
            },
            // MISP answers 403 both for a bad key and for validation failures; the latter
            // carry an `errors` member.
            403 if !has_errors => MispError::Auth {
                status: 403,
                message,
            },
            status => MispError::Rejected { status, message },
        }
    }

    fn json_ok(&self, op: &str, answer: &Answer) -> Result<Value, MispError> {
        if !(200..300).contains(&answer.status) {
            return Err(self.failure(op, answer));
        }
        serde_json::from_str(&answer.body).map_err(|_| {
            MispError::BadResponse(format!("{op}: not JSON: {}", snippet(&answer.body)))
        })
    }

    /// `GET /events/view/<uuid>`; `None` when MISP has no such event.
    pub fn view_event(
        &self,
        uuid: &Uuid,
        deadline: Option<Instant>,
    ) -> Result<Option<KnownEvent>, MispError> {
        let answer = self.request("GET", &format!("/events/view/{uuid}"), None, deadline)?;
        if answer.status == 404 {
            return Ok(None);
        }
        let v = self.json_ok("view event", &answer)?;
        known_event(&v).map(Some)
    }

    /// `POST /events/add`.
    pub fn add_event(
        &self,
        body: &Value,
        deadline: Option<Instant>,
    ) -> Result<KnownEvent, MispError> {
        let answer = self.request("POST", "/events/add", Some(body), deadline)?;
        let v = self.json_ok("add event", &answer)?;
        known_event(&v)
    }

    /// `PUT /events/edit/<id>`: raise the threat level, attach tags.
    pub fn edit_event(
        &self,
        id: &str,
        body: &Value,
        deadline: Option<Instant>,
    ) -> Result<(), MispError> {
        let answer = self.request("PUT", &format!("/events/edit/{id}"), Some(body), deadline)?;
        self.json_ok("edit event", &answer).map(drop)
    }

    /// `POST /attributes/add/<event id>`.
    pub fn add_attribute(
        &self,
        event_id: &str,
        spec: &AttributeSpec,
        deadline: Option<Instant>,
    ) -> Result<Added, MispError> {
        let answer = self.request(
            "POST",
            &format!("/attributes/add/{event_id}"),
            Some(&attribute_body(spec)),
            deadline,
        )?;
        match self.json_ok("add attribute", &answer) {
            Ok(v) if v.get("Attribute").is_some() => Ok(Added::Created),
            Ok(_) => Err(MispError::BadResponse(format!(
                "add attribute: no Attribute in {}",
                snippet(&answer.body)
            ))),
            Err(MispError::Rejected { message, .. }) if is_duplicate(&message) => {
                Ok(Added::AlreadyThere)
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /sightings/add`: one sighting of each value, restricted to the event.
    pub fn add_sightings(
        &self,
        event_id: &str,
        values: &[&str],
        timestamp: i64,
        deadline: Option<Instant>,
    ) -> Result<(), MispError> {
        let body = json!({
            "values": values,
            "timestamp": timestamp.max(0).to_string(),
            "filters": {"eventid": event_id},
        });
        let answer = self.request("POST", "/sightings/add", Some(&body), deadline)?;
        self.json_ok("add sightings", &answer).map(drop)
    }

    /// `POST /events/publish/<id>` (no e-mail alert; that is `/events/alert`).
    pub fn publish(&self, id: &str, deadline: Option<Instant>) -> Result<(), MispError> {
        let answer = self.request("POST", &format!("/events/publish/{id}"), None, deadline)?;
        self.json_ok("publish event", &answer).map(drop)
    }
}

fn is_duplicate(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("already exists") || m.contains("similar attribute")
}

fn transport_error(e: &ureq::Error) -> MispError {
    match e {
        ureq::Error::Timeout(which) => MispError::Unreachable(format!("timed out ({which:?})")),
        other => MispError::Unreachable(other.to_string()),
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn snippet(body: &str) -> String {
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(flat.trim(), 200)
}

/// MISP sends ids as strings; be lenient with numbers.
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads `{"Event": {...}}` (view, add, edit answers) into what the sink tracks.
pub fn known_event(v: &Value) -> Result<KnownEvent, MispError> {
    let event = v.get("Event").unwrap_or(v);
    let id = id_text(event.get("id")).ok_or_else(|| {
        MispError::BadResponse(format!("no Event.id in {}", snippet(&v.to_string())))
    })?;
    let threat_level = event
        .get("threat_level_id")
        .and_then(|t| id_text(Some(t)))
        .and_then(|t| ThreatLevel::from_id(&t))
        .unwrap_or(ThreatLevel::Undefined);
    let mut known = KnownEvent::new(id, threat_level);
    for tag in event
        .get("Tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = tag.get("name").and_then(Value::as_str) {
            known.tags.insert(name.to_string());
        }
    }
    for attr in event
        .get("Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if attr.get("deleted").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(uuid) = attr
            .get("uuid")
            .and_then(Value::as_str)
            .and_then(Uuid::parse)
        {
            known.attributes.insert(uuid);
        }
        if let (Some(t), Some(val)) = (
            attr.get("type").and_then(Value::as_str),
            attr.get("value").and_then(Value::as_str),
        ) {
            known.values.insert((t.to_string(), val.to_string()));
        }
    }
    Ok(known)
}

/// Body of `POST /events/add`.
pub fn event_body(plan: &EventPlan, settings: &MispSettings) -> Value {
    json!({
        "uuid": plan.uuid.to_string(),
        "info": plan.info,
        "date": plan.date,
        "distribution": settings.distribution.to_string(),
        "threat_level_id": plan.threat_level(settings.threat_level).id(),
        "analysis": settings.analysis.to_string(),
        "published": false,
        "Tag": tag_list(&plan.tags),
    })
}

/// Body of `PUT /events/edit/<id>`: only what changes, so that an analyst's edits stay.
pub fn edit_body(threat_level: Option<ThreatLevel>, new_tags: &[String]) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(level) = threat_level {
        body.insert("threat_level_id".into(), level.id().into());
    }
    if !new_tags.is_empty() {
        body.insert("Tag".into(), tag_list(new_tags));
    }
    Value::Object(body)
}

fn tag_list(tags: &[String]) -> Value {
    Value::Array(tags.iter().map(|t| json!({"name": t})).collect())
}

/// Body of `POST /attributes/add/<event id>`.
pub fn attribute_body(spec: &AttributeSpec) -> Value {
    json!({
        "uuid": spec.uuid.to_string(),
        "type": spec.kind,
        "category": spec.category,
        "value": spec.value,
        "to_ids": spec.to_ids,
        "comment": spec.comment,
        // Inherit the event's distribution.
        "distribution": "5",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_for(status: u16, body: &str) -> (MispClient, Answer) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        std::fs::write(&key, "abc").unwrap();
        let s =
            MispSettings::parse(&["http://127.0.0.1:9", &format!("key_file={}", key.display())])
                .unwrap();
        (
            MispClient::new(&s),
            Answer {
                status,
                body: body.to_string(),
            },
        )
    }

    #[test]
    fn failures_are_sorted() {
        let cases = [
            (500, "oops", "unavailable"),
            (503, "", "unavailable"),
            (429, "{}", "unavailable"),
            (401, "{}", "auth"),
            (
                403,
                r#"{"name":"Authentication failed.","message":"Authentication failed.","url":"/events/add"}"#,
                "auth",
            ),
            (
                403,
                r#"{"name":"Could not add Attribute","message":"Could not add Attribute","url":"/attributes/add","errors":{"value":["A similar attribute already exists for this event."]}}"#,
                "rejected",
            ),
            (
                404,
                r#"{"name":"Invalid event.","message":"Invalid event.","url":"/x"}"#,
                "rejected",
            ),
            (400, "<html>bad</html>", "rejected"),
        ];
        for (status, body, want) in cases {
            let (c, a) = client_for(status, body);
            let got = match c.failure("op", &a) {
                MispError::Unavailable { .. } => "unavailable",
                MispError::Auth { .. } => "auth",
                MispError::Rejected { .. } => "rejected",
                other => panic!("{other:?}"),
            };
            assert_eq!(got, want, "{status} {body}");
        }
        let (c, a) = client_for(
            403,
            r#"{"message":"Could not add Attribute","errors":{"value":["A similar attribute already exists for this event."]}}"#,
        );
        let MispError::Rejected { message, .. } = c.failure("add attribute", &a) else {
            panic!()
        };
        assert!(is_duplicate(&message), "{message}");
        assert!(!MispError::Rejected {
            status: 403,
            message: "x".into()
        }
        .keeps_records());
        assert!(MispError::Auth {
            status: 403,
            message: "x".into()
        }
        .keeps_records());
        assert!(MispError::Unreachable("x".into()).keeps_records());
    }

    #[test]
    fn messages_are_short_and_single_line() {
        let (c, a) = client_for(502, &format!("<html>\n{}\n</html>", "x".repeat(5000)));
        let e = c.failure("add event", &a).to_string();
        assert!(e.len() < 400, "{}", e.len());
        assert!(!e.contains('\n'));
        assert!(e.contains("HTTP 502"));
    }

    #[test]
    fn an_echoed_key_is_scrubbed_from_messages() {
        let (c, a) = client_for(502, "bad gateway; request had Authorization: abc");
        let e = c.failure("add event", &a).to_string();
        assert!(!e.contains("abc"), "{e}");
        assert!(e.contains("<redacted>"), "{e}");
    }

    #[test]
    fn debug_hides_the_key() {
        let (c, _) = client_for(200, "");
        let d = format!("{c:?}");
        assert!(!d.contains("abc"), "{d}");
    }

    #[test]
    fn reads_misp_events() {
        let v = json!({"Event": {
            "id": "12", "uuid": "5b1e6f3a-940d-4c27-8e31-2a7c48d60b95", "threat_level_id": "2",
            "Tag": [{"id": "1", "name": "tlp:green"}],
            "Attribute": [
                {"id": "1", "uuid": "5b1e6f3a-940d-5c27-8e31-2a7c48d60b95", "type": "ip-src", "value": "198.51.100.1"},
                {"id": "2", "uuid": "6b1e6f3a-940d-5c27-8e31-2a7c48d60b95", "type": "url", "value": "/gone", "deleted": true}
            ]
        }});
        let k = known_event(&v).unwrap();
        assert_eq!(k.id, "12");
        assert_eq!(k.threat_level, ThreatLevel::Medium);
        assert!(k.tags.contains("tlp:green"));
        assert_eq!(k.attributes.len(), 1);
        assert!(k
            .values
            .contains(&("ip-src".to_string(), "198.51.100.1".to_string())));
        assert!(
            known_event(&json!({"Event": {"id": 7}})).is_ok(),
            "numeric id"
        );
        assert!(matches!(
            known_event(&json!({"Event": {}})),
            Err(MispError::BadResponse(_))
        ));
    }

    #[test]
    fn edit_body_sends_only_changes() {
        assert_eq!(edit_body(None, &[]), json!({}));
        assert_eq!(
            edit_body(Some(ThreatLevel::High), &["rsit:test=\"test\"".to_string()]),
            json!({"threat_level_id": "1", "Tag": [{"name": "rsit:test=\"test\""}]})
        );
    }

    #[test]
    fn unreachable_is_an_error_not_a_panic() {
        // Port 9 (discard) on loopback: nothing listens there in the test environment.
        let (c, _) = client_for(200, "");
        let uuid = Uuid::v5(&super::super::ids::NAMESPACE, b"x");
        match c.view_event(&uuid, Some(Instant::now() + Duration::from_secs(2))) {
            Err(MispError::Unreachable(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}
