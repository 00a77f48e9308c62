//! The document as serde derives it from borrowed views of an [`Event`]: what `doc.rs` wrote
//! before it wrote JSON by hand, kept as the oracle its output must match byte for byte.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::text::{host_without_port, split_target};
use super::{AnomalyScore, Attribution, Bait, Credentials, Event, MitreRef, RuleMatch, RuleRef};

use super::doc::{
    rfc3339_millis_by_time as rfc3339_millis, CATEGORY, DATASET, ECS_VERSION, MODULE, PRODUCT,
};

pub fn to_json(event: &Event) -> String {
    serde_json::to_string(&Document::of(event)).expect("string keys only")
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    ecs: Ecs,
    event: EventFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<Url<'a>>,
    #[serde(skip_serializing_if = "Http::is_empty")]
    http: Http<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<UserAgent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a RuleRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat: Option<Threat<'a>>,
    observer: ObserverFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction: Option<Transaction<'a>>,
    #[serde(skip_serializing_if = "Related::is_empty")]
    related: Related,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    honeytrap: Honeytrap<'a>,
}

impl<'a> Document<'a> {
    fn of(e: &'a Event) -> Document<'a> {
        let (path, query) = match &e.url {
            Some(url) => {
                let (path, query) = split_target(url);
                (Some(path), query)
            }
            None => (None, None),
        };
        let domain = e.host.as_deref().map(host_without_port);
        let url = (e.url.is_some() || domain.is_some()).then_some(Url {
            original: e.url.as_deref(),
            path,
            query,
            domain,
        });
        let threat = (!e.techniques.is_empty() || !e.tactics.is_empty()).then_some(Threat {
            framework: "MITRE ATT&CK",
            technique: IdsAndNames(&e.techniques),
            tactic: IdsAndNames(&e.tactics),
        });
        let event_type = if e.denied {
            "denied"
        } else {
            match e.kind {
                super::Kind::Decoy | super::Kind::Bait => "access",
                super::Kind::Rules => "info",
            }
        };
        Document {
            timestamp: rfc3339_millis(e.timestamp),
            ecs: Ecs {
                version: ECS_VERSION,
            },
            event: EventFields {
                kind: "alert",
                category: CATEGORY,
                r#type: [event_type],
                action: e.kind.action(),
                severity: e.severity,
                id: e.id.to_string(),
                dataset: DATASET,
                module: MODULE,
            },
            source: e.source.map(Endpoint::from),
            destination: e.destination.map(Endpoint::from),
            url,
            http: Http {
                request: HttpRequest {
                    method: e.method.as_deref(),
                    body: (e.body.is_some() || e.body_bytes.is_some()).then_some(Body {
                        content: e.body.as_deref(),
                        bytes: e.body_bytes,
                    }),
                },
                version: e.http_version.as_deref(),
                response: e.status_code.map(|status_code| Response { status_code }),
            },
            user_agent: e
                .user_agent
                .as_deref()
                .map(|original| UserAgent { original }),
            rule: e.rule.as_ref(),
            threat,
            observer: ObserverFields {
                name: &e.observer.name,
                r#type: "honeypot",
                vendor: &e.observer.vendor,
                product: PRODUCT,
                version: &e.observer.version,
            },
            transaction: e.transaction_id.as_deref().map(|id| Transaction { id }),
            related: Related::of(e),
            tags: &e.tags,
            honeytrap: Honeytrap {
                kind: e.kind.as_str(),
                bait: e.bait.as_ref(),
                attribution: e.attribution.as_ref().map(AttributionFields::from),
                anomaly_score: e.anomaly_score.as_ref(),
                rules: &e.rules,
                credentials: e.credentials.as_ref(),
                flagged: e.flagged,
                truncated: &e.truncated,
                request: RequestFields {
                    headers: Headers(&e.headers),
                },
            },
        }
    }
}

#[derive(Serialize)]
struct Ecs {
    version: &'static str,
}

#[derive(Serialize)]
struct EventFields {
    kind: &'static str,
    category: [&'static str; 2],
    r#type: [&'static str; 1],
    action: &'static str,
    severity: u8,
    id: String,
    dataset: &'static str,
    module: &'static str,
}

#[derive(Serialize)]
struct Endpoint {
    ip: IpAddr,
    port: u16,
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Endpoint {
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; ECS wants a.b.c.d.
        Endpoint {
            ip: addr.ip().to_canonical(),
            port: addr.port(),
        }
    }
}

#[derive(Serialize)]
struct Url<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    original: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
}

#[derive(Serialize)]
struct Http<'a> {
    #[serde(skip_serializing_if = "HttpRequest::is_empty")]
    request: HttpRequest<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Response>,
}

