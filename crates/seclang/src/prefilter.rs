//! Literal prefilter. For an operator that can only match inputs containing one of a finite
//! set of literals (an `@rx` whose every match contains one of them, a `@pm` phrase list), a
//! value containing none of them cannot match, so the operator need not run.
//!
//! Two levels, both computed at load time:
//! - per rule outside the phase groups below: one Aho-Corasick automaton, asked before the
//!   operator runs on a value;
//! - per phase (phases 1 and 2 sharing one): one automaton over the literals of every rule
//!   that looks only at values fixed for the phase. Each distinct transformed value is
//!   scanned once, which yields the set of rules that can match it; a rule none of whose
//!   (target, transformation chain) values can match is skipped without visiting its
//!   targets. Rules that share phase, targets and chain form a group that shares that work.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa;
use aho_corasick::{
    AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Anchored, MatchKind, StartKind,
};
use regex_syntax::hir::{
    Capture, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind,
    Repetition,
};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

use crate::rule::{ChainId, ChainTable, Rule, RuleOperator};
use crate::ruleset::Step;
use crate::transformations;
use crate::variables::{Selector, Target, Var};

/// Most strings an exact (or prefix, suffix) set may hold before it is given up or cut.
const MAX_EXACT: usize = 64;
/// Longest string an exact set may hold.
const MAX_LEN: usize = 48;
/// Most bytes a class may match to be read as a set of one-byte strings (lower-cased, so
/// `[a-z]` counts 26); a wider one tells the analysis nothing. Over the CRS v4.28.0
/// benchmark transactions (callgrind, per 200): at 16, benign 41.31 M instructions, attack
/// 57.46 M, with the response 56.40 M; at 24 the same; from 26 on (`[a-z]` a set: at 26,
/// 32, 64 or 128) 40.58–40.61 M, 56.70–56.73 M and 55.69–55.71 M, as CRS 941120 (an event
/// handler after one of 24 separators) requires one of 24 three-byte strings rather than
/// "on", and no longer runs on every browser's `application/xml`; the rule set's heap
/// +85 KB at 32.
const MAX_CLASS: usize = 32;

/// What matches of a regex node look like, for literal extraction. Strings are ASCII
/// lower-cased: the automata match case-insensitively, which only lets more values through.
#[derive(Debug, Clone)]
struct Info {
    /// Every string the node can match, when that set is small.
    exact: Option<Vec<Vec<u8>>>,
    /// Strings one of which every match contains (none holds the empty string).
    any: Option<Required>,
    /// Strings one of which every match starts with (`[""]` when nothing is known); left
    /// empty while `exact` is known, which is both (see `starts`).
    prefix: Vec<Vec<u8>>,
    /// Strings one of which every match ends with, as `prefix`.
    suffix: Vec<Vec<u8>>,
}

impl Info {
    fn unknown() -> Info {
        Info {
            exact: None,
            any: None,
            prefix: vec![Vec::new()],
            suffix: vec![Vec::new()],
        }
    }

    fn starts(&self) -> &[Vec<u8>] {
        self.exact.as_deref().unwrap_or(&self.prefix)
    }

    fn ends(&self) -> &[Vec<u8>] {
        self.exact.as_deref().unwrap_or(&self.suffix)
    }

    /// The same node with its exact set forgotten (kept as its prefix and suffix).
    fn inexact(mut self) -> Info {
        if let Some(e) = self.exact.take() {
            self.prefix = e.clone();
            self.suffix = e;
        }
        self
    }
}

fn lower(b: &[u8]) -> Vec<u8> {
    b.to_ascii_lowercase()
}

fn norm(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v.dedup();
    v
}

/// Bits of surprise per unit of `score` weight: a letter is taken to occur at a given
/// place in one value out of 2^3. (Over the CRS v4.28.0 benchmark transactions 3 and 4.5
/// cost the same instructions, 2 about 1 % more; 4.5 took 140 KB more heap.)
const BITS_PER_WEIGHT: f64 = 3.0;

/// How likely a value is to hold one of `set` somewhere (lower is more selective). Each
/// literal is weighed by its bytes (punctuation is rarer in benign values than letters, and
/// some of it rarer still: CRS 920500, `\.[^.~]+~`, looked for "." in every file name
/// rather than "~"); many short literals count against a set, not only its shortest.
fn likelihood(set: &[Vec<u8>]) -> f64 {
    let weight = |l: &Vec<u8>| -> f64 {
        l.iter()
            .map(|c| match c {
                b'a'..=b'z' | b'0'..=b'9' | b' ' => 1.0,
                // Rare in URLs, headers and form values (`*` is not: `Accept: */*`). Over
                // the CRS v4.28.0 benchmark transactions (callgrind, per 200), against 1.5
                // like the rest: benign 40.61 M → 40.20 M instructions, attack 56.73 M →
                // 56.29 M, with the response 55.70 M → 55.30 M; 1.75, 2.5 or 3 gave the
                // same within 0.1 % (with `*` among them), and weighing `.`, `/`, `-`,
                // `_`, `,`, `;`, `=`, `&`, `:`, `+` as letters 43.20 M benign.
                b'~' | b'`' | b'^' | b'|' | b'{' | b'}' | b'\\' | b'$' | b'!' | b'@' | b'#'
                | b'[' | b']' | b'<' | b'>' => 2.0,
                _ => 1.5,
            })
            .sum()
    };
    set.iter()
        .map(|l| (-BITS_PER_WEIGHT * weight(l)).exp2())
        .sum()
}

/// A required-literal set and how selective it is (higher is better).
#[derive(Debug, Clone)]
struct Required {
    set: Vec<Vec<u8>>,
    score: f64,
}

/// How selective `set` is as a required set; `None` if useless (empty, or holding the empty
/// string).
fn score(set: &[Vec<u8>]) -> Option<f64> {
    if set.is_empty() || set.iter().any(Vec::is_empty) {
        return None;
    }
    Some(-likelihood(set).log2() / BITS_PER_WEIGHT)
}

/// `set` as a required-literal candidate.
fn candidate(set: &[Vec<u8>]) -> Option<Required> {
    Some(Required {
        score: score(set)?,
        set: set.to_vec(),
    })
}

/// `best`, or `set` if it is a better required set (copied only then).
fn offer(best: Option<Required>, set: &[Vec<u8>]) -> Option<Required> {
    match (score(set), &best) {
        (Some(s), Some(b)) if s <= b.score => best,
        (Some(score), _) => Some(Required {
            set: set.to_vec(),
            score,
        }),
        (None, _) => best,
    }
}

fn better(a: Option<Required>, b: Option<Required>) -> Option<Required> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.score > x.score { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

fn cross(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    cross_within(a, b, MAX_EXACT)
}

/// Every string of `a` followed by every string of `b`, unless there are more than `most`
/// pairs or a longer string than `MAX_LEN`.
fn cross_within(a: &[Vec<u8>], b: &[Vec<u8>], most: usize) -> Option<Vec<Vec<u8>>> {
    if a.len() * b.len() > most {
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

/// The last `keep` bytes of each string (a text ending with a string ends with its tail).
fn tails(set: &[Vec<u8>], keep: usize) -> Vec<Vec<u8>> {
    norm(
        set.iter()
            .map(|s| s[s.len().saturating_sub(keep)..].to_vec())
            .collect(),
    )
}

/// The first `keep` bytes of each string (a text starting with a string starts with its
/// head).
fn heads(set: &[Vec<u8>], keep: usize) -> Vec<Vec<u8>> {
    norm(
        set.iter()
            .map(|s| s[..s.len().min(keep)].to_vec())
            .collect(),
    )
}

/// Which side of a product may be cut short to keep it small.
#[derive(Clone, Copy)]
enum Cut {
    /// The first side keeps its tails: the product still holds what a text ends with.
    FirstTails,
    /// The second side keeps its heads: the product still holds what a text starts with.
    SecondHeads,
}

/// `cross(a, b)`, or if that is too large, the longest cut (see `Cut`) that fits, down to
/// the uncut side alone. The flag says whether nothing was cut.
fn join(a: &[Vec<u8>], b: &[Vec<u8>], cut: Cut) -> (Vec<Vec<u8>>, bool) {
    if let Some(x) = cross(a, b) {
        return (x, true);
    }
    let (cut_side, kept) = match cut {
        Cut::FirstTails => (a, b),
        Cut::SecondHeads => (b, a),
    };
    let longest = cut_side.iter().map(Vec::len).max().unwrap_or(0);
    let joined = largest_fit(longest, |keep| match cut {
        Cut::FirstTails => cross(&tails(a, keep), b),
        Cut::SecondHeads => cross(a, &heads(b, keep)),
    });
    (joined.unwrap_or_else(|| kept.to_vec()), false)
}

/// What `fits` gives for the largest length in `1..below` it accepts, where accepting a
/// length means accepting every shorter one (sets cut shorter never grow).
fn largest_fit<T>(below: usize, fits: impl Fn(usize) -> Option<T>) -> Option<T> {
    let (mut lo, mut hi) = (1, below);
    let mut found = None;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match fits(mid) {
            Some(x) => {
                found = Some(x);
                lo = mid + 1;
            }
            None => hi = mid,
        }
    }
    found
}

/// Longest tail and head `factor` cuts the two sides to.
const MAX_CUT: usize = 4;
/// Most strings a product made only to be required (never exact) may hold.
const MAX_FACTOR: usize = 256;

/// Strings one of which a text contains when it holds a string of `a` directly followed by
/// one of `b`: the best-scoring product of `a` or its short tails with `b` or its short
/// heads that is small enough.
fn factor(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Required> {
    let a_sides: Vec<_> = std::iter::once(a.to_vec())
        .chain((1..=MAX_CUT).map(|n| tails(a, n)))
        .map(Side::new)
        .collect();
    let b_sides: Vec<_> = std::iter::once(b.to_vec())
        .chain((1..=MAX_CUT).map(|n| heads(b, n)))
        .map(Side::new)
        .collect();
    // A product is as likely as its two sides together (less where strings coincide):
    // only the most selective one is built.
    let mut best: Option<(f64, &Side, &Side)> = None;
    for t in &a_sides {
        for h in &b_sides {
            let fits = t.set.len() * h.set.len() <= MAX_FACTOR && t.longest + h.longest <= MAX_LEN;
            let likelihood = t.likelihood * h.likelihood;
            if fits && best.is_none_or(|(l, _, _)| likelihood < l) {
                best = Some((likelihood, t, h));
            }
        }
    }
    let (_, t, h) = best?;
    candidate(&cross_within(&t.set, &h.set, MAX_FACTOR)?)
}

/// One side of a product `factor` considers.
struct Side {
    set: Vec<Vec<u8>>,
    likelihood: f64,
    longest: usize,
}

impl Side {
    fn new(set: Vec<Vec<u8>>) -> Side {
        Side {
            likelihood: likelihood(&set),
            longest: set.iter().map(Vec::len).max().unwrap_or(0),
            set,
        }
    }
}

fn exact_info(set: Vec<Vec<u8>>) -> Info {
    let set = norm(set);
    Info {
        any: candidate(&set),
        prefix: Vec::new(),
        suffix: Vec::new(),
        exact: Some(set),
    }
}

/// The nodes `parts` matched one after the other.
fn concat(parts: &[&Info]) -> Info {
    let mut any = None;
    for p in parts {
        any = better(any, p.any.clone());
    }
    // What the text matched so far ends with. Across an inexact part it continues into that
    // part's prefix (a required factor) and starts again from its suffix.
    let mut run = vec![Vec::new()];
    let mut exact = true;
    for p in parts {
        match &p.exact {
            Some(e) => {
                let (next, whole) = join(&run, e, Cut::FirstTails);
                if !whole {
                    exact = false;
                    any = offer(any, &run);
                    any = better(any, factor(&run, e));
                }
                run = next;
            }
            None => {
                exact = false;
                any = offer(any, &run);
                any = better(any, factor(&run, &p.prefix));
                run = p.suffix.clone();
            }
        }
    }
    any = offer(any, &run);
    if exact {
        return Info {
            exact: Some(run),
            any,
            prefix: Vec::new(),
            suffix: Vec::new(),
        };
    }
    // A prefix extends over the leading exact parts into the first inexact one's prefix.
    let mut prefix = vec![Vec::new()];
    for p in parts {
        let (next, whole) = join(&prefix, p.starts(), Cut::SecondHeads);
        prefix = next;
        if !whole || p.exact.is_none() {
            break;
        }
    }
    let mut suffix = vec![Vec::new()];
    for p in parts.iter().rev() {
        let (next, whole) = join(p.ends(), &suffix, Cut::FirstTails);
        suffix = next;
        if !whole || p.exact.is_none() {
            break;
        }
    }
    Info {
        exact: None,
        any,
        prefix,
        suffix,
    }
}

/// A union of prefix (`Cut::SecondHeads`) or suffix (`Cut::FirstTails`) sets, cut to shorter
/// heads or tails until it is small.
fn union_cut(sets: impl Iterator<Item = Vec<Vec<u8>>>, cut: Cut) -> Vec<Vec<u8>> {
    let all = norm(sets.flatten().collect());
    if all.len() <= MAX_EXACT {
        return all;
    }
    let longest = all.iter().map(Vec::len).max().unwrap_or(0);
    largest_fit(longest, |keep| {
        let shorter = match cut {
            Cut::FirstTails => tails(&all, keep),
            Cut::SecondHeads => heads(&all, keep),
        };
        (shorter.len() <= MAX_EXACT).then_some(shorter)
    })
    .unwrap_or_else(|| vec![Vec::new()])
}

/// Longest run of copies of a repeated node that the analysis looks at.
const MAX_COPIES: u32 = MAX_LEN as u32;

fn analyze(h: &Hir) -> Info {
    let mut info = analyze_node(h);
    // Every match contains its prefix and its suffix too.
    // (An exact set was offered where it was made.)
    info.any = offer(info.any, &info.prefix);
    info.any = offer(info.any, &info.suffix);
    info
}

fn analyze_node(h: &Hir) -> Info {
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
            if ok && !bytes.is_empty() && bytes.len() <= MAX_CLASS {
                exact_info(bytes.into_iter().map(|b| vec![b]).collect())
            } else {
                Info::unknown()
            }
        }
        HirKind::Capture(c) => analyze(&c.sub),
        HirKind::Repetition(r) => {
            let sub = analyze(&r.sub);
            if r.min == 0 {
                return match (r.max, sub.exact) {
                    (Some(1), Some(mut e)) => {
                        e.push(Vec::new());
                        exact_info(e)
                    }
                    _ => Info::unknown(),
                };
            }
            // Every match is at least `min` matches of the node in a row: it starts and
            // ends with such a run and contains one.
            let copies = r.min.min(MAX_COPIES);
            let info = concat(&vec![&sub; copies as usize]);
            if r.max == Some(copies) {
                info
            } else {
                info.inexact()
            }
        }
        HirKind::Concat(subs) => {
            let infos: Vec<Info> = subs.iter().map(analyze).collect();
            concat(&infos.iter().collect::<Vec<_>>())
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
                    acc.extend_from_slice(&i.any.as_ref()?.set);
                    Some(acc)
                })
                .and_then(|union| candidate(&norm(union)));
            let exact_any = exact.as_deref().and_then(candidate);
            Info {
                exact,
                any: better(any, exact_any),
                prefix: union_cut(infos.iter().map(|i| i.starts().to_vec()), Cut::SecondHeads),
                suffix: union_cut(infos.iter().map(|i| i.ends().to_vec()), Cut::FirstTails),
            }
        }
    }
}

/// Required literals for a pattern whose own are too common, found by setting punctuation
/// apart: a match in a value without any byte of a set `apart` is a match of the pattern with
/// those bytes taken out of it, so every match contains one of that pattern's literals or
/// one byte of `apart`. CRS 932230 and 932250 (Unix commands with quotes, backslashes or
/// `$…` expansions allowed between their letters) require single letters; apart from
/// `"'$)[\` (and `&` for 932230) they require whole command names. `apart` starts as every
/// punctuation byte of the pattern's literals and narrow classes and loses those
/// (commonest first) the set does as well or better without.
fn with_punctuation_apart(hir: &Hir) -> Option<Required> {
    let mut held = [false; 256];
    mark_bytes(hir, &mut held);
    let mut apart: Vec<u8> = (0..=255u8)
        .filter(|&b| held[usize::from(b)] && b.is_ascii_punctuation())
        .collect();
    // With every byte apart the pattern's own part is as selective as it gets (the search
    // below only gives it bytes back): a pattern weak even then is left as it is, without
    // the search, which analyses the pattern once a byte (170 ms over CRS 932236's 720
    // command names).
    if let Some(h) = without_bytes(hir, &byte_set(&apart)) {
        if analyze(&h).any.is_none_or(|r| r.score < MIN_SCORE) {
            return None;
        }
    }
    let mut best = required_apart(hir, &apart);
    // The commonest bytes first: each costs the set most.
    apart.sort_by(|a, b| likelihood(&[vec![*b]]).total_cmp(&likelihood(&[vec![*a]])));
    for b in apart.clone() {
        let fewer: Vec<u8> = apart.iter().copied().filter(|&x| x != b).collect();
        let trial = required_apart(hir, &fewer);
        if trial.as_ref().map(|t| t.score) >= best.as_ref().map(|r| r.score) {
            (apart, best) = (fewer, trial);
        }
    }
    best
}

