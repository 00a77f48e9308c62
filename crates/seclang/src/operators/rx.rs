//! `@rx`: a regular expression, matched against raw bytes as PCRE does without UTF mode
//! (`.` is any byte, `\xNN` is a byte, classes are ASCII, dot matches newline).
//!
//! Patterns compile with the `regex` crate (linear time). PCRE-only syntax it rejects
//! (lookaround, backreferences, possessive quantifiers, ...) falls back to PCRE2 with JIT,
//! whose built-in match limit bounds the work; each fallback is reported once as a notice.

use std::sync::Arc;

use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::nfa::thompson::backtrack::{BoundedBacktracker, Cache as BacktrackCache};
use regex_automata::nfa::thompson::pikevm::{Cache as PikeCache, PikeVM};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::captures::Captures as Slots;
use regex_automata::util::pool::Pool;
use regex_automata::util::prefilter::Prefilter;
use regex_automata::{Input, MatchKind};
use regex_syntax::hir::Look;

use super::shared::Interned;
use super::{BuildContext, Captures, Operator};

/// Largest compiled NFA and lazy DFA cache of one pattern.
const SIZE_LIMIT: usize = 1 << 27;

/// Largest literal prefilter kept inside a lazy DFA.
const PREFILTER_LIMIT: usize = 4096;

/// A pattern the regex crate's engines run: a forward lazy DFA answers whether it matches,
/// a bounded backtracker (a PikeVM on long values) gives the capture groups of the
/// leftmost-first match.
///
/// These are what `regex::bytes::Regex` would run for the same questions, less what it
/// builds to report where a match starts cheaply (a reverse NFA and lazy DFA) and its own
/// literal prefilters: the engine asks for match positions only with `capture`, after a
/// match, and its literal prefilter has already skipped values without the regex's
/// literals. Both built from the same NFA, so they agree on every answer.
struct Lazy {
    pattern: String,
    /// `None` when its cache could not fit the NFA's minimum; the PikeVM answers then.
    dfa: Option<DFA>,
    pikevm: PikeVM,
    /// Captures on values short enough for its visited set: faster than the PikeVM.
    backtrack: BoundedBacktracker,
    scratch: Pool<Scratch>,
}

/// Per-thread search state, reused across searches; each part made on first use (so the
/// pool needs no engine to make one). Most patterns are only ever asked whether they
/// match, which the DFA answers: the slow engines' parts are sized by the NFA.
#[derive(Debug, Default)]
struct Scratch {
    dfa: Option<DfaCache>,
    slow: Option<SlowScratch>,
}

#[derive(Debug)]
struct SlowScratch {
    pikevm: PikeCache,
    backtrack: BacktrackCache,
    slots: Slots,
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("pattern", &self.pattern)
            .field("lazy_dfa", &self.dfa.is_some())
            .finish_non_exhaustive()
    }
}

/// A pattern parsed as `@rx` reads it: bytes, no Unicode, `.` matching a newline (what the
/// prefilter's literal analysis must read too).
pub(crate) fn parse(pattern: &str) -> Result<regex_syntax::hir::Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

