//! The setup snapshot: what phase 1's leading rules leave in a transaction when their outcome
//! depends on the rule set alone (CRS's `crs-setup.conf` `SecAction`s and the
//! `&TX:... "@eq 0"` defaults of REQUEST-901), computed once when the rule set is built, so
//! that each transaction starts from it at the first step after those rules.
//!
//! A rule belongs to the prefix when, run on a fresh transaction, its outcome is fixed:
//! - it is not in a prefilter group (its outcome would come from request values);
//! - its first link's test is constant: it tests one `TX:key` or `&TX:key` as it is
//!   ([`TxKeyTest`](crate::rule::TxKeyTest): no transformation, exclusion, `multiMatch` or
//!   `capture`), or is a `SecAction`; its operator is static or has a parameter whose
//!   macros are [constant](constant_macro);
//! - so are the other links' tests, and every link's actions are `setvar`s of `TX` keys
//!   numbered at build time with constant values, or no-ops (`initcol`, `expirevar`:
//!   nothing here); no `ctl`, no `setenv`. Unless the first link does not match: then none
//!   of that runs (CRS 901320 `setvar`s a header, behind `&TX:ENABLE_DEFAULT_COLLECTIONS`);
//! - if the rule matches: it is `pass` (as written or by default; not `block`), with
//!   constant `msg` and `logdata`. A rule that would do anything else is in the prefix
//!   when it does not match (CRS 901001's `deny`).
//!
//! Whether a rule matches is asked of the rule loop itself (a phase 1 cut short after the
//! rule), and the snapshot is what that loop leaves after the prefix: nothing evaluates
//! rules but the loop every transaction runs. Markers, `skip` and `skipAfter` are followed
//! as it follows them. Nothing else can act before the prefix ends: runtime removals come
//! only from `ctl`, and the engine mode only from configuration (`Off` runs nothing: no
//! snapshot) or `ctl`. The one input from outside is a TX key the host sets before phase 1
//! ([`Transaction::set_tx_var`]): if the prefix reads or writes it, that transaction runs
//! the prefix itself.

use std::ops::Range;
use std::sync::Arc;

use super::{Matched, Transaction};
use crate::actions::{Disruptive, EngineMode, Exec, SetVarOp};
use crate::body::Pair;
use crate::macros::{Macro, Part};
use crate::operators::parse_int;
use crate::rule::{Rule, RuleOperator};
use crate::ruleset::{PhaseSteps, RuleSet, NO_SKIP_AFTER};
use crate::variables::Var;
use crate::TxInput;

/// The state of a fresh transaction after phase 1's constant prefix.
#[derive(Debug)]
pub(crate) struct SetupSnapshot {
    /// Phase 1's first step after the prefix.
    resume_at: usize,
    /// The rule set's `uid`: names the TX values for [`crate::store::Store::restore`].
    id: u64,
    /// Per TX slot, one bit: whether the prefix reads or writes it.
    touched: Vec<u64>,
    /// TX as the prefix left it: slot, value (in `tx_bytes`), and its integer (what the
    /// store would parse from the value on its first read, unless it knew it): CRS's
    /// scores, set to `0` as text, are read as integers by every transaction.
    tx: Vec<(u32, Range<usize>, Option<i64>)>,
    tx_bytes: Vec<u8>,
    /// MATCHED_VAR(_NAME) and MATCHED_VARS: the next rule may read them.
    last_match: Pair,
    matched_vars: Vec<Pair>,
    last_listed: bool,
    highest_severity: Option<u8>,
    rule_id: u32,
    rule_idx: usize,
    /// The prefix's matches (all of them, for a transaction that records `nolog` ones too),
    /// their ranges in `match_bytes`.
    matched: Vec<Matched>,
    /// Those of rules that log: what other transactions record.
    logged: Vec<Matched>,
    match_bytes: Vec<u8>,
}

impl SetupSnapshot {
    /// `rs` with the snapshot of its phase 1, if that starts with a constant prefix; `None`
    /// only if a transaction of `rs` outlived its run (not reached).
    pub(crate) fn attach(rs: RuleSet) -> Option<RuleSet> {
        let mut rs = Arc::new(rs);
        let setup = Self::take(&mut rs);
        let mut rs = Arc::into_inner(rs)?;
        rs.setup = setup?;
        Some(rs)
    }

