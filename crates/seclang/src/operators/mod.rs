//! Operators (`@name param`): one file each, registered in [`TABLE`].
//!
//! An operator is built once from its parameter at load time (`new`), then asked whether a
//! (transformed) value matches. Parameters holding macros (`%{tx.x}`) are expanded per
//! transaction by the caller and the operator is built then (see `rule::RuleOperator`).

mod begins_with;
mod contains;
mod contains_word;
mod detect_sqli;
mod detect_xss;
mod ends_with;
mod eq;
mod ge;
mod geo_lookup;
mod gt;
mod ip_match;
mod ip_match_from_file;
mod le;
mod lt;
mod no_match;
mod pm;
mod pm_from_file;
mod rbl;
pub(crate) mod rx;
#[cfg(test)]
mod screen_differential;
mod shared;
mod sqli_fingerprint;
mod streq;
mod unconditional_match;
mod validate_byte_range;
mod validate_url_encoding;
mod validate_utf8_encoding;
mod within;

pub use rx::Rx;
pub use shared::first_search_builds;
/// For the `sqli_fingerprint` fuzz target, which holds them to the library.
#[doc(hidden)]
pub use sqli_fingerprint::{clears as sqli_cleared, fingerprint as sqli_first_pass};

use std::path::{Path, PathBuf};

/// Capture groups an operator reports (TX:0..TX:9) when the rule has `capture`. Setting
/// them reuses the buffers of the groups set before: a transaction keeps one `Captures`
/// for all its rules.
#[derive(Debug, Default)]
pub struct Captures {
    /// Whether the rule asked for captures; operators skip the work otherwise.
    pub wanted: bool,
    buffers: Vec<Vec<u8>>,
    len: usize,
}

impl Captures {
    pub fn new(wanted: bool) -> Captures {
        Captures {
            wanted,
            ..Captures::default()
        }
    }

    /// The groups, group 0 (the whole match) first.
    pub fn groups(&self) -> &[Vec<u8>] {
        &self.buffers[..self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The bytes its buffers hold on to.
    pub fn capacity(&self) -> usize {
        self.buffers.iter().map(Vec::capacity).sum()
    }

    /// Sets the groups to `groups`.
    pub fn set<'a>(&mut self, groups: impl IntoIterator<Item = &'a [u8]>) {
        self.len = 0;
        for g in groups {
            match self.buffers.get_mut(self.len) {
                Some(b) => {
                    b.clear();
                    b.extend_from_slice(g);
                }
                None => self.buffers.push(g.to_vec()),
            }
            self.len += 1;
        }
    }
}

/// A compiled operator.
pub trait Operator: Send + Sync + std::fmt::Debug {
    /// Whether `input` matches (before negation).
    fn matches(&self, input: &[u8], caps: &mut Captures) -> bool;

    /// The compiled regex, for rules whose operator is `@rx`.
    fn as_rx(&self) -> Option<&Rx> {
        None
    }

    /// Literals one of which (compared ASCII case-insensitively) every matching input
    /// contains, if there is such a set: the prefilter skips the operator on values that
    /// contain none.
    fn literals(&self) -> Option<Vec<Vec<u8>>> {
        None
    }

    /// Literals one of which occurs (ASCII case aside) in every input the operator matches,
    /// for a test of values before their transformations (see `prefilter::RawScreen`).
    fn screen_literals(&self) -> Option<Vec<Vec<u8>>> {
        self.literals()
    }

    /// Whether the operator matches exactly the inputs that contain one of `literals()`:
    /// a per-value prefilter of them would repeat its whole work (and its memory).
    fn is_literal_search(&self) -> bool {
        false
    }
}

/// What an operator may need from the loader.
pub struct BuildContext<'a> {
    /// Directory of the file holding the rule, for `@pmFromFile` and friends.
    pub base_dir: &'a Path,
    /// Load-time notices (e.g. a regex that needed the PCRE2 fallback).
    pub notices: &'a mut Vec<String>,
    /// Whether the operator is negated (`!@rx` reads its anchors otherwise: see
    /// [`rx::Anchors`]).
    pub negated: bool,
}

