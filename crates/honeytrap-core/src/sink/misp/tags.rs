//! The MISP tags this sink puts on events.
//!
//! Machine tags come from MISP taxonomies (`namespace:predicate="value"`); MISP only
//! recognises a tag as part of a taxonomy when it is spelled exactly as in the taxonomy's
//! `machinetag.json`, so every one used here is checked against those files in the tests.

/// Levels of the `tlp` taxonomy (TLP 2.0 plus the legacy ones MISP still carries).
pub const TLP_LEVELS: &[&str] = &[
    "red",
    "amber",
    "amber+strict",
    "green",
    "white",
    "clear",
    "ex:chr",
    "unclear",
];

/// Default sharing label. Not `tlp:clear`: an event names the sensor (publishing it would burn
/// the honeypot) and its source addresses are often compromised third-party hosts. TLP:GREEN
/// lets the community use the indicators, but not on public channels.
pub const DEFAULT_TLP: &str = "tlp:green";

/// Emulated services, no real system behind them.
pub const INTERACTION_LOW: &str = "honeypot-basic:interaction-level=\"low\"";
/// The sensor records events (requests), not raw traffic.
pub const CAPTURE_EVENTS: &str = "honeypot-basic:data-capture=\"events\"";
/// Added when detection rules recognised attacks in the requests.
pub const CAPTURE_ATTACKS: &str = "honeypot-basic:data-capture=\"attacks\"";
/// It waits for clients: a server honeypot.
pub const ROLE_SERVER: &str = "honeypot-basic:role=\"server\"";
/// Decoy and bait hits: requests probing for weaknesses.
pub const RSIT_SCANNER: &str = "rsit:information-gathering=\"scanner\"";
/// Rule matches. In the RSIT taxonomy `ids-alert` is the value expanded as "Exploitation of
/// Known Vulnerabilities" (`exploit` means an unknown one).
pub const RSIT_KNOWN_EXPLOIT: &str = "rsit:intrusion-attempts=\"ids-alert\"";
/// Credentials submitted to a bait login: "Login Attempts".
pub const RSIT_LOGIN_ATTEMPTS: &str = "rsit:intrusion-attempts=\"brute-force\"";

/// The taxonomy tags this sink can emit besides the `tlp:` levels.
pub const TAXONOMY_TAGS: &[&str] = &[
    INTERACTION_LOW,
    CAPTURE_EVENTS,
    CAPTURE_ATTACKS,
    ROLE_SERVER,
    RSIT_SCANNER,
    RSIT_KNOWN_EXPLOIT,
    RSIT_LOGIN_ATTEMPTS,
];

/// Tags on every event of this sink, after the configured ones.
pub const BASE_TAGS: &[&str] = &[INTERACTION_LOW, CAPTURE_EVENTS, ROLE_SERVER];

/// MITRE ATT&CK names of the techniques web honeypot rules report. MISP's galaxy cluster tags
/// are `misp-galaxy:mitre-attack-pattern="<name> - <id>"`; a wrong name would create a stray
/// tag instead of attaching the cluster, so ids not listed here use the name the event carries
/// (`threat.technique.name`) or get no galaxy tag.
const TECHNIQUES: &[(&str, &str)] = &[
    ("T1005", "Data from Local System"),
    ("T1046", "Network Service Discovery"),
    ("T1059", "Command and Scripting Interpreter"),
    ("T1059.004", "Unix Shell"),
    ("T1068", "Exploitation for Privilege Escalation"),
    ("T1071.001", "Web Protocols"),
    ("T1078", "Valid Accounts"),
    ("T1082", "System Information Discovery"),
    ("T1083", "File and Directory Discovery"),
    ("T1087", "Account Discovery"),
    ("T1090", "Proxy"),
    ("T1105", "Ingress Tool Transfer"),
    ("T1110", "Brute Force"),
    ("T1110.001", "Password Guessing"),
    ("T1110.003", "Password Spraying"),
    ("T1110.004", "Credential Stuffing"),
    ("T1133", "External Remote Services"),
    ("T1190", "Exploit Public-Facing Application"),
    ("T1210", "Exploitation of Remote Services"),
    ("T1212", "Exploitation for Credential Access"),
    ("T1213", "Data from Information Repositories"),
    ("T1496", "Resource Hijacking"),
    ("T1499", "Endpoint Denial of Service"),
    ("T1505", "Server Software Component"),
    ("T1505.003", "Web Shell"),
    ("T1539", "Steal Web Session Cookie"),
    ("T1552", "Unsecured Credentials"),
    ("T1552.001", "Credentials In Files"),
    ("T1589", "Gather Victim Identity Information"),
    ("T1589.001", "Credentials"),
    ("T1592", "Gather Victim Host Information"),
    ("T1592.002", "Software"),
    ("T1594", "Search Victim-Owned Websites"),
    ("T1595", "Active Scanning"),
    ("T1595.001", "Scanning IP Blocks"),
    ("T1595.002", "Vulnerability Scanning"),
    ("T1595.003", "Wordlist Scanning"),
];