    /// The snapshot (`Some(None)` if there is no prefix), taken by running the phase's
    /// first steps as transactions run them: the rule loop itself, on a phase 1 cut short.
    /// `None` if a transaction outlived its run.
    fn take(rs: &mut Arc<RuleSet>) -> Option<Option<SetupSnapshot>> {
        if rs.config.engine == EngineMode::Off {
            // No rule runs, the snapshot would never be used.
            return Some(None);
        }
        let full = std::mem::take(&mut Arc::get_mut(rs)?.phases[1]);
        let prefix = find_prefix(rs, &full);
        let snapshot = match prefix {
            Some(prefix) => {
                let tx = run_steps(rs, &full, prefix.end)?;
                Self::of(rs, &tx, prefix)
            }
            None => None,
        };
        Arc::get_mut(rs)?.phases[1] = full;
        Some(snapshot)
    }

    /// What `tx` holds after running `prefix`.
    fn of(rs: &RuleSet, tx: &Transaction, prefix: Prefix) -> Option<SetupSnapshot> {
        let store = &tx.data.tx;
        if store.has_unnumbered() {
            // Not reached: prefix rules write numbered keys only.
            return None;
        }
        let mut tx_bytes = Vec::new();
        let tx_values = store
            .set_slots()
            .map(|(slot, value, int)| {
                tx_bytes.extend_from_slice(value);
                let int = int.unwrap_or_else(|| parse_int(value));
                (
                    slot,
                    tx_bytes.len() - value.len()..tx_bytes.len(),
                    Some(int),
                )
            })
            .collect();
        let mut touched = vec![0u64; rs.tx_slots.len().div_ceil(64)];
        for s in prefix.touched {
            touched[s as usize / 64] |= 1 << (s % 64);
        }
        let m = &tx.data.matched;
        Some(SetupSnapshot {
            resume_at: prefix.end,
            id: rs.uid,
            touched,
            tx: tx_values,
            tx_bytes,
            last_match: m.last.clone(),
            matched_vars: m.earlier.iter().cloned().collect(),
            last_listed: m.last_listed,
            highest_severity: tx.data.highest_severity,
            rule_id: tx.data.rule_id,
            rule_idx: tx.data.rule_idx,
            matched: tx.matched.clone(),
            logged: tx
                .matched
                .iter()
                .filter(|m| super::logs(&rs.rules[m.rule as usize]))
                .cloned()
                .collect(),
            match_bytes: tx.scratch.match_bytes.clone(),
        })
    }

    /// Phase 1's first step after the prefix.
    pub(crate) fn resume_at(&self) -> usize {
        self.resume_at
    }

    /// Whether the prefix reads or writes TX slot `slot`.
    pub(crate) fn touches(&self, slot: u32) -> bool {
        let s = slot as usize;
        self.touched
            .get(s / 64)
            .is_some_and(|w| w & (1 << (s % 64)) != 0)
    }
}

/// The constant prefix of a phase 1.
struct Prefix {
    /// The first step after it.
    end: usize,
    /// TX slots its rules read or write.
    touched: Vec<u32>,
}

/// A fresh transaction of `rs` that ran the first `len` of phase 1's steps `full` (with
/// `rs`'s own phase 1 set aside); `None` if a transaction outlived its run.
fn run_steps(rs: &mut Arc<RuleSet>, full: &PhaseSteps, len: usize) -> Option<Transaction> {
    Arc::get_mut(rs)?.phases[1] = PhaseSteps {
        steps: full.steps[..len].to_vec(),
        skip_after: full.skip_after[..len].to_vec(),
    };
    let mut tx = rs.transaction(TxInput::default());
    // Whether a rule matched is read from the match records.
    tx.record_nolog_matches();
    tx.run_phase(1);
    Some(tx)
}

/// The most rules a prefix holds: finding it runs the steps up to each of its rules, so
/// the work grows with the square of its length (CRS's is 26 rules).
const MAX_PREFIX_RULES: usize = 256;