impl BuildContext<'_> {
    pub(crate) fn resolve(&self, file: &str) -> PathBuf {
        let p = Path::new(file);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Builds an operator from its (macro-free) parameter.
pub type BuildFn = fn(param: &str, ctx: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String>;

/// All operators by SecLang name (case-insensitive), and whether the parameter may hold
/// macros expanded per transaction.
pub const TABLE: &[(&str, BuildFn, bool)] = &[
    ("beginsWith", begins_with::new, true),
    ("contains", contains::new, true),
    ("containsWord", contains_word::new, true),
    ("detectSQLi", detect_sqli::new, false),
    ("detectXSS", detect_xss::new, false),
    ("endsWith", ends_with::new, true),
    ("eq", eq::new, true),
    ("ge", ge::new, true),
    ("geoLookup", geo_lookup::new, false),
    ("gt", gt::new, true),
    ("ipMatch", ip_match::new, false),
    ("ipMatchF", ip_match_from_file::new, false),
    ("ipMatchFromFile", ip_match_from_file::new, false),
    ("le", le::new, true),
    ("lt", lt::new, true),
    ("noMatch", no_match::new, false),
    ("pm", pm::new, false),
    ("pmf", pm_from_file::new, false),
    ("pmFromFile", pm_from_file::new, false),
    ("rbl", rbl::new, false),
    ("rx", rx::new, true),
    ("streq", streq::new, true),
    ("strmatch", contains::new, false),
    ("unconditionalMatch", unconditional_match::new, false),
    ("validateByteRange", validate_byte_range::new, false),
    ("validateUrlEncoding", validate_url_encoding::new, false),
    ("validateUtf8Encoding", validate_utf8_encoding::new, false),
    ("within", within::new, true),
];

/// Find an operator by name: its builder and whether it expands macros.
pub fn lookup(name: &str) -> Option<(BuildFn, bool)> {
    TABLE
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, f, m)| (*f, *m))
}

/// Integer value as ModSecurity reads operands: leading whitespace and sign, then digits;
/// anything unparsable is 0.
pub(crate) fn parse_int(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

#[cfg(test)]
pub(crate) fn build(name: &str, param: &str) -> Box<dyn Operator> {
    let mut notices = Vec::new();
    let mut ctx = BuildContext {
        base_dir: Path::new("."),
        notices: &mut notices,
        negated: false,
    };
    (lookup(name).expect("operator").0)(param, &mut ctx).expect("builds")
}

#[cfg(test)]
pub(crate) fn test_match(op: &dyn Operator, input: &[u8]) -> bool {
    op.matches(input, &mut Captures::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reused buffers hold the last groups set and nothing of those before: fewer and
    /// shorter groups, an empty one, a clear.
    #[test]
    fn captures_reuse_buffers_without_keeping_old_groups() {
        let mut caps = Captures::new(true);
        caps.set([&b"whole match"[..], b"first", b"second"]);
        assert_eq!(
            caps.groups(),
            [
                b"whole match".to_vec(),
                b"first".to_vec(),
                b"second".to_vec()
            ]
        );
        caps.set([&b"ab"[..], b""]);
        assert_eq!(caps.groups(), [b"ab".to_vec(), Vec::new()]);
        caps.clear();
        assert!(caps.groups().is_empty());
        caps.set([&b"x"[..]]);
        assert_eq!(caps.groups(), [b"x".to_vec()]);
        // The buffers of the first call are still held.
        assert!(caps.capacity() >= b"whole match".len() + b"first".len() + b"second".len());
    }

    #[test]
    fn parse_int_like_atoi() {
        assert_eq!(parse_int(b" 42abc"), 42);
        assert_eq!(parse_int(b"-7"), -7);
        assert_eq!(parse_int(b"x"), 0);
        assert_eq!(parse_int(b""), 0);
    }

    #[test]
    fn lookup_case_insensitive() {
        assert!(lookup("RX").is_some());
        assert!(lookup("detectsqli").is_some());
        assert!(lookup("bogus").is_none());
    }
}