/// The required set "one of `apart`, or a literal of `hir` without the bytes of `apart`".
fn required_apart(hir: &Hir, apart: &[u8]) -> Option<Required> {
    let mut set: Vec<Vec<u8>> = match without_bytes(hir, &byte_set(apart)) {
        Some(h) => analyze(&h).any?.set,
        // Nothing matches without them.
        None => Vec::new(),
    };
    set.extend(apart.iter().map(|&b| vec![b]));
    candidate(&norm(set))
}

fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    bytes.iter().for_each(|&b| set[usize::from(b)] = true);
    set
}

/// Marks every byte `h` can match in a literal or in a class the analysis reads (of at most
/// [`MAX_CLASS`] bytes): a byte of a wider class taken out of it leaves a class that tells
/// the analysis nothing still.
fn mark_bytes(h: &Hir, held: &mut [bool; 256]) {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => l.0.iter().for_each(|&b| held[usize::from(b)] = true),
        HirKind::Class(Class::Bytes(c)) => {
            let ranges = c
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end())));
            mark_class(ranges, held);
        }
        HirKind::Class(Class::Unicode(c)) => {
            mark_class(
                c.ranges()
                    .iter()
                    .map(|r| (r.start() as u32, r.end() as u32)),
                held,
            );
        }
        HirKind::Capture(c) => mark_bytes(&c.sub, held),
        HirKind::Repetition(r) => mark_bytes(&r.sub, held),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            subs.iter().for_each(|s| mark_bytes(s, held))
        }
    }
}

fn mark_class(ranges: impl Iterator<Item = (u32, u32)> + Clone, held: &mut [bool; 256]) {
    let size: u32 = ranges.clone().map(|(s, e)| e - s + 1).sum();
    if size as usize <= MAX_CLASS {
        ranges
            .flat_map(|(s, e)| s..=e.min(0xff))
            .for_each(|b| held[b as usize] = true);
    }
}

/// `h` as it can match in values that hold no byte of `excluded` (`None`: it cannot).
fn without_bytes(h: &Hir, excluded: &[bool; 256]) -> Option<Hir> {
    let ranges = || {
        let mut ranges = Vec::new();
        let mut b = 0usize;
        while b < 256 {
            if excluded[b] {
                let start = b;
                while b + 1 < 256 && excluded[b + 1] {
                    b += 1;
                }
                ranges.push((start as u8, b as u8));
            }
            b += 1;
        }
        ranges
    };
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(h.clone()),
        HirKind::Literal(l) => (!l.0.iter().any(|&b| excluded[usize::from(b)])).then(|| h.clone()),
        HirKind::Class(Class::Bytes(c)) => {
            let mut c = c.clone();
            c.difference(&ClassBytes::new(
                ranges()
                    .into_iter()
                    .map(|(s, e)| ClassBytesRange::new(s, e)),
            ));
            (!c.ranges().is_empty()).then(|| Hir::class(Class::Bytes(c)))
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut c = c.clone();
            c.difference(&ClassUnicode::new(
                ranges()
                    .into_iter()
                    .map(|(s, e)| ClassUnicodeRange::new(char::from(s), char::from(e))),
            ));
            (!c.ranges().is_empty()).then(|| Hir::class(Class::Unicode(c)))
        }
        HirKind::Capture(c) => without_bytes(&c.sub, excluded).map(|sub| {
            Hir::capture(Capture {
                index: c.index,
                name: c.name.clone(),
                sub: Box::new(sub),
            })
        }),
        HirKind::Repetition(r) => match without_bytes(&r.sub, excluded) {
            Some(sub) => Some(Hir::repetition(Repetition {
                min: r.min,
                max: r.max,
                greedy: r.greedy,
                sub: Box::new(sub),
            })),
            None if r.min == 0 => Some(Hir::empty()),
            None => None,
        },
        HirKind::Concat(subs) => subs
            .iter()
            .map(|s| without_bytes(s, excluded))
            .collect::<Option<Vec<_>>>()
            .map(Hir::concat),
        HirKind::Alternation(subs) => {
            let kept: Vec<Hir> = subs
                .iter()
                .filter_map(|s| without_bytes(s, excluded))
                .collect();
            (!kept.is_empty()).then(|| Hir::alternation(kept))
        }
    }
}

/// Weak patterns and the required set [`with_punctuation_apart`] made them.
type ApartByPattern = FxHashMap<String, Option<Required>>;

thread_local! {
    /// [`with_punctuation_apart`]'s answers by pattern while a [`Prefilter::build`] runs,
    /// which asks for a rule's literals a few times: its search analyses a pattern up to
    /// 30 times, and CRS has patterns whose analysis takes milliseconds (the CRS loaded
    /// 55 ms slower without; 35 ms with). Emptied when the build ends. Every pattern's
    /// literals memoized left 0.2 MB more in a worker's heap, the build's fragments.
    static APART: std::cell::RefCell<Option<ApartByPattern>> =
        const { std::cell::RefCell::new(None) };
}

/// Memoizes [`with_punctuation_apart`] on this thread while it lives.
struct ApartMemo;

impl ApartMemo {
    fn start() -> ApartMemo {
        APART.with(|m| *m.borrow_mut() = Some(FxHashMap::default()));
        ApartMemo
    }
}

impl Drop for ApartMemo {
    fn drop(&mut self) {
        APART.with(|m| *m.borrow_mut() = None);
    }
}

/// [`with_punctuation_apart`] of `pattern`, memoized while a build runs.
fn apart_of(pattern: &str, hir: &Hir) -> Option<Required> {
    // Outer `None`: no build is memoizing; inner: not searched yet.
    let memoized = APART.with(|m| m.borrow().as_ref().map(|m| m.get(pattern).cloned()));
    match memoized {
        Some(Some(known)) => known,
        Some(None) => {
            let found = with_punctuation_apart(hir);
            APART.with(|m| {
                if let Some(m) = m.borrow_mut().as_mut() {
                    m.insert(pattern.to_string(), found.clone());
                }
            });
            found
        }
        None => with_punctuation_apart(hir),
    }
}

/// Literals (lower-cased) one of which every match of `pattern` contains, compiled as the
/// `@rx` operator compiles it (bytes, no Unicode, dot matches newline).
pub fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = crate::operators::rx::parse(pattern).ok()?;
    let mut lits = match analyze(&hir).any {
        Some(r) if r.score >= MIN_SCORE => r.set,
        weak => better(weak, apart_of(pattern, &hir))?.set,
    };
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
        // A rule's own automaton runs only on values the phase automaton let through: a
        // compact NFA costs little there and a fraction of a DFA's memory.
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .ascii_case_insensitive(true)
        .match_kind(kind)
        .build(lits)
        .ok()
}

/// The least [`score`] a rule's literals need to prefilter it. A set below it is expected
/// in a third of all values or more (CRS 932236's 720 command names with a separator after
/// them): a scan for it lets the rule through nearly always, and every byte of a short value
/// that ends one of its literals cost the scan a lookup of what the state sets. Over the
/// CRS v4.28.0 benchmark transactions (callgrind, per 200): benign 41.63 M → 40.78 M
/// instructions, attack 57.72 M → 56.24 M, with response 57.40 M → 56.56 M; at 0.1,
/// 41.47 M benign; at 0.6, 42.74 M (the rules it drops as well, 942330, 932125 and the
/// like, were worth their scans). It was 0.5 until CRS 932230 and 932250 had literals with
/// punctuation set apart ([`with_punctuation_apart`]: 112 and 118 strings, eight of them
/// two letters long, `sh` and `ls` among them), which fall below 0.5 and not below 0.4
/// (the same counts down to 0.26): prefiltered, they take benign 40.20 M → 38.88 M, attack
/// 55.93 M → 55.39 M, with the response 55.28 M → 53.97 M, and `crs_profile browsers` (120
/// browsers' GETs) 242.2 k → 236.9 k a request; at 0.45 only one of them is, benign 39.56 M.
const MIN_SCORE: f64 = 0.4;

/// The literals a rule's own operator requires (negated or not), if it has them and they
/// are selective enough to be worth looking for ([`MIN_SCORE`]).
fn rule_literals(r: &Rule) -> Option<Vec<Vec<u8>>> {
    let RuleOperator::Static(op) = &r.operator else {
        return None;
    };
    op.literals()
        .filter(|lits| score(lits).is_some_and(|s| s >= MIN_SCORE))
}

fn is_literal_search(r: &Rule) -> bool {
    matches!(&r.operator, RuleOperator::Static(op) if op.is_literal_search())
}

/// Variables whose values do not change while a phase runs (rules cannot write them), so a
/// group's prefilter result holds for the whole phase.
pub(crate) fn phase_stable(v: Var) -> bool {
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

/// Variables that hold a whole body.
fn is_body(v: Var) -> bool {
    matches!(
        v,
        Var::RequestBody | Var::ResponseBody | Var::FilesTmpContent
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

/// The prefilterable rules of one phase with the same targets (up to exclusions and order)
/// whose operator sees the same transformation chain(s). Whether a member can match this
/// phase is read from the scans of its targets' values through those chains.
#[derive(Debug)]
pub struct Group {
    /// The (target, chain) units whose values the members' operators see, target by
    /// target: a target's values are listed once for all its chains. The range of
    /// [`Prefilter::group_targets`]: one table for every group, read in step order, so that
    /// a transaction reads a few contiguous cache lines rather than a block per group.
    pub targets: (u32, u32),
    /// Bit of the first member in its phase's candidate bits.
    pub bit: usize,
    /// The candidate words its members' bits are in (start, end exclusive).
    pub words: (u32, u32),
    /// Its targets, as an index of [`Prefilter::target_sets`] ([`NO_SET`] where no other
    /// group has the same targets): a phase reads them once for all those groups.
    pub set: u32,
    /// The transformations of all of its chains ([`GroupTarget::transforms`] or-ed).
    pub transforms: u64,
    /// The fewest bytes a value must have for a scan to set one of its members' bits:
    /// its shortest literal, up to the automaton's prefix length.
    pub shortest: u16,
}

/// [`Group::set`] of a group whose targets no other group has.
pub const NO_SET: u32 = u32::MAX;

/// One target of a [`Group`] and the chains the group scans its values through
/// ([`Prefilter::chains_of`]). 32 bytes.
#[derive(Debug)]
pub struct GroupTarget {
    /// The transformations of all of its chains ([`ChainTable::masks`] or-ed): a value that
    /// none of them changes is scanned once for every chain.
    pub transforms: u64,
    /// The same without the chains that have a [`DecodedScreen`], but for the steps before
    /// their decoding (all the same chain): a value that none of these changes and that the
    /// screen rules out is scanned as it is only, as one none of `transforms` changes.
    /// `transforms` where its chains decode different values.
    pub undecoded: u64,
    /// `Prefilter::group_chains[chains_at..][..chains_len]`.
    chains_at: u32,
    chains_len: u16,
    /// The target, in [`Prefilter::targets`].
    pub target_id: u16,
    /// Of its chains with a [`DecodedScreen`], the index of the one with the least
    /// [`GroupChain::min`], and that least: a shorter value cannot hold a literal through any
    /// of them, and the screens of all answer alike. `u16::MAX`: none.
    decoded_at: u16,
    decoded_min: u16,
}

/// One chain of a [`GroupTarget`], with what a value needs for it to matter: one record,
/// read in one step per chain and value.
#[derive(Debug)]
pub struct GroupChain {
    /// `None`: the raw value.
    pub chain: Option<ChainId>,
    /// The fewest bytes a value must have for the chain to make of it one the group's
    /// [`Group::shortest`] allows (see [`shortest_input`]).
    pub min: u16,
    /// A test that can spare computing and scanning the chain (see [`ChainScreen`]).
    pub screen: Option<Box<ChainScreen>>,
}

/// One target (without exclusions) through one transformation chain (`None`: raw), as
/// groups share them while they are built.
struct Unit {
    target_id: u32,
    chain: Option<ChainId>,
}

/// Longest literal prefix the phase automata look for; the rest of a longer literal is
/// compared where its prefix ends. An automaton over the thousands of whole CRS literals
/// takes tens of megabytes (a NFA is several times slower per byte). Over CRS v4.28.0 at 5
/// bytes the three phase tables took 1.4 MB of transitions (the Aho-Corasick DFAs they are
/// built from, 5.4 MB; at 6 bytes 7.8 MB, for -0.2 % to +1.3 % instructions per
/// transaction; at 4 bytes 3.5 MB for up to +5 %). Since the literals grew and phases 1 and
/// 2 share a table: 1.30 MB for phases 1-2, 0.29 MB for phase 4; with what a match state
/// sets in a short value at the head of its row, 1.43 MB (8125 states × 80 classes) and
/// 0.32 MB. Without those heads (see `PhaseScan::trans`): 1.27 MB of transitions (7820
/// states × 81 classes) and 73 KB of what match states set for phases 1-2, 0.61 MB and
/// 18 KB for phase 4 at 7 bytes (0.76 MB and 19 KB at 8, see `SCAN_PREFIX_RESPONSE`).
const SCAN_PREFIX: usize = 5;

/// The same for phase 4's automaton, which mostly scans response bodies: each prefix match
/// there stops six lanes and compares rests, and an HTML page is full of five-byte prefixes
/// of CRS literals (" class", "produ"). Over the bench's 3.4 KB page (callgrind at 4966aaf,
/// benign GET with its response, per transaction): 5 bytes 0.375 M instructions; 6,
/// 0.366 M (+0.13 MB of table); 7, 0.360 M (+0.28 MB); 8, 0.355 M (+0.43 MB). With the
/// lanes' cheaper steps a prefix match's stop weighs more (at cd61c35): 7 bytes 210.0 k
/// (0.60 MB of transitions), 8 bytes 205.7 k (0.75 MB), 9 bytes 204.9 k (0.92 MB), 10
/// bytes 204.7 k. Kept at 7 for the worker's memory: at 8 `bench/worker-memory` read a
/// worker of 15.1 MB at start (main heap 6.2 MB), at 7 14.9 MB (6.0 MB), against a target of
/// 15 MB.
const SCAN_PREFIX_RESPONSE: usize = 7;

/// The literal prefix length of the automaton numbered `slot` (see [`scan_slot`]).
fn scan_prefix(slot: usize) -> usize {
    if slot == 4 {
        SCAN_PREFIX_RESPONSE
    } else {
        SCAN_PREFIX
    }
}

/// Values at least this long are scanned for whole literals, shorter ones for prefixes.
const EXACT_FROM: usize = 256;

/// One automaton over the literals of every group member of a phase: a (transformed)
/// value is scanned once and yields, for every member of every group at once, whether one
/// of its literals occurs.
#[derive(Debug)]
pub struct PhaseScan {
    /// Byte → where its class's column starts in `trans` (bytes that no state tells apart
    /// share a class): a step is one add and one load, with no multiply.
    columns: [u32; 256],
    /// Class × the number of states + state → the next state: one column per class. The
    /// states are those of an Aho-Corasick DFA reachable from its unanchored start,
    /// renumbered densely in breadth-first order (the states near the start, which text
    /// mostly visits, share cache lines in each column) with the match states last: 16-bit
    /// entries take a fraction of the DFA's own table.
    trans: Vec<u16>,
    start: u16,
    first_match: u16,
    /// Match state (counted from `first_match`) → what it sets in a short value.
    prefix_bits: Vec<PrefixBits>,
    /// Match state (counted from `first_match`) → its entry in `states`.
    state_bits: Vec<u16>,
    /// What a match state sets in a long value, shared by states that set the same.
    states: Vec<StateBits>,
    masks: Vec<Mask>,
    checks: Vec<Check>,
    /// The rests of the literals past their prefix and the rest's first byte, ASCII
    /// lower-cased (the scan ignores case), each distinct one once.
    rest_bytes: Vec<u8>,
    /// Candidate bits of the phase, in 64-bit words.
    pub words: usize,
    /// Longest prefix the automaton looks for: a walk started this many bytes minus one
    /// before a position ends there in a state with the same matches as a walk from the
    /// value's start.
    longest: usize,
}

/// Stretches of a long value walked side by side (see `PhaseScan::scan_literals`). Over
/// the bench's 3.4 KB HTML page with the CRS v4.28.0 phase-4 table (on a shared AMD EPYC, so
/// roughly): one walk 8.1 µs, 3 lanes 3.5, 4 lanes 2.8, 5 lanes 2.7, 6 lanes 2.4, 7 lanes
/// 2.5, 8 lanes 2.7, 12 lanes 3.0 (more lanes than registers hold spill). That was with a
/// multiply in every step; without it (a step is an add and a load, a shorter chain for the
/// lanes to overlap), callgrind, response transaction: 3 lanes 216.3 k instructions, 4
/// lanes 216.2 k, 5 lanes 217.7 k, 6 lanes 218.5 k (from 5 on, lanes' pointers spill);
/// with the add from memory (see `PhaseScan::next`), 4 lanes 211.5 k, 5 213.0 k, 6 213.8 k.
/// The clock still prefers 6, the chains being what a step waits on: `crs_profile response
/// 50000` pinned to one CPU, seven runs alternating with 9554dec's 4, 6 lanes 12.7–15.1 µs a
/// transaction (mean 13.6) against 4 lanes' 13.4–15.5 (mean 14.4), 6 faster in six.
const LANES: usize = 6;

/// Bytes a lane of a short value's walk takes at least past its warm-up.
const PREFIX_LANE_BYTES: usize = 8;

/// What one match state sets in a short value (the members of every pattern ending
/// there), precomputed so that a match costs one lookup and a few ORs instead of a walk
/// over every pattern ending there (many of which share a member).
#[derive(Debug, Clone, Copy)]
struct PrefixBits {
    /// The first word's members inline (most match states set bits of one word only),
    /// then `masks[masks_at..][..more]`.
    bits: u64,
    word: u16,
    more: u16,
    masks_at: u32,
}

/// Bytes of HTTP requests and pages roughly from the most to the least frequent (the
/// literals are looked for ignoring ASCII case: one case is enough).
const FREQUENT_BYTES: &[u8] =
    b"etaoinsrlhcdpumfgbywvkxqjz0123456789 /.-_=&;,:%+()\"'<>?*#!@$[]{}|\\^~`\t\r\n\0";

/// What one match state sets in a long value (scanned for whole literals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct StateBits {
    /// `masks[whole_at..][..whole_len]`: the members of the patterns that are a whole
    /// literal.
    whole_at: u32,
    whole_len: u16,
    /// `checks[checks_at..][..checks_len]`: the members whose literal goes on past the
    /// prefix (and that no whole literal ending here already sets). The first `short_len`
    /// have rests shorter than a key; the others are sorted by their key's bytes, so that
    /// those that can follow are found by a binary search (on an HTML page, the states
    /// reached by "<titl" and "syste" hold 96 and 49 checks).
    checks_at: u32,
    checks_len: u32,
    short_len: u16,
}

/// Member bits of one candidate word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Mask {
    word: u32,
    bits: u64,
}

/// A member whose literal counts only if its rest follows where the prefix ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Check {
    /// The rest's first `KEY_BYTES` bytes (fewer if it is shorter), lower-cased, in the low
    /// bytes of a little-endian word, and the rest's length in its top two: most rests fail
    /// on the key in one comparison, without a look at the member's bit or the rest's
    /// bytes. (Rests after a common prefix often share their first byte: on an HTML page,
    /// "<titl" is followed by "e" for ninety-odd web-shell titles.)
    key: u64,
    member: u32,
    /// `rest_bytes[rest_at..][..rest_len - KEY_BYTES]`: the rest past its key.
    rest_at: u32,
}

