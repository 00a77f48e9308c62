//! `@pm`: any of the space-separated phrases occurs in the input (ASCII case-insensitive),
//! one Aho-Corasick pass.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use std::sync::{Arc, OnceLock};

use super::shared::Interned;
use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Pm {
    phrases: Arc<Phrases>,
}

#[derive(Debug)]
struct Phrases {
    /// Built on the first search, in the process that searches, as `@rx` builds its
    /// engines (a list the prefilter always clears costs no automaton); `None` inside only
    /// if building failed where it had succeeded at load, which leaves the list matching
    /// nothing.
    ac: OnceLock<Option<AhoCorasick>>,
    /// Lower-cased: the prefilter's literals, and what the automaton is built from (it
    /// matches ASCII case-insensitively, so it finds the same spans).
    lower: Vec<Vec<u8>>,
}

impl Phrases {
    fn build(lower: &[Vec<u8>]) -> Result<AhoCorasick, String> {
        AhoCorasickBuilder::new()
            // Phrase lists run thousands of words (`@pmFromFile`): a DFA of them costs
            // megabytes per list, a contiguous NFA a fraction.
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(lower)
            .map_err(|e| e.to_string())
    }

    fn ac(&self) -> Option<&AhoCorasick> {
        super::shared::built_on_first_search(&self.ac, || Phrases::build(&self.lower))
    }
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
                // Built once here only to reject what cannot be built.
                drop(Phrases::build(&lower)?);
                Ok(Phrases {
                    ac: OnceLock::new(),
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
        match self.phrases.ac().and_then(|ac| ac.find(input)) {
            Some(m) => {
                if caps.wanted {
                    caps.set([&input[m.start()..m.end()]]);
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
    use super::Pm;
    use crate::operators::{build, test_match, Captures, Operator};

    #[test]
    fn the_automaton_is_built_on_the_first_search_only() {
        // Phrases no other test uses: built lists are shared while alive.
        let phrases = || [b"LazyPhraseOne".to_vec(), b"lazyphrasetwo".to_vec()];
        let pm = Pm::from_phrases(phrases()).unwrap();
        let twin = Pm::from_phrases(phrases()).unwrap();
        assert!(pm.phrases.ac.get().is_none(), "built at load");
        let mut caps = Captures::new(true);
        assert!(pm.matches(b"x LAZYphraseTWO y", &mut caps));
        assert_eq!(caps.groups(), vec![b"LAZYphraseTWO".to_vec()]);
        assert!(pm.phrases.ac.get().is_some());
        assert!(twin.phrases.ac.get().is_some(), "one build for both");
        assert!(!pm.matches(b"lazyphrase", &mut Captures::default()));
    }

    #[test]
    fn matches_any_phrase_case_insensitively() {
        let op = build("pm", "nikto  sqlmap");
        assert!(test_match(&*op, b"Mozilla SQLMap/1.0"));
        assert!(!test_match(&*op, b"curl"));
        assert!(!test_match(&*op, b""));
        let mut caps = Captures::new(true);
        assert!(op.matches(b"xNIKTOx", &mut caps));
        assert_eq!(caps.groups(), vec![b"NIKTO".to_vec()]);
    }
}
