//! `@rx`: a regular expression, matched against raw bytes as PCRE does without UTF mode
//! (`.` is any byte, `\xNN` is a byte, classes are ASCII, dot matches newline).
//!
//! `^` and `$` read as the detection needs them (see [`Anchors`]): a positive `@rx` also
//! matches them at line breaks, as ModSecurity v3 and Coraza do; a negated `!@rx` (CRS's
//! "the value is well-formed" checks) only at the value's ends, as ModSecurity v2 does. A
//! newline then hides a value from neither kind of check.
//!
//! Patterns compile with the `regex` crate (linear time). PCRE-only syntax it rejects
//! (lookaround, backreferences, possessive quantifiers, ...) falls back to PCRE2 with JIT,
//! whose built-in match limit bounds the work; each fallback is reported once as a notice.

use std::sync::{Arc, OnceLock};

use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::nfa::thompson::backtrack::{BoundedBacktracker, Cache as BacktrackCache};
use regex_automata::nfa::thompson::pikevm::{Cache as PikeCache, PikeVM};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::captures::Captures as Slots;
use regex_automata::util::pool::Pool;
use regex_automata::util::prefilter::Prefilter;
use regex_automata::util::start;
use regex_automata::{Anchored, Input, MatchKind, PatternID};
use regex_syntax::hir::Look;

#[cfg(test)]
mod capture_differential;

use super::shared::Interned;
use super::{BuildContext, Captures, Operator};

/// Largest compiled NFA and lazy DFA cache of one pattern.
const SIZE_LIMIT: usize = 1 << 27;

/// Largest literal prefilter kept inside a lazy DFA.
const PREFILTER_LIMIT: usize = 4096;

/// A pattern the regex crate's engines run: a forward lazy DFA answers whether it matches
/// and where the leftmost-first match lies; a bounded backtracker (a PikeVM on long spans)
/// gives that match's groups when the pattern has groups of its own.
///
/// These are what `regex::bytes::Regex` would run for the same questions, less what it
/// builds to report where a match starts cheaply (a reverse NFA and lazy DFA) and its own
/// literal prefilters: the engine asks where a match lies only for `capture`, and the
/// forward DFA's anchored states find the start then ([`Engines::bounds`]); the engine's
/// literal prefilter has already skipped values without the regex's literals. All built
/// from the same NFA, so they agree on every answer.
///
/// The engines are built on the first search, in the process that searches: loading
/// compiles the pattern once to reject what cannot compile, then drops it. Most patterns
/// of a rule set never run (other paranoia levels; values the prefilter clears), and an
/// nginx worker should not carry megabytes of NFAs it never uses; each worker builds what
/// its traffic needs, once.
struct Lazy {
    pattern: String,
    anchors: Anchors,
    /// Matches every input whole with no group of its own (`^.*$`, CRS 920450 on every
    /// header): answered, and captured, without searching.
    whole: bool,
    /// Inputs the pattern cannot match, told without a search (see [`Screen`]).
    screen: Screen,
    /// Built on the first search; `None` inside only if building failed where it had
    /// succeeded at load (it is the same computation), which leaves the pattern matching
    /// nothing. Boxed: the engines' structures take some 800 bytes, which the many patterns
    /// no request reaches would keep for nothing in every worker.
    engines: OnceLock<Option<Box<Engines>>>,
}

struct Engines {
    /// `None` when its cache could not fit the NFA's minimum; the PikeVM answers then.
    dfa: Option<DFA>,
    pikevm: PikeVM,
    /// Captures on values short enough for its visited set: faster than the PikeVM.
    backtrack: BoundedBacktracker,
    scratch: Pool<Scratch>,
    /// Whether the pattern has groups of its own (beyond the whole match).
    has_groups: bool,
    /// [`framed_group`]'s widths, when the pattern's one group is framed so.
    framed: Option<(usize, usize)>,
    /// The bytes every match starts with ([`first_bytes`]), when no match is empty:
    /// [`Engines::bounds`] probes only the offsets holding one.
    starts: Option<[u64; 4]>,
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

/// Where `^` and `$` match in an `@rx` pattern.
///
/// ModSecurity v2 compiles `@rx` with `PCRE_DOLLAR_ENDONLY` (the value's ends only);
/// ModSecurity v3 with `PCRE2_MULTILINE`, and Coraza prefixes `(?sm)` (every line's ends
/// too). Each reading lets a newline step around some checks: `...$` detections under v2
/// (`cmd%0a`), `!@rx ^\w+$` validations under v3 (`abc%0a--`). Reading positive patterns
/// by lines and negated ones by the value makes each kind of rule match whenever either
/// reading would make it fire. An exclusion written as a positive `@rx` on a value that
/// can hold a newline should anchor with `\A` and `\z`, which no mode changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchors {
    /// At the value's ends and at every line break: a positive `@rx`.
    Lines,
    /// At the value's ends only: a negated `!@rx`.
    Value,
}

impl Anchors {
    pub fn for_operator(negated: bool) -> Anchors {
        if negated {
            Anchors::Value
        } else {
            Anchors::Lines
        }
    }
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("pattern", &self.pattern)
            .field("built", &self.engines.get().is_some())
            .finish_non_exhaustive()
    }
}

/// A pattern parsed as `@rx` reads it: bytes, no Unicode, `.` matching a newline (what the
/// prefilter's literal analysis must read too; the anchors' reading changes no literal).
pub(crate) fn parse(pattern: &str) -> Result<regex_syntax::hir::Hir, String> {
    parse_with(pattern, Anchors::Value)
}

fn parse_with(pattern: &str, anchors: Anchors) -> Result<regex_syntax::hir::Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .multi_line(anchors == Anchors::Lines)
        .build()
        .parse(&pcre_bytes(pattern))
        .map_err(|e| e.to_string())
}

