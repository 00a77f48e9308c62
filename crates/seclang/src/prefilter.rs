//! Literal prefilter. For an operator that can only match inputs containing one of a finite
//! set of literals (an `@rx` whose every match contains one of them, a `@pm` phrase list), a
//! value containing none of them cannot match, so the operator need not run.
//!
//! Two levels, both computed at load time:
//! - per rule: one Aho-Corasick automaton, asked before the operator runs on a value;
//! - per group of rules that share phase, target set and transformation chain: one
//!   automaton over all their literals, run once per transformed value for the whole group,
//!   which yields the set of rules that can match at all this phase. The others are skipped
//!   without visiting their targets.

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::{self, DFA};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, MatchKind, StartKind};
use regex_syntax::hir::{Class, Hir, HirKind};
use rustc_hash::FxHashMap;

use crate::rule::{ChainId, Rule, RuleOperator};
use crate::ruleset::Step;
use crate::variables::{Selector, Target, Var};

/// Most strings an exact set may hold before it is given up.
const MAX_EXACT: usize = 64;
/// Longest string an exact set may hold.
const MAX_LEN: usize = 48;

/// What matches of a regex node look like, for literal extraction. Strings are ASCII
/// lower-cased: the automata match case-insensitively, which only lets more values through.
#[derive(Debug, Clone, Default)]
struct Info {
    /// Every string the node can match, when that set is small.
    exact: Option<Vec<Vec<u8>>>,
    /// Strings one of which every match contains (none holds the empty string).
    any: Option<Vec<Vec<u8>>>,
}

fn lower(b: &[u8]) -> Vec<u8> {
    b.to_ascii_lowercase()
}

fn norm(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v.dedup();
    v
}

/// How selective a required-literal set is (higher is better); `None` if useless.
fn score(set: &[Vec<u8>]) -> Option<f32> {
    if set.is_empty() || set.iter().any(Vec::is_empty) {
        return None;
    }
    let weight = |l: &Vec<u8>| -> f32 {
        l.iter()
            .map(|c| match c {
                b'a'..=b'z' | b'0'..=b'9' | b' ' => 1.0,
                // Punctuation is rarer in benign values than letters.
                _ => 1.5,
            })
            .sum()
    };
    let min = set.iter().map(weight).fold(f32::MAX, f32::min);
    Some(min - set.len() as f32 * 0.001)
}

fn better(a: Option<Vec<Vec<u8>>>, b: Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    match (score_of(&a), score_of(&b)) {
        (Some(x), Some(y)) => Some(if y > x { b? } else { a? }),
        (Some(_), None) => a,
        (None, Some(_)) => b,
        (None, None) => None,
    }
}

fn score_of(s: &Option<Vec<Vec<u8>>>) -> Option<f32> {
    s.as_deref().and_then(score)
}

fn cross(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len() * b.len() > MAX_EXACT {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            if x.len() + y.len() > MAX_LEN {
                return None;
            }
            out.push([x.as_slice(), y.as_slice()].concat());
        }
    }
    Some(norm(out))
}

fn exact_info(set: Vec<Vec<u8>>) -> Info {
    let set = norm(set);
    let any = score(&set).map(|_| set.clone());
    Info {
        exact: Some(set),
        any,
    }
}