/// Bytes of a rest in its `Check::key`.
const KEY_BYTES: usize = 6;
/// The bits of `Check::key` that hold the rest's bytes.
const KEY_MASK: u64 = (1 << (8 * KEY_BYTES)) - 1;

impl Check {
    fn new(rest: &[u8], member: u32, rest_at: u32) -> Option<Check> {
        let len = u64::from(u16::try_from(rest.len()).ok()?);
        Some(Check {
            key: key_window(rest) | len << (8 * KEY_BYTES),
            member,
            rest_at,
        })
    }

    fn rest_len(&self) -> usize {
        (self.key >> (8 * KEY_BYTES)) as usize
    }

    /// Whether the rest starts as `window` (see `key_window`) does, as far as the key goes.
    fn key_matches(&self, window: u64) -> bool {
        let mask = (1u64 << (8 * self.rest_len().min(KEY_BYTES))) - 1;
        window & mask == self.key & mask
    }
}

/// The first `KEY_BYTES` bytes of `bytes`, ASCII lower-cased, as a little-endian word, zeros
/// past the end.
fn key_window(bytes: &[u8]) -> u64 {
    // Mostly one load: copying fewer bytes than a word is a call to memcpy.
    let word = match bytes.first_chunk::<8>() {
        Some(word) => u64::from_le_bytes(*word) & KEY_MASK,
        None => {
            let mut window = [0u8; 8];
            let n = bytes.len().min(KEY_BYTES);
            window[..n].copy_from_slice(&bytes[..n]);
            u64::from_le_bytes(window)
        }
    };
    ascii_lowercase_word(word)
}

/// `to_ascii_lowercase` on each byte of a word at once.
fn ascii_lowercase_word(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = x & (0x7f * ONES);
    // Top bit of a byte set where its low seven bits are at least 'A', resp. past 'Z'
    // (no carry crosses into the next byte).
    let from_a = low7 + u64::from(0x80 - b'A') * ONES;
    let past_z = low7 + u64::from(0x80 - b'Z' - 1) * ONES;
    let upper = from_a & !past_z & !x & (0x80 * ONES);
    x | (upper >> 2)
}

/// One phase literal cut to the scanned prefix.
struct PhasePattern {
    member: u32,
    rest: Vec<u8>,
}

/// Member bits `members` (sorted, deduplicated) as word masks.
fn masks_of(members: &[u32]) -> Vec<Mask> {
    let mut out: Vec<Mask> = Vec::new();
    for &m in members {
        let (word, bit) = (m / 64, 1u64 << (m % 64));
        match out.last_mut() {
            Some(last) if last.word == word => last.bits |= bit,
            _ => out.push(Mask { word, bits: bit }),
        }
    }
    out
}

/// Appends `items` to `store` unless the same run is there already; returns its start.
fn intern<T: Clone + Eq + std::hash::Hash>(
    store: &mut Vec<T>,
    seen: &mut FxHashMap<Vec<T>, u32>,
    items: Vec<T>,
) -> u32 {
    if items.is_empty() {
        return 0;
    }
    *seen.entry(items).or_insert_with_key(|items| {
        store.extend_from_slice(items);
        (store.len() - items.len()) as u32
    })
}

impl PhaseScan {
    /// Builds the scan over `pats` (already cut to prefixes, with the member and rest of
    /// each); `None` if the automaton or its state table cannot be built.
    fn build(prefixes: &[Vec<u8>], pats: &[PhasePattern], words: usize) -> Option<PhaseScan> {
        let dfa = dfa::Builder::new()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .prefilter(false)
            .start_kind(StartKind::Unanchored)
            .build(prefixes)
            .ok()?;
        // Walk every state reachable from the unanchored start (those a scan can be in),
        // splitting the bytes into classes on the way: bytes whose transitions agree in
        // every state share one (no more than 256 can come out). In each state the first
        // byte seen of a class decides; only bytes that part from it need the map.
        let start = dfa.start_state(Anchored::No).ok()?;
        let mut seen: FxHashSet<StateID> = FxHashSet::default();
        seen.insert(start);
        let mut reached = vec![start];
        let mut classes = [0u8; 256];
        let mut split: FxHashMap<(u8, StateID), u8> = FxHashMap::default();
        let mut todo = 0;
        while let Some(&sid) = reached.get(todo) {
            todo += 1;
            split.clear();
            // Per class so far: the next state of its first byte here, and its new class.
            let mut first: [Option<(StateID, u8)>; 256] = [None; 256];
            let mut count = 0usize;
            for b in 0..=255u8 {
                let old = classes[usize::from(b)];
                let next = dfa.next_state(Anchored::No, sid, b);
                let mut new_class = || {
                    if seen.insert(next) {
                        reached.push(next);
                    }
                    count += 1;
                    (count - 1) as u8
                };
                classes[usize::from(b)] = match first[usize::from(old)] {
                    Some((n, class)) if n == next => class,
                    Some(_) => *split.entry((old, next)).or_insert_with(new_class),
                    None => {
                        let class = new_class();
                        first[usize::from(old)] = Some((next, class));
                        class
                    }
                };
            }
        }
        if reached.len() > usize::from(u16::MAX) {
            return None;
        }
        // Match states last, so that one comparison tells them.
        reached.sort_by_key(|&sid| dfa.is_match(sid));
        let number: FxHashMap<StateID, u16> = reached
            .iter()
            .enumerate()
            .map(|(i, &sid)| (sid, i as u16))
            .collect();
        let first_match = reached
            .iter()
            .position(|&sid| dfa.is_match(sid))
            .unwrap_or(reached.len()) as u16;
        let class_count = usize::from(classes.iter().copied().max().unwrap_or(0)) + 1;
        let column = |class: u8| u32::try_from(usize::from(class) * reached.len()).ok();
        let mut columns = [0u32; 256];
        let mut example = [0u8; 256];
        for b in 0..=255u8 {
            let class = classes[usize::from(b)];
            columns[usize::from(b)] = column(class)?;
            example[usize::from(class)] = b;
        }
        let mut trans = Vec::with_capacity(class_count * reached.len());
        for &b in &example[..class_count] {
            for &sid in &reached {
                trans.push(number[&dfa.next_state(Anchored::No, sid, b)]);
            }
        }
        let mut prefix_bits = Vec::with_capacity(reached.len() - usize::from(first_match));
        let mut state_bits = Vec::with_capacity(reached.len() - usize::from(first_match));
        let mut states = Vec::new();
        let mut state_ids: FxHashMap<StateBits, u16> = FxHashMap::default();
        let (mut masks, mut checks, mut rest_bytes) = (Vec::new(), Vec::new(), Vec::new());
        let mut mask_runs = FxHashMap::default();
        let mut check_runs = FxHashMap::default();
        let mut rests: FxHashMap<Vec<u8>, u32> = FxHashMap::default();
        for &sid in &reached[usize::from(first_match)..] {
            let (mut every, mut whole, mut rested) = (Vec::new(), Vec::new(), Vec::new());
            for k in 0..dfa.match_len(sid) {
                let p = &pats[dfa.match_pattern(sid, k).as_usize()];
                every.push(p.member);
                if p.rest.is_empty() {
                    whole.push(p.member);
                } else {
                    rested.push(p);
                }
            }
            for v in [&mut every, &mut whole] {
                v.sort_unstable();
                v.dedup();
            }
            let mut state_checks: Vec<Check> = rested
                .into_iter()
                .filter(|p| whole.binary_search(&p.member).is_err())
                .map(|p| {
                    let lower = p.rest.to_ascii_lowercase();
                    let tail = &lower[lower.len().min(KEY_BYTES)..];
                    let rest_at = *rests.entry(tail.to_vec()).or_insert_with_key(|tail| {
                        rest_bytes.extend_from_slice(tail);
                        (rest_bytes.len() - tail.len()) as u32
                    });
                    Check::new(&lower, p.member, rest_at)
                })
                .collect::<Option<_>>()?;
            state_checks.sort_unstable_by_key(|c| (c.member, c.key, c.rest_at));
            state_checks.dedup();
            state_checks.sort_by_key(|c| (c.rest_len() >= KEY_BYTES, c.key & KEY_MASK));
            let short_len = state_checks
                .iter()
                .take_while(|c| c.rest_len() < KEY_BYTES)
                .count();
            let (mut every, whole) = (masks_of(&every), masks_of(&whole));
            let first = (!every.is_empty()).then(|| every.remove(0))?;
            let head = PrefixBits {
                bits: first.bits,
                word: u16::try_from(first.word).ok()?,
                more: u16::try_from(every.len()).ok()?,
                masks_at: intern(&mut masks, &mut mask_runs, every),
            };
            prefix_bits.push(head);
            let bits = StateBits {
                whole_len: u16::try_from(whole.len()).ok()?,
                checks_len: state_checks.len() as u32,
                short_len: u16::try_from(short_len).ok()?,
                whole_at: intern(&mut masks, &mut mask_runs, whole),
                checks_at: intern(&mut checks, &mut check_runs, state_checks),
            };
            let next = states.len() as u16;
            let id = *state_ids.entry(bits).or_insert(next);
            if id == next {
                states.push(bits);
            }
            state_bits.push(id);
        }
        // Grown by doubling: the spare capacity would stay in every worker for nothing.
        masks.shrink_to_fit();
        checks.shrink_to_fit();
        states.shrink_to_fit();
        rest_bytes.shrink_to_fit();
        Some(PhaseScan {
            columns,
            trans,
            start: number[&start],
            first_match,
            prefix_bits,
            state_bits,
            states,
            masks,
            checks,
            rest_bytes,
            words,
            longest: prefixes.iter().map(Vec::len).max().unwrap_or(0),
        })
    }

    /// Set in `bits` the bit of every member one of whose literals occurs in `value` (or,
    /// in a short value, one of whose literals' prefixes does).
    pub fn scan(&self, value: &[u8], bits: &mut [u64]) {
        // Comparing the rest of the literals costs on every prefix match; it pays where a
        // member let through for nothing then searches a long value (a response body).
        if value.len() < EXACT_FROM {
            self.scan_prefixes(value, bits);
        } else {
            self.scan_literals(value, bits);
        }
    }

    /// The sum is taken in 32 bits (a state and a column's start fit), so that the column's
    /// start is added to the state straight from memory: one instruction, not a load and an
    /// add.
    fn next(&self, state: usize, byte: u8) -> usize {
        usize::from(self.trans[(self.columns[usize::from(byte)] + state as u32) as usize])
    }

    /// What match state `state` sets (`None`: not a match state).
    fn state_bits(&self, state: usize) -> Option<&StateBits> {
        let m = state.checked_sub(usize::from(self.first_match))?;
        Some(&self.states[usize::from(self.state_bits[m])])
    }

    fn or_masks(&self, at: u32, len: u16, bits: &mut [u64]) {
        for m in &self.masks[at as usize..][..usize::from(len)] {
            bits[m.word as usize] |= m.bits;
        }
    }

    /// Sets the bits of the literals' prefixes in a short value: in lanes, as
    /// [`PhaseScan::scan_literals`] does, once the value is long enough for the lanes' walks
    /// (each `longest - 1` bytes longer) to end sooner than one walk.
    fn scan_prefixes(&self, value: &[u8], bits: &mut [u64]) {
        let warm = self.longest.saturating_sub(1);
        let n = value.len();
        if n >= 4 * (warm + PREFIX_LANE_BYTES) {
            self.prefix_lanes4(value, warm, bits);
        } else if n >= 2 * (warm + PREFIX_LANE_BYTES) {
            self.prefix_lanes2(value, warm, bits);
        } else {
            self.walk_prefixes(usize::from(self.start), value, bits);
        }
    }

    fn walk_prefixes(&self, mut state: usize, value: &[u8], bits: &mut [u64]) {
        // Two bytes a turn: half the loop's own instructions.
        let pairs = value.chunks_exact(2);
        let last = pairs.remainder();
        for pair in pairs {
            state = self.next(state, pair[0]);
            self.on_prefix(state, bits);
            state = self.next(state, pair[1]);
            self.on_prefix(state, bits);
        }
        for &b in last {
            state = self.next(state, b);
            self.on_prefix(state, bits);
        }
    }

    /// Inlined into each walk: a call per byte would cost as much as the step itself.
    #[inline(always)]
    fn on_prefix(&self, state: usize, bits: &mut [u64]) {
        if let Some(m) = state.checked_sub(usize::from(self.first_match)) {
            let p = &self.prefix_bits[m];
            bits[usize::from(p.word)] |= p.bits;
            if p.more > 0 {
                self.or_masks(p.masks_at, p.more, bits);
            }
        }
    }

    /// The start states of lanes 1.. of a walk over `stretch`-byte stretches of `value`:
    /// each lane starts `warm` bytes before its stretch. A prefix's bits depend on the state
    /// reached only, so the lanes set what one walk sets.
    fn lane_starts<const L: usize>(&self, value: &[u8], stretch: usize, warm: usize) -> [usize; L] {
        let mut states = [usize::from(self.start); L];
        for (k, s) in states.iter_mut().enumerate().skip(1) {
            for &b in &value[k * stretch - warm..k * stretch] {
                *s = self.next(*s, b);
            }
        }
        states
    }

