//! Checks every field an event emits against the ECS field list in `../shared/ecs/ecs_flat.yml`:
//! either ECS defines it with a compatible type (and, where ECS lists allowed values, one of
//! them), or it lives under `honeytrap.`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::tests::full_event;
use super::{Event, Kind, Observer};

#[derive(Deserialize)]
struct FieldDef {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    normalize: Vec<String>,
    #[serde(default)]
    allowed_values: Vec<AllowedValue>,
}

#[derive(Deserialize)]
struct AllowedValue {
    name: String,
}

fn ecs_fields() -> Option<HashMap<String, FieldDef>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ecs/ecs_flat.yml");
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!(
                "SKIPPED: ECS field list {} not readable ({e}); the ECS check did not run",
                path.display()
            );
            return None;
        }
    };
    Some(serde_yaml::from_reader(std::io::BufReader::new(file)).expect("ecs_flat.yml parses"))
}

/// Dotted name -> every scalar value found there; `is_array` when it came from a JSON array.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value, bool)>, in_array: bool) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, child, out, false);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|child| flatten(prefix, child, out, true)),
        scalar => out.push((prefix.to_owned(), scalar.clone(), in_array)),
    }
}

/// Why `value` does not fit ECS type `ecs_type`, if it does not.
fn type_mismatch(ecs_type: &str, value: &Value) -> Option<String> {
    let ok = match (ecs_type, value) {
        (
            "keyword" | "constant_keyword" | "text" | "wildcard" | "match_only_text",
            Value::String(_),
        ) => true,
        ("long" | "integer" | "short" | "byte" | "unsigned_long", Value::Number(n)) => {
            n.is_i64() || n.is_u64()
        }
        ("float" | "half_float" | "scaled_float" | "double", Value::Number(_)) => true,
        ("date", Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        }
        ("ip", Value::String(s)) => s.parse::<IpAddr>().is_ok(),
        ("boolean", Value::Bool(_)) => true,
        _ => false,
    };
    (!ok).then(|| format!("ECS type {ecs_type}, emitted {value}"))
}

/// What in `doc` does not fit ECS, and how many ECS fields (not `honeytrap.*`) were checked.
fn problems(ecs: &HashMap<String, FieldDef>, doc: &Value) -> (Vec<String>, usize) {
    let mut leaves = Vec::new();
    flatten("", doc, &mut leaves, false);
    let mut problems = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    for (name, value, in_array) in &leaves {
        if name.starts_with("honeytrap.") {
            continue;
        }
        let Some(def) = ecs.get(name) else {
            problems.push(format!(
                "{name}: not an ECS field (custom fields go under honeytrap.)"
            ));
            continue;
        };
        checked.insert(name.clone());
        if let Some(why) = type_mismatch(&def.kind, value) {
            problems.push(format!("{name}: {why}"));
        }
        if *in_array && !def.normalize.iter().any(|n| n == "array") {
            problems.push(format!(
                "{name}: emitted as an array, ECS expects one value"
            ));
        }
        if !def.allowed_values.is_empty() {
            let text = value.as_str().unwrap_or_default();
            if !def.allowed_values.iter().any(|a| a.name == text) {
                problems.push(format!("{name}: {value} is not among ECS's allowed values"));
            }
        }
    }
    (problems, checked.len())
}

fn check(ecs: &HashMap<String, FieldDef>, event: &Event) -> usize {
    let doc: Value = serde_json::from_str(&event.to_record().json).unwrap();
    let (problems, checked) = problems(ecs, &doc);
    assert!(
        problems.is_empty(),
        "fields that do not fit ECS:\n  {}",
        problems.join("\n  ")
    );
    checked
}

#[test]
fn every_emitted_field_is_ecs_or_under_honeytrap() {
    let Some(ecs) = ecs_fields() else { return };
    let full = full_event();
    // The fixture must really set every optional field, or this test passes vacuously.
    assert!(full.source.is_some() && full.destination.is_some() && full.url.is_some());
    assert!(full.rule.is_some() && !full.techniques.is_empty() && !full.tactics.is_empty());
    assert!(full.attribution.is_some() && full.credentials.is_some() && full.bait.is_some());
    let checked = check(&ecs, &full);
    assert!(checked > 30, "only {checked} ECS fields checked");

    let observer = std::sync::Arc::new(Observer::new("s"));
    for kind in [Kind::Decoy, Kind::Bait, Kind::Rules] {
        check(&ecs, &Event::new(kind, observer.clone()));
    }
}

#[test]
fn the_checker_rejects_what_ecs_would_not_take() {
    let Some(ecs) = ecs_fields() else { return };
    // Guard against a checker that accepts anything: one mistake of each sort, one at a time.
    let bad = [
        serde_json::json!({ "http": { "request": { "headers": { "host": "x" } } } }),
        serde_json::json!({ "source": { "ip": "not-an-ip" } }),
        serde_json::json!({ "source": { "port": "80" } }),
        serde_json::json!({ "@timestamp": "yesterday" }),
        serde_json::json!({ "event": { "severity": 2.5 } }),
        serde_json::json!({ "event": { "action": ["a"] } }),
        serde_json::json!({ "event": { "kind": "honeypot" } }),
        serde_json::json!({ "event": { "type": ["info", "nonsense"] } }),
    ];
    for doc in &bad {
        let (found, _) = problems(&ecs, doc);
        assert_eq!(found.len(), 1, "{doc}: {found:?}");
    }
    let good = serde_json::json!({
        "event": { "type": ["info", "denied"], "severity": 3 },
        "source": { "ip": "::1", "port": 1 },
        "honeytrap": { "anything": [{ "goes": null }] },
    });
    assert_eq!(problems(&ecs, &good), (vec![], 4));
}