/// `pattern` as PCRE without UTF (how ModSecurity compiles CRS) reads it, in the syntax
/// regex-syntax reads bytes in: every `\x{H..}` of value up to 0xFF written `\xHH`, and
/// every byte of a non-ASCII character written `\xHH` too.
///
/// PCRE reads `\x{bc}` as the byte 0xBC, regex-syntax as the code point U+00BC (two UTF-8
/// bytes), rejected inside a byte class. PCRE reads `´` as its two bytes each on its own (a
/// class `[´]` holds either; `´+` repeats the second), regex-syntax as one character, which
/// it rejects inside a class. Larger `\x{...}` code points are left for regex-syntax to
/// read (PCRE rejects them).
fn pcre_bytes(pattern: &str) -> std::borrow::Cow<'_, str> {
    if pattern.is_ascii() && !pattern.contains("\\x{") {
        return pattern.into();
    }
    let mut out = String::with_capacity(pattern.len() * 2);
    let bytes_of = |c: char, out: &mut String| {
        for b in c.encode_utf8(&mut [0; 4]).bytes() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    };
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c != '\\' {
            if c.is_ascii() {
                out.push(c);
            } else {
                bytes_of(c, &mut out);
            }
            continue;
        }
        let byte = rest
            .strip_prefix("x{")
            .and_then(|s| s.split_once('}'))
            .filter(|(digits, _)| {
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .and_then(|(digits, after)| Some((u8::from_str_radix(digits, 16).ok()?, after)));
        if let Some((b, after)) = byte {
            out.push_str(&format!("\\x{b:02X}"));
            rest = after;
            continue;
        }
        // Any other escape, `\\` included, is taken whole so that what follows it is not
        // read as the start of an escape. An escaped non-ASCII character is its bytes.
        match rest.chars().next() {
            Some(e) if !e.is_ascii() => bytes_of(e, &mut out),
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None => out.push('\\'),
        }
        rest = &rest[rest.chars().next().map_or(0, char::len_utf8)..];
    }
    out.into()
}

/// `^` as either [`Anchors`] reads it (and `\A`): each holds at the input's start.
const STARTS: [Look; 2] = [Look::Start, Look::StartLF];
/// `$` as either [`Anchors`] reads it (and `\z`): each holds at the input's end.
const ENDS: [Look; 2] = [Look::End, Look::EndLF];

/// Whether a pattern (as [`parse`] reads it) matches every input whole and has no group
/// of its own: an optional `^`, a greedy `.*` (any byte, as `@rx` reads `.`), an optional
/// `$` (value or line anchors alike). The leftmost-first match starts at 0 and the run
/// takes every byte, so `$` holds.
fn matches_every_input_whole(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::{Class, HirKind};
    let parts = match hir.kind() {
        HirKind::Concat(parts) => parts.as_slice(),
        _ => std::slice::from_ref(hir),
    };
    let any_bytes = |h: &regex_syntax::hir::Hir| match h.kind() {
        HirKind::Repetition(r) if r.min == 0 && r.max.is_none() && r.greedy => {
            matches!(r.sub.kind(), HirKind::Class(Class::Bytes(c))
                if c.ranges().len() == 1 && c.ranges()[0].start() == 0 && c.ranges()[0].end() == 255)
        }
        _ => false,
    };
    let is_one_of = |h: &regex_syntax::hir::Hir, looks: &[Look]| matches!(h.kind(), HirKind::Look(l) if looks.contains(l));
    // A greedy run of every byte from the input's start ends at the input's end.
    let parts = match parts.split_first() {
        Some((first, rest)) if is_one_of(first, &STARTS) => rest,
        _ => parts,
    };
    let parts = match parts.split_last() {
        Some((last, rest)) if is_one_of(last, &ENDS) => rest,
        _ => parts,
    };
    matches!(parts, [run] if any_bytes(run))
}

/// For a pattern whose only group stands in its top-level sequence between parts of fixed
/// width (CRS 920440's `\.([^.]+)$`: one byte before, none after), those two widths: the
/// group of a match is the match without them, which the match's span gives without the
/// slow engines. Parts of a sequence match one after the other, so fixed widths before and
/// after the group leave it exactly what lies between them.
fn framed_group(hir: &regex_syntax::hir::Hir) -> Option<(usize, usize)> {
    use regex_syntax::hir::HirKind;
    if hir.properties().explicit_captures_len() != 1 {
        return None;
    }
    let parts = match hir.kind() {
        HirKind::Concat(parts) => parts.as_slice(),
        _ => std::slice::from_ref(hir),
    };
    // The one group, unless it is nested (in a repetition, an alternation, another group).
    let at = parts
        .iter()
        .position(|p| matches!(p.kind(), HirKind::Capture(_)))?;
    let width = |parts: &[regex_syntax::hir::Hir]| {
        parts.iter().try_fold(0usize, |w, p| {
            let props = p.properties();
            match (props.minimum_len(), props.maximum_len()) {
                (Some(min), Some(max)) if min == max => w.checked_add(min),
                _ => None,
            }
        })
    };
    Some((width(&parts[..at])?, width(&parts[at + 1..])?))
}

/// What a pattern's syntax tells about the inputs it can match at all, for answering "no
/// match" without a search (whose set-up alone costs a few hundred instructions; CRS tests
/// many header values against anchored patterns):
/// - no match is shorter than the pattern's shortest, and a pattern anchored at both ends
///   matches the whole input, so no longer than its longest (`^$`, `^(?:GET|HEAD)$`);
/// - a pattern anchored at the start whose matches are never empty begins its match, so the
///   input, with one of its first bytes (`^\(\s*\)\s+\{` on a User-Agent);
/// - the literal bytes of the pattern's top-level sequence are in every match (`~` in
///   `\.[^.~]+~(?:/.*|)$`).
///
/// Line anchors hold inside an input too: what they tell (the two anchored cases) holds
/// only for inputs without a line break.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Screen {
    min: usize,
    max: Option<usize>,
    /// The bytes a match can start with (bit per byte), when the input's first byte must be
    /// one of them.
    first: Option<[u64; 4]>,
    /// Whether `max` and `first` hold only for inputs without a line break.
    anchored_by_lines: bool,
    /// Bytes every match holds (a few, the first found).
    required: Vec<u8>,
}