fn analyze(h: &Hir) -> Info {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => exact_info(vec![Vec::new()]),
        HirKind::Literal(l) => exact_info(vec![lower(&l.0)]),
        HirKind::Class(c) => {
            let mut bytes = Vec::new();
            let ok = match c {
                Class::Bytes(cb) => cb.ranges().iter().all(|r| {
                    bytes.extend((r.start()..=r.end()).map(|b| b.to_ascii_lowercase()));
                    bytes.len() <= 256
                }),
                Class::Unicode(cu) => cu.ranges().iter().all(|r| {
                    let (s, e) = (r.start() as u32, r.end() as u32);
                    // Only ASCII classes have a known byte form here.
                    e < 0x80 && {
                        bytes.extend((s..=e).map(|b| (b as u8).to_ascii_lowercase()));
                        true
                    }
                }),
            };
            bytes.sort_unstable();
            bytes.dedup();
            if ok && !bytes.is_empty() && bytes.len() <= 16 {
                exact_info(bytes.into_iter().map(|b| vec![b]).collect())
            } else {
                Info::default()
            }
        }
        HirKind::Capture(c) => analyze(&c.sub),
        HirKind::Repetition(r) => {
            let sub = analyze(&r.sub);
            if r.min == 0 {
                let exact = match (r.max, sub.exact) {
                    (Some(1), Some(mut e)) => {
                        e.push(Vec::new());
                        Some(norm(e))
                    }
                    _ => None,
                };
                return Info { exact, any: None };
            }
            let exact = match (r.max, &sub.exact) {
                (Some(max), Some(e)) if max == r.min && max <= 4 => {
                    let mut acc = vec![Vec::new()];
                    let mut ok = true;
                    for _ in 0..max {
                        match cross(&acc, e) {
                            Some(n) => acc = n,
                            None => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    ok.then_some(acc)
                }
                _ => None,
            };
            let any = better(exact.clone().filter(|e| score(e).is_some()), sub.any);
            Info { exact, any }
        }
        HirKind::Concat(subs) => {
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut run: Option<Vec<Vec<u8>>> = Some(vec![Vec::new()]);
            let mut all_exact = true;
            for s in subs {
                let i = analyze(s);
                best = better(best, i.any);
                let next = match (&run, &i.exact) {
                    (Some(r), Some(e)) => cross(r, e),
                    _ => None,
                };
                match next {
                    Some(n) => run = Some(n),
                    None => {
                        // The run so far is a required factor on its own; start a new one.
                        all_exact = false;
                        best = better(best, run.take().filter(|r| score(r).is_some()));
                        run = i.exact;
                    }
                }
            }
            let run_any = run.clone().filter(|r| score(r).is_some());
            best = better(best, run_any);
            Info {
                exact: if all_exact { run } else { None },
                any: best,
            }
        }
        HirKind::Alternation(subs) => {
            let infos: Vec<Info> = subs.iter().map(analyze).collect();
            let exact = infos
                .iter()
                .try_fold(Vec::new(), |mut acc, i| {
                    acc.extend(i.exact.clone()?);
                    (acc.len() <= MAX_EXACT).then_some(acc)
                })
                .map(norm);
            let any = infos
                .iter()
                .try_fold(Vec::new(), |mut acc, i| {
                    acc.extend(i.any.clone()?);
                    Some(acc)
                })
                .map(norm)
                .filter(|a| score(a).is_some());
            let exact_any = exact.clone().filter(|e| score(e).is_some());
            Info {
                exact,
                any: better(any, exact_any),
            }
        }
    }
}

/// Literals (lower-cased) one of which every match of `pattern` contains, compiled as the
/// `@rx` operator compiles it (bytes, no Unicode, dot matches newline).
pub fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .build()
        .parse(pattern)
        .ok()?;
    let mut lits = analyze(&hir).any?;
    // A literal containing another one adds nothing: drop it (shortest first).
    lits.sort_by_key(Vec::len);
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(lits.len());
    for l in lits {
        if !kept.iter().any(|k| memchr::memmem::find(&l, k).is_some()) {
            kept.push(l);
        }
    }
    kept.sort();
    Some(kept)
}

fn automaton(lits: &[Vec<u8>], kind: MatchKind) -> Option<AhoCorasick> {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(kind)
        .build(lits)
        .ok()
}

/// The literals a rule's own operator requires, if it is eligible for prefiltering.
fn rule_literals(r: &Rule) -> Option<Vec<Vec<u8>>> {
    if r.negated {
        return None;
    }
    let RuleOperator::Static(op) = &r.operator else {
        return None;
    };
    op.literals()
}

/// Variables whose values do not change while a phase runs (rules cannot write them), so a
/// group's prefilter result holds for the whole phase.
fn phase_stable(v: Var) -> bool {
    matches!(
        v,
        Var::Args
            | Var::ArgsGet
            | Var::ArgsPost
            | Var::ArgsNames
            | Var::ArgsGetNames
            | Var::ArgsPostNames
            | Var::RequestHeaders
            | Var::RequestHeadersNames
            | Var::RequestCookies
            | Var::RequestCookiesNames
            | Var::RequestUri
            | Var::RequestUriRaw
            | Var::RequestFilename
            | Var::RequestBasename
            | Var::RequestLine
            | Var::RequestMethod
            | Var::RequestProtocol
            | Var::QueryString
            | Var::RequestBody
            | Var::Files
            | Var::FilesNames
            | Var::FilesTmpContent
            | Var::MultipartPartHeaders
            | Var::Xml
            | Var::ResponseHeaders
            | Var::ResponseHeadersNames
            | Var::ResponseBody
    )
}

