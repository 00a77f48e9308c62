//! MITRE ATT&CK techniques and tactics for each way a bait is touched.
//!
//! - A tripwire is what wordlist scanners (dirb, gobuster, ffuf, nmap http-enum) request:
//!   Active Scanning, Wordlist Scanning.
//! - A decoy path learnt from robots.txt or a page's source means the site itself was read for
//!   hidden places: Search Victim-Owned Websites.
//! - A decoy server on an unadvertised port was found by probing: Active Scanning.
//! - Credentials sent to any decoy: Brute Force (guessing; there is nothing valid to find).
//! - An edited cookie flag or hidden field is an attempt on the application itself:
//!   Exploit Public-Facing Application.
//!
//! Not used: T1592 Gather Victim Host Information, which is about the victim's hosts
//! (hardware, software, configuration) rather than the paths of a website.

use crate::event::MitreRef;

use super::paths::Lure;

type Ref = (&'static str, &'static str);

const ACTIVE_SCANNING: Ref = ("T1595", "Active Scanning");
const WORDLIST_SCANNING: Ref = ("T1595.003", "Wordlist Scanning");
const SEARCH_VICTIM_WEBSITES: Ref = ("T1594", "Search Victim-Owned Websites");
const BRUTE_FORCE: Ref = ("T1110", "Brute Force");
const EXPLOIT_PUBLIC_APP: Ref = ("T1190", "Exploit Public-Facing Application");

const RECONNAISSANCE: Ref = ("TA0043", "Reconnaissance");
const CREDENTIAL_ACCESS: Ref = ("TA0006", "Credential Access");
const INITIAL_ACCESS: Ref = ("TA0001", "Initial Access");

/// How a bait was touched, as far as ATT&CK cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    Path(Lure),
    DecoyServer,
    CookieAltered,
    FieldTampered,
}

/// The techniques and the tactics of a touch.
pub fn threat(touch: Touch, with_credentials: bool) -> (Vec<MitreRef>, Vec<MitreRef>) {
    let (mut techniques, mut tactics): (Vec<Ref>, Vec<Ref>) = match touch {
        Touch::Path(Lure::Tripwire) => (
            vec![ACTIVE_SCANNING, WORDLIST_SCANNING],
            vec![RECONNAISSANCE],
        ),
        Touch::Path(Lure::Robots | Lure::Comment | Lure::Configured) => {
            (vec![SEARCH_VICTIM_WEBSITES], vec![RECONNAISSANCE])
        }
        Touch::DecoyServer => (vec![ACTIVE_SCANNING], vec![RECONNAISSANCE]),
        Touch::CookieAltered | Touch::FieldTampered => {
            (vec![EXPLOIT_PUBLIC_APP], vec![INITIAL_ACCESS])
        }
    };
    if with_credentials {
        techniques.push(BRUTE_FORCE);
        tactics.push(CREDENTIAL_ACCESS);
    }
    let refs = |v: Vec<Ref>| {
        v.into_iter()
            .map(|(id, name)| MitreRef::new(id, name))
            .collect()
    };
    (refs(techniques), refs(tactics))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copied by hand from the ATT&CK Enterprise matrix (attack.mitre.org, v17), one
    /// technique or tactic page each: /techniques/T1595/, /techniques/T1595/003/,
    /// /techniques/T1594/, /techniques/T1110/, /techniques/T1190/, /tactics/TA0043/,
    /// /tactics/TA0006/, /tactics/TA0001/.
    const ATTACK: &[(&str, &str)] = &[
        ("T1595", "Active Scanning"),
        ("T1595.003", "Wordlist Scanning"),
        ("T1594", "Search Victim-Owned Websites"),
        ("T1110", "Brute Force"),
        ("T1190", "Exploit Public-Facing Application"),
        ("TA0043", "Reconnaissance"),
        ("TA0006", "Credential Access"),
        ("TA0001", "Initial Access"),
    ];

    fn every_touch() -> Vec<Touch> {
        vec![
            Touch::Path(Lure::Tripwire),
            Touch::Path(Lure::Robots),
            Touch::Path(Lure::Comment),
            Touch::Path(Lure::Configured),
            Touch::DecoyServer,
            Touch::CookieAltered,
            Touch::FieldTampered,
        ]
    }

    #[test]
    fn every_id_and_name_is_attacks_own() {
        for touch in every_touch() {
            for creds in [false, true] {
                let (techniques, tactics) = threat(touch, creds);
                assert!(!techniques.is_empty() && !tactics.is_empty());
                for r in techniques.iter().chain(&tactics) {
                    let official = ATTACK.iter().find(|(id, _)| *id == r.id);
                    assert_eq!(official.map(|(_, n)| *n), Some(&*r.name), "{r:?}");
                }
                // Techniques are Txxxx, tactics TAxxxx: never mixed up.
                assert!(techniques.iter().all(|t| !t.id.starts_with("TA")));
                assert!(tactics.iter().all(|t| t.id.starts_with("TA")));
            }
        }
    }

    #[test]
    fn a_sub_technique_comes_with_its_parent_and_credentials_add_brute_force() {
        for touch in every_touch() {
            let (techniques, _) = threat(touch, false);
            for t in &techniques {
                if let Some((parent, _)) = t.id.split_once('.') {
                    assert!(techniques.iter().any(|p| p.id == parent), "{t:?}");
                }
            }
            let (with, tactics) = threat(touch, true);
            assert!(with.iter().any(|t| t.id == "T1110"));
            assert!(tactics.iter().any(|t| t.id == "TA0006"));
            assert!(!techniques.iter().any(|t| t.id == "T1110"));
        }
    }
}
