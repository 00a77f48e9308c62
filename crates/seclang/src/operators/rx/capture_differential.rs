//! Differential test of `@rx` captures: the lazy DFA's bounds (and the slow engines confined
//! to them) against a PikeVM searching the whole value, as captures were found before, on
//! every CRS v4.28.0 pattern the regex crate runs.
//!
//! Values: the CRS regression suite's request parts (URI, body, header values, decoded
//! and split into arguments) against the patterns of the rule each test is for, and
//! strings generated from each pattern, alone, among random bytes, and behind a prefix
//! long enough that the match's start is past the DFA's probes.

use std::path::Path;

use rustc_hash::{FxHashMap, FxHashSet};

use super::{Bounds, Engine, Lazy, START_PROBES};
use crate::rule::RuleOperator;

/// The regex-crate patterns of each rule id (chain links included).
fn patterns_by_rule(rs: &crate::RuleSet) -> FxHashMap<u32, Vec<&Lazy>> {
    let mut out: FxHashMap<u32, Vec<&Lazy>> = FxHashMap::default();
    for r in rs.rules() {
        let mut link = Some(r);
        while let Some(l) = link {
            if let RuleOperator::Static(op) = &l.operator {
                if let Some(Engine::Rust(re)) = op.as_rx().map(|rx| &rx.engine) {
                    out.entry(r.id).or_default().push(re);
                }
            }
            link = l.chained.as_deref();
        }
    }
    out
}

/// Percent-decoding, `+` as a space: what an argument's value reads as (`urlDecode`).
fn url_decode(s: &[u8]) -> Vec<u8> {
    use crate::transformations::{apply, lookup};
    let mut out = Vec::new();
    apply(lookup("urlDecode").unwrap(), s, &mut out);
    out
}

/// A request part as it is, decoded, and split into decoded names and values.
fn values_of(part: &str, out: &mut Vec<Vec<u8>>) {
    let raw = part.as_bytes();
    out.push(raw.to_vec());
    out.push(url_decode(raw));
    let query = raw.splitn(2, |&b| b == b'?').last().unwrap_or(raw);
    for pair in query.split(|&b| b == b'&') {
        for side in pair.splitn(2, |&b| b == b'=') {
            out.push(url_decode(side));
        }
    }
}

/// Each regression test's rule id with the values its requests carry.
fn regression_values(root: &Path) -> Vec<(u32, Vec<Vec<u8>>)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.join("v4.28.0/tests/regression/tests")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let Some(id) = doc["rule_id"].as_u64() else {
            continue;
        };
        let mut values = Vec::new();
        for test in doc["tests"].as_sequence().into_iter().flatten() {
            for stage in test["stages"].as_sequence().into_iter().flatten() {
                let input = &stage["input"];
                for key in ["uri", "data"] {
                    if let Some(s) = input[key].as_str() {
                        values_of(s, &mut values);
                    }
                }
                if let Some(headers) = input["headers"].as_mapping() {
                    for v in headers.values().filter_map(|v| v.as_str()) {
                        values_of(v, &mut values);
                    }
                }
            }
        }
        out.push((id as u32, values));
    }
    out
}

/// What the old path found: the PikeVM's leftmost-first groups over the whole value.
struct Reference<'a> {
    re: &'a Lazy,
    cache: regex_automata::nfa::thompson::pikevm::Cache,
    slots: regex_automata::util::captures::Captures,
}

impl<'a> Reference<'a> {
    fn new(re: &'a Lazy) -> Self {
        Reference {
            re,
            cache: re.engines().unwrap().pikevm.create_cache(),
            slots: re.engines().unwrap().pikevm.create_captures(),
        }
    }

    fn captures(&mut self, input: &[u8]) -> Option<Vec<Vec<u8>>> {
        self.re
            .engines()
            .unwrap()
            .pikevm
            .captures(&mut self.cache, input, &mut self.slots);
        self.slots.is_match().then(|| {
            (0..self.slots.group_len().min(10))
                .map(|i| {
                    self.slots
                        .get_group(i)
                        .map_or(Vec::new(), |sp| input[sp.range()].to_vec())
                })
                .collect()
        })
    }
}

/// How the values compared went: matches found through each way the bounds come.
#[derive(Default, Debug)]
struct Tally {
    values: usize,
    exact_whole_match: usize,
    exact_with_groups: usize,
    within: usize,
}