impl Lazy {
    /// Parsed and compiled as `regex::bytes::RegexBuilder` does with `unicode(false)`,
    /// `dot_matches_new_line(true)` and our size limits.
    fn build(pattern: &str) -> Result<Lazy, String> {
        let hir = parse(pattern)?;
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .utf8(false)
                    .shrink(false)
                    .nfa_size_limit(Some(SIZE_LIMIT))
                    .which_captures(WhichCaptures::All),
            )
            .build_from_hir(&hir)
            .map_err(|e| e.to_string())?;
        // Where a match may start anywhere, its prefix literals let the DFA skip to where
        // one may start (long values: a response body).
        let prefilter = if hir.properties().look_set_prefix().contains(Look::Start) {
            None
        } else {
            Prefilter::from_hir_prefix(MatchKind::LeftmostFirst, &hir)
                .filter(|p| p.memory_usage() <= PREFILTER_LIMIT)
        };
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .specialize_start_states(prefilter.is_some())
                    .prefilter(prefilter)
                    .starts_for_each_pattern(true)
                    .unicode_word_boundary(true)
                    .cache_capacity(SIZE_LIMIT)
                    .skip_cache_capacity_check(false)
                    // A cache cleared this often for this little progress: the PikeVM
                    // answers that search instead.
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10)),
            )
            .build_from_nfa(nfa.clone())
            .ok();
        let pikevm = PikeVM::new_from_nfa(nfa.clone()).map_err(|e| e.to_string())?;
        let backtrack = BoundedBacktracker::new_from_nfa(nfa).map_err(|e| e.to_string())?;
        Ok(Lazy {
            pattern: pattern.to_string(),
            dfa,
            pikevm,
            backtrack,
            scratch: Pool::new(Scratch::default),
        })
    }

    fn is_match(&self, input: &[u8]) -> bool {
        let input = Input::new(input).earliest(true);
        let mut scratch = self.scratch.get();
        let Scratch { dfa, slow } = &mut *scratch;
        if let Some(d) = &self.dfa {
            let cache = dfa.get_or_insert_with(|| d.create_cache());
            // An error is the DFA giving up (its cache thrashing): the PikeVM decides.
            if let Ok(m) = d.try_search_fwd(cache, &input) {
                return m.is_some();
            }
        }
        let slow = slow.get_or_insert_with(|| self.slow_scratch());
        self.pikevm
            .search_slots(&mut slow.pikevm, &input, &mut [])
            .is_some()
    }

    fn slow_scratch(&self) -> SlowScratch {
        SlowScratch {
            pikevm: self.pikevm.create_cache(),
            backtrack: self.backtrack.create_cache(),
            slots: self.pikevm.create_captures(),
        }
    }

    /// The leftmost-first match's groups (at most 10), if it matches.
    fn captures(&self, input: &[u8], groups: &mut Vec<Vec<u8>>) -> bool {
        let mut scratch = self.scratch.get();
        let SlowScratch {
            pikevm,
            backtrack,
            slots,
        } = scratch.slow.get_or_insert_with(|| self.slow_scratch());
        let fits = input.len() <= self.backtrack.max_haystack_len();
        if !fits
            || self
                .backtrack
                .try_captures(backtrack, input, slots)
                .is_err()
        {
            self.pikevm.captures(pikevm, input, slots);
        }
        if !slots.is_match() {
            return false;
        }
        groups.clear();
        groups.extend((0..slots.group_len().min(10)).map(|i| {
            slots
                .get_group(i)
                .map_or(Vec::new(), |sp| input[sp.range()].to_vec())
        }));
        true
    }
}

#[derive(Debug)]
enum Engine {
    Rust(Arc<Lazy>),
    Pcre(pcre2::bytes::Regex),
}

/// A pattern compiles once for every rule holding it (CRS repeats some) while one lives.
static SHARED: Interned<Lazy> = Interned::new();

/// A compiled `@rx` pattern.
#[derive(Debug)]
pub struct Rx {
    engine: Engine,
}

pub fn new(param: &str, ctx: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Rx::compile(param, ctx.notices)?))
}

impl Rx {
    /// Compile `pattern`, falling back to PCRE2 (with a notice) when the regex crate cannot.
    pub fn compile(pattern: &str, notices: &mut Vec<String>) -> Result<Rx, String> {
        let built =
            SHARED.get_or_build(pattern, |re| re.pattern == pattern, || Lazy::build(pattern));
        let engine = match built {
            Ok(re) => Engine::Rust(re),
            Err(rust_err) => {
                let re = pcre2::bytes::RegexBuilder::new()
                    .dotall(true)
                    .jit_if_available(true)
                    .build(pattern)
                    .map_err(|e| format!("invalid regex ({e}; regex crate: {rust_err})"))?;
                let shown: String = pattern.chars().take(60).collect();
                notices.push(format!("@rx compiled with the PCRE2 fallback: {shown}"));
                Engine::Pcre(re)
            }
        };
        Ok(Rx { engine })
    }

    /// The source pattern.
    pub fn pattern(&self) -> &str {
        match &self.engine {
            Engine::Rust(re) => &re.pattern,
            Engine::Pcre(re) => re.as_str(),
        }
    }

    /// Whether the pattern needed the PCRE2 fallback.
    pub fn is_fallback(&self) -> bool {
        matches!(self.engine, Engine::Pcre(_))
    }
}