/// Follows phase 1's steps `full` as the rule loop does, up to the first that is not
/// constant (or the [`MAX_PREFIX_RULES`]th); `None` if no rule is.
///
/// Whether a rule matches, where that decides, is asked of the rule loop: a transaction
/// runs the steps up to and including it, once per rule (a few dozen rules, at build time).
fn find_prefix(rs: &mut Arc<RuleSet>, full: &PhaseSteps) -> Option<Prefix> {
    let mut prefix = Prefix {
        end: 0,
        touched: Vec::new(),
    };
    let (mut i, mut skip, mut rules) = (0, 0u32, 0);
    while i < full.steps.len() {
        let step = full.steps[i];
        if skip > 0 {
            skip -= 1;
            i += 1;
            continue;
        }
        if rules == MAX_PREFIX_RULES {
            break;
        }
        let ri = step.rule as usize;
        let rule = &rs.rules[ri];
        let (mut first_touched, mut touched) = (Vec::new(), Vec::new());
        if step.test.member().is_some() || !tests_constantly(rule, &mut first_touched) {
            break;
        }
        let evaluates = evaluates_constantly(rule, &mut touched);
        let holds = matches_constantly(rule, &mut touched);
        let is_always = matches!(rule.operator, RuleOperator::Always);
        let (skip_after, skip_n) = (full.skip_after[i], rule.actions.skip);
        let Some(tx) = run_steps(rs, full, i + 1) else {
            break;
        };
        if tx.data.rule_idx != ri {
            // Not reached: the loop above follows the rule loop's path to this rule.
            break;
        }
        let matched = tx.matched.last().is_some_and(|m| m.rule as usize == ri);
        // Whether the first link matched: it is the last rule run, and a `TX:key` link
        // records its value in MATCHED_VARS, emptied for each rule, when it matches.
        let first_matched = is_always || tx.data.matched.last_listed;
        drop(tx);
        let constant = if evaluates {
            holds || !matched
        } else {
            // What the rest of the chain reads or does is not fixed, but none of it
            // happens when the first link does not match (CRS 901320's
            // `&TX:ENABLE_DEFAULT_COLLECTIONS "@eq 1"`, with a `setvar` of a header).
            !first_matched
        };
        if !constant {
            break;
        }
        rules += 1;
        // Without `evaluates`, only the first link's test ran.
        prefix.touched.append(if evaluates {
            &mut touched
        } else {
            &mut first_touched
        });
        i = match (matched, skip_after) {
            (false, _) => i + 1,
            (true, NO_SKIP_AFTER) => {
                skip = skip_n;
                i + 1
            }
            (true, at) => at as usize,
        };
    }
    prefix.end = i.min(full.steps.len());
    (rules > 0).then_some(prefix)
}

impl Transaction {
    /// If this is the transaction's first phase run, and phase 1 with the snapshot usable:
    /// puts the snapshot's state in place and returns the step to go on from; else 0.
    #[inline]
    pub(super) fn start_from_setup(&mut self, rs: &RuleSet, phase: u8) -> usize {
        // Only before any rule ran: the snapshot is the state of a fresh transaction.
        if !std::mem::take(&mut self.setup_pending) || phase != 1 {
            return 0;
        }
        match &rs.setup {
            Some(s) => self.restore_setup(s),
            None => 0,
        }
    }

    /// [`Transaction::start_from_setup`]'s work, out of the rule loop's function.
    #[inline(never)]
    fn restore_setup(&mut self, s: &SetupSnapshot) -> usize {
        self.data.tx.restore(s.id, &s.tx, &s.tx_bytes);
        let m = &mut self.data.matched;
        m.last.0.clone_from(&s.last_match.0);
        m.last.1.clone_from(&s.last_match.1);
        m.earlier.truncate(0);
        for (name, value) in &s.matched_vars {
            m.earlier.push_copy(name, value);
        }
        m.last_listed = s.last_listed;
        m.last_tx_key = None;
        self.data.highest_severity = s.highest_severity;
        self.data.rule_id = s.rule_id;
        self.data.rule_idx = s.rule_idx;
        let matched = if self.record_nolog {
            &s.matched
        } else {
            &s.logged
        };
        // Nothing matched before the first phase run: the ranges hold as they are. The bytes
        // are copied only for records that read them (CRS's setup logs none).
        self.scratch.match_bytes.clear();
        if !matched.is_empty() {
            self.scratch.match_bytes.extend_from_slice(&s.match_bytes);
        }
        self.matched.clear();
        self.matched.extend(matched.iter().cloned());
        self.matched_view.take();
        s.resume_at
    }