/// One value: the captures agree with the reference, and what way they were found.
fn compare(re: &Lazy, reference: &mut Reference<'_>, input: &[u8], tally: &mut Tally) {
    tally.values += 1;
    let mut caps = crate::operators::Captures::new(true);
    let found = re.captures(input, &mut caps);
    let groups = caps.groups().to_vec();
    let expected = reference.captures(input);
    let shown = |g: &Vec<Vec<u8>>| -> Vec<String> {
        g.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    };
    assert_eq!(
        found.then(|| shown(&groups)),
        expected.as_ref().map(shown),
        "{}: {:?}",
        re.pattern,
        String::from_utf8_lossy(input)
    );
    if !found {
        return;
    }
    let engines = re.engines().unwrap();
    let dfa = engines.dfa.as_ref().unwrap();
    let bounds = engines.bounds(dfa, &mut dfa.create_cache(), input);
    match bounds {
        Bounds::Exact(_) if groups.len() == 1 => tally.exact_whole_match += 1,
        Bounds::Exact(_) => tally.exact_with_groups += 1,
        Bounds::Within(_) => tally.within += 1,
        Bounds::NoMatch => panic!("{}: bounds miss a match", re.pattern),
    }
}

#[test]
fn captures_agree_with_a_whole_value_search_on_crs() {
    let root = crate::test_crs::root();
    let Some(rs) = crate::test_crs::rule_set() else {
        return;
    };
    let by_rule = patterns_by_rule(&rs);
    let mut tally = Tally::default();

    // The regression suite's values, against the patterns of the rule each test is for.
    for (id, values) in regression_values(&root) {
        for re in by_rule.get(&id).into_iter().flatten() {
            let mut reference = Reference::new(re);
            for v in &values {
                compare(re, &mut reference, v, &mut tally);
            }
        }
    }
    let from_suite = tally.exact_whole_match + tally.exact_with_groups + tally.within;

    // Generated values, each pattern once.
    let mut below = crate::test_rng::below(0x2545_f491_4f6c_dd1d);
    let mut seen = FxHashSet::default();
    let filler = b" a0.-/'\"<(=\n%\\xZ;";
    for re in by_rule.values().flatten() {
        if !seen.insert(re.pattern.as_str()) || re.engines().unwrap().dfa.is_none() {
            continue;
        }
        let hir = super::parse_with(&re.pattern, re.anchors).unwrap();
        let mut reference = Reference::new(re);
        for round in 0..12 {
            // Alone, among a few random bytes, behind more bytes than the probes try.
            let before = match round % 3 {
                0 => 0,
                1 => below(6),
                _ => START_PROBES + below(40),
            };
            let mut value: Vec<u8> = (0..before).map(|_| filler[below(filler.len())]).collect();
            crate::test_hir::sample(&hir, &mut below, &mut value);
            for _ in 0..below(6) {
                value.push(filler[below(filler.len())]);
            }
            compare(re, &mut reference, &value, &mut tally);
        }
    }
    println!("{tally:?}, {from_suite} matches from the regression suite");
    // Every way to the groups was put to the test, the suite's values among them.
    assert!(from_suite >= 1000, "{from_suite}");
    assert!(tally.exact_whole_match >= 500, "{tally:?}");
    assert!(tally.exact_with_groups >= 100, "{tally:?}");
    assert!(tally.within >= 100, "{tally:?}");
}

/// [`super::Screen`] rules out no value a CRS pattern matches: the regression suite's
/// values and values generated from each pattern (matches, alone and among other bytes).
#[test]
fn screens_never_rule_out_a_match_on_crs() {
    let root = crate::test_crs::root();
    let Some(rs) = crate::test_crs::rule_set() else {
        return;
    };
    let by_rule = patterns_by_rule(&rs);
    let (mut matched, mut ruled_out) = (0, 0);
    let mut check = |re: &Lazy, reference: &mut Reference<'_>, v: &[u8]| {
        let admitted = re.screen.admit(v);
        ruled_out += usize::from(!admitted);
        if reference.captures(v).is_some() {
            matched += 1;
            assert!(admitted, "{}: {:?}", re.pattern, String::from_utf8_lossy(v));
        }
    };
    for (id, values) in regression_values(&root) {
        for re in by_rule.get(&id).into_iter().flatten() {
            let mut reference = Reference::new(re);
            for v in &values {
                check(re, &mut reference, v);
            }
        }
    }
    let mut below = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
    let mut seen = FxHashSet::default();
    let filler = b" a0.-/'\"<(=\n%\\xZ;~";
    for re in by_rule.values().flatten() {
        if !seen.insert(re.pattern.as_str()) {
            continue;
        }
        let hir = super::parse_with(&re.pattern, re.anchors).unwrap();
        let mut reference = Reference::new(re);
        for round in 0..12 {
            let mut value: Vec<u8> = (0..below(4) * (round % 2))
                .map(|_| filler[below(filler.len())])
                .collect();
            crate::test_hir::sample(&hir, &mut below, &mut value);
            for _ in 0..below(4) {
                value.push(filler[below(filler.len())]);
            }
            check(re, &mut reference, &value);
        }
    }
    println!("{matched} matches, {ruled_out} values ruled out by the screens");
    // Both sides were exercised.
    assert!(matched >= 5000, "{matched}");
    assert!(ruled_out >= 1000, "{ruled_out}");
}