impl Operator for Rx {
    fn matches(&self, input: &[u8], caps: &mut Captures) -> bool {
        match &self.engine {
            // Captures cost more; most values do not match, so ask the cheap question first.
            Engine::Rust(re) if caps.wanted => {
                re.is_match(input) && re.captures(input, &mut caps.groups)
            }
            Engine::Rust(re) => re.is_match(input),
            // A PCRE2 error (match limit hit) counts as no match, as in ModSecurity.
            Engine::Pcre(re) if caps.wanted && !re.is_match(input).unwrap_or(false) => false,
            Engine::Pcre(re) if caps.wanted => match re.captures(input) {
                Ok(Some(c)) => {
                    caps.groups.clear();
                    caps.groups.extend(
                        (0..c.len().min(10))
                            .map(|i| c.get(i).map_or(Vec::new(), |m| m.as_bytes().to_vec())),
                    );
                    true
                }
                _ => false,
            },
            Engine::Pcre(re) => re.is_match(input).unwrap_or(false),
        }
    }

    fn as_rx(&self) -> Option<&Rx> {
        Some(self)
    }

    fn literals(&self) -> Option<Vec<Vec<u8>>> {
        // PCRE-only syntax is not understood by the analysis.
        if self.is_fallback() {
            return None;
        }
        crate::prefilter::required_literals(self.pattern())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::Captures;

    #[test]
    fn bytes_semantics() {
        let mut n = Vec::new();
        let re = Rx::compile(r"^a.b\xff$", &mut n).unwrap();
        assert!(re.matches(b"a\nb\xff", &mut Captures::default()));
        assert!(!re.matches(b"a\nb\xc3\xbf", &mut Captures::default()));
        assert!(!re.is_fallback());
        assert!(n.is_empty());
    }

    #[test]
    fn captures_groups() {
        let mut n = Vec::new();
        let re = Rx::compile(r"(\d+)-(\w+)?", &mut n).unwrap();
        let mut caps = Captures {
            wanted: true,
            groups: Vec::new(),
        };
        assert!(re.matches(b"x 12- y", &mut caps));
        assert_eq!(
            caps.groups,
            vec![b"12-".to_vec(), b"12".to_vec(), Vec::new()]
        );
    }

    #[test]
    fn answers_as_the_regex_crate() {
        let long = [&b"x".repeat(5000)[..], b"<script>Alert(1)", &[0xff, b'\n']].concat();
        let inputs: [&[u8]; 6] = [
            b"",
            b"abc",
            b"ab\nc",
            b"1 union  select 2",
            b"\xffab",
            &long,
        ];
        let patterns = [
            r"(?i)<script[^>]*>\s*(al)(ert)?",
            r"^a.c$",
            r"(?i:union\s+select)|(\d+)",
            r"\xff(a)",
            r"[\n\xff]$",
            r"x{3}<",
            r"\bselect\b",
        ];
        for p in patterns {
            let re = Rx::compile(p, &mut Vec::new()).unwrap();
            assert!(!re.is_fallback());
            let reference = regex::bytes::RegexBuilder::new(p)
                .unicode(false)
                .dot_matches_new_line(true)
                .build()
                .unwrap();
            for i in inputs {
                let mut caps = Captures {
                    wanted: true,
                    groups: Vec::new(),
                };
                let expected = reference.captures(i);
                assert_eq!(re.matches(i, &mut Captures::default()), expected.is_some());
                assert_eq!(re.matches(i, &mut caps), expected.is_some());
                if let Some(c) = expected {
                    let groups: Vec<Vec<u8>> = c
                        .iter()
                        .map(|g| g.map_or(Vec::new(), |m| m.as_bytes().to_vec()))
                        .collect();
                    assert_eq!(caps.groups, groups, "{p}");
                }
            }
        }
    }

    #[test]
    fn pcre_fallback_for_lookbehind_and_backrefs() {
        let mut n = Vec::new();
        let re = Rx::compile(r"(?<!a)b(['\x22])x\1", &mut n).unwrap();
        assert!(re.is_fallback());
        assert_eq!(n.len(), 1);
        assert!(re.matches(b"cb'x'", &mut Captures::default()));
        assert!(!re.matches(b"ab'x'", &mut Captures::default()));
        assert!(!re.matches(b"cb'x\"", &mut Captures::default()));
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        assert!(Rx::compile("(unclosed", &mut Vec::new()).is_err());
    }
}