/// Required bytes kept per pattern: each costs a scan of the value.
const MAX_REQUIRED: usize = 2;

impl Screen {
    fn of(hir: &regex_syntax::hir::Hir) -> Screen {
        let p = hir.properties();
        let (prefix, suffix) = (p.look_set_prefix(), p.look_set_suffix());
        let anchored_start = STARTS.iter().any(|&l| prefix.contains(l));
        let anchored_both = anchored_start && ENDS.iter().any(|&l| suffix.contains(l));
        let first = match first_bytes(hir) {
            Some((set, false)) if anchored_start => Some(set),
            _ => None,
        };
        let mut required = Vec::new();
        let parts = match hir.kind() {
            regex_syntax::hir::HirKind::Concat(parts) => parts.as_slice(),
            _ => std::slice::from_ref(hir),
        };
        for part in parts {
            if let regex_syntax::hir::HirKind::Literal(lit) = part.kind() {
                for &b in lit.0.iter() {
                    if required.len() < MAX_REQUIRED && !required.contains(&b) {
                        required.push(b);
                    }
                }
            }
        }
        Screen {
            // No minimum: the pattern matches nothing.
            min: p.minimum_len().unwrap_or(usize::MAX),
            max: if anchored_both { p.maximum_len() } else { None },
            first,
            anchored_by_lines: p.look_set().contains_anchor_line(),
            required,
        }
    }

    /// Whether the pattern may match `input` (false: it cannot).
    fn admit(&self, input: &[u8]) -> bool {
        input.len() >= self.min
            // A line break is looked for only when the anchored screens would rule the
            // input out. (`(?R)` anchors, at `\r` too, get no anchored screens.)
            && (self.fits_anchored(input)
                || self.anchored_by_lines && memchr::memchr(b'\n', input).is_some())
            && self.required.iter().all(|b| input.contains(b))
    }

    /// Whether `input` passes the screens of an anchored pattern, read as a single line.
    fn fits_anchored(&self, input: &[u8]) -> bool {
        self.max.is_none_or(|max| input.len() <= max)
            && self
                .first
                .is_none_or(|set| input.first().is_some_and(|&b| has_byte(&set, b)))
    }
}

fn has_byte(set: &[u64; 4], b: u8) -> bool {
    set[usize::from(b >> 6)] & 1 << (b & 63) != 0
}

/// The bytes a match of `hir` can start with, and whether it can be empty; `None` where the
/// syntax is not understood here. Look-arounds count as empty (they only remove matches).
fn first_bytes(hir: &regex_syntax::hir::Hir) -> Option<([u64; 4], bool)> {
    use regex_syntax::hir::{Class, HirKind};
    let mut set = [0u64; 4];
    let add = |set: &mut [u64; 4], lo: u8, hi: u8| {
        for b in lo..=hi {
            set[usize::from(b >> 6)] |= 1 << (b & 63);
        }
    };
    let nullable = match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(lit) => {
            let &b = lit.0.first()?;
            add(&mut set, b, b);
            false
        }
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                add(&mut set, r.start(), r.end());
            }
            false
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.ranges() {
                // Past ASCII a code point's first byte is not the code point.
                let (lo, hi) = (u8::try_from(r.start()).ok()?, u8::try_from(r.end()).ok()?);
                if hi > 0x7f {
                    return None;
                }
                add(&mut set, lo, hi);
            }
            false
        }
        HirKind::Repetition(r) => {
            let (sub, empty) = first_bytes(&r.sub)?;
            or_set(&mut set, &sub);
            r.min == 0 || empty
        }
        HirKind::Capture(c) => {
            let (sub, empty) = first_bytes(&c.sub)?;
            or_set(&mut set, &sub);
            empty
        }
        HirKind::Concat(parts) => {
            let mut empty = true;
            for part in parts {
                let (sub, part_empty) = first_bytes(part)?;
                or_set(&mut set, &sub);
                if !part_empty {
                    empty = false;
                    break;
                }
            }
            empty
        }
        HirKind::Alternation(alts) => {
            let mut empty = false;
            for alt in alts {
                let (sub, alt_empty) = first_bytes(alt)?;
                or_set(&mut set, &sub);
                empty |= alt_empty;
            }
            empty
        }
    };
    Some((set, nullable))
}

fn or_set(set: &mut [u64; 4], other: &[u64; 4]) {
    for (a, b) in set.iter_mut().zip(other) {
        *a |= b;
    }
}

impl Lazy {
    /// Checks that `pattern` compiles (its engines within our size limits) without keeping
    /// them.
    fn build(pattern: &str, anchors: Anchors) -> Result<Lazy, String> {
        let hir = parse_with(pattern, anchors)?;
        drop(Engines::build(pattern, anchors)?);
        Ok(Lazy {
            whole: matches_every_input_whole(&hir),
            screen: Screen::of(&hir),
            pattern: pattern.to_string(),
            anchors,
            engines: OnceLock::new(),
        })
    }

    fn engines(&self) -> Option<&Engines> {
        super::shared::built_on_first_search(&self.engines, || {
            Engines::build(&self.pattern, self.anchors).map(Box::new)
        })
        .map(|e| &**e)
    }

    fn is_match(&self, input: &[u8]) -> bool {
        self.engines().is_some_and(|e| e.is_match(input))
    }

    fn captures(&self, input: &[u8], groups: &mut Captures) -> bool {
        self.engines().is_some_and(|e| e.captures(input, groups))
    }
}

/// The NFA of a parsed pattern, as `regex::bytes::RegexBuilder` compiles it with
/// `unicode(false)`, `dot_matches_new_line(true)` and our size limits.
fn nfa(hir: &regex_syntax::hir::Hir) -> Result<thompson::NFA, String> {
    thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .utf8(false)
                .shrink(false)
                .nfa_size_limit(Some(SIZE_LIMIT))
                .which_captures(WhichCaptures::All),
        )
        .build_from_hir(hir)
        .map_err(|e| e.to_string())
}