    /// [`PhaseScan::walk_prefixes`] over 4 stretches of `value` side by side: the walk is one
    /// dependent table load per byte, and the lanes' loads overlap. The stretches are zipped
    /// (not indexed), so that reading a lane's byte takes no bounds check.
    fn prefix_lanes4(&self, value: &[u8], warm: usize, bits: &mut [u64]) {
        let stretch = value.len() / 4;
        let [mut s0, mut s1, mut s2, mut s3] = self.lane_starts::<4>(value, stretch, warm);
        let (l0, rest) = value.split_at(stretch);
        let (l1, rest) = rest.split_at(stretch);
        let (l2, rest) = rest.split_at(stretch);
        let (l3, tail) = rest.split_at(stretch);
        for (((&b0, &b1), &b2), &b3) in l0.iter().zip(l1).zip(l2).zip(l3) {
            s0 = self.next(s0, b0);
            s1 = self.next(s1, b1);
            s2 = self.next(s2, b2);
            s3 = self.next(s3, b3);
            self.on_prefix(s0, bits);
            self.on_prefix(s1, bits);
            self.on_prefix(s2, bits);
            self.on_prefix(s3, bits);
        }
        // The last stretch goes on to the end of the value.
        self.walk_prefixes(s3, tail, bits);
    }

    /// [`PhaseScan::prefix_lanes4`] in 2 lanes.
    fn prefix_lanes2(&self, value: &[u8], warm: usize, bits: &mut [u64]) {
        let stretch = value.len() / 2;
        let [mut s0, mut s1] = self.lane_starts::<2>(value, stretch, warm);
        let (l0, rest) = value.split_at(stretch);
        let (l1, tail) = rest.split_at(stretch);
        for (&b0, &b1) in l0.iter().zip(l1) {
            s0 = self.next(s0, b0);
            s1 = self.next(s1, b1);
            self.on_prefix(s0, bits);
            self.on_prefix(s1, bits);
        }
        self.walk_prefixes(s1, tail, bits);
    }

    /// Sets the bits of the whole literals in `value`. The walk is one dependent table load
    /// per byte, so `LANES` stretches of the value are walked side by side, each from the
    /// start state `longest - 1` bytes before its stretch (matches in those first bytes are
    /// its left neighbour's): every match state then has the matches a single walk has
    /// there, and what a match sets depends on its matches and the bytes after it only.
    #[inline(never)]
    fn scan_literals(&self, value: &[u8], bits: &mut [u64]) {
        let stretch = value.len() / LANES;
        let warm = self.longest.saturating_sub(1);
        if stretch <= warm {
            self.walk_literals(usize::from(self.start), value, 0, bits);
            return;
        }
        let mut states = [usize::from(self.start); LANES];
        for (k, s) in states.iter_mut().enumerate().skip(1) {
            for &b in &value[k * stretch - warm..k * stretch] {
                *s = self.next(*s, b);
            }
        }
        let lanes: [&[u8]; LANES] = std::array::from_fn(|k| &value[k * stretch..][..stretch]);
        let first_match = usize::from(self.first_match);
        let mut from = 0;
        while let Some(i) = self.lanes_to_match(&mut states, &lanes, from) {
            for (k, &s) in states.iter().enumerate() {
                if s >= first_match {
                    self.on_match(s, value, k * stretch + i + 1, bits);
                }
            }
            from = i + 1;
        }
        // The last stretch goes on to the end of the value.
        self.walk_literals(states[LANES - 1], value, LANES * stretch, bits);
    }

    /// Walks `value[from..]` from `state`, setting the bits of the whole literals that end
    /// there.
    fn walk_literals(&self, mut state: usize, value: &[u8], from: usize, bits: &mut [u64]) {
        let mut at = from;
        while let Some(len) = self.to_match(&mut state, &value[at..]) {
            at += len;
            self.on_match(state, value, at, bits);
        }
    }

    /// Sets what match state `state`, reached with `value[at - 1]`, sets in a long value.
    fn on_match(&self, state: usize, value: &[u8], at: usize, bits: &mut [u64]) {
        let Some(s) = self.state_bits(state) else {
            return;
        };
        self.or_masks(s.whole_at, s.whole_len, bits);
        let after = &value[at..];
        if after.is_empty() || s.checks_len == 0 {
            return;
        }
        let window = key_window(after);
        let checks = &self.checks[s.checks_at as usize..][..s.checks_len as usize];
        let (short, full) = checks.split_at(usize::from(s.short_len));
        let from = full.partition_point(|c| c.key & KEY_MASK < window);
        let same_key = full[from..]
            .iter()
            .take_while(|c| c.key & KEY_MASK == window);
        for c in short.iter().chain(same_key) {
            let len = c.rest_len();
            // The window is padded with zeros: the length decides past the value's end.
            if !c.key_matches(window) || after.len() < len {
                continue;
            }
            let (word, bit) = ((c.member / 64) as usize, 1 << (c.member % 64));
            if bits[word] & bit != 0 {
                continue;
            }
            let Some(more) = after[..len].get(KEY_BYTES..) else {
                bits[word] |= bit;
                continue;
            };
            let rest = &self.rest_bytes[c.rest_at as usize..][..more.len()];
            // The rest is stored lower-cased: one conversion a byte, not two.
            if more
                .iter()
                .zip(rest)
                .all(|(a, r)| a.to_ascii_lowercase() == *r)
            {
                bits[word] |= bit;
            }
        }
    }

    /// Steps every lane through its bytes from `from` on, up to the first position where
    /// one of them is in a match state; that position. The lanes are zipped (not indexed)
    /// and their states kept apart, so that the loop reads each byte without a bounds check
    /// and holds its states in registers.
    #[inline(never)]
    fn lanes_to_match(
        &self,
        states: &mut [usize; LANES],
        lanes: &[&[u8]; LANES],
        from: usize,
    ) -> Option<usize> {
        let (trans, columns) = (&self.trans[..], &self.columns);
        let first_match = usize::from(self.first_match);
        // As `PhaseScan::next` steps.
        let step =
            |s: usize, b: u8| usize::from(trans[(columns[usize::from(b)] + s as u32) as usize]);
        let [l0, l1, l2, l3, l4, l5] = *lanes;
        let [mut s0, mut s1, mut s2, mut s3, mut s4, mut s5] = *states;
        let mut found = None;
        for (i, (((((&b0, &b1), &b2), &b3), &b4), &b5)) in l0[from..]
            .iter()
            .zip(&l1[from..])
            .zip(&l2[from..])
            .zip(&l3[from..])
            .zip(&l4[from..])
            .zip(&l5[from..])
            .enumerate()
        {
            s0 = step(s0, b0);
            s1 = step(s1, b1);
            s2 = step(s2, b2);
            s3 = step(s3, b3);
            s4 = step(s4, b4);
            s5 = step(s5, b5);
            // The match states are numbered last, and the states a text mostly visits
            // (near the start, breadth first) have small numbers: where no lane is in a
            // match state, the states' sum is mostly below `first_match` too (as their
            // maximum is). One comparison a step, and the exact test only where the sum is
            // not below: on the bench's page in 4 lanes, 33 of 838 steps with no lane in a
            // match state, 31 with one (their OR: 19 with none, but 5 instructions, the
            // sum's 3).
            if s0 + s1 + s2 + s3 + s4 + s5 >= first_match
                && [s0, s1, s2, s3, s4, s5].iter().any(|&s| s >= first_match)
            {
                found = Some(from + i);
                break;
            }
        }
        *states = [s0, s1, s2, s3, s4, s5];
        found
    }

    /// Walks `value` from `state` up to the first match state; how many bytes that took.
    /// Only the bytes past the lanes' stretches (fewer than `LANES`) and values too short to
    /// split are walked this way.
    fn to_match(&self, state: &mut usize, value: &[u8]) -> Option<usize> {
        let first_match = usize::from(self.first_match);
        let found = value.iter().position(|&b| {
            *state = self.next(*state, b);
            *state >= first_match
        });
        found.map(|i| i + 1)
    }
}

/// Per-rule and per-group prefilters.
#[derive(Debug, Default)]
pub struct Prefilter {
    /// Indexed like `RuleSet::rules`; `None` = always evaluate.
    by_rule: Vec<Option<AhoCorasick>>,
    /// Indexed like `RuleSet::rules`: a test on a value before its transformations (see
    /// [`RawScreen`]).
    raw_screens: Vec<Option<Box<RawScreen>>>,
    /// Indexed like `RuleSet::rules`: (group, member index).
    pub member: Vec<Option<(u32, u16)>>,
    pub groups: Vec<Group>,
    /// Every group's targets, group after group.
    pub group_targets: Vec<GroupTarget>,
    /// Their chains, target after target.
    group_chains: Vec<GroupChain>,
    /// Each distinct set of groups' targets, as the range of [`Prefilter::group_targets`]
    /// of the first group with it (see [`Prefilter::set_targets`]).
    pub target_sets: Vec<(u32, u32)>,
    /// The groups' targets (without exclusions), by target id: listed once per phase.
    pub targets: Vec<Target>,
    /// By target id: the transformations of every group's chains for it
    /// ([`GroupTarget::transforms`] or-ed), tested on its values at once.
    pub target_transforms: Vec<u64>,
    /// Indexed by phase; phases 1 and 2 share one (see [`scan_slot`]).
    pub phases: Vec<Option<Arc<PhaseScan>>>,
    /// The widest phase's candidate bits, in words.
    pub words: usize,
    /// Indexed by chain: the chain whose values units scan for members with that chain
    /// (see [`scan_chain`]); the chain itself when it has no shorter equivalent.
    scan_chains: Vec<Option<ChainId>>,
}

/// The transformations of `chain`, first to last.
fn chain_steps(chains: &ChainTable, chain: Option<ChainId>) -> Vec<transformations::TransformId> {
    let mut steps = Vec::new();
    let mut cur = chain;
    while let Some(c) = cur {
        let (parent, t) = chains.nodes[c as usize];
        steps.push(t);
        cur = parent;
    }
    steps.reverse();
    steps
}

/// For a rule whose transformations only delete bytes (`removeWhitespace`, `removeNulls`)
/// and lower-case ASCII letters: what its operator needs of a value, asked before the value
/// is transformed. One of the operator's literals (each ASCII-case-blind, one of which a
/// match contains) must then occur in the raw value once the deleted bytes are skipped and
/// case is ignored. Over a response body, CRS 955300 (`t:removeWhitespace,t:lowercase`,
/// `@contains` a web shell's title) costs a search for the title's rarest letter (see
/// [`anchor`]) and a few byte comparisons around each, instead of a copy of the page without
/// whitespace and a search in it.
#[derive(Debug)]
pub struct RawScreen {
    /// The literals without the deleted bytes, lower-cased, each with its [`anchor`].
    literals: Vec<(Vec<u8>, usize)>,
    deleted: [bool; 256],
}

/// The index of the byte of `literal` (lower-cased) that a screen searches the value for,
/// and then compares the rest around: its rarest alphanumeric byte by [`FREQUENT_BYTES`]
/// (the first such if several), or its rarest byte if it has none. Markup bytes are not
/// rare in the bodies screened (HTML, JSON), whatever their rank in requests: on the bench's
/// 3.4 KB page `<` occurs 139 times, the `k` of 955300's title 11 (callgrind, response
/// transaction: 12.1 k instructions in the screen searching for `<`, 2.1 k for `k`).
fn anchor(literal: &[u8]) -> usize {
    let rarity = |b: u8| {
        let rank = FREQUENT_BYTES.iter().position(|&f| f == b);
        (
            b.is_ascii_alphanumeric(),
            rank.unwrap_or(FREQUENT_BYTES.len()),
        )
    };
    (0..literal.len())
        .max_by_key(|&i| (rarity(literal[i]), std::cmp::Reverse(i)))
        .unwrap_or(0)
}

/// The bytes `cmdLine` drops or folds into a space: no value it returns holds one.
const CMD_LINE_GONE: &[u8] = b"\\\"'^,;\t\r\n";

impl RawScreen {
    fn new(literals: &[Vec<u8>], steps: &[transformations::TransformId]) -> Option<RawScreen> {
        let lookup = |name| transformations::lookup(name).expect("a built-in transformation");
        let (lowercase, whitespace, nulls, cmd_line) = (
            lookup("lowercase"),
            lookup("removeWhitespace"),
            lookup("removeNulls"),
            lookup("cmdLine"),
        );
        let mut deleted = [false; 256];
        let mut gone: &[u8] = &[];
        for &t in steps {
            if t == whitespace {
                for (b, d) in deleted.iter_mut().enumerate() {
                    *d |= transformations::is_space(b as u8);
                }
            } else if t == nulls {
                deleted[0] = true;
            } else if t == cmd_line {
                // Every byte it drops, and the spaces it drops or folds others into: a
                // literal's other bytes come from the same bytes in the value, with only
                // those between them. None of the steps allowed here makes a byte of
                // `CMD_LINE_GONE` again.
                for &b in CMD_LINE_GONE.iter().chain(b" ") {
                    deleted[usize::from(b)] = true;
                }
                gone = CMD_LINE_GONE;
            } else if t != lowercase {
                return None;
            }
        }
        // Without deletions the value is scanned as it is, or nearly: nothing to save.
        if !deleted.contains(&true) {
            return None;
        }
        let literals: Vec<(Vec<u8>, usize)> = literals
            .iter()
            // A literal with a byte the chain never returns cannot occur.
            .filter(|l| !l.iter().any(|b| gone.contains(b)))
            .map(|l| {
                let kept: Vec<u8> = l
                    .iter()
                    .filter(|&&b| !deleted[usize::from(b)])
                    .map(u8::to_ascii_lowercase)
                    .collect();
                let at = anchor(&kept);
                (kept, at)
            })
            .collect();
        // A literal made only of deleted bytes occurs in every value.
        if literals.is_empty() || literals.iter().any(|(l, _)| l.is_empty()) {
            return None;
        }
        Some(RawScreen { literals, deleted })
    }

    /// Whether the rule can match a value that is `raw` before its transformations.
    pub fn may_match(&self, raw: &[u8]) -> bool {
        self.literals
            .iter()
            .any(|(literal, at)| self.occurs(raw, literal, *at))
    }

    /// Whether `literal` (lower-cased, without deleted bytes) occurs in `raw` with deleted
    /// bytes skipped and ASCII case ignored, or may: past a budget of byte comparisons
    /// linear in `raw` (a literal that overlaps itself, `qqqa` searched for `q`, on `qqqq…`,
    /// would make the search quadratic) it gives up and says yes, and the transformations
    /// run. Each occurrence of the literal's byte `anchor` is a candidate: the bytes before
    /// it are compared backwards, those after it forwards.
    fn occurs(&self, raw: &[u8], literal: &[u8], anchor: usize) -> bool {
        let (before, from_anchor) = literal.split_at(anchor);
        let (&key, after) = from_anchor
            .split_first()
            .expect("the anchor is a byte of the literal");
        let mut budget = 4 * raw.len() + 64;
        let around = |at: usize| {
            let forwards = raw[at + 1..].iter().copied();
            let backwards = raw[..at].iter().rev().copied();
            self.reads(forwards, after.iter().copied(), &mut budget)
                && self.reads(backwards, before.iter().rev().copied(), &mut budget)
        };
        let upper = key.to_ascii_uppercase();
        if upper == key {
            memchr::memchr_iter(key, raw).any(around)
        } else {
            memchr::memchr2_iter(key, upper, raw).any(around)
        }
    }

    /// Whether `bytes`, deleted bytes skipped and ASCII case ignored, start with `want`
    /// (lower-cased); also true once `budget` comparisons are spent.
    fn reads(
        &self,
        bytes: impl Iterator<Item = u8>,
        want: impl Iterator<Item = u8>,
        budget: &mut usize,
    ) -> bool {
        let mut want = want.peekable();
        for b in bytes {
            let Some(&w) = want.peek() else {
                break;
            };
            if *budget == 0 {
                return true;
            }
            *budget -= 1;
            if self.deleted[usize::from(b)] {
                continue;
            }
            if b.to_ascii_lowercase() != w {
                return false;
            }
            want.next();
        }
        want.peek().is_none()
    }
}

/// The most literals a group may look for to get [`ChainScreen`]s: each is searched for in
/// the raw value on its own.
const CHAIN_SCREEN_LITERALS: usize = 8;

/// A test that can spare a group's chain for a value: computed and scanned only where it
/// passes.
#[derive(Debug)]
// Held boxed beside each chain: the smaller variant's size costs nothing per chain.
#[allow(clippy::large_enum_variant)]
pub enum ChainScreen {
    Deleting(DeletingScreen),
    Decoded(DecodedScreen),
}