/// A target as a group key: exclusions are left out (the group looks at a superset of the
/// values each member looks at, which can only add candidates).
fn target_key(t: &Target) -> String {
    let mut out = t.var.name().to_string();
    match &t.selector {
        Selector::All => {}
        Selector::Key(k) => {
            out.push_str(":k:");
            out.push_str(&String::from_utf8_lossy(k));
        }
        Selector::Regex(r) => {
            out.push_str(":r:");
            out.push_str(r.as_str());
        }
        Selector::XPath(p) => {
            out.push_str(":x:");
            out.push_str(p);
        }
    }
    out
}

/// The prefilterable rules of one phase with the same targets (up to exclusions) whose
/// operator sees the same transformation chain(s), with one automaton over all their
/// literals: each value is scanned once per phase for the whole group, and a rule none of
/// whose literals occurs in any of them cannot match. (Merging groups with different
/// targets was tried: transforming values no member looks at costs more than it saves.)
#[derive(Debug)]
pub struct Group {
    /// The members' targets (without exclusions).
    pub targets: Vec<Target>,
    /// Transformation chains whose results the operator sees: the final one, or for
    /// `multiMatch` the raw value (`None`) and every prefix.
    pub chains: Vec<Option<ChainId>>,
    dfa: DFA,
    /// Automaton pattern → member index.
    owner: Vec<u16>,
    /// Number of members.
    members: usize,
}

impl Group {
    /// Mark in `bits` the members one of whose literals occurs in `value`; returns true
    /// once every member is marked.
    pub fn scan(&self, value: &[u8], bits: &mut [u64]) -> bool {
        // A plain walk of the DFA: the iterator API costs more than the scan on the short
        // values requests carry. Match states hold every pattern ending there.
        let dfa = &self.dfa;
        let Ok(mut sid) = dfa.start_state(Anchored::No) else {
            return false;
        };
        for &b in value {
            sid = dfa.next_state(Anchored::No, sid, b);
            if dfa.is_match(sid) {
                for k in 0..dfa.match_len(sid) {
                    let i = self.owner[dfa.match_pattern(sid, k).as_usize()] as usize;
                    bits[i / 64] |= 1 << (i % 64);
                }
            }
        }
        bits.iter().map(|w| w.count_ones() as usize).sum::<usize>() == self.members
    }

    pub fn words(&self) -> usize {
        self.members.div_ceil(64)
    }
}

/// Per-rule and per-group prefilters.
#[derive(Debug, Default)]
pub struct Prefilter {
    /// Indexed like `RuleSet::rules`; `None` = always evaluate.
    by_rule: Vec<Option<AhoCorasick>>,
    /// Indexed like `RuleSet::rules`: (group, member index).
    pub member: Vec<Option<(u32, u16)>>,
    pub groups: Vec<Group>,
    /// Offset of each group's bits in a transaction's bit vector.
    pub offsets: Vec<usize>,
    pub words: usize,
}

/// A group while it is being built.
struct Building {
    targets: Vec<Target>,
    chains: Vec<Option<ChainId>>,
    members: Vec<usize>,
}

