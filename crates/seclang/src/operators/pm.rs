//! `@pm`: any of the space-separated phrases occurs in the input (ASCII case-insensitive),
//! one Aho-Corasick pass.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use std::sync::Arc;

use super::shared::Interned;
use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Pm {
    phrases: Arc<Phrases>,
}

#[derive(Debug)]
struct Phrases {
    ac: AhoCorasick,
    /// Lower-cased, for the prefilter.
    lower: Vec<Vec<u8>>,
}

/// Lists that match alike (the same phrases up to ASCII case, in the same order) share one
/// automaton: CRS reads some phrase files for two rules.
static SHARED: Interned<Phrases> = Interned::new();

impl Pm {
    /// Build from phrases; an empty list is an error since it could never match.
    pub fn from_phrases<I: IntoIterator<Item = Vec<u8>>>(phrases: I) -> Result<Pm, String> {
        let phrases: Vec<Vec<u8>> = phrases.into_iter().filter(|p| !p.is_empty()).collect();
        if phrases.is_empty() {
            return Err("no phrases".into());
        }
        let lower: Vec<Vec<u8>> = phrases.iter().map(|p| p.to_ascii_lowercase()).collect();
        let phrases = SHARED.get_or_build(
            &lower,
            |built| built.lower == lower,
            || {
                let ac = AhoCorasickBuilder::new()
                    // Phrase lists run thousands of words (`@pmFromFile`): a DFA of them
                    // costs megabytes per list, a contiguous NFA a fraction.
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(&phrases)
                    .map_err(|e| e.to_string())?;
                Ok(Phrases {
                    ac,
                    lower: lower.clone(),
                })
            },
        )?;
        Ok(Pm { phrases })
    }
}

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    let phrases = param
        .split_ascii_whitespace()
        .map(|p| p.as_bytes().to_vec());
    Ok(Box::new(
        Pm::from_phrases(phrases).map_err(|e| format!("@pm: {e}"))?,
    ))
}

impl Operator for Pm {
    fn matches(&self, input: &[u8], caps: &mut Captures) -> bool {
        match self.phrases.ac.find(input) {
            Some(m) => {
                if caps.wanted {
                    caps.groups.clear();
                    caps.groups.push(input[m.start()..m.end()].to_vec());
                }
                true
            }
            None => false,
        }
    }

    fn literals(&self) -> Option<Vec<Vec<u8>>> {
        Some(self.phrases.lower.clone())
    }

    fn is_literal_search(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match, Captures};

    #[test]
    fn matches_any_phrase_case_insensitively() {
        let op = build("pm", "nikto  sqlmap");
        assert!(test_match(&*op, b"Mozilla SQLMap/1.0"));
        assert!(!test_match(&*op, b"curl"));
        assert!(!test_match(&*op, b""));
        let mut caps = Captures {
            wanted: true,
            groups: vec![],
        };
        assert!(op.matches(b"xNIKTOx", &mut caps));
        assert_eq!(caps.groups, vec![b"NIKTO".to_vec()]);
    }
}