impl ChainScreen {
    fn new(
        chains: &ChainTable,
        chain: Option<ChainId>,
        literals: &[Vec<u8>],
    ) -> Option<Box<ChainScreen>> {
        // A chain through `base64Decode` changes every value before a deleting tail: only
        // the decoded screen can answer for it.
        let screen = match DecodedScreen::new(chains, chain, literals) {
            Some(s) => ChainScreen::Decoded(s),
            None => ChainScreen::Deleting(DeletingScreen::new(chains, chain, literals)?),
        };
        Some(Box::new(screen))
    }
}

/// For a group's chain that ends in steps which only delete bytes and fold case (CRS
/// 930110's `multiMatch` through `…,t:removeNulls,t:cmdLine`): on a value that the steps
/// before them leave as it is, the chain's value is the raw value with bytes deleted and
/// case folded, so a [`RawScreen`] over the group's literals tells from the raw value that
/// the chain's value holds none; the chain is then neither computed nor scanned for it.
#[derive(Debug)]
pub struct DeletingScreen {
    /// The steps before those (bits `1 << id`): the screen holds for a value none of them
    /// changes.
    pub before: u64,
    /// Those steps: a value none of them changes either is the raw value, scanned anyway.
    pub deleting: u64,
    pub screen: RawScreen,
}

impl DeletingScreen {
    fn new(
        chains: &ChainTable,
        chain: Option<ChainId>,
        literals: &[Vec<u8>],
    ) -> Option<DeletingScreen> {
        if literals.is_empty() || literals.len() > CHAIN_SCREEN_LITERALS {
            return None;
        }
        let steps = chain_steps(chains, chain);
        let deleting = ["lowercase", "removeWhitespace", "removeNulls", "cmdLine"]
            .map(|name| transformations::lookup(name).expect("a built-in transformation"));
        let tail = steps
            .iter()
            .rposition(|t| !deleting.contains(t))
            .map_or(0, |i| i + 1);
        if tail == steps.len() {
            return None;
        }
        let screen = RawScreen::new(literals, &steps[tail..])?;
        let mask =
            |steps: &[transformations::TransformId]| steps.iter().fold(0, |m, &t| m | 1u64 << t);
        Some(DeletingScreen {
            before: mask(&steps[..tail]),
            deleting: mask(&steps[tail..]),
            screen,
        })
    }
}

/// The steps that may follow `base64Decode` in a [`DecodedScreen`]'s chain: each returns
/// bytes of its input, their lower case and spaces only, but for the URL decoders on a
/// value with `%` and `jsDecode` on one with a backslash (see [`DECODED_WILD`]).
const AFTER_DECODING: [&str; 12] = [
    "compressWhitespace",
    "jsDecode",
    "lowercase",
    "removeNulls",
    "removeWhitespace",
    "replaceComments",
    "replaceNulls",
    "trim",
    "trimLeft",
    "trimRight",
    "urlDecode",
    "urlDecodeUni",
];

/// The bytes from which the [`AFTER_DECODING`] steps can make any byte (escapes); none of
/// them makes one of these from other bytes, so a decoded value without them never gets one.
const DECODED_WILD: &[u8] = b"%\\";

/// A set of bytes: bit `b % 64` of word `b / 64`.
pub type ByteSet = [u64; 4];

fn byte_set_of(bytes: &[u8]) -> ByteSet {
    let mut set = [0; 4];
    for &b in bytes {
        set[usize::from(b / 64)] |= 1 << (b % 64);
    }
    set
}

/// For a group's chain through `base64Decode` (CRS 934100 and 934160, `multiMatch` on
/// every stage after it): an ordinary word decodes to a few bytes of binary, mostly above
/// ASCII, which the steps after it ([`AFTER_DECODING`]) can only delete, lower-case or
/// add spaces to unless it holds an escape byte ([`DECODED_WILD`]). A value's scan holds a
/// literal (ASCII case ignored) only if each of the literal's bytes is one of those, so
/// the set of decoded bytes (gathered without writing them) can tell that the chain's
/// value holds none of the group's literals: the chain is then neither computed nor
/// scanned for it.
#[derive(Debug)]
pub struct DecodedScreen {
    /// The chain whose value the (last) `base64Decode` decodes (`None`: the raw value).
    pub input: Option<ChainId>,
    /// Each literal's bytes (lower case).
    literals: Vec<ByteSet>,
}

/// The most literals a group may look for to get [`DecodedScreen`]s: each costs a test of
/// a few words per value (CRS 934100 has 23).
const DECODED_SCREEN_LITERALS: usize = 64;

impl DecodedScreen {
    fn new(
        chains: &ChainTable,
        chain: Option<ChainId>,
        literals: &[Vec<u8>],
    ) -> Option<DecodedScreen> {
        if literals.is_empty() || literals.len() > DECODED_SCREEN_LITERALS {
            return None;
        }
        let lookup = |name| transformations::lookup(name).expect("a built-in transformation");
        let steps = chain_steps(chains, chain);
        let at = steps.iter().rposition(|&t| t == lookup("base64Decode"))?;
        let after = AFTER_DECODING.map(lookup);
        if !steps[at + 1..].iter().all(|t| after.contains(t)) {
            return None;
        }
        // The chain's node `steps.len() - at` steps up from its end is its prefix before
        // the decoding.
        let mut input = chain;
        for _ in at..steps.len() {
            input = chains.nodes[input? as usize].0;
        }
        let literals = literals
            .iter()
            .map(|l| byte_set_of(&l.to_ascii_lowercase()))
            .collect();
        Some(DecodedScreen { input, literals })
    }

    /// Whether the chain's value may hold one of the literals, given the value `input`
    /// that its `base64Decode` decodes.
    pub fn may_match(&self, input: &[u8]) -> bool {
        self.may_hold(&transformations::base64_decoded_bytes(input))
    }

    /// [`DecodedScreen::may_match`] for the input whose decoded bytes are `decoded`
    /// ([`transformations::base64_decoded_bytes`]).
    pub fn may_hold(&self, decoded: &ByteSet) -> bool {
        let decoded = *decoded;
        let wild = byte_set_of(DECODED_WILD);
        if (0..4).any(|w| decoded[w] & wild[w] != 0) {
            return true;
        }
        // The bytes the chain's value may hold, lower-cased as the scan compares them.
        let mut held = decoded;
        held[0] |= 1 << b' ';
        held[1] |= (held[1] & UPPER_WORD) << 32;
        self.literals
            .iter()
            .any(|l| (0..4).all(|w| l[w] & !held[w] == 0))
    }
}

/// The ASCII upper-case letters in word 1 (bytes 64 to 127) of a [`ByteSet`]; their lower
/// case is 32 bits up.
const UPPER_WORD: u64 = ((1 << 26) - 1) << (b'A' - 64);

/// The chain whose values the phase scans in place of `chain`'s: `chain` without the
/// `lowercase` steps that only [case-blind](transformations::case_blind) ones follow. The
/// scan matches ASCII-case-insensitively, so both chains' values set the same member bits,
/// and units that differ only by such a step share their values.
fn scan_chain(chains: &mut ChainTable, chain: ChainId) -> Option<ChainId> {
    let mut steps = chain_steps(chains, Some(chain));
    let lowercase = transformations::lookup("lowercase");
    let blind_from = steps
        .iter()
        .rposition(|&t| !transformations::case_blind(t))
        .map_or(0, |i| i + 1);
    let mut at = 0;
    steps.retain(|&t| {
        at += 1;
        at <= blind_from || Some(t) != lowercase
    });
    chains.intern(&steps).last().copied()
}

/// Text that nearly every browser's request holds (User-Agents, `Accept` headers), lower
/// case: see [`scanned_part`].
const COMMON_TEXT: &[u8] = b"\
mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) \
chrome/124.0.0.0 safari/537.36 edg/124.0.0.0
mozilla/5.0 (macintosh; intel mac os x 10_15_7) applewebkit/605.1.15 (khtml, like gecko) \
version/17.4 safari/605.1.15
mozilla/5.0 (x11; linux x86_64; rv:128.0) gecko/20100101 firefox/128.0
mozilla/5.0 (iphone; cpu iphone os 17_4 like mac os x) applewebkit/605.1.15 \
(khtml, like gecko) version/17.4 mobile/15e148 safari/604.1
mozilla/5.0 (linux; android 14; pixel 8) applewebkit/537.36 (khtml, like gecko) \
chrome/124.0.0.0 mobile safari/537.36
mozilla/5.0 (compatible; googlebot/2.1; +http://www.google.com/bot.html)
mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)
text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8
gzip, deflate, br, zstd
en-us,en;q=0.9
";

/// The part of `literal` a phase automaton looks for, `prefix` being its prefix length:
/// the literal from its first `prefix`-byte window that is not [`COMMON_TEXT`]. A literal
/// that begins like a browser's request (`Mozilla/5.0 (compatible; AppScan;`, a scanner's
/// User-Agent in the list of CRS 913100) would otherwise set its member's bit in every
/// request, by its prefix alone, in the short values scanned for prefixes; wherever the
/// literal occurs, so does any part of it that runs to its end. The whole literal if every
/// window is common.
fn scanned_part(literal: &[u8], prefix: usize) -> &[u8] {
    if literal.len() <= prefix {
        return literal;
    }
    let common = |w: &[u8]| memchr::memmem::find(COMMON_TEXT, &w.to_ascii_lowercase()).is_some();
    (0..=literal.len() - prefix)
        .find(|&i| !common(&literal[i..i + prefix]))
        .map_or(literal, |i| &literal[i..])
}

/// The longest input [`shortest_input`] tries (the transformations' bounds grow with their
/// input, so a chain that cannot reach a length from it cannot from anything shorter).
const SHORT_INPUTS: usize = 64;

/// The fewest bytes an input needs for `chain` (`None`: none) to make of it a value of at
/// least `shortest` bytes, by the transformations' [`transformations::max_len`]; past
/// [`SHORT_INPUTS`] bytes, `SHORT_INPUTS + 1`. A group's scan of a shorter value through
/// the chain cannot find a literal: it is skipped, and the chain is not computed. Over
/// CRS v4.28.0 this spares `base64Decode` chains (934100, 934160) the short arguments.
fn shortest_input(chains: &ChainTable, chain: Option<ChainId>, shortest: u16) -> u16 {
    let steps = chain_steps(chains, chain);
    let reach = |n: usize| steps.iter().fold(n, |n, &t| transformations::max_len(t, n));
    (0..=SHORT_INPUTS)
        .find(|&n| reach(n) >= usize::from(shortest))
        .unwrap_or(SHORT_INPUTS + 1) as u16
}

/// The automaton (numbered by the first phase using it) that scans the values of `phase`'s
/// groups. Phases 1 and 2 share one over both phases' literals, numbering their members
/// apart: for a request without a body phase 2 sees exactly the values phase 1 saw, and a
/// value phase 1 scanned is not scanned again (over CRS v4.28.0, 15 of a benign GET's 37
/// phase-2 scans). The body's values are new values, scanned when phase 2 first asks.
pub fn scan_slot(phase: usize) -> usize {
    if phase == 2 {
        1
    } else {
        phase
    }
}

/// A group while it is being built.
struct Building {
    phase: usize,
    units: Vec<u32>,
    members: Vec<usize>,
}