    /// Called when the host sets TX slot `slot`: a transaction whose prefix would read or
    /// write it runs the prefix itself.
    pub(super) fn host_set_tx(&mut self, slot: Option<u32>) {
        let touched = |s| self.rs.setup.as_ref().is_some_and(|setup| setup.touches(s));
        if slot.is_some_and(touched) {
            self.setup_pending = false;
        }
    }
}

/// Whether evaluating `rule` (each link, and the actions of each link that matches) on a
/// fresh transaction has a fixed outcome; adds the TX slots it reads or writes to
/// `touched`.
fn evaluates_constantly(rule: &Rule, touched: &mut Vec<u32>) -> bool {
    let mut link = Some(rule);
    while let Some(l) = link {
        if !tests_constantly(l, touched) || !acts_constantly(l, touched) {
            return false;
        }
        link = l.chained.as_deref();
    }
    true
}

/// Whether link `l`'s test has a fixed outcome on a fresh transaction (given what the
/// prefix did before); adds the TX slots it reads to `touched`.
fn tests_constantly(l: &Rule, touched: &mut Vec<u32>) -> bool {
    match (&l.operator, &l.tx_key) {
        (RuleOperator::Always, _) => true,
        (RuleOperator::Static(_), Some(t)) => {
            touched.push(t.slot);
            true
        }
        (RuleOperator::Dynamic(d), Some(t)) if constant_macro(&d.param, touched) => {
            touched.push(t.slot);
            true
        }
        _ => false,
    }
}

/// Whether link `l`'s actions, when it matches, do the same on every transaction; adds the
/// TX slots they read or write to `touched`.
fn acts_constantly(l: &Rule, touched: &mut Vec<u32>) -> bool {
    for e in &l.actions.exec {
        let Exec::SetVar(sv) = e else {
            if matches!(e, Exec::Noop) {
                continue;
            }
            return false;
        };
        let (Var::Tx, Some(slot)) = (sv.collection, sv.slot) else {
            return false;
        };
        // `=+%{tx.key}` reads that key's slot without expanding the macro.
        touched.extend([Some(slot), sv.operand_slot].into_iter().flatten());
        let value_constant = match &sv.op {
            SetVarOp::Delete => true,
            SetVarOp::Set(m) | SetVarOp::Add(m) | SetVarOp::Sub(m) => constant_macro(m, touched),
        };
        if !value_constant {
            return false;
        }
    }
    true
}

/// Whether what `rule` does when it matches, past its links' actions, is fixed and kept by
/// a snapshot: it passes, and records constant text.
fn matches_constantly(rule: &Rule, touched: &mut Vec<u32>) -> bool {
    rule.disruptive == Disruptive::Pass
        && [&rule.actions.msg, &rule.actions.logdata]
            .into_iter()
            .flatten()
            .all(|m| constant_macro(m, touched))
}