impl Http<'_> {
    fn is_empty(&self) -> bool {
        self.request.is_empty() && self.version.is_none() && self.response.is_none()
    }
}

#[derive(Serialize)]
struct HttpRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Body<'a>>,
}

impl HttpRequest<'_> {
    fn is_empty(&self) -> bool {
        self.method.is_none() && self.body.is_none()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
}

#[derive(Serialize)]
struct Response {
    status_code: u16,
}

#[derive(Serialize)]
struct UserAgent<'a> {
    original: &'a str,
}

#[derive(Serialize)]
struct Threat<'a> {
    framework: &'static str,
    #[serde(skip_serializing_if = "IdsAndNames::is_empty")]
    technique: IdsAndNames<'a>,
    #[serde(skip_serializing_if = "IdsAndNames::is_empty")]
    tactic: IdsAndNames<'a>,
}

/// ECS keeps technique ids and names in two parallel arrays.
struct IdsAndNames<'a>(&'a [MitreRef]);

impl IdsAndNames<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for IdsAndNames<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry(
            "id",
            &self.0.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        )?;
        map.serialize_entry(
            "name",
            &self.0.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        )?;
        map.end()
    }
}

#[derive(Serialize)]
struct ObserverFields<'a> {
    name: &'a str,
    r#type: &'static str,
    vendor: &'a str,
    product: &'static str,
    version: &'a str,
}

#[derive(Serialize)]
struct Transaction<'a> {
    id: &'a str,
}

/// `related.ip`: the attacker-side addresses, to pivot on (not the sensor's own address).
#[derive(Serialize)]
struct Related {
    ip: Vec<IpAddr>,
}

impl Related {
    fn of(e: &Event) -> Related {
        let mut ip = Vec::with_capacity(2);
        let candidates = [
            e.source.map(|s| s.ip().to_canonical()),
            e.attribution
                .as_ref()
                .and_then(|a| a.served_to_ip)
                .map(|ip| ip.to_canonical()),
        ];
        for addr in candidates.into_iter().flatten() {
            if !ip.contains(&addr) {
                ip.push(addr);
            }
        }
        Related { ip }
    }

    fn is_empty(&self) -> bool {
        self.ip.is_empty()
    }
}

#[derive(Serialize)]
struct Honeytrap<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bait: Option<&'a Bait>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribution: Option<AttributionFields<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anomaly_score: Option<&'a AnomalyScore>,
    #[serde(skip_serializing_if = "<[RuleMatch]>::is_empty")]
    rules: &'a [RuleMatch],
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<&'a Credentials>,
    flagged: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    truncated: &'a [String],
    #[serde(skip_serializing_if = "RequestFields::is_empty")]
    request: RequestFields<'a>,
}

#[derive(Serialize)]
struct AttributionFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    served_to_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    served_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<&'a str>,
    valid: bool,
}

impl<'a> From<&'a Attribution> for AttributionFields<'a> {
    fn from(a: &'a Attribution) -> AttributionFields<'a> {
        AttributionFields {
            served_to_ip: a.served_to_ip.map(|ip| ip.to_canonical()),
            served_at: a.served_at.map(rfc3339_millis),
            token_id: a.token_id.as_deref(),
            valid: a.valid,
        }
    }
}

#[derive(Serialize)]
struct RequestFields<'a> {
    headers: Headers<'a>,
}

impl RequestFields<'_> {
    fn is_empty(&self) -> bool {
        self.headers.0.is_empty()
    }
}

/// Request headers as one object. Names are lowercased (HTTP names are case-insensitive and
/// HTTP/2 sends them lowercase anyway) and repeats joined with ", " as RFC 9110 allows, since
/// a JSON object with a repeated key is rejected by Elasticsearch.
///
/// Names are attacker-chosen: map `honeytrap.request.headers` as `flattened` in the index
/// template, or random names will explode the mapping.
struct Headers<'a>(&'a [(String, String)]);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut merged: BTreeMap<String, Cow<'_, str>> = BTreeMap::new();
        for (name, value) in self.0 {
            match merged.entry(name.to_ascii_lowercase()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(Cow::Borrowed(value));
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    let joined = slot.get_mut().to_mut();
                    joined.push_str(", ");
                    joined.push_str(value);
                }
            }
        }
        let mut map = serializer.serialize_map(Some(merged.len()))?;
        for (name, value) in &merged {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}