impl Prefilter {
    pub fn build(rules: &[Rule], phases: &[Vec<Step>; 6], chains: &mut ChainTable) -> Prefilter {
        let _memo = ApartMemo::start();
        let lits: Vec<Option<Vec<Vec<u8>>>> = rules.iter().map(rule_literals).collect();
        let mut member = vec![None; rules.len()];
        let mut keyed: FxHashMap<String, usize> = FxHashMap::default();
        let mut unit_ids: FxHashMap<String, u32> = FxHashMap::default();
        let mut target_ids: FxHashMap<String, u32> = FxHashMap::default();
        let mut targets: Vec<Target> = Vec::new();
        let mut units: Vec<Unit> = Vec::new();
        let mut building: Vec<Building> = Vec::new();
        let mut scanned_as: FxHashMap<ChainId, Option<ChainId>> = FxHashMap::default();
        for (phase, steps) in phases.iter().enumerate() {
            for s in steps {
                let Step::Rule { rule: ri, .. } = *s else {
                    continue;
                };
                let r = &rules[ri];
                if lits[ri].is_none()
                    || r.targets.is_empty()
                    || r.targets.iter().any(|t| t.count || !phase_stable(t.var))
                    // A negated rule runs anyway; knowing its operator fails only pays where
                    // the operator would search a body.
                    || (r.negated && !r.targets.iter().all(|t| is_body(t.var)))
                {
                    continue;
                }
                let mut rule_chains: Vec<Option<ChainId>> = if r.actions.multi_match {
                    std::iter::once(None)
                        .chain(r.chain_ids.iter().map(|&c| Some(c)))
                        .collect()
                } else {
                    vec![r.chain_id()]
                };
                // Group targets number their target and count their chains in 16 bits.
                if targets.len() + r.targets.len() > usize::from(u16::MAX)
                    || rule_chains.len() > usize::from(u16::MAX)
                {
                    continue;
                }
                for c in &mut rule_chains {
                    if let Some(id) = *c {
                        let scanned = *scanned_as
                            .entry(id)
                            .or_insert_with(|| scan_chain(chains, id));
                        *c = scanned;
                    }
                }
                let mut group_units = Vec::new();
                for t in &r.targets {
                    let target_id = *target_ids.entry(target_key(t)).or_insert_with(|| {
                        let mut target = t.clone();
                        target.exclusions.clear();
                        targets.push(target);
                        targets.len() as u32 - 1
                    });
                    for &c in &rule_chains {
                        let key = format!("{}/{c:?}", target_key(t));
                        let u = *unit_ids.entry(key).or_insert_with(|| {
                            units.push(Unit {
                                target_id,
                                chain: c,
                            });
                            units.len() as u32 - 1
                        });
                        group_units.push(u);
                    }
                }
                group_units.sort_unstable();
                group_units.dedup();
                let key = format!("{phase}/{group_units:?}");
                let g = *keyed.entry(key).or_insert_with(|| {
                    building.push(Building {
                        phase,
                        units: group_units,
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
        // Number member bits automaton by automaton, group after group (the groups were
        // made phase by phase: phase 1's bits come before phase 2's).
        let mut groups = Vec::with_capacity(building.len());
        let (mut group_targets, mut group_chains): (Vec<GroupTarget>, _) = (Vec::new(), Vec::new());
        let mut target_transforms = vec![0u64; targets.len()];
        let mut target_sets = Vec::new();
        let mut set_ids: FxHashMap<Vec<u16>, u32> = FxHashMap::default();
        let mut set_groups = Vec::new();
        let mut next_bit = [0usize; 6];
        for b in &building {
            let slot = scan_slot(b.phase);
            let bit = next_bit[slot];
            // The part of a literal the automaton looks for ([`scanned_part`]) is the whole
            // literal or at least a prefix long: the literal's length answers.
            let shortest = b
                .members
                .iter()
                .flat_map(|&ri| lits[ri].iter().flatten())
                .map(|l| l.len().min(scan_prefix(slot)))
                .min()
                .unwrap_or(0) as u16;
            let words = (
                (bit / 64) as u32,
                (bit + b.members.len()).div_ceil(64) as u32,
            );
            // What the group's scans look for at least: a part of every literal.
            let mut looked_for: Vec<Vec<u8>> = b
                .members
                .iter()
                .flat_map(|&ri| lits[ri].iter().flatten())
                .map(|l| {
                    let part = scanned_part(l, scan_prefix(slot));
                    part[..part.len().min(scan_prefix(slot))].to_ascii_lowercase()
                })
                .collect();
            looked_for.sort_unstable();
            looked_for.dedup();
            let mut by_target = b.units.clone();
            by_target.sort_by_key(|&u| units[u as usize].target_id);
            let first = group_targets.len();
            // The input of the decoded screens of the target being listed, and the targets
            // whose screens decode different inputs.
            let mut decoded_input: Option<Option<ChainId>> = None;
            let mut mixed_inputs = Vec::new();
            for &u in &by_target {
                let unit = &units[u as usize];
                let mask = unit.chain.map_or(0, |c| chains.masks[c as usize]);
                let screen = ChainScreen::new(chains, unit.chain, &looked_for);
                let (undecoded, input) = match screen.as_deref() {
                    Some(ChainScreen::Decoded(s)) => (
                        s.input.map_or(0, |c| chains.masks[c as usize]),
                        Some(s.input),
                    ),
                    _ => (mask, None),
                };
                match group_targets[first..].last_mut() {
                    Some(t) if u32::from(t.target_id) == unit.target_id => {
                        t.chains_len += 1;
                        t.transforms |= mask;
                        t.undecoded |= undecoded;
                    }
                    _ => {
                        decoded_input = None;
                        group_targets.push(GroupTarget {
                            transforms: mask,
                            undecoded,
                            chains_at: group_chains.len() as u32,
                            chains_len: 1,
                            // Rules whose targets would pass 16 bits are not grouped.
                            target_id: unit.target_id as u16,
                            decoded_at: u16::MAX,
                            decoded_min: u16::MAX,
                        })
                    }
                }
                let min = shortest_input(chains, unit.chain, shortest);
                let last = group_targets.len() - 1;
                let t = &mut group_targets[last];
                if let Some(input) = input {
                    if decoded_input.is_some_and(|i| i != input) {
                        mixed_inputs.push(last);
                    }
                    decoded_input = Some(input);
                    if min < t.decoded_min {
                        t.decoded_at = t.chains_len - 1;
                        t.decoded_min = min;
                    }
                }
                group_chains.push(GroupChain {
                    chain: unit.chain,
                    min,
                    screen,
                });
            }
            for t in mixed_inputs.drain(..) {
                let t = &mut group_targets[t];
                t.undecoded = t.transforms;
                t.decoded_at = u16::MAX;
            }
            let mut transforms = 0;
            for t in &group_targets[first..] {
                target_transforms[usize::from(t.target_id)] |= t.transforms;
                transforms |= t.transforms;
            }
            let range = (first as u32, group_targets.len() as u32);
            let ids = group_targets[first..].iter().map(|t| t.target_id).collect();
            let set = *set_ids.entry(ids).or_insert_with(|| {
                target_sets.push(range);
                set_groups.push(0u32);
                target_sets.len() as u32 - 1
            });
            set_groups[set as usize] += 1;
            groups.push(Group {
                targets: range,
                bit,
                words,
                set,
                transforms,
                shortest,
            });
            next_bit[slot] += b.members.len();
        }
        // A set read for one group only costs more than reading its targets directly (4 k
        // instructions more per benign CRS v4.28.0 transaction): only sets that several
        // groups share are kept, renumbered.
        let mut renumbered = vec![NO_SET; target_sets.len()];
        let mut shared_sets = Vec::new();
        for (set, &range) in target_sets.iter().enumerate() {
            if set_groups[set] > 1 {
                renumbered[set] = shared_sets.len() as u32;
                shared_sets.push(range);
            }
        }
        for g in &mut groups {
            g.set = renumbered[g.set as usize];
        }
        let target_sets = shared_sets;
        let mut scans: Vec<Option<Arc<PhaseScan>>> = Vec::with_capacity(6);
        for (slot, &nbits) in next_bit.iter().enumerate() {
            if scan_slot(slot) != slot {
                let shared = scans[scan_slot(slot)].clone();
                scans.push(shared);
                continue;
            }
            let mut prefixes = Vec::new();
            let mut pats = Vec::new();
            for (b, g) in building.iter().zip(&groups) {
                if scan_slot(b.phase) != slot {
                    continue;
                }
                for (mi, &ri) in b.members.iter().enumerate() {
                    for l in lits[ri].iter().flatten() {
                        let l = scanned_part(l, scan_prefix(slot));
                        let cut = l.len().min(scan_prefix(slot));
                        prefixes.push(l[..cut].to_vec());
                        pats.push(PhasePattern {
                            member: (g.bit + mi) as u32,
                            rest: l[cut..].to_ascii_lowercase(),
                        });
                    }
                }
            }
            let scan = if pats.is_empty() {
                None
            } else {
                PhaseScan::build(&prefixes, &pats, nbits.div_ceil(64))
            };
            if scan.is_none() {
                // No automaton: the phases' members are always evaluated.
                for b in building.iter().filter(|b| scan_slot(b.phase) == slot) {
                    for &ri in &b.members {
                        member[ri] = None;
                    }
                }
            }
            scans.push(scan.map(Arc::new));
        }
        // Rules outside every group get a per-value automaton of their own. A member's
        // values are scanned by its phase automaton, for whole literals where they are
        // long: asking its own automaton as well cost more than it saved over CRS v4.28.0
        // (benign, attack and response transactions, and its regression suite). Negated
        // rules have none (they are group members only where their bit unset shows the
        // operator fails on every value), nor have operators that are a literal search
        // themselves. Rules with the same literals share one automaton.
        let mut shared: FxHashMap<&[Vec<u8>], AhoCorasick> = FxHashMap::default();
        let by_rule = lits
            .iter()
            .zip(rules)
            .zip(&member)
            .map(|((l, r), m)| {
                let l = l
                    .as_deref()
                    .filter(|_| m.is_none() && !r.negated && !is_literal_search(r))?;
                if let Some(ac) = shared.get(l) {
                    return Some(ac.clone());
                }
                let ac = automaton(l, MatchKind::LeftmostFirst)?;
                shared.insert(l, ac.clone());
                Some(ac)
            })
            .collect();
        let raw_screens = rules
            .iter()
            .zip(&member)
            .map(|(r, m)| {
                let RuleOperator::Static(op) = &r.operator else {
                    return None;
                };
                if m.is_some() || r.negated || r.multi_match {
                    return None;
                }
                RawScreen::new(&op.screen_literals()?, &chain_steps(chains, r.chain_id()))
                    .map(Box::new)
            })
            .collect();
        let words = scans.iter().flatten().map(|s| s.words).max().unwrap_or(0);
        let mut scan_chains: Vec<Option<ChainId>> =
            (0..chains.nodes.len() as ChainId).map(Some).collect();
        for (c, scanned) in scanned_as {
            scan_chains[c as usize] = scanned;
        }
        Prefilter {
            by_rule,
            raw_screens,
            member,
            groups,
            group_targets,
            group_chains,
            target_sets,
            targets,
            target_transforms,
            phases: scans,
            words,
            scan_chains,
        }
    }

    /// Group `g`'s targets.
    pub fn targets_of(&self, g: &Group) -> &[GroupTarget] {
        &self.group_targets[g.targets.0 as usize..g.targets.1 as usize]
    }

    /// The targets of set `set` (read for their `target_id` only: the chains are those of
    /// the first group with the set).
    pub fn set_targets(&self, set: u32) -> &[GroupTarget] {
        let (start, end) = self.target_sets[set as usize];
        &self.group_targets[start as usize..end as usize]
    }

    /// The chains a group scans `t`'s values through.
    pub fn chains_of(&self, t: &GroupTarget) -> &[GroupChain] {
        &self.group_chains[t.chains_at as usize..][..usize::from(t.chains_len)]
    }

    /// The [`DecodedScreen`] that answers for all of `t`'s (see [`GroupTarget::undecoded`])
    /// and the fewest bytes a value needs for one of their chains to matter; `None`: none.
    #[inline]
    pub fn decoded_screen_of(&self, t: &GroupTarget) -> Option<(&DecodedScreen, u16)> {
        if t.decoded_at == u16::MAX {
            return None;
        }
        let at = t.chains_at as usize + usize::from(t.decoded_at);
        match self.group_chains[at].screen.as_deref() {
            Some(ChainScreen::Decoded(s)) => Some((s, t.decoded_min)),
            _ => None,
        }
    }

    /// The automaton that scans `phase`'s values, as a number that phases sharing one
    /// share; `None` where the phase has none.
    pub fn scan_id(&self, phase: u8) -> Option<usize> {
        let phase = usize::from(phase);
        self.phases.get(phase)?.as_ref()?;
        Some(scan_slot(phase))
    }

    /// The chain whose values the phase scanned for a group member whose operator sees
    /// `chain`'s.
    pub fn scanned_chain(&self, chain: Option<ChainId>) -> Option<ChainId> {
        let c = chain?;
        self.scan_chains.get(c as usize).copied().unwrap_or(Some(c))
    }

    /// Rule `idx`'s test of values before their transformations, if it has one.
    pub fn raw_screen(&self, idx: usize) -> Option<&RawScreen> {
        self.raw_screens.get(idx)?.as_deref()
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

    /// Every `@rx` operator of `rs` (chain links included) that the regex crate runs, with
    /// its rule id, each pattern once.
    fn rx_operators(rs: &crate::RuleSet) -> Vec<(u32, &dyn crate::operators::Operator)> {
        let mut seen = FxHashSet::default();
        let mut out = Vec::new();
        for r in rs.rules() {
            let mut link = Some(r);
            while let Some(l) = link {
                if let RuleOperator::Static(op) = &l.operator {
                    if let Some(rx) = op.as_rx() {
                        if !rx.is_fallback() && seen.insert(rx.pattern().to_string()) {
                            out.push((r.id, &**op));
                        }
                    }
                }
                link = l.chained.as_deref();
            }
        }
        out
    }

    /// Over every `@rx` pattern of CRS v4.28.0 the regex crate runs: whenever the pattern
    /// matches a value, the value (lower-cased) contains one of the pattern's literals.
    /// The values are strings generated from the pattern, set among random bytes, and
    /// random strings over a small alphabet of bytes such strings use.
    #[test]
    fn crs_matches_contain_a_required_literal() {
        let Some(rs) = crate::test_crs::rule_set() else {
            return;
        };
        let mut below = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
        let (mut patterns, mut with_literals, mut proven, mut matches) = (0, 0, 0, 0);
        for (id, op) in rx_operators(&rs) {
            patterns += 1;
            let Some(lits) = op.literals() else {
                continue;
            };
            with_literals += 1;
            let hir = crate::operators::rx::parse(op.as_rx().unwrap().pattern()).unwrap();
            let mut alphabet = b" a0.-/'\"<(=\n%\\".to_vec();
            let mut matched_here = 0;
            for round in 0..96 {
                let mut value = Vec::new();
                if round % 2 == 0 {
                    for _ in 0..below(4) {
                        value.push(alphabet[below(alphabet.len())]);
                    }
                    crate::test_hir::sample(&hir, &mut below, &mut value);
                    alphabet.extend(value.iter().copied().take(8));
                    for _ in 0..below(4) {
                        value.push(alphabet[below(alphabet.len())]);
                    }
                } else {
                    for _ in 0..1 + below(24) {
                        value.push(alphabet[below(alphabet.len())]);
                    }
                }
                if !op.matches(&value, &mut crate::operators::Captures::default()) {
                    continue;
                }
                matched_here += 1;
                let lower = value.to_ascii_lowercase();
                assert!(
                    lits.iter()
                        .any(|l| memchr::memmem::find(&lower, l).is_some()),
                    "rule {id}: {:?} matches, but holds none of {:?}",
                    String::from_utf8_lossy(&value),
                    lits.iter()
                        .map(|l| String::from_utf8_lossy(l))
                        .collect::<Vec<_>>()
                );
            }
            proven += usize::from(matched_here > 0);
            matches += matched_here;
        }
        println!("{patterns} patterns, {with_literals} with literals, {proven} of them matched ({matches} values)");
        // The generated values do match: most patterns with literals were put to the test.
        assert!(
            proven * 10 >= with_literals * 9,
            "{proven} of {with_literals}"
        );
    }

    #[test]
    fn extracts_required_literals() {
        assert_eq!(lits("(?i)(?:union|select)\\b"), ["select", "union"]);
        // A required byte after a literal extends it: "union" then one of the six spaces.
        let spaced = lits("(?i)(?:union|select)\\s+");
        assert_eq!(spaced.len(), 12);
        assert!(spaced.contains(&"union ".to_string()) && spaced.contains(&"select\t".to_string()));
        assert_eq!(lits("\\d+").len(), 10); // weak, but valid
        assert_eq!(lits("a|b"), ["a", "b"]);
        assert_eq!(lits("a|b*"), Vec::<String>::new());
        // Inner factors, not only prefixes.
        assert_eq!(lits("[a-z]+=\\s*<script"), ["<script"]);
        assert_eq!(lits("(?i)x?ab(c|d)"), ["abc", "abd"]);
        assert_eq!(lits("^$"), Vec::<String>::new());
        assert_eq!(lits("(?:foo){2}"), ["foofoo"]);
        // Classes of up to 32 bytes are sets of strings like any other (here 24 separators,
        // then `[a-z]`): CRS 941120 requires one of 24 three-byte strings, where with
        // classes of 16 bytes at most it required "on" alone (in the "application/xml" of
        // every browser's Accept header) and ran on nearly every request.
        let handler = lits(r#"(?i)[\t-\r "'\(,/-9;=`]on[a-z]{3,50}[\t-\r \(,;]*?=[^=]"#);
        assert_eq!(handler.len(), 24, "{handler:?}");
        assert!(handler.iter().all(|l| l.len() == 3 && l.ends_with("on")));
        assert!(handler.contains(&" on".to_string()) && handler.contains(&"/on".to_string()));
        // A wider class still tells nothing.
        assert_eq!(lits("[!-~]on"), ["on"]);
        // Of two single bytes, the rarer one (CRS 920500's backup files: "~", not the "."
        // of every file name).
        assert_eq!(lits(r"\.[^.~]+~(?:/.*|)$"), ["~"]);
    }

    /// CRS 932230's shape, shortened: command names whose letters quotes, backslashes or
    /// `$…` expansions may split.
    const SPLIT_WORDS: &str = r#"(?i)\b(?:c["'\)\[\x5c]*(?:\$[!#a-z]*)?\x5c?a["'\)\[\x5c]*(?:\$[!#a-z]*)?\x5c?t|l["'\)\[\x5c]*(?:\$[!#a-z]*)?\x5c?s|p["'\)\[\x5c]*(?:\$[!#a-z]*)?\x5c?s|i["'\)\[\x5c]*(?:\$[!#a-z]*)?\x5c?d|w["'\)\[\x5c]*(?:\$[!#a-z]*)?\x5c?c|s["'\)\[\x5c]*(?:\$[!#a-z]*)?\x5c?h)\b"#;

    #[test]
    fn sets_punctuation_apart_for_split_words() {
        // Its own literals are the six first letters, in most values.
        let hir = crate::operators::rx::parse(SPLIT_WORDS).unwrap();
        assert!(analyze(&hir).any.is_none_or(|r| r.score < MIN_SCORE));
        // Apart from the bytes that can split them, the names.
        let found = lits(SPLIT_WORDS);
        for l in [
            "cat", "ls", "ps", "id", "wc", "sh", "\"", "'", ")", "[", "\\", "$",
        ] {
            assert!(found.contains(&l.to_string()), "{l} not in {found:?}");
        }
        // `!` and `#` only follow a `$`, which is apart.
        assert_eq!(found.len(), 12, "{found:?}");
    }

    /// A value with none of the bytes set apart matches only as the pattern without them
    /// does: every value the pattern matches holds one of the literals.
    #[test]
    fn punctuation_apart_keeps_every_match() {
        let re = regex::bytes::RegexBuilder::new(SPLIT_WORDS)
            .unicode(false)
            .build()
            .unwrap();
        let ac = automaton(
            &required_literals(SPLIT_WORDS).unwrap(),
            MatchKind::Standard,
        )
        .unwrap();
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"catlspidwhx \"')[\\$!#-";
        let mut matched = 0;
        for _ in 0..40_000 {
            let value: Vec<u8> = (0..1 + next(10))
                .map(|_| alphabet[next(alphabet.len())])
                .collect();
            if re.is_match(&value) {
                matched += 1;
                assert!(ac.is_match(&value), "{:?}", String::from_utf8_lossy(&value));
            }
        }
        assert!(matched > 500, "{matched}");
    }

    #[test]
    fn counted_repetitions_require_their_least_run() {
        // At least two dots in a row, then a separator: not "." (in nearly every value).
        assert_eq!(
            lits(r"(?:^|[/;\x5c])\.{2,3}[/;\x5c]"),
            ["../", "..;", "..\\"]
        );
        assert_eq!(lits("a{3,}"), ["aaa"]);
        assert_eq!(lits("x[^y]*z{3}"), ["zzz"]);
        // Two copies at the start and two at the end, then what follows.
        assert_eq!(lits("(?:ab){2,5}c"), ["ababc"]);
        // A run goes on into the prefix of an inexact node, and starts again from its
        // suffix.
        assert_eq!(lits("ab(?:cd|ef)+"), ["abcd", "abef"]);
        assert_eq!(lits("[a-z]+(?:x|yz)+w"), ["xw", "yzw"]);
        // Too many strings to keep as an exact set (9 x 8): where they meet is required
        // still, the tails of one side then the heads of the other.
        let met = lits("(?:1;|2;|3;|4;|5;|6;|7;|8;|9;)(?:-a|-b|-c|-d|-e|-f|-g|-h)");
        assert!(
            !met.is_empty() && met.iter().all(|l| l.contains(";-")),
            "{met:?}"
        );
        // Short strings of one side are extended by the heads of the other: "/" alone is
        // in most values, "/." is not (25 x 9 strings, too many to keep as an exact set).
        let sep = lits("(?:/|%[2-5][a-f])(?:\\.|%2e|0x2e){2}");
        assert!(sep.iter().any(|l| l.starts_with("/.")), "{sep:?}");
        // The encoded separators are kept whole, not cut to their last letter.
        assert!(
            sep.iter().all(|l| l.starts_with('/') || l.starts_with('%')),
            "{sep:?}"
        );
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

    #[test]
    fn per_rule_automata_only_outside_the_phase_groups() {
        let rs = crate::RuleSet::from_text(
            "SecRule ARGS \"@pm sqlmap nikto\" \"id:1,phase:2,pass\"\n\
             SecRule TX:agent \"@rx (?i)sqlmap|nikto\" \"id:2,phase:2,pass\"\n\
             SecRule ARGS \"@rx (?i)sqlmap|nikto\" \"id:3,phase:2,pass\"\n",
            "t",
        )
        .unwrap();
        let pf = &rs.prefilter;
        // The @pm is its own literal search; the @rx on TX, which no phase scan sees,
        // keeps its automaton; the @rx on ARGS is left to its phase scan.
        assert!(pf.by_rule[0].is_none());
        assert!(pf.member[1].is_none());
        assert!(pf.by_rule[1].is_some());
        assert!(pf.member[2].is_some());
        assert!(pf.by_rule[2].is_none());
        assert!(pf.may_match(0, b"curl"));
        assert!(!pf.may_match(1, b"curl"));
        assert!(pf.may_match(1, b"x NIKTO"));
        assert!(pf.may_match(2, b"curl"));
    }

    /// A rule whose literals nearly every value holds is neither grouped nor given an
    /// automaton: it runs on every value as if it had no literals.
    #[test]
    fn unselective_literals_do_not_prefilter() {
        let rs = std::sync::Arc::new(
            crate::RuleSet::from_text(
                "SecRule ARGS \"@rx [a-h]\" \"id:1,phase:2,pass\"\n\
             SecRule TX:agent \"@rx [a-h]\" \"id:2,phase:2,pass\"\n\
             SecRule ARGS \"@rx (?i)sqlmap|nikto\" \"id:3,phase:2,pass\"\n",
                "t",
            )
            .unwrap(),
        );
        let pf = &rs.prefilter;
        assert!(pf.member[0].is_none() && pf.by_rule[0].is_none());
        assert!(pf.member[1].is_none() && pf.by_rule[1].is_none());
        assert!(pf.may_match(1, b"xyz"));
        assert!(pf.member[2].is_some());
        let lits = |p| required_literals(p).expect("literals");
        assert!(score(&lits("[a-h]")).unwrap() < MIN_SCORE);
        assert!(score(&lits("(?i)sqlmap|nikto")).unwrap() >= MIN_SCORE);
        // Still evaluated, and matching.
        let mut tx = rs.transaction(Default::default());
        tx.set_request_line(b"GET", b"/?q=bag", b"HTTP/1.1");
        tx.process_request_headers();
        tx.process_request_body();
        let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
        assert_eq!(ids, [1]);
    }

    /// A literal that begins like a browser's User-Agent is looked for from its first
    /// uncommon window: a browser's request does not set its bit, the literal still does.
    #[test]
    fn literals_are_looked_for_past_their_common_beginning() {
        assert_eq!(
            scanned_part(b"Mozilla/5.0 (compatible; AppScan;", SCAN_PREFIX),
            b"le; AppScan;"
        );
        assert_eq!(scanned_part(b"sqlmap/1.0", SCAN_PREFIX), b"sqlmap/1.0");
        // Nothing uncommon: the whole literal.
        assert_eq!(scanned_part(b"Mozilla/5.0", SCAN_PREFIX), b"Mozilla/5.0");
        let rs = crate::RuleSet::from_text(
            "SecRule REQUEST_HEADERS:User-Agent \"@rx sqlmap/|Mozilla/5\\.0 \\(compatible; AppScan;\" \
               \"id:1,phase:1,pass,t:lowercase\"\n",
            "t",
        )
        .unwrap();
        let pf = &rs.prefilter;
        assert_eq!(pf.member[0], Some((0, 0)));
        let scan = pf.phases[1].as_ref().unwrap();
        let mut bits = vec![0; pf.words];
        scan.scan(
            b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            &mut bits,
        );
        assert_eq!(bits[0], 0);
        scan.scan(b"Mozilla/5.0 (compatible; AppScan; v9)", &mut bits);
        assert_eq!(bits[0], 1);
    }

    #[test]
    fn long_values_are_scanned_for_whole_literals() {
        let rs = crate::RuleSet::from_text(
            "SecRule RESPONSE_BODY \"@pm internalservererror\" \"id:1,phase:4,pass\"\n\
             SecRule RESPONSE_BODY \"!@pm stacktrace\" \"id:2,phase:4,pass\"\n",
            "t",
        )
        .unwrap();
        let pf = &rs.prefilter;
        assert_eq!(pf.member[0], Some((0, 0)));
        assert_eq!(pf.member[1], Some((0, 1)));
        let scan = pf.phases[4].as_ref().unwrap();
        let padding = b"x".repeat(EXACT_FROM);
        let mut bits = vec![0; pf.words];
        // The literals' prefixes occur, the literals do not.
        let prefixes = [
            &b"InternalServer "[..],
            &b"stacktrace"[..SCAN_PREFIX_RESPONSE],
        ]
        .concat();
        scan.scan(&[&padding[..], &prefixes].concat(), &mut bits);
        assert_eq!(bits[0], 0);
        // Short values are scanned for prefixes only.
        scan.scan(&prefixes, &mut bits);
        assert_eq!(bits[0], 0b11);
        let mut bits = vec![0; pf.words];
        scan.scan(
            &[&padding[..], b"Internal InternalServerError"].concat(),
            &mut bits,
        );
        assert_eq!(bits[0], 0b01);
    }

    /// The phase scan's precomputed state table sets exactly the bits a plain search of
    /// every member's literals (their prefixes, in short values) would: with many
    /// overlapping literals, members past the first word, and mixed case.
    #[test]
    fn phase_scan_matches_a_plain_literal_search() {
        let checked = agrees_with_a_plain_search(0x2545_f491_4f6c_dd1d, 9, 12, 4);
        // The values do hit literals, not only miss them.
        assert!(checked > 1000, "{checked}");
    }

    /// As above, in long values only and with literals longer than a check's key, so that
    /// their rests are compared past it (and are cut short by the value's end).
    #[test]
    fn long_values_match_a_plain_search_of_long_literals() {
        let checked = agrees_with_a_plain_search(0x9e6c_63d0_676a_9a99, 24, 28, 1);
        assert!(checked > 500, "{checked}");
    }

    /// Scans values made of random words against 150 `@pm` rules of random phrases (up to
    /// `phrase_max` bytes), every `long_every`-th value long; panics where a bit differs
    /// from a plain search; returns how many bits were expected set.
    fn agrees_with_a_plain_search(
        mut seed: u64,
        phrase_max: u64,
        word_max: u64,
        long_every: usize,
    ) -> usize {
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let alphabet = b"abcAB-";
        let mut word = |max: u64| -> Vec<u8> {
            let len = 1 + next(max) as usize;
            (0..len).map(|_| alphabet[next(6) as usize]).collect()
        };
        let mut text = String::new();
        let mut all_phrases = Vec::new();
        for id in 1..=150 {
            let phrases: Vec<String> = (0..1 + id % 3)
                .map(|_| String::from_utf8(word(phrase_max)).unwrap())
                .collect();
            all_phrases.extend(phrases.iter().map(|p| p.as_bytes().to_vec()));
            text.push_str(&format!(
                "SecRule ARGS \"@pm {}\" \"id:{id},phase:2,pass\"\n",
                phrases.join(" ")
            ));
        }
        let rs = crate::RuleSet::from_text(&text, "t").unwrap();
        let pf = &rs.prefilter;
        let scan = pf.phases[2].as_ref().unwrap();
        assert!(scan.words > 1);
        let contains = |value: &[u8], lit: &[u8]| {
            value
                .windows(lit.len())
                .any(|w| w.eq_ignore_ascii_case(lit))
        };
        let mut checked = 0;
        for round in 0..400 {
            let long = round % long_every == 0;
            let mut value = Vec::new();
            for part in 0..2 {
                if part == 1 && long {
                    value.extend(b"z".repeat(EXACT_FROM));
                }
                for _ in 0..1 + round % 5 {
                    let mut w = word(word_max);
                    if round % 3 == 0 {
                        // A phrase with its end cut or a byte changed, next to a word.
                        let mut p =
                            all_phrases[w[0] as usize * (w.len() + 7) % all_phrases.len()].clone();
                        let at = w.len() % p.len();
                        if w.len() % 2 == 0 {
                            p.truncate(at);
                        } else {
                            p[at] = w[0];
                        }
                        w.extend(p);
                    }
                    value.extend(w);
                    value.push(b' ');
                }
            }
            // Ends in the middle of a word every other value.
            value.truncate(value.len() - (round % 2) * (1 + round % 7));
            let mut bits = vec![0; pf.words];
            scan.scan(&value, &mut bits);
            for (ri, r) in rs.rules.iter().enumerate() {
                let (g, mi) = pf.member[ri].unwrap();
                let bit = pf.groups[g as usize].bit + mi as usize;
                let expected = rule_literals(r).unwrap().iter().any(|l| {
                    let cut = if long {
                        l.len()
                    } else {
                        l.len().min(SCAN_PREFIX)
                    };
                    contains(&value, &l[..cut])
                });
                let got = bits[bit / 64] & (1 << (bit % 64)) != 0;
                assert_eq!(got, expected, "rule {} on {:?}", r.id, value);
                checked += usize::from(expected);
            }
        }
        checked
    }

    #[test]
    fn words_lower_case_as_bytes_do() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = *b"aZ@[`{\x80\xc1";
                bytes[at] = b;
                let got = ascii_lowercase_word(u64::from_le_bytes(bytes));
                assert_eq!(
                    got.to_le_bytes().to_vec(),
                    bytes.to_ascii_lowercase(),
                    "{b:#x} at {at}"
                );
            }
        }
    }

    /// The literals of every rule in a prefilter group, for the scan tests.
    fn member_literals(rs: &crate::RuleSet) -> Vec<Vec<u8>> {
        rs.rules
            .iter()
            .zip(&rs.prefilter.member)
            .filter(|(_, m)| m.is_some())
            .filter_map(|(r, _)| rule_literals(r))
            .flatten()
            .collect()
    }

    /// Each phase automaton once (phases 1 and 2 share one).
    fn distinct_scans(pf: &Prefilter) -> Vec<&PhaseScan> {
        let mut scans: Vec<&PhaseScan> = Vec::new();
        for s in pf.phases.iter().flatten() {
            if !scans.iter().any(|&k| std::ptr::eq(k, &**s)) {
                scans.push(s);
            }
        }
        scans
    }

    /// Over the CRS v4.28.0 phase automata: a long value's scan, walked in lanes, sets
    /// exactly the bits a single walk over it sets. The values are the group members'
    /// literals (case mixed) among random bytes, with literals laid across the borders
    /// between lanes, at the value's ends, and in the bytes past the last full stretch.
    #[test]
    fn lanes_agree_with_a_single_walk() {
        let Some(rs) = crate::test_crs::rule_set() else {
            return;
        };
        let pf = &rs.prefilter;
        let lits = member_literals(&rs);
        let mut below = crate::test_rng::below(0xd1b5_4a32_d192_ed03);
        let filler = b" a<>=\"/\n\t.;:(-_0";
        let scans = distinct_scans(pf);
        assert!(scans.len() >= 2, "phases 1-2 and 4 each have a scan");
        let mut set_bits = 0;
        for scan in scans {
            for round in 0..600 {
                let lit = |below: &mut dyn FnMut(usize) -> usize| -> Vec<u8> {
                    let l = &lits[below(lits.len())];
                    l.iter()
                        .map(|&c| {
                            if below(2) == 0 {
                                c.to_ascii_uppercase()
                            } else {
                                c
                            }
                        })
                        .collect()
                };
                let len = EXACT_FROM + below(2000);
                let mut value = Vec::with_capacity(len + 64);
                while value.len() < len {
                    if below(4) == 0 {
                        value.extend(lit(&mut below));
                    } else {
                        value.push(filler[below(filler.len())]);
                    }
                }
                value.truncate(len);
                if round % 2 == 0 {
                    let stretch = len / LANES;
                    let mut places: Vec<usize> = (1..LANES).map(|k| k * stretch).collect();
                    places.extend([0, len, LANES * stretch, len - 1]);
                    for p in places {
                        let l = lit(&mut below);
                        let at = p.saturating_sub(below(l.len() + 1)).min(len);
                        let end = (at + l.len()).min(len);
                        value[at..end].copy_from_slice(&l[..end - at]);
                    }
                }
                let mut lanes = vec![0; scan.words];
                scan.scan(&value, &mut lanes);
                let mut single = vec![0; scan.words];
                scan.walk_literals(usize::from(scan.start), &value, 0, &mut single);
                assert_eq!(lanes, single, "{:?}", String::from_utf8_lossy(&value));
                set_bits += single.iter().map(|w| w.count_ones()).sum::<u32>();
            }
        }
        // The values do hold literals, not only miss them.
        assert!(set_bits > 5000, "{set_bits}");
    }

    /// Over the CRS v4.28.0 phase automata: a short value's prefix scan, walked in two or
    /// four lanes, sets exactly the bits one walk sets, with literals laid across the lanes'
    /// borders and at the value's ends.
    #[test]
    fn prefix_lanes_agree_with_a_single_walk() {
        let Some(rs) = crate::test_crs::rule_set() else {
            return;
        };
        let pf = &rs.prefilter;
        let lits = member_literals(&rs);
        let mut below = crate::test_rng::below(0x5be0_cd19_137e_2179);
        let filler = b" a=/.;(-_0%&";
        let scans = distinct_scans(pf);
        let (mut set_bits, mut laned) = (0, [0; 2]);
        for scan in scans {
            let warm = scan.longest - 1;
            for _ in 0..3000 {
                let len = below(EXACT_FROM);
                let mut value = Vec::with_capacity(len + 64);
                while value.len() < len {
                    if below(3) == 0 {
                        let l = &lits[below(lits.len())];
                        value.extend(l.iter().map(|&c| match below(2) {
                            0 => c.to_ascii_uppercase(),
                            _ => c,
                        }));
                    } else {
                        value.push(filler[below(filler.len())]);
                    }
                }
                value.truncate(len);
                let lanes = [2, 4][below(2)];
                if len >= lanes {
                    let stretch = len / lanes;
                    for k in 1..=lanes {
                        let l = &lits[below(lits.len())];
                        let at = (k * stretch).saturating_sub(below(l.len() + 1)).min(len);
                        let end = (at + l.len()).min(len);
                        value[at..end].copy_from_slice(&l[..end - at]);
                    }
                }
                for (i, l) in [2, 4].into_iter().enumerate() {
                    laned[i] += usize::from(len >= l * (warm + PREFIX_LANE_BYTES));
                }
                let mut got = vec![0; scan.words];
                scan.scan(&value, &mut got);
                let mut single = vec![0; scan.words];
                scan.walk_prefixes(usize::from(scan.start), &value, &mut single);
                assert_eq!(got, single, "{:?}", String::from_utf8_lossy(&value));
                set_bits += single.iter().map(|w| w.count_ones()).sum::<u32>();
            }
        }
        // Both lane counts ran, on values that hold literals.
        assert!(laned[0] > 1000 && laned[1] > 1000, "{laned:?}");
        assert!(set_bits > 20000, "{set_bits}");
    }

    /// `key_window` (one load where 8 bytes follow) against a byte-by-byte reference, on
    /// random bytes of every length from 0 to 12.
    #[test]
    fn key_window_agrees_with_a_byte_by_byte_reference() {
        let mut below = crate::test_rng::below(0x94d0_49bb_1331_11eb);
        for _ in 0..20000 {
            let bytes: Vec<u8> = (0..below(13)).map(|_| below(256) as u8).collect();
            let reference = bytes
                .iter()
                .take(KEY_BYTES)
                .enumerate()
                .fold(0u64, |w, (i, b)| {
                    w | u64::from(b.to_ascii_lowercase()) << (8 * i)
                });
            assert_eq!(key_window(&bytes), reference, "{bytes:?}");
        }
    }

    /// Over random small literal sets, built into an automaton of their own: a scan sets
    /// exactly the bits of the members one of whose literals occurs in the value (ASCII case
    /// ignored), or, in a short value, one of whose literals' scanned prefixes does, as a
    /// naive search finds them. The values have lengths on both sides of every lane count's
    /// threshold and of the long values' split, over a small alphabet (prefixes occur often),
    /// with literals laid across the lanes' borders.
    #[test]
    fn scans_agree_with_a_naive_search() {
        let mut below = crate::test_rng::below(0x2545_f491_4f6c_dd1d);
        let alphabet = b"abcAB<= ";
        let occurs = |value: &[u8], lit: &[u8]| {
            value
                .windows(lit.len())
                .any(|w| w.eq_ignore_ascii_case(lit))
        };
        let (mut set_bits, mut long_values, mut most_states) = (0, 0, 0);
        for round in 0..200 {
            let prefix = [3, 5, 7][below(3)];
            let members = 1 + below(130);
            // Over a thousand states now and then (states past 8 bits).
            let (count, values) = match round % 4 {
                0 => (300 + below(300), 4),
                _ => (1 + below(40), 30),
            };
            let lits: Vec<(u32, Vec<u8>)> = (0..count)
                .map(|_| {
                    let len = 1 + below(12);
                    let lit = (0..len).map(|_| alphabet[below(alphabet.len())]).collect();
                    (below(members) as u32, lit)
                })
                .collect();
            let cut = |l: &[u8]| l.len().min(prefix);
            let prefixes: Vec<Vec<u8>> = lits.iter().map(|(_, l)| l[..cut(l)].to_vec()).collect();
            let pats: Vec<PhasePattern> = lits
                .iter()
                .map(|(m, l)| PhasePattern {
                    member: *m,
                    rest: l[cut(l)..].to_ascii_lowercase(),
                })
                .collect();
            let scan = PhaseScan::build(&prefixes, &pats, members.div_ceil(64)).unwrap();
            most_states = most_states.max(usize::from(scan.first_match) + scan.prefix_bits.len());
            let warm = scan.longest - 1;
            for _ in 0..values {
                let len = match below(4) {
                    0 => below(EXACT_FROM),
                    1 => (2 + below(3)) * (warm + PREFIX_LANE_BYTES) + below(3) - 1,
                    2 => EXACT_FROM + below(2 * LANES),
                    _ => EXACT_FROM + below(3000),
                };
                let mut value: Vec<u8> =
                    (0..len).map(|_| alphabet[below(alphabet.len())]).collect();
                let lanes = if len >= EXACT_FROM {
                    LANES
                } else {
                    [2, 4][below(2)]
                };
                for k in 1..=lanes {
                    let l = &lits[below(lits.len())].1;
                    let at = (k * (len / lanes))
                        .saturating_sub(below(l.len() + 1))
                        .min(len);
                    let end = (at + l.len()).min(len);
                    value[at..end].copy_from_slice(&l[..end - at]);
                }
                let mut naive = vec![0u64; scan.words];
                for (m, l) in &lits {
                    let sought = if len >= EXACT_FROM {
                        &l[..]
                    } else {
                        &l[..cut(l)]
                    };
                    if occurs(&value, sought) {
                        naive[*m as usize / 64] |= 1 << (m % 64);
                    }
                }
                let mut got = vec![0u64; scan.words];
                scan.scan(&value, &mut got);
                assert_eq!(got, naive, "{:?}", String::from_utf8_lossy(&value));
                set_bits += naive.iter().map(|w| w.count_ones()).sum::<u32>();
                long_values += usize::from(len >= EXACT_FROM);
            }
        }
        assert!(
            set_bits > 20000 && long_values > 2000,
            "{set_bits} {long_values}"
        );
        assert!(most_states > 1000, "{most_states}");
    }

    #[test]
    fn negated_body_rules_hold_without_their_literals() {
        let rs = std::sync::Arc::new(
            crate::RuleSet::from_text(
                "SecRuleEngine On\nSecResponseBodyAccess On\n\
                 SecRule RESPONSE_BODY \"!@pm marker\" \"id:1,phase:4,deny,status:502\"\n",
                "t",
            )
            .unwrap(),
        );
        let respond = |body: &[u8]| {
            let mut tx = rs.transaction(crate::TxInput::default());
            tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            assert!(tx.process_request_body().is_none());
            tx.set_response_status(200, b"HTTP/1.1");
            tx.add_response_header(b"Content-Type", b"text/html");
            assert!(tx.process_response_headers().is_none());
            tx.append_response_body(body);
            tx.process_response_body().map(|i| i.status)
        };
        let padding = b"x".repeat(EXACT_FROM);
        assert_eq!(respond(&[&padding[..], b"no mark"].concat()), Some(502));
        assert_eq!(respond(&[&padding[..], b"a MARKER"].concat()), None);
        assert_eq!(respond(b"short"), Some(502));
    }

    fn transform_ids(names: &[&str]) -> Vec<transformations::TransformId> {
        names
            .iter()
            .map(|n| transformations::lookup(n).unwrap())
            .collect()
    }

    /// Only chains that delete bytes and fold case get a screen, and only literals that keep
    /// something once the deleted bytes are gone.
    #[test]
    fn raw_screens_only_for_deleting_chains() {
        let lit = vec![b"<Title>".to_vec()];
        for ok in [
            &["removeWhitespace"][..],
            &["removeNulls"],
            &["lowercase", "removeWhitespace"],
            &["removeWhitespace", "lowercase", "removeNulls"],
            &["cmdLine"],
            &["removeNulls", "cmdLine", "lowercase"],
        ] {
            assert!(RawScreen::new(&lit, &transform_ids(ok)).is_some(), "{ok:?}");
        }
        // No value `cmdLine` returns holds a `;`: the literal cannot occur, the others decide.
        let semicolon = vec![b"..;".to_vec(), b"../".to_vec()];
        let s = RawScreen::new(&semicolon, &transform_ids(&["cmdLine"])).unwrap();
        assert!(s.may_match(b"x.\\./"));
        assert!(!s.may_match(b"x..;y"));
        for no in [
            &[][..],
            &["lowercase"],
            &["removeWhitespace", "urlDecodeUni"],
            &["compressWhitespace"],
        ] {
            assert!(RawScreen::new(&lit, &transform_ids(no)).is_none(), "{no:?}");
        }
        let blank = vec![b" \t ".to_vec()];
        assert!(RawScreen::new(&blank, &transform_ids(&["removeWhitespace"])).is_none());
        let s = RawScreen::new(&lit, &transform_ids(&["removeWhitespace"])).unwrap();
        assert!(s.may_match(b"x < t\x0bI t\xa0L e\n> y"));
        assert!(!s.may_match(b"x < t\x0bI t\xa0L e\n y"));
        assert!(!s.may_match(b"<titl"));
        assert!(!s.may_match(b""));
    }

    /// A literal that overlaps itself, on a value made of its prefix: the search gives up
    /// (answers "may match", where the answer is no) after a budget linear in the value
    /// instead of making 40 comparisons at each of 200 000 starts; where each start fails
    /// at once it answers exactly.
    #[test]
    fn raw_screen_work_is_linear() {
        let steps = transform_ids(&["removeWhitespace", "lowercase"]);
        // `q` is rarer than `a`: the search is for `q`, and each compares forwards.
        let literal = [b"q".repeat(40), b"a".to_vec()].concat();
        let s = RawScreen::new(&[literal], &steps).unwrap();
        assert!(!s.may_match(&b"q a ".repeat(50_000)));
        assert!(s.may_match(&[b"q ".repeat(50), b"A".to_vec()].concat()));
        assert!(s.may_match(&b"q".repeat(200_000)));
    }

    /// The screen searches for a literal's rarest letter, not for its markup: for 955300's
    /// title the `k`, whichever its place; the bytes before it are compared backwards.
    #[test]
    fn raw_screen_searches_for_a_rare_letter() {
        let title = b"<title>punkholicshell</title>";
        let at = anchor(title);
        assert_eq!(title[at], b'k');
        assert!(title.iter().all(|b| !b.is_ascii_alphanumeric()
            || FREQUENT_BYTES.iter().position(|f| f == b)
                <= FREQUENT_BYTES.iter().position(|&f| f == b'k')));
        let s = RawScreen::new(&[title.to_vec()], &transform_ids(&["removeWhitespace"])).unwrap();
        assert!(s.may_match(b"< TITLE >\n Punk holic Shell </title>"));
        assert!(!s.may_match(b"< TITLE >\n Punk holic Shell </titl>"));
        assert!(!s.may_match(b"< TITLE > Punc holic Shell </title>"));
        assert!(!s.may_match(b"<tile>punkholicshell</title>"));
    }

    /// Against transforming first: for a chain that lower-cases and a literal in lower case
    /// without deleted bytes, the screen says whether the transformed value contains it.
    /// `raw` through `steps`, one after the other.
    fn through(steps: &[transformations::TransformId], raw: &[u8]) -> Vec<u8> {
        let mut value = raw.to_vec();
        for &t in steps {
            let mut out = Vec::new();
            transformations::apply(t, &value, &mut out);
            value = out;
        }
        value
    }

    /// Through `cmdLine` (which also folds `, ;` and whitespace into one space and drops a
    /// space before `/` or `(`) the screen is not exact, but never answers no where
    /// transforming first finds the literal.
    #[test]
    fn raw_screen_is_sound_through_cmd_line() {
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
        let chains: [&[&str]; 4] = [
            &["cmdLine"],
            &["cmdLine", "lowercase"],
            &["removeNulls", "cmdLine"],
            &["cmdLine", "removeWhitespace"],
        ];
        let alphabet = b"aAb./( \t\r\n\x0b,;\\\"'^\x00";
        let (mut found, mut rejected, mut screens) = (0, 0, 0);
        for round in 0..50_000 {
            let steps = transform_ids(chains[round % chains.len()]);
            let word = |next: &mut dyn FnMut(usize) -> usize, len: usize| -> Vec<u8> {
                (0..len).map(|_| alphabet[next(alphabet.len())]).collect()
            };
            let len = 1 + next(4);
            let literals = vec![word(&mut next, len).to_ascii_lowercase()];
            let len = next(16);
            let raw = word(&mut next, len);
            let transformed = through(&steps, &raw);
            let Some(screen) = RawScreen::new(&literals, &steps) else {
                continue;
            };
            screens += 1;
            let contains = memchr::memmem::find(&transformed, &literals[0]).is_some();
            let passes = screen.may_match(&raw);
            let shown = (
                String::from_utf8_lossy(&raw),
                String::from_utf8_lossy(&literals[0]),
            );
            assert!(passes || !contains, "{shown:?} {:?}", chains[round % 4]);
            found += usize::from(contains);
            rejected += usize::from(!passes);
        }
        assert!(
            screens > 10_000 && found > 1000 && rejected > 1000,
            "{screens} {found} {rejected}"
        );
    }

    #[test]
    fn raw_screen_agrees_with_transforming_first() {
        let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1d);
        let chains: [&[&str]; 4] = [
            &["removeWhitespace", "lowercase"],
            &["lowercase", "removeWhitespace"],
            &["removeNulls", "lowercase"],
            &["removeNulls", "removeWhitespace", "lowercase"],
        ];
        let alphabet = b"abAB<> \t\n\x0b\x0c\xa0\x00/";
        let (mut found, mut rejected) = (0, 0);
        for round in 0..20_000 {
            let steps = transform_ids(chains[round % chains.len()]);
            let word = |next: &mut dyn FnMut(usize) -> usize, len: usize| -> Vec<u8> {
                (0..len).map(|_| alphabet[next(alphabet.len())]).collect()
            };
            let len = 1 + next(4);
            let literal: Vec<u8> = word(&mut next, len)
                .to_ascii_lowercase()
                .into_iter()
                .filter(|&b| !transformations::is_space(b) && b != 0)
                .collect();
            if literal.is_empty() {
                continue;
            }
            let len = next(24);
            let raw = word(&mut next, len);
            let transformed = through(&steps, &raw);
            let contains = memchr::memmem::find(&transformed, &literal).is_some();
            let screen = RawScreen::new(std::slice::from_ref(&literal), &steps).unwrap();
            // The literal keeps no byte the chain deletes and no upper case: then the screen
            // answers exactly what transforming first answers.
            let passes = screen.may_match(&raw);
            let shown = (
                String::from_utf8_lossy(&raw),
                String::from_utf8_lossy(&literal),
            );
            assert_eq!(passes, contains, "{shown:?} {:?}", chains[round % 4]);
            found += usize::from(contains);
            rejected += usize::from(!passes);
        }
        assert!(found > 1000 && rejected > 1000, "{found} {rejected}");
    }

    /// The decoded screen never rules out a value whose chain (or one of its `multiMatch`
    /// stages) holds a literal, ASCII case ignored: random literals against base64 of
    /// text built from the escapes, spaces, comments and case the steps after the
    /// decoding react to, and random bytes. Chains with a step after the decoding that
    /// can make other bytes get no screen.
    #[test]
    fn decoded_screen_agrees_with_transforming_first() {
        let mut next = crate::test_rng::below(0xdec0_ded5_c4ee);
        let chains: [&[&str]; 8] = [
            &[
                "urlDecodeUni",
                "jsDecode",
                "removeWhitespace",
                "base64Decode",
                "urlDecodeUni",
                "jsDecode",
                "removeWhitespace",
            ],
            &[
                "urlDecodeUni",
                "jsDecode",
                "base64Decode",
                "urlDecodeUni",
                "jsDecode",
                "replaceComments",
            ],
            &[
                "base64Decode",
                "lowercase",
                "urlDecode",
                "compressWhitespace",
            ],
            &["base64Decode", "replaceNulls", "trim", "removeNulls"],
            &["base64Decode", "base64Decode", "jsDecode", "trimLeft"],
            &["base64Decode", "trimRight", "urlDecodeUni"],
            &["base64Decode", "htmlEntityDecode"],
            &["base64Decode", "cssDecode"],
        ];
        let tokens: &[&[u8]] = &[
            b"a", b"b", b"A", b"B", b"1", b" ", b"+", b"\t", b"\x00", b"\xa0", b"\xc3", b"%41",
            b"%62", b"%20", b"%u0041", b"%uff41", b"%2541", b"\\x41", b"\\u0062", b"\\101", b"\\t",
            b"\\ ", b"/*x*/", b"/*", b"&#97;", b"\\61 ",
        ];
        let encode = transformations::lookup("base64Encode").unwrap();
        let (mut found, mut ruled_out, mut unscreened) = (0, 0, 0);
        for round in 0..30_000 {
            let names = chains[round % chains.len()];
            let mut table = ChainTable::default();
            let ids = table.intern(&transform_ids(names));
            let steps = chain_steps(&table, ids.last().copied());
            let literals: Vec<Vec<u8>> = (0..1 + next(2))
                .map(|_| (0..1 + next(3)).map(|_| b"ab1 "[next(4)]).collect())
                .collect();
            let text: Vec<u8> = (0..next(8))
                .flat_map(|_| tokens[next(tokens.len())].iter().copied())
                .collect();
            let raw = match next(4) {
                // Random base64 digits and bytes.
                0 => (0..next(16))
                    .map(|_| b"QUJhYmEgJTQxXHgK+/-_=*"[next(22)])
                    .collect(),
                n => {
                    let mut raw = text.clone();
                    for _ in 0..n.min(2) {
                        raw = through(&[encode], &raw);
                    }
                    if next(3) == 0 {
                        raw.extend_from_slice(b"*junk");
                    }
                    raw
                }
            };
            // Every stage from the decoding on, each with the screen it would get.
            for (stage, &id) in ids.iter().enumerate() {
                let Some(screen) = DecodedScreen::new(&table, Some(id), &literals) else {
                    if names[..=stage].contains(&"base64Decode") {
                        unscreened += 1;
                    }
                    continue;
                };
                let at = steps[..=stage]
                    .iter()
                    .rposition(|&t| Some(t) == transformations::lookup("base64Decode"))
                    .unwrap();
                assert_eq!(screen.input, at.checked_sub(1).map(|i| ids[i]));
                let value = through(&steps[..=stage], &raw).to_ascii_lowercase();
                let holds = literals
                    .iter()
                    .any(|l| memchr::memmem::find(&value, l).is_some());
                let passes = screen.may_match(&through(&steps[..at], &raw));
                assert!(
                    passes || !holds,
                    "{names:?} stage {stage}: {:?} holds one of {literals:?}",
                    String::from_utf8_lossy(&raw)
                );
                found += usize::from(holds);
                ruled_out += usize::from(!passes);
            }
        }
        assert!(found > 2000 && ruled_out > 2000, "{found} {ruled_out}");
        // The steps that decode HTML entities and CSS escapes make bytes the screen does not
        // foresee.
        assert!(unscreened > 3000, "{unscreened}");
    }
}