/// Whether `m` expands to the same text on every transaction at this point of the prefix:
/// it reads only numbered TX keys (added to `touched`), the running rule, and what the
/// prefix's own matches left in MATCHED_VAR(_NAME).
fn constant_macro(m: &Macro, touched: &mut Vec<u32>) -> bool {
    m.parts.iter().all(|p| match p {
        Part::Lit(_) => true,
        Part::TxSlot(_, s) => {
            touched.push(*s);
            true
        }
        Part::Var(Var::Rule | Var::MatchedVar | Var::MatchedVarName, _) => true,
        Part::Var(..) => false,
    })
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;
    use std::path::Path;

    use super::*;

    fn build(text: &str, snapshot: bool) -> Arc<RuleSet> {
        let mut b = RuleSet::builder();
        b.setup_snapshot(snapshot);
        b.add_text(text, "t", Path::new(".")).unwrap();
        Arc::new(b.build().unwrap())
    }

    /// What a later rule or the host can observe of a transaction.
    fn observed(tx: &Transaction) -> String {
        let mut out = String::new();
        tx.each_tx_var(&mut |k, v| {
            let _ = writeln!(
                out,
                "TX:{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            );
        });
        let m = &tx.data.matched;
        let _ = writeln!(out, "MATCHED_VAR {:?}", m.last);
        let _ = writeln!(out, "MATCHED_VARS {:?}", m.list().collect::<Vec<_>>());
        let _ = writeln!(out, "severity {:?}", tx.data.highest_severity);
        for r in tx.matched_rules() {
            let _ = writeln!(out, "{r:?}");
        }
        let logged: Vec<u32> = tx.logged().map(|r| r.id).collect();
        let _ = writeln!(out, "logged {logged:?}");
        let _ = writeln!(
            out,
            "{:?} {:?} {:?}",
            tx.intervention(),
            tx.anomaly_scores(),
            tx.engine_mode()
        );
        out
    }

    /// A request: query string, headers, and TX keys the host sets before phase 1.
    struct Req<'a> {
        query: &'a str,
        headers: &'a [(&'a str, &'a str)],
        host_tx: &'a [(&'a str, &'a str)],
    }

    const PLAIN: Req = Req {
        query: "a=1",
        headers: &[("Host", "example.com")],
        host_tx: &[],
    };

    /// Runs `req` through every phase on `rs`, returning what was observed after each.
    fn phases(rs: &Arc<RuleSet>, req: &Req) -> Vec<String> {
        let mut tx = rs.transaction(TxInput::default());
        for (k, v) in req.host_tx {
            tx.set_tx_var(k, v.as_bytes());
        }
        tx.set_request_line(b"GET", format!("/p?{}", req.query).as_bytes(), b"HTTP/1.1");
        for (n, v) in req.headers {
            tx.add_request_header(n.as_bytes(), v.as_bytes());
        }
        let mut seen = Vec::new();
        tx.process_request_headers();
        seen.push(observed(&tx));
        tx.process_request_body();
        seen.push(observed(&tx));
        tx.set_response_status(200, b"HTTP/1.1");
        tx.process_response_headers();
        tx.process_response_body();
        tx.process_logging();
        seen.push(observed(&tx));
        seen
    }

    /// Builds `text` with and without the snapshot and asserts that every request sees the
    /// same after every phase; returns the set with the snapshot.
    fn same_either_way(text: &str, reqs: &[Req]) -> Arc<RuleSet> {
        let (with, without) = (build(text, true), build(text, false));
        assert!(without.setup.is_none());
        // All requests on one set, then on the other: each transaction reuses the pooled
        // state the one before left, as a worker's do.
        let all = |rs| reqs.iter().map(|r| phases(rs, r)).collect::<Vec<_>>();
        let (a, b) = (all(&with), all(&without));
        for ((req, a), b) in reqs.iter().zip(&a).zip(&b) {
            for (phase, (a, b)) in a.iter().zip(b).enumerate() {
                assert_eq!(a, b, "query {:?}, after step {phase}", req.query);
            }
        }
        with
    }

    /// The id of the rule the snapshot resumes at (`None`: the end of phase 1).
    fn resumes_at(rs: &RuleSet) -> Option<u32> {
        assert!(rs.setup.is_some(), "a snapshot");
        let steps = &rs.phases[1].steps[rs.setup_snapshot_steps()..];
        steps.first().map(|s| rs.rules[s.rule as usize].id)
    }

    const SETUP: &str = "SecDefaultAction \"phase:1,log,auditlog,pass\"\n\
        SecAction \"id:1,phase:1,pass,nolog,setvar:tx.crs_setup_version=4280\"\n\
        SecRule &TX:crs_setup_version \"@eq 0\" \"id:2,phase:1,deny,status:500,log,msg:'no setup'\"\n\
        SecRule &TX:paranoia_level \"@eq 0\" \"id:3,phase:1,pass,nolog,setvar:tx.paranoia_level=1\"\n\
        SecRule &TX:detection_level \"@eq 0\" \"id:4,phase:1,pass,nolog,\
            setvar:'tx.detection_level=%{TX.paranoia_level}'\"\n\
        SecAction \"id:5,phase:1,pass,nolog,setvar:tx.score_b=0,setvar:tx.score_a=0,\
            setvar:tx.anomaly_score=0,setvar:tx.score_b=+%{tx.paranoia_level},setvar:!tx.gone\"\n\
        SecRule TX:paranoia_level \"@lt %{tx.detection_level}\" \"id:6,phase:1,pass,nolog,setvar:tx.never=1\"\n";

    const READER: &str = "SecRule ARGS \"@rx attack\" \"id:100,phase:1,pass,log,msg:'attack',\
            severity:2,setvar:tx.score_a=+5,setvar:tx.anomaly_score=+5\"\n\
        SecRule TX:/^score_/ \"@rx .\" \"id:101,phase:2,pass,log,msg:'%{MATCHED_VAR_NAME}',\
            setvar:tx.seen=+1\"\n\
        SecRule &TX \"@gt 0\" \"id:102,phase:2,pass,nolog,setvar:'tx.count=%{MATCHED_VAR}'\"\n";

    const ATTACK: Req = Req {
        query: "q=attack",
        headers: &[("User-Agent", "x")],
        host_tx: &[],
    };

    /// Each after one that changed what the prefix set.
    const REQUESTS: [Req; 5] = [
        PLAIN,
        ATTACK,
        ATTACK,
        // A key the prefix reads, set by the host: the prefix runs in the transaction.
        Req {
            query: "q=attack",
            headers: &[],
            host_tx: &[("paranoia_level", "3"), ("honeytrap_flagged", "1")],
        },
        PLAIN,
    ];

    #[test]
    fn crs_like_setup_is_snapshotted_up_to_the_first_request_reader() {
        let rs = same_either_way(&format!("{SETUP}{READER}"), &REQUESTS);
        // Rule 2 denies, but does not match; rule 6 tests with a macro parameter.
        assert_eq!(resumes_at(&rs), Some(100));
        let setup = rs.setup.as_ref().unwrap();
        let slot = |k: &str| rs.tx_slots.get(k.as_bytes()).unwrap();
        assert!(setup.touches(slot("paranoia_level")) && setup.touches(slot("gone")));
        assert!(!setup.touches(slot("seen")));
    }

    #[test]
    fn the_host_setting_a_key_the_prefix_reads_runs_the_prefix() {
        let rs = build(&format!("{SETUP}{READER}"), true);
        for (key, used) in [
            ("honeytrap_flagged", true),
            ("PARANOIA_LEVEL", false),
            ("score_a", false),
        ] {
            let mut tx = rs.transaction(TxInput::default());
            tx.set_tx_var(key, b"2");
            assert_eq!(tx.setup_pending, used, "{key}");
        }
    }

    #[test]
    fn a_prefix_rule_that_logs_is_in_the_logged_rules() {
        let text = "SecAction \"id:1,phase:1,pass,log,msg:'setup %{tx.a}',logdata:'%{MATCHED_VAR}',\
                severity:4,setvar:tx.a=7\"\n\
            SecRule TX:a \"@eq 7\" \"id:2,phase:1,pass,log,msg:'seven',severity:3,\
                logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'\"\n\
            SecRule MATCHED_VAR \"@rx 7\" \"id:3,phase:1,pass,log,msg:'after %{MATCHED_VAR_NAME}'\"\n";
        let rs = same_either_way(text, &REQUESTS);
        assert_eq!(resumes_at(&rs), Some(3));
        let mut tx = rs.transaction(TxInput::default());
        tx.process_request_headers();
        let logged: Vec<u32> = tx.logged().map(|r| r.id).collect();
        assert_eq!(logged, [1, 2, 3]);
    }

    #[test]
    fn skips_in_and_out_of_the_prefix_are_followed() {
        let text = "SecAction \"id:1,phase:1,pass,nolog,setvar:tx.a=1,skip:1\"\n\
            SecAction \"id:2,phase:1,pass,nolog,setvar:tx.skipped=1\"\n\
            SecRule TX:a \"@eq 1\" \"id:3,phase:1,pass,nolog,skipAfter:END\"\n\
            SecRule ARGS \"@rx .\" \"id:4,phase:1,pass,log,msg:'jumped over'\"\n\
            SecMarker END\n\
            SecMarker OTHER\n\
            SecRule ARGS \"@rx .\" \"id:5,phase:1,pass,log,msg:'after the jump'\"\n";
        let rs = same_either_way(text, &REQUESTS);
        assert_eq!(resumes_at(&rs), Some(5));
    }

    #[test]
    fn removed_and_updated_prefix_rules_are_left_out() {
        let text = format!(
            "{SETUP}{READER}SecRuleRemoveById 3\n\
             SecRuleUpdateActionById 5 \"pass,log,msg:'updated'\"\n\
             SecRule REQUEST_HEADERS:Host \"@rx .\" \"id:200,phase:1,pass,log,msg:'own rule'\"\n"
        );
        let rs = same_either_way(&text, &REQUESTS);
        let mut tx = rs.transaction(TxInput::default());
        tx.process_request_headers();
        // Rule 3 is gone: rule 4 copies an unset level.
        assert_eq!(tx.tx_var("paranoia_level"), None);
        assert_eq!(tx.tx_var("detection_level"), Some(&b""[..]));
        assert!(tx.logged().any(|r| r.id == 5));
    }

    #[test]
    fn a_matching_rule_a_snapshot_cannot_hold_ends_the_prefix() {
        for (stopper, at) in [
            // Blocks when it matches (and in this transaction, it does).
            ("SecRule TX:a \"@eq 1\" \"id:2,phase:1,deny,status:403\"", 2),
            ("SecRule TX:a \"@eq 1\" \"id:2,phase:1,block\"", 2),
            ("SecAction \"id:2,phase:1,pass,ctl:ruleRemoveById=4\"", 2),
            ("SecAction \"id:2,phase:1,pass,setvar:'tx.%{tx.a}=1'\"", 2),
            (
                "SecAction \"id:2,phase:1,pass,setvar:'tx.b=%{REQUEST_URI}'\"",
                2,
            ),
            ("SecAction \"id:2,phase:1,pass,setenv:x=1\"", 2),
            ("SecAction \"id:2,phase:1,pass,setvar:ip.b=1\"", 2),
            (
                "SecRule TX:a \"@rx (1)\" \"id:2,phase:1,pass,capture,setvar:tx.b=%{TX.1}\"",
                2,
            ),
            (
                "SecRule TX:a \"@eq 1\" \"id:2,phase:1,pass,t:lowercase\"",
                2,
            ),
            ("SecRule TX:/a/ \"@eq 1\" \"id:2,phase:1,pass\"", 2),
            (
                "SecRule TX:a \"@eq 1\" \"id:2,phase:1,pass,msg:'%{REMOTE_ADDR}'\"",
                2,
            ),
            (
                "SecRule TX:a \"@eq 1\" \"id:2,phase:1,pass,chain\"\n\
              SecRule REQUEST_URI \"@rx .\" \"setvar:tx.b=1\"",
                2,
            ),
            // Does not match: evaluated, and the prefix goes on.
            ("SecRule TX:a \"@eq 2\" \"id:2,phase:1,deny,status:403\"", 4),
            (
                "SecRule TX:a \"@eq 1\" \"id:2,phase:1,pass,setvar:tx.b=1,chain\"\n\
              SecRule TX:a \"@eq 2\" \"setvar:tx.c=1\"",
                4,
            ),
            (
                "SecRule TX:a \"@eq 2\" \"id:2,phase:1,pass,setvar:tx.b=%{REQUEST_URI},chain\"\n\
              SecRule REQUEST_URI \"@rx .\" \"setvar:tx.c=1\"",
                4,
            ),
        ] {
            let text = format!(
                "SecRuleEngine On\n\
                 SecAction \"id:1,phase:1,pass,nolog,setvar:tx.a=1,initcol:ip=x\"\n\
                 {stopper}\n\
                 SecAction \"id:3,phase:1,pass,nolog,setvar:tx.c=3\"\n\
                 SecRule ARGS \"@rx attack\" \"id:4,phase:1,pass,log,setvar:tx.d=%{{MATCHED_VAR}}\"\n"
            );
            let rs = same_either_way(&text, &REQUESTS);
            assert_eq!(resumes_at(&rs), Some(at), "{stopper}");
        }
    }

    #[test]
    fn a_long_prefix_is_cut_at_its_most_rules() {
        let mut text = String::new();
        for id in 1..=MAX_PREFIX_RULES + 2 {
            let _ = writeln!(
                text,
                "SecAction \"id:{id},phase:1,pass,nolog,setvar:tx.n=+1\""
            );
        }
        let rs = same_either_way(&text, &[PLAIN]);
        assert_eq!(resumes_at(&rs), Some(MAX_PREFIX_RULES as u32 + 1));
    }

    #[test]
    fn sets_without_a_constant_prefix_have_no_snapshot() {
        for text in [
            "SecRule ARGS \"@rx a\" \"id:1,phase:1,pass,setvar:tx.a=1\"\n",
            "SecAction \"id:1,phase:2,pass,setvar:tx.a=1\"\n",
            "SecMarker A\nSecRule REQUEST_URI \"@rx a\" \"id:1,phase:1,pass\"\n",
        ] {
            let rs = same_either_way(text, &REQUESTS);
            assert!(rs.setup.is_none(), "{text}");
        }
    }

    #[test]
    fn a_whole_constant_phase_one_and_engine_off() {
        for engine in ["On", "Off", "DetectionOnly"] {
            let text = format!(
                "SecRuleEngine {engine}\n\
                 SecAction \"id:1,phase:1,pass,log,setvar:tx.a=1\"\n\
                 SecRule TX:a \"@eq 1\" \"id:2,phase:1,pass,setvar:tx.b=2\"\n\
                 SecRule MATCHED_VARS \"@rx .\" \"id:3,phase:2,pass,log,msg:'%{{MATCHED_VAR}}'\"\n"
            );
            let rs = same_either_way(&text, &REQUESTS);
            // With the engine off no rule runs: there is nothing to snapshot.
            if engine == "Off" {
                assert!(rs.setup.is_none());
            } else {
                assert_eq!(resumes_at(&rs), None);
            }
        }
    }

    /// The snapshot gives each TX value the integer the store would parse from it: sums,
    /// increments and integer tests after the prefix read values written as odd text.
    #[test]
    fn snapshotted_values_read_as_integers_as_when_parsed() {
        let odd = [
            "0",
            "7",
            " 7",
            "-4x",
            "+3",
            "",
            "abc",
            "99999999999999999999",
            "-0",
        ];
        let mut text = String::new();
        for (i, v) in odd.iter().enumerate() {
            let _ = writeln!(
                text,
                "SecAction \"id:{},phase:1,pass,nolog,setvar:'tx.k{i}={v}'\"",
                i + 1
            );
        }
        let _ = writeln!(text, "SecRule ARGS \"@rx .\" \"id:100,phase:1,pass,nolog\"");
        for i in 0..odd.len() {
            let _ = writeln!(
                text,
                "SecAction \"id:{},phase:1,pass,nolog,setvar:tx.sum=+%{{tx.k{i}}},setvar:tx.k{i}=+1\"\n\
                 SecRule TX:k{i} \"@ge 5\" \"id:{},phase:1,pass,nolog,setvar:tx.ge{i}=1\"",
                200 + 2 * i,
                201 + 2 * i
            );
        }
        let rs = same_either_way(&text, &REQUESTS);
        assert_eq!(resumes_at(&rs), Some(100));
        let tx = phases(&rs, &PLAIN);
        assert!(
            tx[0].contains("TX:ge1=1") && tx[0].contains("TX:sum="),
            "{}",
            tx[0]
        );
    }

    #[test]
    fn phases_run_out_of_order_see_the_same() {
        let text = format!("{SETUP}{READER}");
        let (with, without) = (build(&text, true), build(&text, false));
        let run = |rs: &Arc<RuleSet>| {
            let mut tx = rs.transaction(TxInput::default());
            tx.set_request_line(b"GET", b"/?q=attack", b"HTTP/1.1");
            tx.process_request_body();
            tx.process_request_headers();
            tx.process_request_headers();
            observed(&tx)
        };
        assert_eq!(run(&with), run(&without));
    }

    /// CRS v4.28.0 as `crs-setup.conf.example` configures it (without the regression
    /// suite's `test-setup.conf`, whose `ctl` ends the prefix at once).
    #[test]
    fn crs_setup_is_snapshotted_up_to_901340() {
        let Some((v4, files)) = crate::test_crs::v4_rule_files() else {
            return;
        };
        let mut text = String::from("SecRuleEngine On\n");
        for f in std::iter::once(v4.join("crs-setup.conf.example")).chain(files) {
            let _ = writeln!(text, "Include {}", f.display());
        }
        let attack = Req {
            query: "q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
            headers: &[("Host", "example.com"), ("User-Agent", "sqlmap/1.7")],
            host_tx: &[("honeytrap_flagged", "1")],
        };
        let rs = same_either_way(&text, &[PLAIN, attack]);
        assert_eq!(resumes_at(&rs), Some(901340));
    }
}