impl Prefilter {
    pub fn build(rules: &[Rule], phases: &[Vec<Step>; 6]) -> Prefilter {
        let lits: Vec<Option<Vec<Vec<u8>>>> = rules.iter().map(rule_literals).collect();
        let by_rule = lits
            .iter()
            .map(|l| {
                l.as_ref()
                    .and_then(|l| automaton(l, MatchKind::LeftmostFirst))
            })
            .collect();
        let mut member = vec![None; rules.len()];
        let mut keyed: FxHashMap<String, usize> = FxHashMap::default();
        let mut building: Vec<Building> = Vec::new();
        for (phase, steps) in phases.iter().enumerate() {
            for s in steps {
                let Step::Rule { rule: ri, .. } = *s else {
                    continue;
                };
                let r = &rules[ri];
                if lits[ri].is_none()
                    || r.targets.is_empty()
                    || r.targets.iter().any(|t| t.count || !phase_stable(t.var))
                {
                    continue;
                }
                let chains: Vec<Option<ChainId>> = if r.actions.multi_match {
                    std::iter::once(None)
                        .chain(r.chain_ids.iter().map(|&c| Some(c)))
                        .collect()
                } else {
                    vec![r.chain_id()]
                };
                let mut key = format!("{phase}/{chains:?}");
                for t in &r.targets {
                    key.push('|');
                    key.push_str(&target_key(t));
                }
                let g = *keyed.entry(key).or_insert_with(|| {
                    building.push(Building {
                        targets: r
                            .targets
                            .iter()
                            .map(|t| {
                                let mut t = t.clone();
                                t.exclusions.clear();
                                t
                            })
                            .collect(),
                        chains,
                        members: Vec::new(),
                    });
                    building.len() - 1
                });
                let b = &mut building[g];
                if b.members.len() == u16::MAX as usize {
                    continue;
                }
                member[ri] = Some((g as u32, b.members.len() as u16));
                b.members.push(ri);
            }
        }
        let mut groups = Vec::new();
        for b in building {
            let mut pats = Vec::new();
            let mut owner = Vec::new();
            for (mi, &ri) in b.members.iter().enumerate() {
                for l in lits[ri].iter().flatten() {
                    pats.push(l.clone());
                    owner.push(mi as u16);
                }
            }
            let dfa = dfa::Builder::new()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(true)
                .prefilter(false)
                .start_kind(StartKind::Unanchored)
                .build(&pats)
                .ok();
            if dfa.is_none() {
                for &ri in &b.members {
                    member[ri] = None;
                }
            }
            groups.push(Group {
                targets: b.targets,
                chains: b.chains,
                members: if dfa.is_some() { b.members.len() } else { 0 },
                dfa: dfa.unwrap_or_else(|| {
                    dfa::DFA::new(std::iter::empty::<&[u8]>()).expect("empty automaton")
                }),
                owner,
            });
        }
        let mut offsets = Vec::with_capacity(groups.len());
        let mut words = 0;
        for g in &groups {
            offsets.push(words);
            words += g.words();
        }
        Prefilter {
            by_rule,
            member,
            groups,
            offsets,
            words,
        }
    }

    /// Whether rule `idx` can match `value` at all.
    pub fn may_match(&self, idx: usize, value: &[u8]) -> bool {
        match self.by_rule.get(idx) {
            Some(Some(ac)) => ac.is_match(value),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(p: &str) -> Vec<String> {
        required_literals(p)
            .unwrap_or_default()
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn extracts_required_literals() {
        assert_eq!(lits("(?i)(?:union|select)\\s+"), ["select", "union"]);
        assert_eq!(lits("\\d+").len(), 10); // weak, but valid
        assert_eq!(lits("a|b"), ["a", "b"]);
        assert_eq!(lits("a|b*"), Vec::<String>::new());
        // Inner factors, not only prefixes.
        assert_eq!(lits("[a-z]+=\\s*<script"), ["<script"]);
        assert_eq!(lits("(?i)x?ab(c|d)"), ["abc", "abd"]);
        assert_eq!(lits("^$"), Vec::<String>::new());
        assert_eq!(lits("(?:foo){2}"), ["foofoo"]);
    }

    #[test]
    fn every_match_contains_a_literal() {
        let cases: &[(&str, &[&str])] = &[
            ("(?i)<script[^>]*>", &["<SCRIPT>", "x<script a=1>"]),
            (
                "(?i:on(?:load|error)|javascript:)",
                &["onError", "JAVASCRIPT:x"],
            ),
            ("a[bc]{1,3}d", &["abd", "acccd"]),
        ];
        for (p, inputs) in cases {
            let re = regex::bytes::RegexBuilder::new(p)
                .unicode(false)
                .build()
                .unwrap();
            let ac = automaton(&required_literals(p).unwrap(), MatchKind::Standard).unwrap();
            for i in *inputs {
                assert!(re.is_match(i.as_bytes()), "{p} {i}");
                assert!(ac.is_match(i.as_bytes()), "{p} {i}");
            }
        }
    }
}