pub fn technique_name(id: &str) -> Option<&'static str> {
    TECHNIQUES
        .iter()
        .find(|(known, _)| *known == id)
        .map(|(_, name)| *name)
}

/// Whether `id` looks like an ATT&CK technique id (`T1234` or `T1234.001`).
pub fn is_technique_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    digits(main, 4) && sub.is_none_or(|s| digits(s, 3))
}

/// The galaxy tag of a technique, or `None` when its name is unknown.
pub fn mitre_tag(id: &str, name_from_event: Option<&str>) -> Option<String> {
    let id = id.trim();
    if !is_technique_id(id) {
        return None;
    }
    let name = technique_name(id).or_else(|| {
        name_from_event.map(str::trim).filter(|n| {
            !n.is_empty()
                && n.len() <= 200
                && !n.contains(['"', '\\'])
                && !n.chars().any(char::is_control)
        })
    })?;
    Some(format!(
        "misp-galaxy:mitre-attack-pattern=\"{name} - {id}\""
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::PathBuf;

    fn shared(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared")
            .join(rel)
    }

    /// Every machine tag the three taxonomy files define, spelled as MISP spells them.
    pub(crate) fn taxonomy_tags() -> HashSet<String> {
        let mut out = HashSet::new();
        for name in ["tlp", "honeypot-basic", "rsit"] {
            let path = shared(&format!("misp/taxonomies/{name}/machinetag.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            let ns = doc["namespace"].as_str().unwrap();
            let values = doc["values"].as_array().cloned().unwrap_or_default();
            for predicate in doc["predicates"].as_array().unwrap() {
                let p = predicate["value"].as_str().unwrap();
                let entries: Vec<&str> = values
                    .iter()
                    .filter(|v| v["predicate"] == p)
                    .flat_map(|v| v["entry"].as_array().unwrap().iter())
                    .map(|e| e["value"].as_str().unwrap())
                    .collect();
                if entries.is_empty() {
                    // A predicate without values is the whole tag: `tlp:green`.
                    out.insert(format!("{ns}:{p}"));
                } else {
                    for e in entries {
                        out.insert(format!("{ns}:{p}=\"{e}\""));
                    }
                }
            }
        }
        out
    }

    /// What the tests require of any tag the sink emits.
    pub(crate) fn assert_known_tag(known: &HashSet<String>, tag: &str) {
        if tag.starts_with("misp-galaxy:mitre-attack-pattern=\"") {
            return;
        }
        assert!(
            known.contains(tag),
            "{tag} is not in the tlp, honeypot-basic or rsit taxonomies"
        );
    }

    #[test]
    fn every_taxonomy_tag_exists_in_the_taxonomy_files() {
        let known = taxonomy_tags();
        assert!(
            known.contains("honeypot-basic:interaction-level=\"low\""),
            "loader sanity"
        );
        for tag in TAXONOMY_TAGS {
            assert_known_tag(&known, tag);
        }
        for level in TLP_LEVELS {
            assert_known_tag(&known, &format!("tlp:{level}"));
        }
        assert_known_tag(&known, DEFAULT_TLP);
        for tag in BASE_TAGS {
            assert_known_tag(&known, tag);
        }
        // And every tlp level of the file is accepted by tags=.
        for tag in known.iter().filter(|t| t.starts_with("tlp:")) {
            assert!(
                TLP_LEVELS.contains(&&tag[4..]),
                "{tag} missing from TLP_LEVELS"
            );
        }
    }

    #[test]
    fn technique_ids_and_galaxy_tags() {
        assert!(is_technique_id("T1595"));
        assert!(is_technique_id("T1595.002"));
        for bad in [
            "", "T159", "T15955", "T1595.02", "t1595", "T1595.", "TA0043",
        ] {
            assert!(!is_technique_id(bad), "{bad}");
        }
        assert_eq!(
            mitre_tag("T1595", None).as_deref(),
            Some("misp-galaxy:mitre-attack-pattern=\"Active Scanning - T1595\"")
        );
        assert_eq!(
            mitre_tag("T1595.002", Some("whatever")).as_deref(),
            Some("misp-galaxy:mitre-attack-pattern=\"Vulnerability Scanning - T1595.002\""),
            "the table wins over the event's name"
        );
        assert_eq!(
            mitre_tag("T1606", Some("Forge Web Credentials")).as_deref(),
            Some("misp-galaxy:mitre-attack-pattern=\"Forge Web Credentials - T1606\"")
        );
        assert_eq!(mitre_tag("T1606", None), None, "unknown name: no guess");
        assert_eq!(mitre_tag("T1606", Some("evil\" name")), None);
        assert_eq!(mitre_tag("nonsense", Some("Name")), None);
        for (id, name) in TECHNIQUES {
            assert!(is_technique_id(id), "{id}");
            assert!(!name.is_empty());
        }
        let mut ids: Vec<&str> = TECHNIQUES.iter().map(|(id, _)| *id).collect();
        ids.dedup();
        assert_eq!(ids.len(), TECHNIQUES.len(), "sorted and unique");
    }
}