impl Engines {
    fn build(pattern: &str, anchors: Anchors) -> Result<Engines, String> {
        let hir = parse_with(pattern, anchors)?;
        let nfa = nfa(&hir)?;
        // Where a match may start anywhere, its prefix literals let the DFA skip to where
        // one may start (long values: a response body). A line-anchored start is left
        // without: measured, the prefilter's set-up cost more on CRS's short values.
        let prefix = hir.properties().look_set_prefix();
        let prefilter = if STARTS.iter().any(|&l| prefix.contains(l)) {
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
        let has_groups = nfa.group_info().group_len(PatternID::ZERO) > 1;
        let backtrack = BoundedBacktracker::new_from_nfa(nfa).map_err(|e| e.to_string())?;
        Ok(Engines {
            has_groups,
            framed: framed_group(&hir),
            starts: first_bytes(&hir).and_then(|(set, empty)| (!empty).then_some(set)),
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
    ///
    /// The lazy DFA finds where the match lies (see [`Engines::bounds`]); the slow engines
    /// only run for patterns with groups of their own (but a group [`framed_group`] places),
    /// anchored at the match's start and confined to its span, or where the DFA could not
    /// tell.
    fn captures(&self, input: &[u8], groups: &mut Captures) -> bool {
        let mut scratch = self.scratch.get();
        let Scratch { dfa, slow } = &mut *scratch;
        let bounds = match &self.dfa {
            Some(d) => self.bounds(d, dfa.get_or_insert_with(|| d.create_cache()), input),
            None => Bounds::Within(0..input.len()),
        };
        let (span, exact) = match bounds {
            Bounds::NoMatch => return false,
            Bounds::Exact(span) => (span, true),
            Bounds::Within(span) => (span, false),
        };
        groups.clear();
        if exact && !self.has_groups {
            groups.set([&input[span]]);
            return true;
        }
        if let Some((before, after)) = self.framed.filter(|_| exact) {
            let group = span.start + before..span.end - after;
            groups.set([&input[span], &input[group]]);
            return true;
        }
        let SlowScratch {
            pikevm,
            backtrack,
            slots,
        } = slow.get_or_insert_with(|| self.slow_scratch());
        // Confined to a span, the search still sees the bytes around it (`\b`, `$`).
        let search = Input::new(input).span(span.clone()).anchored(if exact {
            Anchored::Yes
        } else {
            Anchored::No
        });
        if span.len() > self.backtrack.max_haystack_len()
            || self
                .backtrack
                .try_search(backtrack, &search, slots)
                .is_err()
        {
            self.pikevm.search(pikevm, &search, slots);
        }
        if !slots.is_match() {
            return false;
        }
        groups.set(
            (0..slots.group_len().min(10))
                .map(|i| slots.get_group(i).map_or(&[][..], |sp| &input[sp.range()])),
        );
        true
    }

    /// Where the leftmost-first match of `input` lies, as the lazy DFA tells.
    ///
    /// Its forward search (not stopping at the first match state) ends where that match
    /// ends. The match starts at the least offset from which the pattern matches at all,
    /// and a match from there ends by that end: the first offset whose anchored search,
    /// confined to end there, matches. Confining both searches to the span keeps the
    /// answer: a higher-priority match inside it would be one in the whole input too.
    fn bounds(&self, dfa: &DFA, cache: &mut DfaCache, input: &[u8]) -> Bounds {
        let whole = Input::new(input);
        let end = match dfa.try_search_fwd(cache, &whole) {
            Ok(None) => return Bounds::NoMatch,
            Ok(Some(m)) => m.offset(),
            // The DFA gave up (its cache thrashing): the slow engines search it all.
            Err(_) => return Bounds::Within(0..input.len()),
        };
        for start in 0..=end {
            // A start far in (a long value) is left to the slow engines, on what is left of
            // the span: each probe costs a start state and a few transitions.
            if start == START_PROBES {
                return Bounds::Within(start..end);
            }
            // No match starts at a byte no match starts with (CRS 920440's `\.([^.]+)$`,
            // on a file name: only at its dots).
            if let Some(set) = &self.starts {
                if !input.get(start).is_some_and(|&b| has_byte(set, b)) {
                    continue;
                }
            }
            match starts_here(dfa, cache, input, start, end) {
                Some(true) => return Bounds::Exact(start..end),
                Some(false) => {}
                None => return Bounds::Within(start..end),
            }
        }
        // Unreachable while the DFA agrees with itself (a match ends at `end`).
        Bounds::Within(0..input.len())
    }
}

/// Whether the pattern matches from `start` (anchored there) ending by `end`, walking the
/// lazy DFA's states by hand (cheaper than setting up a search for each offset); `None`
/// when the DFA gives up.
fn starts_here(
    dfa: &DFA,
    cache: &mut DfaCache,
    input: &[u8],
    start: usize,
    end: usize,
) -> Option<bool> {
    let config = start::Config::new()
        .anchored(Anchored::Yes)
        .look_behind(start.checked_sub(1).map(|i| input[i]));
    let mut sid = dfa.start_state(cache, &config).ok()?;
    for &b in &input[start..end] {
        sid = dfa.next_state(cache, sid, b).ok()?;
        if sid.is_tagged() {
            if sid.is_match() {
                return Some(true);
            }
            if sid.is_dead() {
                return Some(false);
            }
            if sid.is_quit() {
                return None;
            }
        }
    }
    // The DFA shows a match one byte late: the byte after the span (or the end of the
    // input) shows one that ends at `end`.
    sid = match input.get(end) {
        Some(&b) => dfa.next_state(cache, sid, b),
        None => dfa.next_eoi_state(cache, sid),
    }
    .ok()?;
    Some(sid.is_match())
}

/// Offsets whose anchored DFA search [`Engines::bounds`] tries as the match's start.
const START_PROBES: usize = 64;

/// What [`Engines::bounds`] found.
enum Bounds {
    NoMatch,
    /// The leftmost-first match's span.
    Exact(std::ops::Range<usize>),
    /// A span holding the leftmost-first match whole (its end, or both ends, unknown).
    Within(std::ops::Range<usize>),
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
    let anchors = Anchors::for_operator(ctx.negated);
    Ok(Box::new(Rx::compile(param, anchors, ctx.notices)?))
}

impl Rx {
    /// Compile `pattern`, falling back to PCRE2 (with a notice) when the regex crate cannot.
    ///
    /// The fallback reads [`Anchors::Value`] as PCRE2 without `DOLLAR_ENDONLY` (which the
    /// `pcre2` crate does not offer): `$` also before a final newline.
    pub fn compile(
        pattern: &str,
        anchors: Anchors,
        notices: &mut Vec<String>,
    ) -> Result<Rx, String> {
        let built = SHARED.get_or_build(
            pattern,
            |re| re.pattern == pattern && re.anchors == anchors,
            || Lazy::build(pattern, anchors),
        );
        let engine = match built {
            Ok(re) => Engine::Rust(re),
            Err(rust_err) => {
                let re = pcre2::bytes::RegexBuilder::new()
                    .dotall(true)
                    .multi_line(anchors == Anchors::Lines)
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

    /// Whether the pattern matches every input whole, answered without searching.
    pub fn matches_every_input(&self) -> bool {
        matches!(&self.engine, Engine::Rust(re) if re.whole)
    }
}

impl Operator for Rx {
    fn matches(&self, input: &[u8], caps: &mut Captures) -> bool {
        match &self.engine {
            Engine::Rust(re) if re.whole => {
                if caps.wanted {
                    caps.set([input]);
                }
                true
            }
            Engine::Rust(re) if !re.screen.admit(input) => false,
            // Captures cost more; most values do not match, so ask the cheap question first.
            Engine::Rust(re) if caps.wanted => re.captures(input, caps),
            Engine::Rust(re) => re.is_match(input),
            // A PCRE2 error (match limit hit) counts as no match, as in ModSecurity.
            Engine::Pcre(re) if caps.wanted && !re.is_match(input).unwrap_or(false) => false,
            Engine::Pcre(re) if caps.wanted => match re.captures(input) {
                Ok(Some(c)) => {
                    caps.set(
                        (0..c.len().min(10)).map(|i| c.get(i).map_or(&[][..], |m| m.as_bytes())),
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

    fn built(re: &Rx) -> bool {
        matches!(&re.engine, Engine::Rust(lazy) if lazy.engines.get().is_some())
    }

    /// The regex crate's reading of `p` as the engine reads it with `anchors`, to compare with.
    fn reference(p: &str, anchors: Anchors) -> regex::bytes::Regex {
        regex::bytes::RegexBuilder::new(p)
            .unicode(false)
            .dot_matches_new_line(true)
            .multi_line(anchors == Anchors::Lines)
            .build()
            .unwrap()
    }

    #[test]
    fn engines_are_built_on_the_first_search_only() {
        // A pattern no other test compiles: compiled operators are shared while alive.
        let pattern = r"lazy-(\d+)-engines";
        let re = Rx::compile(pattern, Anchors::Value, &mut Vec::new()).unwrap();
        assert!(!built(&re), "built at load");
        let twin = Rx::compile(pattern, Anchors::Value, &mut Vec::new()).unwrap();
        let builds_before = crate::operators::first_search_builds();
        let mut caps = Captures::new(true);
        assert!(re.matches(b"a lazy-42-engines b", &mut caps));
        assert_eq!(
            caps.groups(),
            vec![b"lazy-42-engines".to_vec(), b"42".to_vec()]
        );
        assert!(built(&re));
        assert!(
            crate::operators::first_search_builds() > builds_before,
            "build not counted"
        );
        assert!(built(&twin), "the same pattern's operators share one build");
        assert!(!re.matches(b"lazy-x-engines", &mut Captures::default()));
    }

    #[test]
    fn loading_still_rejects_what_cannot_compile() {
        let mut n = Vec::new();
        // Past the NFA size limit: neither engine takes it.
        let err = Rx::compile(r"(?:\w{1000}){60000}", Anchors::Value, &mut n).unwrap_err();
        assert!(err.contains("invalid regex"), "{err}");
    }

    #[test]
    fn bytes_semantics() {
        let mut n = Vec::new();
        let re = Rx::compile(r"^a.b\xff$", Anchors::Value, &mut n).unwrap();
        assert!(re.matches(b"a\nb\xff", &mut Captures::default()));
        assert!(!re.matches(b"a\nb\xc3\xbf", &mut Captures::default()));
        assert!(!re.is_fallback());
        assert!(n.is_empty());
    }

    #[test]
    fn captures_groups() {
        let mut n = Vec::new();
        let re = Rx::compile(r"(\d+)-(\w+)?", Anchors::Value, &mut n).unwrap();
        let mut caps = Captures::new(true);
        assert!(re.matches(b"x 12- y", &mut caps));
        assert_eq!(
            caps.groups(),
            vec![b"12-".to_vec(), b"12".to_vec(), Vec::new()]
        );
    }

    #[test]
    fn answers_as_the_regex_crate() {
        let long = [&b"x".repeat(5000)[..], b"<script>Alert(1)", &[0xff, b'\n']].concat();
        let inputs: [&[u8]; 8] = [
            b"",
            b"abc",
            b"ab\nc",
            b"x\nabc\n",
            b"1 union  select 2",
            b"\xffab",
            b"\xff\nq",
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
            r"^(\w+)$",
            r"(?i)^\s*(abc|q)$",
        ];
        for (p, anchors) in patterns
            .iter()
            .flat_map(|p| [(p, Anchors::Value), (p, Anchors::Lines)])
        {
            let re = Rx::compile(p, anchors, &mut Vec::new()).unwrap();
            assert!(!re.is_fallback());
            let reference = reference(p, anchors);
            for i in inputs {
                let mut caps = Captures::new(true);
                let expected = reference.captures(i);
                assert_eq!(re.matches(i, &mut Captures::default()), expected.is_some());
                assert_eq!(re.matches(i, &mut caps), expected.is_some());
                if let Some(c) = expected {
                    let groups: Vec<Vec<u8>> = c
                        .iter()
                        .map(|g| g.map_or(Vec::new(), |m| m.as_bytes().to_vec()))
                        .collect();
                    assert_eq!(caps.groups(), groups, "{p}");
                }
            }
        }
    }

    /// A group framed by fixed widths is read off the match's span as the slow engines
    /// would find it; groups that are not framed so are left to them.
    #[test]
    fn framed_groups_are_what_the_slow_engines_find() {
        let framed = |p: &str| framed_group(&parse_with(p, Anchors::Value).unwrap());
        assert_eq!(framed(r"\.([^.]+)$"), Some((1, 0)));
        assert_eq!(framed(r"(a+)"), Some((0, 0)));
        assert_eq!(framed(r"^\bx[ab]{2}(.*?)y\z"), Some((3, 1)));
        for not in [
            r"a(b)(c)",
            r"a*(b)",
            r"(b)c?",
            r"(?:(a)|b)x",
            r"(a(b))",
            r"x(a)+",
            r"\.[^.]+$",
            r"(?:ab|c)(x)",
        ] {
            assert_eq!(framed(not), None, "{not}");
        }
        let patterns = [
            r"\.([^.]+)$",
            r"(?i)\.([^.]*)$",
            r"^\bx[ab]{2}(.*?)y\z",
            r"(a+)",
            r"=(\d*)",
            r"(?i)<(script)\b",
            r"(\xff|b)\n",
            r"^(?:\w|-)(.*)$",
        ];
        // Matches after bytes no match starts with, non-ASCII among them (where the DFA
        // gives up on `\b`), so that the probes for the match's start skip some.
        let inputs: [&[u8]; 16] = [
            b"\xc3\xa9 x <script \xc3\xa9<Script>",
            b"q.\xc3\xa9.ph\xc3\xa9",
            b"",
            b"list.php",
            b"a.b.C",
            b"x.",
            b"noext",
            b"xaby",
            b"xabqqyz",
            b"xbaZZy",
            b"aaa=12=",
            b"<SCRIPT>",
            b"<scripts",
            b"\xff\n.b\n",
            b"-\xe9t\xc3\xa9.\xc3",
            b"\n.a\n",
        ];
        let mut framed_matches = 0;
        for p in patterns {
            for anchors in [Anchors::Value, Anchors::Lines] {
                let lazy = Lazy::build(p, anchors).unwrap();
                let engines = lazy.engines().unwrap();
                assert!(engines.framed.is_some(), "{p}");
                let reference = reference(p, anchors);
                for i in inputs {
                    let mut caps = Captures::new(true);
                    let expected = reference.captures(i).map(|c| {
                        c.iter()
                            .map(|g| g.map_or(Vec::new(), |m| m.as_bytes().to_vec()))
                            .collect::<Vec<_>>()
                    });
                    assert_eq!(engines.captures(i, &mut caps), expected.is_some());
                    if let Some(groups) = expected {
                        assert_eq!(caps.groups(), groups, "{p} {i:?}");
                        framed_matches += 1;
                    }
                }
            }
        }
        assert!(framed_matches > 40, "{framed_matches}");
    }

    #[test]
    fn pcre_fallback_for_lookbehind_and_backrefs() {
        let mut n = Vec::new();
        let re = Rx::compile(r"(?<!a)b(['\x22])x\1", Anchors::Value, &mut n).unwrap();
        assert!(re.is_fallback());
        assert_eq!(n.len(), 1);
        assert!(re.matches(b"cb'x'", &mut Captures::default()));
        assert!(!re.matches(b"ab'x'", &mut Captures::default()));
        assert!(!re.matches(b"cb'x\"", &mut Captures::default()));
        // The fallback reads anchors as the operator's negation asks too.
        let lines = Rx::compile(r"(?<!a)^b$", Anchors::Lines, &mut n).unwrap();
        let value = Rx::compile(r"(?<!a)^b$", Anchors::Value, &mut n).unwrap();
        assert!(lines.is_fallback() && value.is_fallback());
        for (input, by_lines, by_value) in [(&b"x\nb"[..], true, false), (b"b", true, true)] {
            assert_eq!(lines.matches(input, &mut Captures::default()), by_lines);
            assert_eq!(value.matches(input, &mut Captures::default()), by_value);
        }
    }

    /// Answers of PCRE2 without UTF, as ModSecurity compiles CRS.
    fn pcre_matches(pattern: &str, input: &[u8]) -> bool {
        pcre2::bytes::RegexBuilder::new()
            .dotall(true)
            .build(pattern)
            .unwrap()
            .is_match(input)
            .unwrap()
    }

    /// Each pattern compiles without the fallback and answers every input as PCRE2 does;
    /// how many inputs matched.
    fn agree_with_pcre(cases: &[(&str, &[&[u8]])]) -> usize {
        let mut matched = 0;
        for (p, inputs) in cases {
            let mut notices = Vec::new();
            let re = Rx::compile(p, Anchors::Value, &mut notices).unwrap();
            assert!(!re.is_fallback(), "{p}");
            assert!(notices.is_empty(), "{p}: {notices:?}");
            for i in *inputs {
                let expected = pcre_matches(p, i);
                assert_eq!(
                    re.matches(i, &mut Captures::default()),
                    expected,
                    "{p} {i:?}"
                );
                matched += usize::from(expected);
            }
        }
        matched
    }

    /// [`Anchors::Lines`] reads anchors as libmodsecurity's PCRE2 (`DOTALL|MULTILINE`) does,
    /// but for a line start after a newline that ends the input: PCRE2 sees no line there,
    /// the regex crate an empty one (`^$` on `a\n`), which can only add a match, and only
    /// for patterns that match an empty line (CRS's, `^$`, test header values, which hold
    /// no newline).
    #[test]
    fn line_anchors_as_in_libmodsecurity() {
        let patterns = [
            r"^\d+$",
            r"(?i)^(?:time|who)\s*$",
            r"^$",
            r"^\s*$",
            r"x$",
            r"^x",
            r"a\n^b",
            r"\Aa$",
            r"^b\z",
        ];
        let inputs: [&[u8]; 10] = [
            b"12",
            b"12\n",
            b"ab\n12",
            b"time who\n",
            b"x\nwho",
            b"a\n",
            b"\n\n",
            b"a\nb",
            b"b\nax",
            b"",
        ];
        let (mut agree, mut only_here) = (0, 0);
        for p in patterns {
            let re = Rx::compile(p, Anchors::Lines, &mut Vec::new()).unwrap();
            let pcre = pcre2::bytes::RegexBuilder::new()
                .dotall(true)
                .multi_line(true)
                .build(p)
                .unwrap();
            let mut caps = Captures::new(true);
            for i in inputs {
                let (here, there) = (re.matches(i, &mut caps), pcre.is_match(i).unwrap());
                if here == there {
                    agree += usize::from(here);
                    continue;
                }
                // The only difference: the empty line after a final newline.
                assert!(here && i.ends_with(b"\n"), "{p} {i:?}: {here} here");
                assert_eq!(caps.groups(), [Vec::<u8>::new()], "{p} {i:?}");
                only_here += 1;
            }
        }
        assert!(agree >= 15, "{agree}");
        assert!(only_here > 0, "the difference is not exercised");
    }

    #[test]
    fn braced_hex_escapes_are_bytes_as_in_pcre() {
        let cases: &[(&str, &[&[u8]])] = &[
            // Outside a class.
            (r"^\x{bc}$", &[b"\xbc", b"\xc2\xbc", b"\xbc\xbc"]),
            (r"^\x{b}\x{0041}$", &[b"\x0bA", b"\x0b\x00A"]),
            // Inside classes and as range ends.
            (
                r"^[^>\x{be}]*[>\x{be}]$",
                &[b"ab>", b"a\xbe", b"\xc2\xbe", b"\xbe\xbe", b"\xc2"],
            ),
            (r"^[\x7f-\x{ff}]+$", &[b"\x7f\x80\xff", b"a", b"\xc3\xbf"]),
            // The bytes of U+00B4 and of U+2019 as 942 rules spell them.
            (
                r"^(?:[a]|\x{c2}\x{b4}|\x{e2}\x80[\x98\x99]){2}$",
                &[
                    b"a\xc2\xb4",
                    b"\xe2\x80\x99a",
                    b"a\xc3\x82\xc2\xb4",
                    b"a\xb4",
                ],
            ),
            // An escaped backslash: `x{2}` is then a repetition, not an escape.
            (r"^\\x{2}$", &[b"\\xx", b"\\\x02", b"\x02"]),
            (r"^[\\]x{2}$", &[b"\\xx", b"\\\x02"]),
        ];
        let matched = agree_with_pcre(cases);
        // The cases hold matches as well as misses.
        assert!(matched >= 8, "{matched}");
    }

    #[test]
    fn non_ascii_characters_are_their_bytes_as_in_pcre() {
        let cases: &[(&str, &[&[u8]])] = &[
            // In a class, either byte of U+00B4 or of U+2019 (as CRS 3.3.4's 942 rules
            // spell them).
            (
                "^[\"'\u{b4}\u{2019}]$",
                &[b"\xc2", b"\xb4", b"'", b"\xe2", b"\x99", b"\xc2\xb4", b"a"],
            ),
            // Outside a class, a quantifier repeats the last byte only.
            (
                "^a\u{b4}+$",
                &[b"a\xc2\xb4\xb4", b"a\xc2\xb4\xc2\xb4", b"a\xc2\xb4"],
            ),
            // Escaped, the character is still its bytes.
            ("^\\\u{b4}$", &[b"\xc2\xb4", b"\\\xc2\xb4"]),
        ];
        let matched = agree_with_pcre(cases);
        // The cases hold matches as well as misses.
        assert!(matched >= 5, "{matched}");
    }

    #[test]
    fn code_points_past_a_byte_are_left_to_the_parser() {
        // Past 0xFF PCRE without UTF rejects the escape; regex-syntax reads a code point.
        let re = Rx::compile(r"\x{2019}", Anchors::Value, &mut Vec::new()).unwrap();
        assert!(re.matches(b"\xe2\x80\x99", &mut Captures::default()));
        assert_eq!(pcre_bytes(r"\x{100}a\x{}"), r"\x{100}a\x{}");
    }

    #[test]
    fn braced_hex_byte_classes_need_no_fallback_in_a_rule_set() {
        let rs = crate::RuleSet::from_text(
            "SecRule ARGS \"@rx \\x{bc}[^>\\x{be}]*[>\\x{be}]|<[^\\x{be}]*\\x{be}\" \
             \"id:1,phase:2,pass,chain\"\n\
             \x20   SecRule MATCHED_VARS \"@rx \\x{bc}[\\s\\x0b]*/[^>\\x{be}]*[>\\x{be}]\" \"t:none\"\n\
             SecRule ARGS \"@rx \\$+(?:[A-Z_a-z\\x7f-\\x{ff}][0-9A-Z_a-z\\x7f-\\x{ff}]*)\\(.*\\)\" \
             \"id:2,phase:2,pass\"\n\
             SecRule ARGS \"@rx (?<!a)b\" \"id:3,phase:2,pass\"\n",
            "t",
        )
        .unwrap();
        // Only the lookbehind needs PCRE2 (the notice is how a fallback shows).
        assert_eq!(rs.notices().len(), 1, "{:?}", rs.notices());
        assert!(rs.notices()[0].contains("(?<!a)b"));
        // And the byte patterns now have literals for the prefilter.
        assert!(crate::prefilter::required_literals(
            r"\x{bc}[^>\x{be}]*[>\x{be}]|<[^\x{be}]*\x{be}"
        )
        .is_some());
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        assert!(Rx::compile("(unclosed", Anchors::Value, &mut Vec::new()).is_err());
    }

    #[test]
    fn patterns_that_match_every_input_whole() {
        let whole = |p: &str, anchors| {
            let re = Rx::compile(p, anchors, &mut Vec::new()).unwrap();
            // What the shortcut answers is what a search would.
            if re.matches_every_input() {
                let Engine::Rust(lazy) = &re.engine else {
                    panic!("{p} fell back");
                };
                for input in [&b""[..], b"a", b"a\nb\n", b"\n"] {
                    let mut caps = Captures::new(true);
                    assert!(lazy.captures(input, &mut caps), "{p} {input:?}");
                    assert_eq!(caps.groups(), [input.to_vec()], "{p} {input:?}");
                }
            }
            re.matches_every_input()
        };
        for anchors in [Anchors::Value, Anchors::Lines] {
            for p in [
                "^.*$", ".*", "^.*", ".*$", "^(?:.*)$", "(?s)^.*$", "(?m)^.*$",
            ] {
                assert!(whole(p, anchors), "{p} {anchors:?}");
            }
        }
        // A group of its own, an empty input, lazy runs, `.` without newlines, misplaced
        // anchors, other classes, alternations, PCRE-only syntax.
        for p in [
            "^(.*)$",
            "^.+$",
            "^.*?",
            "(?-s)^.*$",
            "$.*",
            ".*^",
            "^[^a]*$",
            "^.*$|x",
            "^.*$x",
            "^",
            "",
            "(?<=a).*",
        ] {
            for anchors in [Anchors::Value, Anchors::Lines] {
                assert!(!whole(p, anchors), "{p} {anchors:?}");
            }
        }
    }

    #[test]
    fn screens_rule_out_only_what_cannot_match() {
        let patterns = [
            "^$",
            r"^(?:GET|HEAD)$",
            r"^a{2,3}$",
            r"^\s*$",
            "abc",
            r"^ab|cd$",
            r"(?:x|^ab)$",
            r"^a(?:b|cd)",
            r"\bword\b",
            r"^(?:a|bc)+$",
            "[^\\x00-\\xff]",
            r"^\(\s*\)\s+\{",
            r"(?:^([\d.]+|\[[\da-f:]+\]|[\da-f:]+)(:[\d]+)?$)",
            r"\.[^.~]+~(?:/.*|)$",
            r"(?i)^(?:get|head)\b",
            r"^\b(?:x?y|z*)w",
            r"^(?:a?)*b",
            r"^(a)?\d",
            "^\\xff+a",
            r"(?i)x~y",
        ];
        let inputs: [&[u8]; 20] = [
            b"",
            b"a",
            b"aa",
            b"aaa",
            b"aaaa",
            b"GET",
            b"HEAD",
            b"HEADS",
            b"xxabcxx",
            b"ab\ncd",
            b"abcd word",
            b" \t ",
            b"() {",
            b"Mozilla/5.0 (X11)",
            b"10.0.0.1:80",
            b"/index.php.~/x",
            b"get /",
            b"yw",
            b"1",
            b"\xff\xffa",
        ];
        // Line breaks where the anchored screens would otherwise rule an input out.
        let with_lines: [&[u8]; 6] = [b"x\nGET", b"GET\nx", b"x\n() {", b"HEAD\n", b"a\naa", b"\n"];
        let mut decided = [0; 2];
        for (p, anchors) in patterns
            .iter()
            .flat_map(|p| [(p, Anchors::Value), (p, Anchors::Lines)])
        {
            let re = Rx::compile(p, anchors, &mut Vec::new()).unwrap();
            let Engine::Rust(lazy) = &re.engine else {
                panic!("{p} fell back");
            };
            let reference = reference(p, anchors);
            for i in inputs.iter().chain(&with_lines).copied().chain([
                &b"zz~"[..],
                b"X~Y",
                b"bw",
                b"aab",
            ]) {
                let expected = reference.captures(i);
                if !lazy.screen.admit(i) {
                    decided[usize::from(anchors == Anchors::Lines)] += 1;
                    assert!(expected.is_none(), "{p} {anchors:?} ruled out {i:?}");
                }
                let mut caps = Captures::new(true);
                assert_eq!(re.matches(i, &mut Captures::default()), expected.is_some());
                assert_eq!(
                    re.matches(i, &mut caps),
                    expected.is_some(),
                    "{p} {anchors:?} {i:?}"
                );
            }
        }
        // Each kind of screen decides some, read either way (the test would pass vacuously
        // otherwise).
        assert!(decided.iter().all(|&d| d > 100), "{decided:?}");
        let screen = |p: &str| match Rx::compile(p, Anchors::Value, &mut Vec::new())
            .unwrap()
            .engine
        {
            Engine::Rust(lazy) => lazy.screen.clone(),
            Engine::Pcre(_) => panic!("{p} fell back"),
        };
        assert_eq!(screen("^$").max, Some(0));
        let first = screen(r"^\(\s*\)\s+\{").first.unwrap();
        assert!(has_byte(&first, b'(') && !has_byte(&first, b'M'));
        assert_eq!(screen(r"\.[^.~]+~(?:/.*|)$").required, b".~");
        // A start that may be empty, or unanchored: no first bytes.
        assert_eq!(
            screen(r"^(?:a?)*b").first.map(|f| has_byte(&f, b'b')),
            Some(true)
        );
        assert_eq!(screen(r"^a*").first, None);
        assert_eq!(screen(r"ab").first, None);
    }
}
