//! A transaction: one request/response pair, driven phase by phase by the embedding server.

use std::sync::Arc;
use std::time::Instant;

use crate::actions::{AllowScope, Ctl, Disruptive, EngineMode, Exec, IdRange, SetVar, SetVarOp};
use crate::body::multipart::{FilePart, Flags};
use crate::body::{json, multipart, urlencoded, xml, Pair, Pairs};
use crate::cache::{Row, TransformCache, Val};
use crate::macros::{Macro, Part};
use crate::operators::{parse_int, BuildContext, Captures, Operator};
use crate::prefilter::{ChainScreen, GroupChain, PhaseScan, RawScreen, NO_SET};
use crate::rule::{
    Amount, ChainId, DynamicOperator, ExecPlan, Rule, RuleOperator, SlotOp, SlotSetVar, TxKeyTest,
};
use crate::ruleset::{GroupBit, PhaseStep, RuleSet, StepTest, TxIntFlags, NO_SKIP_AFTER};
use crate::store::{format_i64, Store};
use crate::variables::{Selector, Target, Var, VarRef, VARS};

mod setup;
pub(crate) use setup::SetupSnapshot;

/// Connection facts the server knows before the request line.
#[derive(Debug, Clone, Default)]
pub struct TxInput {
    pub remote_addr: String,
    pub remote_port: u16,
    pub server_addr: String,
    pub server_port: u16,
    pub server_name: String,
    pub unique_id: String,
}

/// What the server must do to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    pub status: u16,
    pub redirect: Option<String>,
    /// Close the connection without a response.
    pub drop: bool,
    pub rule_id: u32,
    pub phase: u8,
}

/// A rule (chain) that matched, with what it logged.
#[derive(Debug, Clone)]
pub struct MatchedRule {
    pub id: u32,
    pub phase: u8,
    pub msg: String,
    pub logdata: String,
    pub tags: std::sync::Arc<[String]>,
    pub severity: Option<u8>,
    pub matched_var_name: String,
    pub matched_var: Vec<u8>,
    pub disruptive: Disruptive,
    /// Whether the rule logs (`log`, the default, vs `nolog`).
    pub log: bool,
}

/// A logging rule's match as the transaction holds it, borrowed: what an audit record
/// takes, each text copied once, by the record itself ([`Transaction::logged`]).
#[derive(Debug, Clone, Copy)]
pub struct LoggedMatch<'t> {
    pub id: u32,
    pub phase: u8,
    /// `msg` and `logdata` as expanded when the rule matched, as [`MatchedRule`] has them
    /// but not yet made valid UTF-8.
    pub msg: &'t [u8],
    pub logdata: &'t [u8],
    pub tags: &'t Arc<[String]>,
    pub severity: Option<u8>,
    pub matched_var_name: &'t [u8],
    pub matched_var: &'t [u8],
    pub disruptive: Disruptive,
}

/// A match as recorded while rules run; [`MatchedRule`]s are built from these when asked
/// for, so that the many `nolog` bookkeeping matches of a request cost no allocations.
#[derive(Debug, Clone)]
struct Matched {
    /// Index in `RuleSet::rules`.
    rule: u32,
    phase: u8,
    disruptive: Disruptive,
    /// `msg` and `logdata` expanded at match time, when they hold macros, in
    /// `Scratch::match_bytes`.
    msg: Option<std::ops::Range<u32>>,
    logdata: Option<std::ops::Range<u32>>,
    /// MATCHED_VAR_NAME and MATCHED_VAR at match time, in `Scratch::match_bytes`.
    var_name: std::ops::Range<u32>,
    var: std::ops::Range<u32>,
}

/// CRS anomaly scores as the rules left them in TX.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnomalyScores {
    pub inbound: i64,
    pub outbound: i64,
}

/// A matched value: variable, key, transformed value, capture groups.
#[derive(Debug)]
struct Hit {
    var: Var,
    /// Key and (transformed) value, in [`LinkHits::bytes`].
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
    /// Its capture groups, in [`LinkHits::groups`] (ranges of [`LinkHits::bytes`]).
    groups: std::ops::Range<usize>,
}

/// The values a rule link matched while it runs, their bytes and capture groups, and what
/// operators capture into: one struct, so that a link's visitor holds one reference to
/// them (its fields are loaded each time a walk over a target's values starts).
#[derive(Debug, Default)]
struct LinkHits {
    hits: Vec<Hit>,
    bytes: Vec<u8>,
    groups: Vec<std::ops::Range<usize>>,
    /// What operators capture into, value after value.
    caps: Captures,
    /// The link's [`Rule::captures_whole`]: a value's one group is the value, recorded
    /// without asking the operator nor copying the value again.
    whole: bool,
}

impl LinkHits {
    /// Empty, for a link that captures or not.
    fn begin(&mut self, capture: bool) {
        self.hits.clear();
        self.bytes.clear();
        self.groups.clear();
        self.caps.wanted = capture;
        self.caps.clear();
    }
}

#[derive(Debug, Default)]
struct Request {
    method: Vec<u8>,
    uri_raw: Vec<u8>,
    uri: Vec<u8>,
    protocol: Vec<u8>,
    line: Vec<u8>,
    query: Vec<u8>,
    filename: Vec<u8>,
    basename: Vec<u8>,
    headers: Pairs,
    cookies: Pairs,
    args_get: Pairs,
    args_post: Pairs,
    body: Vec<u8>,
    body_len: usize,
    body_truncated: bool,
    files: Vec<FilePart>,
    part_headers: Vec<Pair>,
    mp_flags: Flags,
    mp_seen: bool,
    reqbody_error: Option<String>,
    body_hidden: bool,
    processor: Option<String>,
    urlencoded_error: bool,
    xml_texts: Vec<u8>,
    xml_attrs: Vec<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Response {
    status: u16,
    protocol: Vec<u8>,
    headers: Pairs,
    body: Vec<u8>,
    body_truncated: bool,
}

/// Everything rules read; split from the cache so both can be borrowed at once.
#[derive(Debug, Default)]
struct Data {
    input: TxInput,
    req: Request,
    resp: Response,
    tx: Store,
    persistent: [Store; 5],
    env: Store,
    matched: MatchVars,
    highest_severity: Option<u8>,
    /// The rule running: id, and index in `RuleSet::rules` (for `%{RULE.*}`).
    rule_id: u32,
    rule_idx: usize,
}

/// What a pooled buffer may keep when its transaction ends: larger buffers are freed, so
/// one huge request does not pin its memory.
const MAX_KEPT_BYTES: usize = 64 * 1024;
/// The most pairs a list keeps for reuse, and the largest name or value buffer it keeps:
/// the rest are freed when a transaction ends, so a pooled list pins at most 512 KB.
const MAX_KEPT_PAIRS: usize = 64;
const MAX_KEPT_PAIR_BYTES: usize = 4 * 1024;

/// Empty `b`, or free it if it grew past `max_keep` bytes.
fn recycle(b: &mut Vec<u8>, max_keep: usize) {
    if b.capacity() > max_keep {
        *b = Vec::new();
    } else {
        b.clear();
    }
}

// Recycling empties every field in place, keeping only buffers. The patterns name every
// field, so a field added later does not compile until it is handled here: no state leaks
// from one transaction to the next.
impl Request {
    fn recycle(&mut self, max_keep: usize) {
        let Request {
            method,
            uri_raw,
            uri,
            protocol,
            line,
            query,
            filename,
            basename,
            headers,
            cookies,
            args_get,
            args_post,
            body,
            body_len,
            body_truncated,
            files,
            part_headers,
            mp_flags,
            mp_seen,
            reqbody_error,
            body_hidden,
            processor,
            urlencoded_error,
            xml_texts,
            xml_attrs,
        } = self;
        for b in [
            method, uri_raw, uri, protocol, line, query, filename, basename, body, xml_texts,
        ] {
            recycle(b, max_keep);
        }
        for p in [headers, cookies, args_get, args_post] {
            p.clear(MAX_KEPT_PAIRS, MAX_KEPT_PAIR_BYTES);
        }
        *body_len = 0;
        *body_truncated = false;
        *files = Vec::new();
        *part_headers = Vec::new();
        *mp_flags = Flags::default();
        *mp_seen = false;
        *reqbody_error = None;
        *body_hidden = false;
        *processor = None;
        *urlencoded_error = false;
        *xml_attrs = Vec::new();
    }
}

impl Response {
    fn recycle(&mut self, max_keep: usize) {
        let Response {
            status,
            protocol,
            headers,
            body,
            body_truncated,
        } = self;
        *status = 0;
        recycle(protocol, max_keep);
        headers.clear(MAX_KEPT_PAIRS, MAX_KEPT_PAIR_BYTES);
        recycle(body, max_keep);
        *body_truncated = false;
    }
}

impl Data {
    /// Empty for the next transaction (which resets TX for its rule set).
    fn recycle(&mut self, max_keep: usize) {
        let Data {
            input,
            req,
            resp,
            tx,
            persistent,
            env,
            matched,
            highest_severity,
            rule_id,
            rule_idx,
        } = self;
        *input = TxInput::default();
        req.recycle(max_keep);
        resp.recycle(max_keep);
        for s in persistent.iter_mut().chain([tx, env]) {
            s.clear();
        }
        matched.recycle(max_keep);
        *highest_severity = None;
        *rule_id = 0;
        *rule_idx = 0;
    }
}

/// MATCHED_VAR_NAME, MATCHED_VAR and MATCHED_VARS(_NAMES), each matched value stored once.
#[derive(Debug, Default)]
struct MatchVars {
    /// MATCHED_VAR_NAME and MATCHED_VAR.
    last: Pair,
    /// MATCHED_VARS, except its last entry while `last_listed`.
    earlier: Pairs,
    /// MATCHED_VARS ends with `last`, kept there only, so that the next rule empties
    /// MATCHED_VARS without moving MATCHED_VAR.
    last_listed: bool,
    /// The `TX:key` whose name `last` holds (where its name starts in the rule set's
    /// `tx_key_names`), while nothing else wrote `last` since a match of it wrote it (see
    /// [`MatchVars::push_tx_key`]).
    last_tx_key: Option<u32>,
}

impl MatchVars {
    fn recycle(&mut self, max_keep: usize) {
        recycle(&mut self.last.0, max_keep);
        recycle(&mut self.last.1, max_keep);
        self.earlier.clear(MAX_KEPT_PAIRS, MAX_KEPT_PAIR_BYTES);
        self.last_listed = false;
        self.last_tx_key = None;
    }

    /// Empty MATCHED_VARS for the next rule; MATCHED_VAR stays.
    fn begin_rule(&mut self) {
        self.earlier.truncate(0);
        self.last_listed = false;
    }

    /// Record a matched value: the name and value the caller writes into the emptied
    /// pair returned become MATCHED_VAR_NAME, MATCHED_VAR and MATCHED_VARS' last entry.
    /// The previous last entry of MATCHED_VARS moves into the list (swapped, not copied).
    fn push(&mut self) -> &mut Pair {
        if self.last_listed {
            std::mem::swap(self.earlier.push_empty(), &mut self.last);
        }
        self.last_listed = true;
        self.last_tx_key = None;
        self.last.0.clear();
        self.last.1.clear();
        &mut self.last
    }

    /// [`MatchVars::push`] of a match of the `TX:key` named `name` (at `name_at` in the
    /// rule set's `tx_key_names`) with `value`. As a rule's first match, where `last` holds
    /// that name and value already, nothing is copied: the paranoia-level gates, most of the
    /// `TX:key` matches of a request, match the same key with the same value one after
    /// another (26 of a benign GET's 36). Inlined, the copying out of line: the test alone
    /// needs no registers saved.
    #[inline(always)]
    fn push_tx_key(&mut self, name_at: u32, name: &[u8], value: &[u8]) {
        if !self.relist_tx_key(name_at, value) {
            self.copy_tx_key(name_at, name, value);
        }
    }

    /// [`MatchVars::push_tx_key`] where `last` holds that name and value already: lists it
    /// again and returns true; false (nothing done) otherwise.
    #[inline(always)]
    fn relist_tx_key(&mut self, name_at: u32, value: &[u8]) -> bool {
        // Compared a byte at a time: the values are a few digits, shorter than a call.
        let last = &self.last.1;
        let same_value = last.len() == value.len() && last.iter().zip(value).all(|(a, b)| a == b);
        if self.last_listed || self.last_tx_key != Some(name_at) || !same_value {
            return false;
        }
        self.last_listed = true;
        true
    }

    /// [`MatchVars::push_tx_key`] where the name and value are to be copied.
    #[inline(never)]
    fn copy_tx_key(&mut self, name_at: u32, name: &[u8], value: &[u8]) {
        let (n, v) = self.push();
        n.extend_from_slice(name);
        v.extend_from_slice(value);
        self.last_tx_key = Some(name_at);
    }

    /// [`MatchVars::push`] of value `value` of `var`, named `key`.
    fn push_hit(&mut self, var: Var, key: &[u8], value: &[u8]) {
        let (n, v) = self.push();
        write_var_name(n, var, key);
        v.extend_from_slice(value);
    }

    /// MATCHED_VARS in order.
    fn list(&self) -> impl Iterator<Item = &Pair> {
        let last = self.last_listed.then_some(&self.last);
        self.earlier.iter().chain(last)
    }
}

/// Per-transaction working memory that outlives the transaction: returned to a
/// per-thread pool when it ends and reused by the next one, so steady-state requests do
/// not allocate it again.
#[derive(Debug, Default)]
struct Scratch {
    cache: TransformCache,
    /// Per group: the generation its bits were computed in, and the bits (the OR of the
    /// scans of its targets' values through its chains, in the words its members' bits
    /// are in).
    group_gen: Vec<u32>,
    group_bits: Vec<u64>,
    /// The scan of a value without a cache slot (a body's), which no other scan shares.
    unslotted_scan: Vec<u64>,
    /// Changes with every phase run (of any transaction using this scratch).
    gen: u32,
    scans: ValueScans,
    /// Per group target (by target id), what the phase knows of its values.
    targets: Vec<TargetState>,
    /// The same per set of targets (by [`crate::prefilter::Group::set`]).
    sets: Vec<SetState>,
    /// The ORs [`TargetState::raw_bits`] points at, `words` words each, this phase.
    target_raw_bits: Vec<u64>,
    /// The bytes that `base64Decode` makes of a few raw values (generation, cache row,
    /// set), by row: the decoded screens of several groups ask about the same values.
    decoded: [(u32, Row, [u64; 4]); 8],
    /// (slot, cache row) of the values of listed targets, this phase.
    target_values: Vec<(u32, u32)>,
    /// Bytes of the matched variables that [`Matched`] records refer to.
    match_bytes: Vec<u8>,
    /// The values a rule link matched while it runs.
    link_hits: LinkHits,
    /// Buffers macros expand into, lent while a `setvar`, `setenv` or operator parameter
    /// is expanded.
    expansions: [Vec<u8>; 2],
    /// Request data and match records, lent to the transaction (`None` meanwhile, so that
    /// a scratch made to stand in for the one given back holds no data to make and drop).
    data: Option<Data>,
    matched: Vec<Matched>,
    /// Operators with macros in their parameter as last built, for the rule sets this
    /// scratch served last (the current one last).
    built: Vec<BuiltOperators>,
}

/// Rule sets whose built operators a scratch keeps: a worker serving locations with
/// different rule sets reuses its operators for each.
const MAX_BUILT_RULE_SETS: usize = 4;

/// Longest expanded parameter whose operator is kept for the next transaction.
const MAX_BUILT_TEXT: usize = 4096;

/// The operators of one rule set's dynamic links, by link number.
#[derive(Debug, Default)]
struct BuiltOperators {
    rule_set: u64,
    by_link: Vec<Option<BuiltOperator>>,
}

/// An operator and the expanded parameter it was built from.
#[derive(Debug)]
struct BuiltOperator {
    text: Vec<u8>,
    op: Box<dyn Operator>,
}

/// The phase automaton's bits for each distinct value scanned with it this transaction,
/// and where they are (offset + 1, 0 if not scanned) for each untransformed value (by cache
/// row) and each transformed one (by cache store index). A row's value and a stored value
/// never change within a transaction (the transformation cache relies on it too), so a
/// scan holds for every phase that uses the same automaton; a value the body adds has a
/// row of its own.
#[derive(Debug, Default)]
struct ValueScans {
    /// The automaton (see [`crate::prefilter::Prefilter::scan_id`]) the bits are from.
    automaton: Option<usize>,
    bits: Vec<u64>,
    by_row: Vec<u32>,
    by_stored: Vec<u32>,
}

impl ValueScans {
    fn clear(&mut self) {
        self.automaton = None;
        self.bits.clear();
        self.by_row.clear();
        self.by_stored.clear();
    }

    /// Keeps the scans for a phase whose values `automaton` scans if they are its, else
    /// forgets them.
    fn begin_phase(&mut self, automaton: Option<usize>) {
        if automaton.is_none() || automaton != self.automaton {
            self.clear();
            self.automaton = automaton;
        }
    }

    /// Where in `bits` the scan of value `v` of cache row `row` is, if it was scanned.
    fn scanned(&self, row: u32, v: Val) -> Option<usize> {
        let (index, i) = match v {
            Val::Raw => (&self.by_row, row as usize),
            Val::Stored(i) => (&self.by_stored, i as usize),
        };
        index
            .get(i)
            .and_then(|&at| at.checked_sub(1))
            .map(|at| at as usize)
    }

    /// Where in `bits` the `words` words of value `v` (cache row `row` through some chain,
    /// whose bytes are `bytes`) are, scanning it on first use in the phase.
    fn offset(&mut self, scan: &PhaseScan, words: usize, row: u32, v: Val, bytes: &[u8]) -> usize {
        let (index, i) = match v {
            Val::Raw => (&mut self.by_row, row as usize),
            Val::Stored(i) => (&mut self.by_stored, i as usize),
        };
        if index.len() <= i {
            index.resize(i + 1, 0);
        }
        if index[i] == 0 {
            let at = self.bits.len();
            self.bits.extend(std::iter::repeat_n(0, words));
            scan.scan(bytes, &mut self.bits[at..]);
            index[i] = at as u32 + 1;
        }
        index[i] as usize - 1
    }
}

/// Which of a link's non-disruptive actions to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkActions {
    SetVars,
    /// `ctl` and `setenv`.
    Others,
}

/// What a phase knows of a group target's values, in one place: the groups of a phase
/// read it for each of their targets.
#[derive(Debug, Default, Clone, Copy)]
struct TargetState {
    /// The phase generation the rest was made in.
    gen: u32,
    /// The target's values, listed on its first group of the phase: (slot, cache row) at
    /// `Scratch::target_values[start..start + len]`; `len` is `u32::MAX` where they cannot
    /// be listed (values without a slot: bodies).
    start: u32,
    len: u32,
    /// Where in `Scratch::target_raw_bits` the OR of the raw values' scans is, plus 1 (0:
    /// not computed yet).
    raw_bits: u32,
    /// The transformations tested on every value, and those among them that change one:
    /// for the groups whose chains leave every value as it is, the raw scans are read as
    /// one.
    tested: u64,
    changing: u64,
}

/// What a phase knows of a set of groups' targets ([`crate::prefilter::Group::set`]).
#[derive(Debug, Default, Clone, Copy)]
struct SetState {
    /// The phase generation the rest was made in.
    gen: u32,
    /// Whether every target's values are listed (none is a body's).
    listed: bool,
    /// Of the transformations any group asks of the targets, those that change one of
    /// their values.
    changing: u64,
    /// Where in `Scratch::target_raw_bits` the OR of every value's raw scan is, plus 1 (0:
    /// not computed yet).
    raw_bits: u32,
}

thread_local! {
    static POOL: std::cell::RefCell<Vec<Scratch>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Scratch {
    /// A scratch from the thread's pool, or a new one; [`Scratch::prepare`] readies it.
    fn pooled() -> Scratch {
        POOL.try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Readies a pooled or trimmed scratch for a transaction of `rs`.
    fn prepare(&mut self, rs: &RuleSet) {
        let s = self;
        s.cache.clear(MAX_KEPT_BYTES, rs.chains.nodes.len());
        // Scans are keyed by the cache's rows, which start again.
        s.scans.clear();
        s.match_bytes.clear();
        // Group bits are valid only for the generation they were computed in, and
        // generations keep counting across the transactions that reuse this scratch: no
        // clearing needed.
        let groups = rs.prefilter.groups.len();
        s.group_bits.resize(groups * rs.prefilter.words, 0);
        s.group_gen.resize(groups, 0);
        s.targets
            .resize(rs.prefilter.targets.len(), TargetState::default());
        s.sets
            .resize(rs.prefilter.target_sets.len(), SetState::default());
        let mut built = match s.built.iter().position(|b| b.rule_set == rs.uid) {
            Some(i) => s.built.remove(i),
            None => {
                if s.built.len() == MAX_BUILT_RULE_SETS {
                    s.built.remove(0);
                }
                BuiltOperators {
                    rule_set: rs.uid,
                    by_link: Vec::new(),
                }
            }
        };
        built.by_link.resize_with(rs.dynamic_operators, || None);
        s.built.push(built);
    }

    /// The operators built for the transaction's rule set (see [`Scratch::prepare`]).
    fn built_operators(&mut self) -> &mut [Option<BuiltOperator>] {
        self.built
            .last_mut()
            .map_or(&mut [][..], |b| &mut b.by_link[..])
    }

    fn give_back(mut self) {
        self.trim();
        // A few per thread cover nested or interleaved transactions.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < 8 {
                p.push(self);
            }
        });
    }

    /// Drops the buffers a transaction grew past what an idle scratch keeps.
    fn trim(&mut self) {
        self.cache.clear(MAX_KEPT_BYTES, 0);
        for b in [&mut self.match_bytes, &mut self.link_hits.bytes]
            .into_iter()
            .chain(&mut self.expansions)
        {
            if b.capacity() > MAX_KEPT_BYTES {
                *b = Vec::new();
            }
        }
        if self.link_hits.caps.capacity() > MAX_KEPT_BYTES {
            self.link_hits.caps = Captures::default();
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // The scratch takes the emptied buffers.
        self.data.recycle(MAX_KEPT_BYTES);
        self.scratch.data = Some(std::mem::take(&mut self.data));
        self.matched.clear();
        std::mem::swap(&mut self.matched, &mut self.scratch.matched);
        std::mem::take(&mut self.scratch).give_back();
    }
}

/// One request/response evaluation against a shared [`RuleSet`].
pub struct Transaction {
    rs: Arc<RuleSet>,
    data: Data,
    scratch: Scratch,
    start: Instant,
    mode: EngineMode,
    body_access: bool,
    force_body_var: bool,
    response_body_access: bool,
    removed_ids: Vec<IdRange>,
    removed_tags: Vec<String>,
    removed_msgs: Vec<String>,
    /// Whether any of the three lists above holds something (most transactions remove
    /// nothing, and every rule would ask).
    rules_removed: bool,
    removed_targets_by_id: Vec<(Vec<IdRange>, VarRef)>,
    removed_targets_by_tag: Vec<(String, VarRef)>,
    /// Whether one of the two lists above removes a `TX` target (the `TX:key` links, most
    /// of CRS's, need not ask otherwise).
    tx_targets_removed: bool,
    /// Phases up to and including this one are skipped (`allow`).
    allow_through: u8,
    intervention: Option<Intervention>,
    matched: Vec<Matched>,
    /// `matched` as [`MatchedRule`]s, built on first request after a match.
    matched_view: std::cell::OnceCell<Vec<MatchedRule>>,
    phases_done: u8,
    /// The phase running.
    phase: u8,
    /// Whether the first phase run may start from the rule set's setup snapshot (no phase
    /// ran yet, and the host set no TX key the snapshot's rules read or write).
    setup_pending: bool,
    /// Whether matches of rules that do not log (`nolog`, or without an id) are recorded for
    /// [`Transaction::matched_rules`] (see [`Transaction::record_nolog_matches`]).
    record_nolog: bool,
    /// Set by the link just evaluated when it ran its `setvar`s itself, once per value it
    /// matched; taken by the chain's loop, which otherwise runs them once.
    actions_ran: bool,
    /// Values rule operators were asked about, for tests of what the prefilter spares.
    #[cfg(test)]
    operator_runs: usize,
    /// Operators built while the transaction ran, for tests of their reuse.
    #[cfg(test)]
    operator_builds: usize,
}

impl RuleSet {
    /// Start a transaction.
    pub fn transaction(self: &Arc<Self>, input: TxInput) -> Transaction {
        let mut scratch = Scratch::pooled();
        let data = scratch.data.take().unwrap_or_default();
        let matched = std::mem::take(&mut scratch.matched);
        // Empty; `restart` makes it the rule set's, as it does a pooled one.
        let mut tx = Transaction {
            mode: self.config.engine,
            body_access: false,
            response_body_access: false,
            rs: Arc::clone(self),
            data,
            scratch,
            start: Instant::now(),
            force_body_var: false,
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_msgs: Vec::new(),
            rules_removed: false,
            actions_ran: false,
            removed_targets_by_id: Vec::new(),
            removed_targets_by_tag: Vec::new(),
            tx_targets_removed: false,
            allow_through: 0,
            intervention: None,
            matched,
            matched_view: std::cell::OnceCell::new(),
            phases_done: 0,
            phase: 0,
            setup_pending: false,
            record_nolog: false,
            #[cfg(test)]
            operator_runs: 0,
            #[cfg(test)]
            operator_builds: 0,
        };
        tx.restart(self, input);
        tx
    }
}

impl RuleSet {
    /// [`RuleSet::transaction`] in memory the thread reuses: a transaction dropped before
    /// (its box, request data and scratch) is readied in place, where `transaction` moves
    /// them (4.6 KB) out of the thread's pool, into the transaction, and back on drop.
    pub fn pooled_transaction(self: &Arc<Self>, input: TxInput) -> PooledTransaction {
        let pooled = BOXES.try_with(|p| p.borrow_mut().pop()).ok().flatten();
        match pooled {
            Some(mut tx) => {
                tx.restart(self, input);
                PooledTransaction(Some(tx))
            }
            None => PooledTransaction(Some(Box::new(self.transaction(input)))),
        }
    }
}

thread_local! {
    static BOXES: std::cell::RefCell<Vec<Box<Transaction>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A [`Transaction`] from [`RuleSet::pooled_transaction`]; dropped, it goes back to the
/// thread's pool (of up to 8) emptied, its buffers kept as a dropped transaction's scratch
/// keeps them.
pub struct PooledTransaction(Option<Box<Transaction>>);

impl std::ops::Deref for PooledTransaction {
    type Target = Transaction;

    fn deref(&self) -> &Transaction {
        self.0
            .as_deref()
            .expect("a pooled transaction until dropped")
    }
}

impl std::ops::DerefMut for PooledTransaction {
    fn deref_mut(&mut self) -> &mut Transaction {
        self.0
            .as_deref_mut()
            .expect("a pooled transaction until dropped")
    }
}

impl Drop for PooledTransaction {
    fn drop(&mut self) {
        let Some(mut tx) = self.0.take() else {
            return;
        };
        tx.release();
        // A full pool (or a thread shutting down) drops the transaction as any other.
        let _ = BOXES.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < 8 {
                p.push(tx);
            }
        });
    }
}

impl Transaction {
    /// Empties the transaction for the pool: what it held of its request goes, buffers up
    /// to what a dropped transaction's scratch keeps stay.
    fn release(&mut self) {
        self.data.recycle(MAX_KEPT_BYTES);
        self.scratch.trim();
        self.matched.clear();
        self.matched_view = std::cell::OnceCell::new();
        for tags in [&mut self.removed_tags, &mut self.removed_msgs] {
            tags.clear();
        }
        self.removed_ids.clear();
        self.removed_targets_by_id.clear();
        self.removed_targets_by_tag.clear();
        self.intervention = None;
    }

    /// A released (or new, empty) transaction made one of `rs`'s: every field named, so that
    /// a field added later must be handled here, for pooled and new transactions alike.
    fn restart(&mut self, rs: &Arc<RuleSet>, input: TxInput) {
        let Transaction {
            rs: own_rs,
            data,
            scratch,
            start,
            mode,
            body_access,
            force_body_var,
            response_body_access,
            removed_ids,
            removed_tags,
            removed_msgs,
            rules_removed,
            removed_targets_by_id,
            removed_targets_by_tag,
            tx_targets_removed,
            allow_through,
            intervention,
            matched,
            matched_view,
            phases_done,
            phase,
            setup_pending,
            record_nolog,
            actions_ran,
            #[cfg(test)]
            operator_runs,
            #[cfg(test)]
            operator_builds,
        } = self;
        if !Arc::ptr_eq(own_rs, rs) {
            *own_rs = Arc::clone(rs);
        }
        scratch.prepare(rs);
        data.input = input;
        data.tx.reset(&rs.tx_slots);
        *start = Instant::now();
        *mode = rs.config.engine;
        *body_access = rs.config.request_body_access;
        *force_body_var = false;
        *response_body_access = rs.config.response_body_access;
        // Emptied by `release`.
        debug_assert!(removed_ids.is_empty() && removed_tags.is_empty() && removed_msgs.is_empty());
        debug_assert!(removed_targets_by_id.is_empty() && removed_targets_by_tag.is_empty());
        debug_assert!(intervention.is_none() && matched.is_empty() && matched_view.get().is_none());
        *rules_removed = false;
        *tx_targets_removed = false;
        *allow_through = 0;
        *phases_done = 0;
        *phase = 0;
        *setup_pending = rs.setup.is_some();
        *record_nolog = false;
        *actions_ran = false;
        #[cfg(test)]
        {
            *operator_runs = 0;
            *operator_builds = 0;
        }
    }
}

/// Percent-decode into `out` when every escape is valid; otherwise copy the raw bytes.
fn path_decode(p: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'%' {
            match crate::transformations::hex_pair(&p[i + 1..]) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return set_bytes(out, p),
            }
        }
        out.push(p[i]);
        i += 1;
    }
}

/// Make `buf` a copy of `b`, in its own allocation.
fn set_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.clear();
    buf.extend_from_slice(b);
}

fn header<'a>(headers: &'a [Pair], name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn flag(b: bool) -> &'static [u8] {
    if b {
        b"1"
    } else {
        b"0"
    }
}

impl Transaction {
    // ----- request input -----

    /// The request line as received: method, request target, protocol (`HTTP/1.1`).
    pub fn set_request_line(&mut self, method: &[u8], uri: &[u8], protocol: &[u8]) {
        let r = &mut self.data.req;
        set_bytes(&mut r.method, method);
        set_bytes(&mut r.uri_raw, uri);
        set_bytes(&mut r.protocol, protocol);
        set_bytes(&mut r.line, method);
        r.line.push(b' ');
        r.line.extend_from_slice(uri);
        if !protocol.is_empty() {
            r.line.push(b' ');
            r.line.extend_from_slice(protocol);
        }
        // Absolute-form targets: REQUEST_URI keeps only path and query.
        let mut rel = uri;
        if let Some(p) = memchr::memmem::find(uri, b"://") {
            if uri[..p].iter().all(u8::is_ascii_alphabetic) {
                let after = &uri[p + 3..];
                rel = after
                    .iter()
                    .position(|&c| c == b'/' || c == b'?')
                    .map_or(&b""[..], |i| &after[i..]);
            }
        }
        set_bytes(&mut r.uri, rel);
        let (path, query) = match memchr::memchr(b'?', rel) {
            Some(q) => (&rel[..q], &rel[q + 1..]),
            None => (rel, &b""[..]),
        };
        let path = path.split(|&c| c == b'#').next().unwrap_or(b"");
        set_bytes(&mut r.query, query);
        path_decode(path, &mut r.filename);
        let basename = r.filename.rsplit(|&c| c == b'/').next().unwrap_or(b"");
        set_bytes(&mut r.basename, basename);
        r.args_get.truncate(0);
        r.urlencoded_error |= urlencoded::parse(query, &mut r.args_get);
    }

    pub fn add_request_header(&mut self, name: &[u8], value: &[u8]) {
        self.data.req.headers.push_copy(name, value);
    }

    /// Phase 1.
    pub fn process_request_headers(&mut self) -> Option<Intervention> {
        let r = &mut self.data.req;
        for (n, v) in &r.headers {
            if n.eq_ignore_ascii_case(b"cookie") {
                for c in v.split(|&c| c == b';') {
                    let c = c.trim_ascii();
                    if c.is_empty() {
                        continue;
                    }
                    match memchr::memchr(b'=', c) {
                        Some(eq) => r.cookies.push_copy(c[..eq].trim_ascii(), &c[eq + 1..]),
                        None => r.cookies.push_copy(c, b""),
                    }
                }
            }
        }
        let ct = header(&r.headers, b"content-type")
            .unwrap_or(b"")
            .to_ascii_lowercase();
        let mime = ct.split(|&c| c == b';').next().unwrap_or(b"").trim_ascii();
        r.processor = match mime {
            b"application/x-www-form-urlencoded" => Some("URLENCODED".into()),
            b"multipart/form-data" => Some("MULTIPART".into()),
            b"application/json" => Some("JSON".into()),
            m if m.ends_with(b"+json") => Some("JSON".into()),
            b"text/xml" | b"application/xml" => Some("XML".into()),
            m if m.ends_with(b"+xml") => Some("XML".into()),
            _ => None,
        };
        // REQUEST_URI_RAW is most often REQUEST_URI: one row for both transforms and
        // scans it once.
        if r.uri_raw == r.uri {
            let (raw, uri) = (slot(Var::RequestUriRaw, 0), slot(Var::RequestUri, 0));
            if let (Some(raw), Some(uri)) = (raw, uri) {
                self.scratch.cache.share_row(raw, uri);
            }
        }
        self.run_phase(1)
    }

    /// `SecRequestBodyLimit`: the most body bytes the rules inspect.
    pub fn request_body_limit(&self) -> usize {
        self.rs.config.request_body_limit
    }

    /// Append request body bytes (may be called repeatedly).
    pub fn append_request_body(&mut self, bytes: &[u8]) {
        let limit = self.rs.config.request_body_limit;
        let r = &mut self.data.req;
        r.body_len += bytes.len();
        let room = limit.saturating_sub(r.body.len());
        if bytes.len() > room {
            r.body_truncated = true;
        }
        r.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Phase 2: parse the body with the selected processor, then run the rules.
    pub fn process_request_body(&mut self) -> Option<Intervention> {
        if let Some(i) = &self.intervention {
            return Some(i.clone());
        }
        let cfg = &self.rs.config;
        let over_no_files = self.data.req.processor.as_deref() != Some("MULTIPART")
            && self.data.req.body_len > cfg.request_body_no_files_limit;
        if (self.data.req.body_truncated || over_no_files)
            && cfg.request_body_limit_reject
            && self.mode == EngineMode::On
        {
            let iv = Intervention {
                status: 413,
                redirect: None,
                drop: false,
                rule_id: 0,
                phase: 2,
            };
            self.intervention = Some(iv.clone());
            return Some(iv);
        }
        if self.body_access {
            self.parse_body();
        }
        self.run_phase(2)
    }

    fn parse_body(&mut self) {
        let limit = self.rs.config.arguments_limit;
        let force_body_var = self.force_body_var;
        let r = &mut self.data.req;
        if r.body.is_empty() {
            return;
        }
        let body = std::mem::take(&mut r.body);
        match r.processor.as_deref() {
            Some("URLENCODED") => r.urlencoded_error |= urlencoded::parse(&body, &mut r.args_post),
            Some("JSON") => {
                if let Err(e) = json::parse(&body, &mut r.args_post) {
                    r.reqbody_error = Some(e);
                }
            }
            Some("XML") => match xml::parse(&body) {
                Ok(doc) => {
                    r.xml_texts = doc.texts.concat();
                    r.xml_attrs = doc.attrs;
                }
                Err(e) => r.reqbody_error = Some(e),
            },
            Some("MULTIPART") => {
                let ct = header(&r.headers, b"content-type").unwrap_or(b"").to_vec();
                let m = multipart::parse(&ct, &body, 100);
                for a in m.args {
                    r.args_post.push(a);
                }
                r.files = m.files;
                r.part_headers = m.part_headers;
                r.mp_flags = m.flags;
                r.mp_seen = true;
                if let Some(e) = m.error {
                    r.reqbody_error = Some(e);
                }
            }
            _ => {}
        }
        if r.args_get.len() + r.args_post.len() > limit {
            r.args_post.truncate(limit.saturating_sub(r.args_get.len()));
            r.reqbody_error
                .get_or_insert_with(|| "too many arguments".into());
        }
        r.body_hidden =
            matches!(r.processor.as_deref(), Some("XML" | "MULTIPART")) && !force_body_var;
        r.body = body;
    }

    // ----- response input -----

    pub fn set_response_status(&mut self, status: u16, protocol: &[u8]) {
        self.data.resp.status = status;
        set_bytes(&mut self.data.resp.protocol, protocol);
    }

    pub fn add_response_header(&mut self, name: &[u8], value: &[u8]) {
        self.data.resp.headers.push_copy(name, value);
    }

    /// Phase 3.
    pub fn process_response_headers(&mut self) -> Option<Intervention> {
        if let Some(i) = &self.intervention {
            return Some(i.clone());
        }
        self.run_phase(3)
    }

    /// Whether phase 4 will look at the body (access on, MIME type listed): the server can
    /// skip buffering otherwise.
    pub fn wants_response_body(&self) -> bool {
        if !self.response_body_access {
            return false;
        }
        let ct = header(&self.data.resp.headers, b"content-type")
            .unwrap_or(b"")
            .to_ascii_lowercase();
        let mime = ct.split(|&c| c == b';').next().unwrap_or(b"").trim_ascii();
        self.rs
            .config
            .response_body_mime_types
            .iter()
            .any(|m| m.as_bytes() == mime)
    }

    pub fn append_response_body(&mut self, bytes: &[u8]) {
        let limit = self.rs.config.response_body_limit;
        let b = &mut self.data.resp;
        let room = limit.saturating_sub(b.body.len());
        b.body_truncated |= bytes.len() > room;
        b.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Phase 4.
    pub fn process_response_body(&mut self) -> Option<Intervention> {
        if let Some(i) = &self.intervention {
            return Some(i.clone());
        }
        if !self.wants_response_body() {
            self.data.resp.body.clear();
        }
        self.run_phase(4)
    }

    /// Phase 5 (never intervenes).
    pub fn process_logging(&mut self) {
        let saved = self.allow_through;
        self.allow_through = 0;
        let _ = self.run_phase(5);
        self.allow_through = saved;
    }

    /// Records from now on the matches of rules that do not log (`nolog`, or without an
    /// id) as well, for [`Transaction::matched_rules`]: what a rule tester shows. The
    /// module's events and audit records hold logging rules only, so by default those
    /// matches are not recorded (HIGHEST_SEVERITY, MATCHED_VAR and the rest are set all the
    /// same). Before the first phase, to see the rule set's setup matches too.
    pub fn record_nolog_matches(&mut self) {
        self.record_nolog = true;
    }

    // ----- results -----

    /// The rules that matched so far, in order: the logging ones with an id, and the others
    /// too (`nolog` bookkeeping) where [`Transaction::record_nolog_matches`] asked for them.
    pub fn matched_rules(&self) -> &[MatchedRule] {
        self.matched_view
            .get_or_init(|| self.matched.iter().map(|m| self.matched_rule(m)).collect())
    }

    /// The logging rules with an id that matched so far, in order: what an audit record
    /// holds, borrowed, without building the `nolog` bookkeeping matches (most of them, in
    /// the CRS).
    pub fn logged(&self) -> impl Iterator<Item = LoggedMatch<'_>> {
        self.matched
            .iter()
            .filter(|m| logs(&self.rs.rules[m.rule as usize]))
            .map(|m| self.view(m))
    }

    fn view<'t>(&'t self, m: &Matched) -> LoggedMatch<'t> {
        let bytes = &self.scratch.match_bytes;
        let slice = |r: &std::ops::Range<u32>| &bytes[r.start as usize..r.end as usize];
        let rule = &self.rs.rules[m.rule as usize];
        // Text without macros was not copied at match time: it is the rule's own.
        let text =
            |expanded: &Option<std::ops::Range<u32>>, written: &'t Option<Macro>| match expanded {
                Some(r) => slice(r),
                None => written.as_ref().and_then(Macro::as_literal).unwrap_or(b""),
            };
        LoggedMatch {
            id: rule.id,
            phase: m.phase,
            msg: text(&m.msg, &rule.actions.msg),
            logdata: text(&m.logdata, &rule.actions.logdata),
            tags: &rule.actions.tags,
            severity: rule.actions.severity,
            matched_var_name: slice(&m.var_name),
            matched_var: slice(&m.var),
            disruptive: m.disruptive,
        }
    }

    fn matched_rule(&self, m: &Matched) -> MatchedRule {
        let v = self.view(m);
        MatchedRule {
            id: v.id,
            phase: v.phase,
            msg: lossy_string(v.msg),
            logdata: lossy_string(v.logdata),
            tags: Arc::clone(v.tags),
            severity: v.severity,
            matched_var_name: lossy_string(v.matched_var_name),
            matched_var: v.matched_var.to_vec(),
            disruptive: v.disruptive,
            log: self.rs.rules[m.rule as usize].log,
        }
    }

    pub fn intervention(&self) -> Option<&Intervention> {
        self.intervention.as_ref()
    }

    /// A TX variable (key case-insensitive).
    pub fn tx_var(&self, name: &str) -> Option<&[u8]> {
        self.data.tx.get(name.to_ascii_lowercase().as_bytes())
    }

    /// Every TX variable (lower-case key, value), in key order: what `TX` iterates.
    pub fn each_tx_var(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        self.data.tx.each(&|_| true, f);
    }

    /// Sets `TX:name` (any case) as `setvar` would: how a host exposes what it knows to rules,
    /// before the phase that reads it.
    pub fn set_tx_var(&mut self, name: &str, value: &[u8]) {
        let key = name.to_ascii_lowercase();
        let slot = self.data.tx.slot(key.as_bytes());
        self.host_set_tx(slot);
        self.data.tx.set(key.as_bytes(), slot, value);
    }

    /// CRS anomaly scores (v4 `blocking_*_anomaly_score`, else v3 `*_anomaly_score`).
    pub fn anomaly_scores(&self) -> AnomalyScores {
        // Keys written in lower case, as the store keeps them: no copy to lower-case.
        let tx = &self.data.tx;
        let get = |a: &[u8], b: &[u8]| tx.get(a).or_else(|| tx.get(b)).map_or(0, parse_int);
        AnomalyScores {
            inbound: get(b"blocking_inbound_anomaly_score", b"inbound_anomaly_score"),
            outbound: get(
                b"blocking_outbound_anomaly_score",
                b"outbound_anomaly_score",
            ),
        }
    }

    /// The engine mode in force (after `ctl:ruleEngine`).
    pub fn engine_mode(&self) -> EngineMode {
        self.mode
    }

    // ----- rule evaluation -----

    fn run_phase(&mut self, phase: u8) -> Option<Intervention> {
        self.phases_done = self.phases_done.max(phase);
        if self.mode == EngineMode::Off || phase <= self.allow_through {
            return None;
        }
        let rs = Arc::clone(&self.rs);
        // Phase 2 of a request without a body sees the values phase 1 saw, through the
        // same automaton: what phase 1 listed, tested and or-ed of its targets holds.
        let same_values = phase == 2
            && self.phase == 1
            && self.data.req.body.is_empty()
            && rs.prefilter.scan_id(1).is_some()
            && rs.prefilter.scan_id(1) == rs.prefilter.scan_id(2);
        // Group bits hold for one phase (its groups); the targets' values for one phase
        // too, unless they are the same values.
        let sc = &mut self.scratch;
        let last = sc.gen;
        sc.gen = sc.gen.wrapping_add(1);
        if sc.gen == 0 {
            sc.group_gen.fill(0);
            sc.targets.fill(TargetState::default());
            sc.sets.fill(SetState::default());
            sc.decoded = Default::default();
            sc.gen = 1;
        }
        if same_values {
            let gen = sc.gen;
            for ts in sc.targets.iter_mut().filter(|t| t.gen == last) {
                ts.gen = gen;
            }
            for set in sc.sets.iter_mut().filter(|s| s.gen == last) {
                set.gen = gen;
            }
        } else {
            sc.target_values.clear();
            sc.target_raw_bits.clear();
        }
        self.phase = phase;
        self.scratch.scans.begin_phase(rs.prefilter.scan_id(phase));
        let phase_steps = &rs.phases[phase as usize];
        let steps = &phase_steps.steps;
        let mut i = self.start_from_setup(&rs, phase);
        loop {
            i = self.pass_ruled_out(&rs, steps, i);
            let Some(&step) = steps.get(i) else {
                break;
            };
            i += 1;
            let ri = step.rule as usize;
            if self.rules_removed && self.is_removed(&rs.rules[ri]) {
                continue;
            }
            // `Some(op_fails)`: the rule's chain is to run (one call of `eval_chain`, so that
            // it stays inlined); `op_fails`: the prefilter shows that the first link's
            // operator matches no value (a negated one then holds for every value).
            let chain_to_run = match step.test {
                StepTest::TxInt {
                    id,
                    slot,
                    bound,
                    name_at,
                    flags,
                } => {
                    if !self.tx_int_holds(slot.into(), bound, flags) {
                        // What `eval_chain` does before its first link fails.
                        self.data.matched.begin_rule();
                        self.data.rule_id = id;
                        self.data.rule_idx = ri;
                        continue;
                    }
                    if flags.has(TxIntFlags::QUIET)
                        && !self.tx_targets_removed
                        && !self.record_nolog
                    {
                        let count = flags.has(TxIntFlags::COUNT);
                        self.quiet_tx_int_matched(&rs, ri, id, slot.into(), name_at.into(), count);
                        let skip_after = phase_steps.skip_after[i - 1];
                        if skip_after != NO_SKIP_AFTER {
                            i = skip_after as usize;
                        }
                        continue;
                    }
                    let rule = &rs.rules[ri];
                    if rule.chained.is_none() && !self.tx_targets_removed {
                        self.tx_key_rule_matched(&rs, ri, rule);
                        None
                    } else {
                        Some(false)
                    }
                }
                StepTest::NegatedMember { group, word, bit } => {
                    Some(!self.group_may_match(&rs, GroupBit { group, word, bit }))
                }
                _ => Some(false),
            };
            let rule = &rs.rules[ri];
            if let Some(op_fails) = chain_to_run {
                if !self.eval_chain(&rs, ri, rule, op_fails) {
                    continue;
                }
            }
            let disruptive = rule.on_match;
            // A match of a rule that does not log is recorded only when asked for: no log,
            // audit record or event shows it, and most CRS matches are such bookkeeping
            // (the paranoia-level gates, scoring: 40 on a benign GET).
            if self.record_nolog || logs(rule) {
                self.on_match(ri, rule, phase, disruptive);
            } else {
                self.note_severity(rule);
            }
            let skip_after = phase_steps.skip_after[i - 1];
            if skip_after != NO_SKIP_AFTER {
                i = skip_after as usize;
            } else {
                // `skip:n` passes over the next n rules (markers are no steps).
                i = i.saturating_add(rule.skip as usize);
            }
            match disruptive {
                Disruptive::Pass | Disruptive::Block => {}
                Disruptive::Allow(scope) => {
                    self.allow_through = match scope {
                        AllowScope::All => 4,
                        AllowScope::Request => 2,
                        AllowScope::Phase => phase,
                    };
                    return None;
                }
                Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect => {
                    if self.mode != EngineMode::On {
                        continue;
                    }
                    let redirect = rule.actions.redirect.as_ref().map(|m| {
                        let mut url = Vec::new();
                        self.expand(m, &mut url);
                        String::from_utf8_lossy(&url).into_owned()
                    });
                    let status = match disruptive {
                        Disruptive::Redirect => rule
                            .status
                            .filter(|s| [301, 302, 303, 307].contains(s))
                            .unwrap_or(302),
                        Disruptive::Drop => 0,
                        _ => rule.status.unwrap_or(403),
                    };
                    let iv = Intervention {
                        status,
                        redirect,
                        drop: disruptive == Disruptive::Drop,
                        rule_id: rule.id,
                        phase,
                    };
                    self.intervention = Some(iv.clone());
                    return Some(iv);
                }
            }
        }
        None
    }

    /// The first step from `i` that the phase runs but for a removal: passes over the
    /// steps whose group bit (computed now if the phase has not yet) rules their rule out
    /// (most grouped steps on benign traffic), in a loop of its own that keeps its state in
    /// registers. A rule so ruled out would have emptied MATCHED_VARS and named itself the
    /// rule running, which only a rule run reads, after its own `eval_chain` sets both again
    /// (grouped targets are phase-stable variables, never MATCHED_*): nothing to undo.
    #[inline(always)]
    fn pass_ruled_out(&mut self, rs: &RuleSet, steps: &[PhaseStep], mut i: usize) -> usize {
        while let Some(StepTest::Member { group, word, bit }) = steps.get(i).map(|s| s.test) {
            if !self.group_may_match(rs, GroupBit { group, word, bit }) {
                i += 1;
                continue;
            }
            break;
        }
        i
    }

    /// Whether a rule, the member of a prefilter group whose bit is `at`, can match this
    /// phase: whether the scan of one of the group's values has its bit.
    #[inline(always)]
    fn group_may_match(&mut self, rs: &RuleSet, at: GroupBit) -> bool {
        let g = at.group as usize;
        if self.scratch.group_gen[g] != self.scratch.gen {
            self.group_bits(rs, g);
        }
        self.scratch.group_bits[at.word as usize] & (1 << at.bit) != 0
    }

    /// [`Transaction::group_may_match`] for member `m` of group `g`.
    #[cfg(test)]
    fn member_may_match(&mut self, rs: &RuleSet, group: u32, m: u16) -> bool {
        let (word, bit) = crate::ruleset::member_bit(&rs.prefilter, group, m);
        self.group_may_match(rs, GroupBit { group, word, bit })
    }

    /// Computes group `g`'s bits for the phase, once for all its members. A group whose
    /// chains change none of its targets' values (most, on benign traffic) copies the OR of
    /// their raw scans, made once per phase for every group with the same targets; the rest
    /// read target by target. Out of line: the phase's step loop that asks runs for every
    /// rule, this once per group.
    #[inline(never)]
    fn group_bits(&mut self, rs: &RuleSet, g: usize) {
        let pf = &rs.prefilter;
        let group = &pf.groups[g];
        self.scratch.group_gen[g] = self.scratch.gen;
        if group.set != NO_SET {
            let set = self.scratch.sets[group.set as usize];
            let known = set.gen == self.scratch.gen
                && (set.raw_bits != 0 || !set.listed || set.changing & group.transforms != 0);
            let set = if known {
                set
            } else {
                self.read_set(rs, group.set, group.transforms)
            };
            if set.listed && set.changing & group.transforms == 0 {
                let w = pf.words;
                let words = group.words.0 as usize..group.words.1 as usize;
                let at = set.raw_bits as usize - 1;
                let sc = &mut self.scratch;
                let bits = &mut sc.group_bits[g * w..][words.clone()];
                let raw = &sc.target_raw_bits[at + words.start..at + words.end];
                // Most groups' members fit in one word: copied without a call to `memcpy`.
                match (bits, raw) {
                    ([word], [r]) => *word = *r,
                    (bits, raw) => bits.copy_from_slice(raw),
                }
                return;
            }
        }
        self.group_bits_by_target(rs, g);
    }

    /// What the phase knows of target set `set`, read on its first group of the phase: its
    /// targets' values listed and tested with what any group asks of them, and the OR of
    /// their raw scans once a group with `transforms` can use it.
    #[inline(never)]
    fn read_set(&mut self, rs: &RuleSet, set: u32, transforms: u64) -> SetState {
        let pf = &rs.prefilter;
        let Scratch {
            cache,
            gen,
            scans,
            targets,
            sets,
            target_values,
            target_raw_bits,
            ..
        } = &mut self.scratch;
        let gen = *gen;
        let data = &self.data;
        let state = &mut sets[set as usize];
        let Some(scan) = pf.phases[self.phase as usize].as_deref() else {
            // Not reached: groups exist only in phases with an automaton.
            *state = SetState {
                gen,
                ..SetState::default()
            };
            return *state;
        };
        if state.gen != gen {
            *state = SetState {
                gen,
                listed: true,
                ..SetState::default()
            };
            // The raw ORs are folded in this pass while `transforms` change no value so
            // far (most sets): no second pass over the targets.
            let mut raw = RawOr::default();
            for st in pf.set_targets(set) {
                let t = usize::from(st.target_id);
                let ts = &mut targets[t];
                list_target(data, &pf.targets, t, cache, target_values, ts, gen);
                if ts.len == u32::MAX {
                    state.listed = false;
                    break;
                }
                test_target(data, cache, target_values, ts, pf.target_transforms[t]);
                state.changing |= ts.changing;
                if ts.len != 0 && state.changing & transforms == 0 {
                    let w = pf.words;
                    let from = target_raw(data, scan, w, scans, target_values, target_raw_bits, ts);
                    raw.fold(from, w, target_raw_bits);
                }
            }
            if state.listed && state.changing & transforms == 0 {
                state.raw_bits = raw.finish(pf.words, target_raw_bits) as u32 + 1;
            }
        }
        if state.listed && state.changing & transforms == 0 && state.raw_bits == 0 {
            let at = set_raw_bits(
                data,
                pf,
                set,
                scan,
                scans,
                targets,
                target_values,
                target_raw_bits,
            );
            state.raw_bits = at as u32 + 1;
        }
        *state
    }

    /// [`Transaction::group_bits`] target by target: each value through each of the group's
    /// chains for it, each distinct transformed value scanned once per phase whichever
    /// groups read it.
    #[inline(never)]
    fn group_bits_by_target(&mut self, rs: &RuleSet, g: usize) {
        let pf = &rs.prefilter;
        let group = &pf.groups[g];
        let w = pf.words;
        let words = group.words.0 as usize..group.words.1 as usize;
        let Some(scan) = pf.phases[self.phase as usize].as_deref() else {
            // Not reached: groups exist only in phases with an automaton.
            self.scratch.group_bits[g * w..][words].fill(!0);
            return;
        };
        let Scratch {
            cache,
            group_bits,
            gen,
            scans,
            targets,
            target_values,
            target_raw_bits,
            unslotted_scan,
            decoded,
            ..
        } = &mut self.scratch;
        let gen = *gen;
        let data = &self.data;
        let bits = &mut group_bits[g * w..][words.clone()];
        match bits {
            [word] => *word = 0,
            _ => bits.fill(0),
        }
        let or_scan = |bits: &mut [u64], scans: &ValueScans, at: usize| {
            or_into(bits, &scans.bits[at + words.start..at + words.end]);
        };
        for gt in pf.targets_of(group) {
            let t = usize::from(gt.target_id);
            let ts = &mut targets[t];
            list_target(data, &pf.targets, t, cache, target_values, ts, gen);
            if ts.len == u32::MAX {
                // Values without a slot (bodies): visited every time, out of line.
                let unslotted = (&mut *unslotted_scan, words.clone());
                bits_by_visiting(data, rs, scan, gt, cache, unslotted, bits);
                continue;
            }
            if ts.len == 0 {
                continue;
            }
            // Tested once for every group's chains of the target, when one asks first.
            if ts.tested & gt.transforms != gt.transforms {
                test_target(
                    data,
                    cache,
                    target_values,
                    ts,
                    pf.target_transforms[t] | gt.transforms,
                );
            }
            // No value changed by any of the chains: the OR of the raw values' scans, made
            // once per phase, answers for all of them.
            if ts.changing & gt.transforms == 0 {
                let at = target_raw(data, scan, w, scans, target_values, target_raw_bits, ts);
                or_into(bits, &target_raw_bits[at + words.start..at + words.end]);
                continue;
            }
            let values = &target_values[ts.start as usize..][..ts.len as usize];
            for &(slot, row) in values {
                // A value none of the chains changes is scanned and or-ed once for all.
                let changed = cache.changed_by(row, || slot_value(data, slot), gt.transforms);
                // Changed only by chains through a decoding that it is too short for or
                // whose screen rules it out (they share one answer): as unchanged.
                let decoded_out = changed != 0
                    && changed & gt.undecoded == 0
                    && pf.decoded_screen_of(gt).is_some_and(|(s, min)| {
                        let raw = slot_value(data, slot);
                        raw.len() < usize::from(min) || {
                            let known = &mut decoded[row as usize % decoded.len()];
                            if known.0 != gen || known.1 != row {
                                *known =
                                    (gen, row, crate::transformations::base64_decoded_bytes(raw));
                            }
                            !s.may_hold(&known.2)
                        }
                    });
                if changed == 0 || decoded_out {
                    let at = match scans.scanned(row, Val::Raw) {
                        Some(at) => at,
                        None => {
                            let raw = slot_value(data, slot);
                            // Too short for any of the group's literals.
                            if raw.len() < usize::from(group.shortest) {
                                continue;
                            }
                            scans.offset(scan, w, row, Val::Raw, raw)
                        }
                    };
                    or_scan(bits, scans, at);
                    continue;
                }
                // A value some chain changes: each chain's value (computed on first use)
                // and its scan.
                let raw = slot_value(data, slot);
                let mut last = None;
                // The decoded screens' answer for the last input they read: the chains of a
                // `multiMatch` after its decoding share it.
                let mut decoded: Option<(Option<ChainId>, bool)> = None;
                for GroupChain { chain, min, screen } in pf.chains_of(gt) {
                    let (chain, min) = (*chain, *min);
                    // Too short for the chain to make of it a value with one of the
                    // group's literals: neither computed nor scanned.
                    if raw.len() < usize::from(min) {
                        continue;
                    }
                    match screen.as_deref() {
                        // Nor where the chain only deletes bytes of this value and folds its
                        // case, and the raw value holds none of the literals that way.
                        Some(ChainScreen::Deleting(s)) => {
                            let deleting_only =
                                changed & s.before == 0 && changed & s.deleting != 0;
                            if deleting_only && !s.screen.may_match(raw) {
                                continue;
                            }
                        }
                        // Nor where the bytes it decodes cannot make one.
                        Some(ChainScreen::Decoded(s)) => {
                            let may = match decoded {
                                Some((input, may)) if input == s.input => may,
                                _ => {
                                    let v = match s.input {
                                        Some(c) => cache.in_row(&rs.chains, row, raw, c),
                                        None => Val::Raw,
                                    };
                                    let may = s.may_match(cache.bytes(v, raw));
                                    decoded = Some((s.input, may));
                                    may
                                }
                            };
                            if !may {
                                continue;
                            }
                        }
                        None => {}
                    }
                    let v = match chain {
                        Some(c) => cache.in_row(&rs.chains, row, raw, c),
                        None => Val::Raw,
                    };
                    // Chains that agree on the value read the same scan.
                    if last == Some(v) {
                        continue;
                    }
                    last = Some(v);
                    let at = match scans.scanned(row, v) {
                        Some(at) => at,
                        None => scans.offset(scan, w, row, v, cache.bytes(v, raw)),
                    };
                    or_scan(bits, scans, at);
                }
            }
        }
    }

    fn is_removed(&self, rule: &Rule) -> bool {
        self.removed_ids.iter().any(|r| r.contains(rule.id))
            || self.removed_tags.iter().any(|t| rule.has_tag(t))
            || (!self.removed_msgs.is_empty()
                && rule
                    .actions
                    .msg
                    .as_ref()
                    .and_then(|m| m.as_literal())
                    .is_some_and(|m| self.removed_msgs.iter().any(|x| x.as_bytes() == m)))
    }

    /// Evaluate the chain of rule `idx` (`rule`); `op_fails`: the first link's
    /// operator is known to match no value.
    fn eval_chain(&mut self, rs: &RuleSet, idx: usize, rule: &Rule, op_fails: bool) -> bool {
        self.data.matched.begin_rule();
        self.data.rule_id = rule.id;
        self.data.rule_idx = idx;
        let mut link = rule;
        let mut first = true;
        loop {
            if !self.eval_link(rs, idx, rule, link, first, first && op_fails) {
                return false;
            }
            // ModSecurity runs a link's `setvar`s as soon as that link matches, so the next
            // link can read what they set (CRS 920420 relies on this).
            // Most links that match have no actions: no call for them.
            if !std::mem::take(&mut self.actions_ran) && link.execs != ExecPlan::None {
                self.run_actions(rs, link, LinkActions::SetVars);
            }
            first = false;
            match &link.chained {
                Some(next) => link = next,
                None => break,
            }
        }
        if rule.chain_others {
            self.run_chain_others(rs, rule);
        }
        true
    }

    /// The `ctl`s and `setenv`s of a chain that matched whole, each link's after those of
    /// the links after it, as ModSecurity v3 runs them (a link's once the rest of the chain
    /// matched): a chain's condition holds for its exclusions (`ctl:ruleRemoveById` on a
    /// path, chained to a client address) whichever link they are written on. ModSecurity
    /// v2 ran them as their own link matched, so a chain that failed later could still
    /// remove rules.
    fn run_chain_others(&mut self, rs: &RuleSet, link: &Rule) {
        if let Some(next) = &link.chained {
            self.run_chain_others(rs, next);
        }
        self.run_actions(rs, link, LinkActions::Others);
    }

    /// Runs `which` of `link`'s non-disruptive actions.
    fn run_actions(&mut self, rs: &RuleSet, link: &Rule, which: LinkActions) {
        match link.execs {
            ExecPlan::None => {}
            // All `setvar`s.
            ExecPlan::Slots { .. } if which == LinkActions::Others => {}
            ExecPlan::Slots { start, len } => {
                for sv in &rs.slot_setvars[start as usize..][..usize::from(len)] {
                    self.slot_setvar(rs, sv);
                }
            }
            ExecPlan::CaptureSetVar { .. } | ExecPlan::General => {
                for e in &link.actions.exec {
                    let setvar = matches!(e, Exec::SetVar(_));
                    match which {
                        LinkActions::SetVars if !setvar => continue,
                        LinkActions::Others if setvar => continue,
                        _ => self.exec(e),
                    }
                }
            }
        }
    }

    /// What a link that matched several values records, with its `setvar`s run once for
    /// each, as ModSecurity runs them: each sees that value as MATCHED_VAR and its captures
    /// as TX:0-9 (CRS 920450 names a TX key after each header name it captured; a score a
    /// rule adds rises once per value). Its other actions (`ctl`, `setenv`) run once, when
    /// the whole chain matched ([`Transaction::run_chain_others`]).
    ///
    /// An [`ExecPlan::CaptureSetVar`] link's `setvar` reads each value's groups where they
    /// were recorded, when every value has the same groups, enough of them (an operator
    /// gives each value as many): TX:0-9 are written once, with the last value's groups,
    /// which is what writing them for each value leaves.
    /// Out of line: most links match one value, or have no actions.
    #[inline(never)]
    fn actions_per_value(&mut self, rs: &RuleSet, link: &Rule) {
        let link_hits = std::mem::take(&mut self.scratch.link_hits);
        let LinkHits {
            hits,
            bytes,
            groups,
            ..
        } = &link_hits;
        let planned = match (link.execs, &link.actions.exec[..], hits.last()) {
            (
                ExecPlan::CaptureSetVar {
                    groups: needed,
                    lower_groups,
                },
                [Exec::SetVar(SetVar {
                    name,
                    op: SetVarOp::Set(value),
                    ..
                })],
                Some(last),
            ) if link.capture
                && last.groups.len() >= usize::from(needed)
                && hits.iter().all(|h| h.groups.len() == last.groups.len()) =>
            {
                Some((name, value, lower_groups))
            }
            _ => None,
        };
        let Some((name, value, lower_groups)) = planned else {
            for h in hits {
                if link.capture {
                    self.write_groups(&groups[h.groups.clone()], bytes);
                }
                let (key, value) = (&bytes[h.key.clone()], &bytes[h.value.clone()]);
                self.data.matched.push_hit(h.var, key, value);
                self.run_actions(rs, link, LinkActions::SetVars);
            }
            self.scratch.link_hits = link_hits;
            self.actions_ran = true;
            return;
        };
        for h in hits {
            let (key, matched) = (&bytes[h.key.clone()], &bytes[h.value.clone()]);
            self.data.matched.push_hit(h.var, key, matched);
            let hit_groups = &groups[h.groups.clone()];
            self.data.tx.set_unnumbered_with(
                |out| expand_captured(name, hit_groups, bytes, out, lower_groups),
                |out| expand_captured(value, hit_groups, bytes, out, false),
            );
        }
        if let Some(last) = hits.last() {
            self.write_groups(&groups[last.groups.clone()], bytes);
        }
        self.scratch.link_hits = link_hits;
        self.actions_ran = true;
    }

    /// A matched value's capture groups (ranges of `bytes`) into TX:0..TX:9, slots 0..9 (the
    /// rule set numbers them first).
    fn write_groups(&mut self, groups: &[std::ops::Range<usize>], bytes: &[u8]) {
        for (i, g) in groups.iter().enumerate() {
            self.data
                .tx
                .set(&[b'0' + i as u8], Some(i as u32), &bytes[g.clone()]);
        }
    }

    /// [`Transaction::exec`] for a `setvar` planned as a [`SlotSetVar`].
    fn slot_setvar(&mut self, rs: &RuleSet, sv: &SlotSetVar) {
        let tx = &mut self.data.tx;
        let slot = Some(sv.slot);
        // With the slot known, the store does not read the key.
        let (delta, sub) = match sv.op {
            SlotOp::Delete => return tx.remove(b"", slot),
            SlotOp::Set { start, len } => {
                let value = &rs.setvar_values[start as usize..(start + len) as usize];
                return tx.set(b"", slot, value);
            }
            SlotOp::Add(a) => (a, false),
            SlotOp::Sub(a) => (a, true),
        };
        // An unset key reads as 0.
        let delta = match delta {
            Amount::Const(n) => n,
            Amount::Slot(s) => tx.slot_int(s).unwrap_or(0),
        };
        let cur = tx.slot_int(sv.slot).unwrap_or(0);
        let n = if sub {
            cur.saturating_sub(delta)
        } else {
            cur.saturating_add(delta)
        };
        tx.set_int(b"", slot, n);
    }

    fn target_removed(&self, starter: &Rule, var: Var, key: &[u8]) -> bool {
        self.removed_targets_by_id
            .iter()
            .any(|(ids, t)| t.covers(var, key) && ids.iter().any(|r| r.contains(starter.id)))
            || self
                .removed_targets_by_tag
                .iter()
                .any(|(tag, t)| t.covers(var, key) && starter.has_tag(tag))
    }

    fn eval_link(
        &mut self,
        rs: &RuleSet,
        idx: usize,
        starter: &Rule,
        link: &Rule,
        first: bool,
        op_fails: bool,
    ) -> bool {
        // A dynamic link's operator, taken from the scratch and given back after use.
        let mut built = None;
        let op: &dyn Operator = match &link.operator {
            RuleOperator::Always => return true,
            RuleOperator::Static(op) => &**op,
            RuleOperator::Dynamic(d) => match self.dynamic_operator(d) {
                Some(b) => &*built.insert((b, d.slot)).0.op,
                None => return false,
            },
        };
        let matched = self.eval_link_with(rs, idx, starter, link, op, first, op_fails);
        if let Some((b, slot)) = built.filter(|(b, _)| b.text.len() <= MAX_BUILT_TEXT) {
            if let Some(kept) = self.scratch.built_operators().get_mut(slot as usize) {
                *kept = Some(b);
            }
        }
        matched
    }

    /// The operator of a dynamic link for its parameter expanded now: the one last built
    /// for the link (taken from the scratch, to be given back) if it was built from the
    /// same text, else a new one; `None` if the text is not a valid parameter.
    fn dynamic_operator(&mut self, dynamic: &DynamicOperator) -> Option<BuiltOperator> {
        let &DynamicOperator {
            build,
            ref param,
            ref base_dir,
            negated,
            slot,
        } = dynamic;
        let mut text = std::mem::take(&mut self.scratch.expansions[0]);
        text.clear();
        self.expand(param, &mut text);
        let kept = self
            .scratch
            .built_operators()
            .get_mut(slot as usize)
            .and_then(Option::take);
        if let Some(kept) = kept.filter(|k| k.text == text) {
            self.scratch.expansions[0] = text;
            return Some(kept);
        }
        #[cfg(test)]
        {
            self.operator_builds += 1;
        }
        let mut notices = Vec::new();
        let mut ctx = BuildContext {
            base_dir,
            notices: &mut notices,
            negated,
        };
        // Validating UTF-8 costs less than the lossy conversion's chunking.
        let param = match std::str::from_utf8(&text) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(&text),
        };
        let op = build(&param, &mut ctx).ok()?;
        Some(BuiltOperator { text, op })
    }

    /// [`Transaction::eval_link`] with the link's operator at hand.
    #[allow(clippy::too_many_arguments)]
    fn eval_link_with(
        &mut self,
        rs: &RuleSet,
        idx: usize,
        starter: &Rule,
        link: &Rule,
        op: &dyn Operator,
        first: bool,
        op_fails: bool,
    ) -> bool {
        match self.eval_tx_key(rs, starter, link, op, op_fails) {
            Some(matched) => matched,
            None => self.eval_values(rs, idx, starter, link, op, first, op_fails),
        }
    }

    /// [`Transaction::eval_link_with`] for a link other than a `TX:key` one. Out of line:
    /// inlined in the rule loop, its many live values made every link, `TX:key` ones
    /// too, load and spill them.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn eval_values(
        &mut self,
        rs: &RuleSet,
        idx: usize,
        starter: &Rule,
        link: &Rule,
        op: &dyn Operator,
        first: bool,
        op_fails: bool,
    ) -> bool {
        if let Some(matched) = self.eval_count_cmp(rs, idx, starter, link, first, op_fails) {
            return matched;
        }
        let chain = link.chain_id();
        let use_prefilter =
            first && !link.negated && matches!(link.operator, RuleOperator::Static(_));
        // A group member's bit in the phase scan of a value: unset, the operator cannot
        // match that value (the scan is shared with every rule looking at it).
        let pf = &rs.prefilter;
        // The few rules that can tell from the values before they are transformed.
        let mut member_bit = None;
        // (Neither is asked of a later link, nor of a negated or dynamic one.)
        if use_prefilter {
            if let Some(screen) = pf.raw_screen(idx) {
                if !self.any_raw_value(link, screen) {
                    return false;
                }
            }
            if let (Some((g, m)), Some(_)) = (pf.member[idx], &pf.phases[self.phase as usize]) {
                let bit = pf.groups[g as usize].bit + m as usize;
                member_bit = Some((bit / 64, 1u64 << (bit % 64)));
            }
        }
        let Scratch {
            cache,
            link_hits,
            scans,
            ..
        } = &mut self.scratch;
        link_hits.begin(link.capture);
        link_hits.whole = link.captures_whole;
        let at = LinkTest {
            rs,
            link,
            idx,
            use_prefilter,
            op,
            op_fails,
            chain,
            scan_chain: pf.scanned_chain(chain),
            member_bit,
        };
        let mut link_values = LinkValues {
            exclusions: &[],
            cache,
            scans,
            test: ValueTest {
                at: &at,
                hits: link_hits,
                #[cfg(test)]
                operator_runs: &mut self.operator_runs,
            },
        };
        for t in &link.targets {
            link_values.exclusions = &t.exclusions;
            // A request-line variable's one value goes to the visitor without the walk
            // that finds it (a third of the links a benign CRS request visits).
            match request_line_value(&self.data.req, t.var).filter(|_| !t.count) {
                Some(v) => link_values.value_cold(t.var, b"", v, slot(t.var, 0)),
                None => visit(&self.data, t, &mut link_values),
            }
        }
        // Runtime target removals (ctl:ruleRemoveTarget*) apply to the starter's id and tags.
        if !self.removed_targets_by_id.is_empty() || !self.removed_targets_by_tag.is_empty() {
            let mut hits = std::mem::take(&mut self.scratch.link_hits.hits);
            let bytes = &self.scratch.link_hits.bytes;
            hits.retain(|h| !self.target_removed(starter, h.var, &bytes[h.key.clone()]));
            self.scratch.link_hits.hits = hits;
        }
        if self.scratch.link_hits.hits.len() > 1 && link.execs != ExecPlan::None {
            self.actions_per_value(rs, link);
            return true;
        }
        let LinkHits {
            hits,
            bytes,
            groups,
            ..
        } = &self.scratch.link_hits;
        let matched = !hits.is_empty();
        if matched {
            let d = &mut self.data;
            if link.capture {
                if let Some(h) = hits.iter().rev().find(|h| !h.groups.is_empty()) {
                    // TX:0..TX:9 are slots 0..9: the rule set numbers them first.
                    for (i, g) in groups[h.groups.clone()].iter().enumerate() {
                        d.tx.set(&[b'0' + i as u8], Some(i as u32), &bytes[g.clone()]);
                    }
                }
            }
            for h in hits {
                let (n, v) = d.matched.push();
                write_var_name(n, h.var, &bytes[h.key.clone()]);
                v.extend_from_slice(&bytes[h.value.clone()]);
            }
        }
        matched
    }

    /// Whether one of `link`'s values passes `screen` before its transformations (exclusions
    /// aside: a value they drop only makes the answer yes where it could be no).
    fn any_raw_value(&self, link: &Rule, screen: &RawScreen) -> bool {
        let mut any = false;
        for t in &link.targets {
            visit_each(&self.data, t, &mut |_, _, raw, _| {
                any |= screen.may_match(raw)
            });
        }
        any
    }

    /// [`Transaction::eval_link`] for the commonest link in CRS, one untransformed
    /// `TX:key` or `&TX:key` target (paranoia-level checks, setup and scoring rules), with
    /// the same outcome and without visiting; `None` for any other link.
    fn eval_tx_key(
        &mut self,
        rs: &RuleSet,
        starter: &Rule,
        link: &Rule,
        op: &dyn Operator,
        op_fails: bool,
    ) -> Option<bool> {
        let TxKeyTest {
            slot,
            name_start,
            name_len,
            count,
        } = *link.tx_key.as_ref()?;
        if self.tx_targets_removed {
            // The name the match would have (`&TX:key` matches as `TX`), as removals see it.
            let key: &[u8] = match (&link.targets[0].selector, count) {
                (Selector::Key(k), false) => k,
                _ => b"",
            };
            if self.target_removed(starter, Var::Tx, key) {
                return Some(false);
            }
        }
        let Data { tx, matched, .. } = &mut self.data;
        // An integer comparison needs the value's integer only (cached by the store).
        let matches = match (link.int_cmp, count) {
            _ if op_fails => false,
            (Some(cmp), true) => cmp.holds(tx.get_slot(slot).is_some() as i64),
            (Some(cmp), false) => match tx.slot_int(slot) {
                Some(n) => cmp.holds(n),
                None => return Some(false),
            },
            (None, _) => {
                let Some(value) = tx_key_value(tx, slot, count) else {
                    return Some(false);
                };
                let mut caps = Captures::new(false);
                op.matches(value, &mut caps)
            }
        };
        if matches == link.negated {
            return Some(false);
        }
        let Some(value) = tx_key_value(tx, slot, count) else {
            return Some(false);
        };
        let name = &rs.tx_key_names[name_start as usize..][..usize::from(name_len)];
        let (n, v) = matched.push();
        n.extend_from_slice(name);
        v.extend_from_slice(value);
        Some(true)
    }

    /// Whether a first link that compares `TX` slot `slot`'s integer (or, `COUNT`, whether
    /// it is set) matches, as [`Transaction::eval_tx_key`] finds: whether the integer is at
    /// most `bound` (or, `EQUAL`, equal to it), unless `NEGATED` (see [`StepTest::TxInt`]).
    /// Asked in the rule loop of a [`StepTest::TxInt`] step: most rules a benign CRS
    /// request runs are such tests (the paranoia-level gates); the half that fail skip the
    /// chain's set-up, and a single-link one that matches is recorded by
    /// [`Transaction::quiet_tx_int_matched`] or [`Transaction::tx_key_rule_matched`].
    #[inline(always)]
    fn tx_int_holds(&mut self, slot: u32, bound: i16, flags: TxIntFlags) -> bool {
        let tx = &mut self.data.tx;
        let n = if flags.has(TxIntFlags::COUNT) {
            i64::from(tx.get_slot(slot).is_some())
        } else {
            match tx.slot_int(slot) {
                Some(n) => n,
                None => return false,
            }
        };
        let c = i64::from(bound);
        // Selected, not branched on: no indirect jump per comparison operator.
        let holds = if flags.has(TxIntFlags::EQUAL) {
            n == c
        } else {
            n <= c
        };
        holds != flags.has(TxIntFlags::NEGATED)
    }

    /// All that a match of rule `ri`, a [`TxIntFlags::QUIET`] step's, does but follow its
    /// `skipAfter`, as [`Transaction::tx_key_rule_matched`] and the rule loop after it
    /// would: names the rule running and records its MATCHED_VARS, reading the rule only
    /// for a MATCHED_VAR_NAME to copy (`name_at`: where it starts in `tx_key_names`).
    #[inline(always)]
    fn quiet_tx_int_matched(
        &mut self,
        rs: &RuleSet,
        ri: usize,
        id: u32,
        slot: u32,
        name_at: u32,
        count: bool,
    ) {
        let Data {
            tx,
            matched,
            rule_id,
            rule_idx,
            ..
        } = &mut self.data;
        matched.begin_rule();
        *rule_id = id;
        *rule_idx = ri;
        // Set: the test read it.
        let value = tx_key_value(tx, slot, count).unwrap_or_default();
        if !matched.relist_tx_key(name_at, value) {
            let len = rs.rules[ri].tx_key.as_ref().map_or(0, |t| t.name_len);
            let name = &rs.tx_key_names[name_at as usize..][..usize::from(len)];
            matched.copy_tx_key(name_at, name, value);
        }
    }

    /// What `eval_chain` does for rule `ri`, a single `TX:key` link known to match (and
    /// no TX target removed): its MATCHED_VARS, as [`Transaction::eval_tx_key`] records
    /// them, and its actions.
    #[inline(never)]
    fn tx_key_rule_matched(&mut self, rs: &RuleSet, ri: usize, rule: &Rule) {
        self.data.matched.begin_rule();
        self.data.rule_id = rule.id;
        self.data.rule_idx = ri;
        if let Some(t) = &rule.tx_key {
            let name = &rs.tx_key_names[t.name_start as usize..][..usize::from(t.name_len)];
            let Data { tx, matched, .. } = &mut self.data;
            // Set: the test read it.
            let value = tx_key_value(tx, t.slot, t.count).unwrap_or_default();
            matched.push_tx_key(t.name_start, name, value);
        }
        if rule.execs != ExecPlan::None {
            self.run_actions(rs, rule, LinkActions::SetVars);
        }
        if rule.chain_others {
            self.run_chain_others(rs, rule);
        }
    }

    /// [`Transaction::eval_link`] for a link that compares how many values one target
    /// has with an integer (`&REQUEST_HEADERS:Host "@eq 0"`: CRS's protocol checks), with
    /// the same outcome: the count compared as an integer, without the text the operator
    /// would read it from again; `None` for any other link.
    fn eval_count_cmp(
        &mut self,
        rs: &RuleSet,
        idx: usize,
        starter: &Rule,
        link: &Rule,
        first: bool,
        op_fails: bool,
    ) -> Option<bool> {
        let cmp = link.int_cmp?;
        let [t] = &link.targets[..] else {
            return None;
        };
        if !t.count
            || !t.exclusions.is_empty()
            || !link.chain_ids.is_empty()
            || link.multi_match
            || link.capture
        {
            return None;
        }
        let mut n = 0i64;
        values(
            &self.data,
            t,
            &mut |_: Var, _: &[u8], _: &[u8], _: Option<u32>| n += 1,
        );
        let mut buf = [0; 20];
        let text = format_i64(n, &mut buf);
        // `int_cmp` is set for static operators only: the rule's own automaton may ask.
        if first && !link.negated && !rs.prefilter.may_match(idx, text) {
            return Some(false);
        }
        #[cfg(test)]
        {
            self.operator_runs += 1;
        }
        if (!op_fails && cmp.holds(n)) == link.negated {
            return Some(false);
        }
        if (!self.removed_targets_by_id.is_empty() || !self.removed_targets_by_tag.is_empty())
            && self.target_removed(starter, t.var, b"")
        {
            return Some(false);
        }
        let (name, value) = self.data.matched.push();
        write_var_name(name, t.var, b"");
        value.extend_from_slice(text);
        Some(true)
    }

    /// HIGHEST_SEVERITY after a match of `rule`.
    fn note_severity(&mut self, rule: &Rule) {
        if let Some(s) = rule.severity {
            self.data.highest_severity = Some(self.data.highest_severity.map_or(s, |h| h.min(s)));
        }
    }

    fn on_match(&mut self, ri: usize, rule: &Rule, phase: u8, disruptive: Disruptive) {
        self.note_severity(rule);
        let mut bytes = std::mem::take(&mut self.scratch.match_bytes);
        // Only text with macros is expanded now; literal text is read when shown.
        let mut expanded = |m: &Option<Macro>| {
            let m = m.as_ref().filter(|m| m.as_literal().is_none())?;
            let start = bytes.len() as u32;
            self.expand(m, &mut bytes);
            Some(start..bytes.len() as u32)
        };
        let msg = expanded(&rule.actions.msg);
        let logdata = expanded(&rule.actions.logdata);
        let mut keep = |b: &[u8]| {
            bytes.extend_from_slice(b);
            (bytes.len() - b.len()) as u32..bytes.len() as u32
        };
        let var_name = keep(&self.data.matched.last.0);
        let var = keep(&self.data.matched.last.1);
        self.scratch.match_bytes = bytes;
        self.matched.push(Matched {
            rule: ri as u32,
            phase,
            disruptive,
            msg,
            logdata,
            var_name,
            var,
        });
        self.matched_view.take();
    }

    /// Out of line: inlined, its many arms' set-up made every [`Transaction::run_actions`]
    /// pay for it, the planned `setvar`s' (most calls) too.
    #[inline(never)]
    fn exec(&mut self, e: &Exec) {
        match e {
            Exec::SetVar(sv) => {
                // Literal names and values (most of them) are used as they are.
                let [mut name_buf, mut value_buf] = std::mem::take(&mut self.scratch.expansions);
                let (name, slot): (&[u8], Option<u32>) = match sv.name.as_literal() {
                    Some(l) => (l, sv.slot),
                    None => {
                        name_buf.clear();
                        self.expand_name(&sv.name, &mut name_buf);
                        (&name_buf, None)
                    }
                };
                let value: &[u8] = match &sv.op {
                    // Read as an integer from its slot below.
                    _ if sv.operand_slot.is_some() => b"",
                    SetVarOp::Set(m) | SetVarOp::Add(m) | SetVarOp::Sub(m) => {
                        match m.as_literal() {
                            Some(l) => l,
                            None => {
                                value_buf.clear();
                                self.expand(m, &mut value_buf);
                                &value_buf
                            }
                        }
                    }
                    SetVarOp::Delete => b"",
                };
                // An unset key expands to nothing, which reads as 0.
                let operand = sv
                    .operand_slot
                    .map(|s| self.data.tx.slot_int(s).unwrap_or(0));
                let store = self.store_mut(sv.collection);
                // A name that can be no numbered key (set for names built at run time
                // only) goes straight to the run-time keys.
                let unnumbered = sv.unnumbered;
                match &sv.op {
                    SetVarOp::Delete if unnumbered => store.remove_unnumbered(name),
                    SetVarOp::Delete => store.remove(name, slot),
                    SetVarOp::Set(_) if unnumbered => store.set_unnumbered(name, value),
                    SetVarOp::Set(_) => store.set(name, slot, value),
                    SetVarOp::Add(_) | SetVarOp::Sub(_) => {
                        let cur = match slot {
                            Some(s) => store.slot_int(s),
                            None if unnumbered => store.get_unnumbered(name).map(parse_int),
                            None => store.get(name).map(parse_int),
                        }
                        .unwrap_or(0);
                        let delta = operand.unwrap_or_else(|| parse_int(value));
                        let n = if matches!(sv.op, SetVarOp::Add(_)) {
                            cur.saturating_add(delta)
                        } else {
                            cur.saturating_sub(delta)
                        };
                        if unnumbered {
                            store.set_unnumbered(name, format_i64(n, &mut [0; 20]));
                        } else {
                            store.set_int(name, slot, n);
                        }
                    }
                }
                self.scratch.expansions = [name_buf, value_buf];
            }
            Exec::Ctl(c) => match c {
                Ctl::RuleEngine(m) => self.mode = *m,
                Ctl::RuleRemoveById(r) => {
                    self.removed_ids.extend_from_slice(r);
                    self.rules_removed = true;
                }
                Ctl::RuleRemoveByTag(t) => {
                    self.removed_tags.push(t.clone());
                    self.rules_removed = true;
                }
                Ctl::RuleRemoveByMsg(m) => {
                    self.removed_msgs.push(m.clone());
                    self.rules_removed = true;
                }
                Ctl::RuleRemoveTargetById(ids, t) => {
                    self.tx_targets_removed |= t.var == Var::Tx;
                    self.removed_targets_by_id.push((ids.clone(), t.clone()))
                }
                Ctl::RuleRemoveTargetByTag(tag, t) => {
                    self.tx_targets_removed |= t.var == Var::Tx;
                    self.removed_targets_by_tag.push((tag.clone(), t.clone()))
                }
                Ctl::RuleRemoveTargetByMsg(..) | Ctl::Audit | Ctl::RequestBodyLimit(_) => {}
                Ctl::RequestBodyProcessor(p) => self.data.req.processor = Some(p.clone()),
                Ctl::RequestBodyAccess(b) => self.body_access = *b,
                Ctl::ResponseBodyAccess(b) => self.response_body_access = *b,
                Ctl::ForceRequestBodyVariable(b) => self.force_body_var = *b,
            },
            Exec::SetEnv(n, v) => {
                let [mut name, mut value] = std::mem::take(&mut self.scratch.expansions);
                name.clear();
                self.expand(n, &mut name);
                name.make_ascii_lowercase();
                value.clear();
                self.expand(v, &mut value);
                self.data.env.set(&name, None, &value);
                self.scratch.expansions = [name, value];
            }
            Exec::Noop => {}
        }
    }

    fn store_mut(&mut self, v: Var) -> &mut Store {
        match v {
            Var::Ip => &mut self.data.persistent[0],
            Var::Global => &mut self.data.persistent[1],
            Var::Session => &mut self.data.persistent[2],
            Var::User => &mut self.data.persistent[3],
            Var::Resource => &mut self.data.persistent[4],
            _ => &mut self.data.tx,
        }
    }

    /// Append the expansion of `m` to `out`: what [`Macro::expand`] gives with
    /// [`Transaction::resolve`] resolving. Its parts are walked here, not through the
    /// macro's resolver: most are literal text and numbered TX keys (CRS 920450's
    /// `header_name_920450_%{tx.0}`, once per request header), each read in a few
    /// instructions, where a call through the resolver set up the whole of
    /// [`Transaction::resolve`] for each.
    fn expand(&self, m: &Macro, out: &mut Vec<u8>) {
        for p in &m.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l),
                Part::TxSlot(_, s) => {
                    if let Some(v) = self.data.tx.get_slot(*s) {
                        out.extend_from_slice(v);
                    }
                }
                Part::Var(var, key) => self.resolve(*var, key.as_deref(), out),
            }
        }
    }

    /// [`Transaction::expand`] lower-cased, for a `setvar` name: its literal text is
    /// lower-cased already (when parsed), and only what its macros give is here (CRS 920450's
    /// `header_name_920450_%{tx.0}`, once per request header).
    fn expand_name(&self, m: &Macro, out: &mut Vec<u8>) {
        for p in &m.parts {
            let at = out.len();
            match p {
                Part::Lit(l) => {
                    out.extend_from_slice(l);
                    continue;
                }
                Part::TxSlot(_, s) => {
                    if let Some(v) = self.data.tx.get_slot(*s) {
                        out.extend_from_slice(v);
                    }
                }
                Part::Var(var, key) => self.resolve(*var, key.as_deref(), out),
            }
            out[at..].make_ascii_lowercase();
        }
    }

    /// Append the (first) value of `var` (at `key`, for collections) to `out`, as a macro
    /// reads it.
    #[inline(never)]
    fn resolve(&self, var: Var, key: Option<&[u8]>, out: &mut Vec<u8>) {
        let rs = &self.rs;
        let data = &self.data;
        if var == Var::Rule {
            let rule = rs.rules.get(data.rule_idx).filter(|r| r.id == data.rule_id);
            match (key, rule) {
                (Some(b"id"), _) => out.extend_from_slice(data.rule_id.to_string().as_bytes()),
                (Some(b"msg"), Some(r)) => {
                    if let Some(l) = r.actions.msg.as_ref().and_then(|m| m.as_literal()) {
                        out.extend_from_slice(l)
                    }
                }
                (Some(b"severity"), Some(r)) => out.extend_from_slice(
                    r.actions
                        .severity
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                        .as_bytes(),
                ),
                (Some(b"ver"), Some(r)) => {
                    out.extend_from_slice(r.actions.ver.clone().unwrap_or_default().as_bytes())
                }
                (Some(b"phase"), Some(r)) => out.extend_from_slice(r.phase.to_string().as_bytes()),
                _ => {}
            }
            return;
        }
        // Collection keys: straight to the store (what visiting `VAR:key` would find).
        if let Some(k) = key {
            let store = match var {
                Var::Tx => Some(&data.tx),
                Var::Ip => Some(&data.persistent[0]),
                Var::Global => Some(&data.persistent[1]),
                Var::Session => Some(&data.persistent[2]),
                Var::User => Some(&data.persistent[3]),
                Var::Resource => Some(&data.persistent[4]),
                Var::Env => Some(&data.env),
                _ => None,
            };
            if let Some(s) = store {
                if let Some(v) = s.get(k) {
                    out.extend_from_slice(v);
                }
                return;
            }
        }
        // What the last match left (most logdata): read where visiting finds it,
        // without building a target.
        match var {
            Var::MatchedVar => return out.extend_from_slice(&data.matched.last.1),
            Var::MatchedVarName => return out.extend_from_slice(&data.matched.last.0),
            _ => {}
        }
        if var == Var::Duration {
            let elapsed = self.start.elapsed().as_micros() as u64;
            out.extend_from_slice(elapsed.to_string().as_bytes());
            return;
        }
        let target = Target {
            var,
            selector: key.map_or(Selector::All, |k| Selector::Key(k.to_vec())),
            count: false,
            exclusions: Vec::new(),
            slot: None,
            selected_slots: None,
        };
        let mut done = false;
        visit_each(data, &target, &mut |_, _, v, _| {
            if !done {
                out.extend_from_slice(v);
                done = true;
            }
        });
    }
}

/// [`Transaction::eval_values`]'s visitor: what a link tests each value with, a type of its
/// own so that [`Visitor::value`] is inlined into the walk over a target's values (as a
/// closure it was called per value, and its many captured references loaded each time).
struct LinkValues<'a> {
    /// The current target's exclusions.
    exclusions: &'a [Selector],
    cache: &'a mut TransformCache,
    scans: &'a ValueScans,
    test: ValueTest<'a>,
}

/// What a link tests every value with, computed once per link. Behind one reference: the
/// walk over a collection's pairs loaded (and spilled) each of these fields on entry when
/// they were the visitor's own, used or not.
struct LinkTest<'a> {
    rs: &'a RuleSet,
    link: &'a Rule,
    idx: usize,
    use_prefilter: bool,
    op: &'a dyn Operator,
    op_fails: bool,
    chain: Option<ChainId>,
    /// The chain the phase scanned this link's values through.
    scan_chain: Option<ChainId>,
    /// (word, mask) of the link's group member bit, when the phase scans rule values out.
    member_bit: Option<(usize, u64)>,
}

/// The operator's side of [`LinkValues`], apart so that it can be borrowed while a cached
/// value is.
struct ValueTest<'a> {
    at: &'a LinkTest<'a>,
    hits: &'a mut LinkHits,
    #[cfg(test)]
    operator_runs: &'a mut usize,
}

impl ValueTest<'_> {
    /// Whether value `v` (of `var`, named `key`) matches, recording it if so.
    #[inline(always)]
    fn check(&mut self, var: Var, key: &[u8], v: &[u8]) -> bool {
        // Rules outside the groups ask their own automaton.
        let at = self.at;
        if at.use_prefilter && !at.rs.prefilter.may_match(at.idx, v) {
            return false;
        }
        #[cfg(test)]
        {
            *self.operator_runs += 1;
        }
        let LinkHits {
            hits,
            bytes,
            groups,
            caps,
            whole,
        } = &mut *self.hits;
        let matched = !at.op_fails && (*whole || at.op.matches(v, caps));
        if matched == at.link.negated {
            return false;
        }
        let keep = |bytes: &mut Vec<u8>, b: &[u8]| {
            bytes.extend_from_slice(b);
            bytes.len() - b.len()..bytes.len()
        };
        let key = keep(bytes, key);
        let value = keep(bytes, v);
        let first = groups.len();
        if *whole {
            groups.push(value.clone());
        }
        for g in caps.groups() {
            groups.push(keep(bytes, g));
        }
        caps.clear();
        hits.push(Hit {
            var,
            key,
            value,
            groups: first..groups.len(),
        });
        true
    }
}

impl LinkValues<'_> {
    /// Whether the phase scan of a value (cache row `row` through the chain the groups
    /// scanned, `scanned`) shows the member's operator cannot match it. A group member has
    /// no automaton of its own (asking one again after the phase scan cost more than it
    /// saved): a value no group of the phase scanned goes to the operator.
    #[inline(always)]
    fn ruled_out(&self, row: u32, scanned: Val) -> bool {
        let Some((word, mask)) = self.test.at.member_bit else {
            return false;
        };
        self.scans
            .scanned(row, scanned)
            .is_some_and(|off| self.scans.bits[off + word] & mask == 0)
    }

    /// Row `row`'s value through the chain the phase scanned instead of `c`.
    #[inline(always)]
    fn scanned_value(&mut self, row: u32, raw: &[u8], c: Option<ChainId>) -> Val {
        let rs = self.test.at.rs;
        match rs.prefilter.scanned_chain(c) {
            Some(s) => self.cache.in_row(&rs.chains, row, raw, s),
            None => Val::Raw,
        }
    }
}

impl Visitor for LinkValues<'_> {
    #[inline(always)]
    fn value(&mut self, var: Var, key: &[u8], raw: &[u8], slot: Option<u32>) {
        if self.exclusions.iter().any(|s| s.selects(key)) {
            return;
        }
        let at = self.test.at;
        let (chains, link) = (&at.rs.chains, at.link);
        if link.multi_match {
            // The operator runs on the raw value and after each transformation that
            // changed it (an unchanged value cannot give a different answer), and each form
            // that matches is a match of its own, as ModSecurity counts them.
            let Some(slot) = slot else {
                let test = &mut self.test;
                self.cache
                    .each_changed(chains, raw, &link.chain_ids, &mut |v| {
                        test.check(var, key, v);
                    });
                return;
            };
            let row = self.cache.row(slot);
            if !self.ruled_out(row, Val::Raw) {
                self.test.check(var, key, raw);
            }
            let mut prev = Val::Raw;
            for &c in &link.chain_ids {
                let v = self.cache.in_row(chains, row, raw, c);
                if v != prev {
                    let out = at.member_bit.is_some() && {
                        let scanned = self.scanned_value(row, raw, Some(c));
                        self.ruled_out(row, scanned)
                    };
                    if !out {
                        self.test.check(var, key, self.cache.bytes(v, raw));
                    }
                }
                prev = v;
            }
            return;
        }
        let Some(slot) = slot else {
            let v = self.cache.get(chains, None, raw, at.chain);
            self.test.check(var, key, v);
            return;
        };
        let row = self.cache.row(slot);
        let scanned = if at.member_bit.is_some() {
            let scanned = self.scanned_value(row, raw, at.chain);
            if self.ruled_out(row, scanned) {
                return;
            }
            Some(scanned)
        } else {
            None
        };
        let v = match (at.chain, scanned) {
            (_, Some(v)) if at.scan_chain == at.chain => v,
            (Some(c), _) => self.cache.in_row(chains, row, raw, c),
            (None, _) => Val::Raw,
        };
        self.test.check(var, key, self.cache.bytes(v, raw));
    }
}

/// Lists the values of target `t` (slot and cache row) into `target_values` on its first
/// group of the phase; the other groups read the list instead of visiting it again. A
/// target with values that have no slot (bodies) is not listed (`len` `u32::MAX`).
/// Inlined, as the two helpers below: asked on every group target pass, most of the time
/// to find the work done, which a call would cost more than (8 k instructions per benign
/// CRS transaction).
#[inline(always)]
fn list_target(
    data: &Data,
    targets: &[Target],
    t: usize,
    cache: &mut TransformCache,
    target_values: &mut Vec<(u32, u32)>,
    ts: &mut TargetState,
    gen: u32,
) {
    if ts.gen == gen {
        return;
    }
    // Indexed only here: a bounds check before the test above would run on every pass.
    let target = &targets[t];
    let start = target_values.len();
    let mut listed = true;
    visit_each(data, target, &mut |_, _, _, slot| match slot {
        Some(s) => target_values.push((s, cache.row(s))),
        None => listed = false,
    });
    let (start, len) = if listed {
        (start as u32, (target_values.len() - start) as u32)
    } else {
        (0, u32::MAX)
    };
    *ts = TargetState {
        gen,
        start,
        len,
        ..TargetState::default()
    };
}

/// Tests `transforms` on each value of a listed target at once, those not tested yet.
#[inline(always)]
fn test_target(
    data: &Data,
    cache: &mut TransformCache,
    target_values: &[(u32, u32)],
    ts: &mut TargetState,
    transforms: u64,
) {
    if ts.tested & transforms == transforms {
        return;
    }
    for &(slot, row) in &target_values[ts.start as usize..][..ts.len as usize] {
        ts.changing |= cache.changed_by(row, || slot_value(data, slot), transforms);
    }
    ts.tested |= transforms;
}

/// Where in `target_raw_bits` the OR of the scans of a listed target's raw values is (`w`
/// words), made on first use in the phase.
#[inline(always)]
fn target_raw(
    data: &Data,
    scan: &PhaseScan,
    w: usize,
    scans: &mut ValueScans,
    target_values: &[(u32, u32)],
    target_raw_bits: &mut Vec<u64>,
    ts: &mut TargetState,
) -> usize {
    if ts.raw_bits == 0 {
        let at = target_raw_bits.len();
        target_raw_bits.extend(std::iter::repeat_n(0, w));
        for &(slot, row) in &target_values[ts.start as usize..][..ts.len as usize] {
            let scanned = match scans.scanned(row, Val::Raw) {
                Some(at) => at,
                None => scans.offset(scan, w, row, Val::Raw, slot_value(data, slot)),
            };
            or_into(
                &mut target_raw_bits[at..at + w],
                &scans.bits[scanned..scanned + w],
            );
        }
        ts.raw_bits = at as u32 + 1;
    }
    ts.raw_bits as usize - 1
}

/// Where in `target_raw_bits` the OR of the raw scans of every target of `set` (all listed)
/// is: the one target's own where only one has values.
#[allow(clippy::too_many_arguments)]
fn set_raw_bits(
    data: &Data,
    pf: &crate::prefilter::Prefilter,
    set: u32,
    scan: &PhaseScan,
    scans: &mut ValueScans,
    targets: &mut [TargetState],
    target_values: &[(u32, u32)],
    target_raw_bits: &mut Vec<u64>,
) -> usize {
    let w = pf.words;
    let mut raw = RawOr::default();
    for st in pf.set_targets(set) {
        let ts = &mut targets[usize::from(st.target_id)];
        if ts.len == 0 {
            continue;
        }
        let from = target_raw(data, scan, w, scans, target_values, target_raw_bits, ts);
        raw.fold(from, w, target_raw_bits);
    }
    raw.finish(w, target_raw_bits)
}

/// The OR of a set's targets' raw ORs (`w` words each in `target_raw_bits`), folded in
/// target after target: the first target with values, then the OR of all of them once a
/// second has some.
#[derive(Default)]
struct RawOr {
    only: Option<usize>,
    or: Option<usize>,
}

impl RawOr {
    /// Folds in the target's raw OR at `from`.
    #[inline(always)]
    fn fold(&mut self, from: usize, w: usize, target_raw_bits: &mut Vec<u64>) {
        match (self.only, self.or) {
            (None, _) => self.only = Some(from),
            (Some(first), None) => {
                let at = target_raw_bits.len();
                target_raw_bits.extend_from_within(first..first + w);
                let (earlier, bits) = target_raw_bits.split_at_mut(at);
                or_into(bits, &earlier[from..from + w]);
                self.or = Some(at);
            }
            (_, Some(at)) => {
                // A target's own OR, made after the set's when it is the target's first.
                let (bits, scanned) = if from < at {
                    let (earlier, later) = target_raw_bits.split_at_mut(at);
                    (&mut later[..w], &earlier[from..from + w])
                } else {
                    let (earlier, later) = target_raw_bits.split_at_mut(from);
                    (&mut earlier[at..at + w], &later[..w])
                };
                or_into(bits, scanned);
            }
        }
    }

    /// Where the OR is.
    fn finish(self, w: usize, target_raw_bits: &mut Vec<u64>) -> usize {
        match self.or.or(self.only) {
            Some(at) => at,
            // No values: no bits.
            None => {
                let at = target_raw_bits.len();
                target_raw_bits.extend(std::iter::repeat_n(0, w));
                at
            }
        }
    }
}

/// `bits |= scanned`, word by word. Most groups' members fit in one word: that case without
/// a loop. Longer ones four words at a time (a phase's width in CRS): the loop the compiler
/// vectorized word by word paid its set-up and remainder checks on every call.
#[inline]
fn or_into(bits: &mut [u64], scanned: &[u64]) {
    if let ([b], [s]) = (&mut *bits, scanned) {
        *b |= s;
        return;
    }
    let n = bits.len().min(scanned.len());
    let mut bits = bits[..n].chunks_exact_mut(4);
    let mut scanned = scanned[..n].chunks_exact(4);
    for (b, s) in (&mut bits).zip(&mut scanned) {
        for (b, s) in b.iter_mut().zip(s) {
            *b |= s;
        }
    }
    let rest = bits.into_remainder().iter_mut();
    for (b, s) in rest.zip(scanned.remainder()) {
        *b |= s;
    }
}

/// Whether a match of `rule` is logged: what an audit record and an event hold.
fn logs(rule: &Rule) -> bool {
    rule.log && rule.id != 0
}

/// `bytes` as text with invalid UTF-8 replaced, as `String::from_utf8_lossy` gives it:
/// checking the (nearly always valid) text first is several times faster.
pub fn lossy_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// What a TX-key link reads: the key's value, or for `&TX:key` whether it is set.
fn tx_key_value(tx: &Store, slot: u32, count: bool) -> Option<&[u8]> {
    let found = tx.get_slot(slot);
    if !count {
        return found;
    }
    Some(if found.is_some() { b"1" } else { b"0" })
}

/// Write `VAR:key` (or `VAR` for scalars) into `out`, as MATCHED_VAR_NAME shows it.
/// Append what macro `m` expands to where its variables are the capture groups of one
/// value (ranges of `bytes`), lower-cased (`lower`) as a `setvar` name's are where they
/// may hold upper case: for an
/// [`ExecPlan::CaptureSetVar`] `setvar`, which refers to no other variable and to no more
/// groups than the value has.
fn expand_captured(
    m: &Macro,
    groups: &[std::ops::Range<usize>],
    bytes: &[u8],
    out: &mut Vec<u8>,
    lower: bool,
) {
    for p in &m.parts {
        match (p, p.capture_group()) {
            (Part::Lit(l), _) => out.extend_from_slice(l),
            (_, Some(g)) => {
                let at = out.len();
                out.extend_from_slice(&bytes[groups[g].clone()]);
                if lower {
                    out[at..].make_ascii_lowercase();
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn write_var_name(out: &mut Vec<u8>, var: Var, key: &[u8]) {
    out.clear();
    out.extend_from_slice(var.name().as_bytes());
    if !key.is_empty() {
        out.push(b':');
        out.extend_from_slice(key);
    }
}

/// Cache slot for value `i` of `var`: only request/response data that never changes once
/// set is cached.
fn slot(var: Var, i: usize) -> Option<u32> {
    Some(((var as u32) << 24) | (i as u32 & 0xff_ffff))
}

/// The one value of a request-line variable (`REQUEST_URI` and the like, each in a cache
/// slot of its own, `slot(var, 0)`); `None` for any other variable.
#[inline]
fn request_line_value(r: &Request, var: Var) -> Option<&[u8]> {
    Some(match var {
        Var::RequestUri => &r.uri,
        Var::RequestUriRaw => &r.uri_raw,
        Var::RequestFilename => &r.filename,
        Var::RequestBasename => &r.basename,
        Var::RequestLine => &r.line,
        Var::RequestMethod => &r.method,
        Var::RequestProtocol => &r.protocol,
        Var::QueryString => &r.query,
        _ => return None,
    })
}

/// The value in cache slot `slot`, as [`visit`] passes it (the inverse of [`slot`]).
fn slot_value(d: &Data, slot: u32) -> &[u8] {
    fn pair(ps: &[Pair], i: usize, names: bool) -> &[u8] {
        ps.get(i).map_or(b"", |(k, v)| if names { k } else { v })
    }
    let i = (slot & 0xff_ffff) as usize;
    let (r, resp) = (&d.req, &d.resp);
    match VARS[(slot >> 24) as usize].1 {
        Var::ArgsGet => pair(&r.args_get, i, false),
        Var::ArgsPost => pair(&r.args_post, i, false),
        Var::ArgsGetNames => pair(&r.args_get, i, true),
        Var::ArgsPostNames => pair(&r.args_post, i, true),
        Var::RequestHeaders => pair(&r.headers, i, false),
        Var::RequestHeadersNames => pair(&r.headers, i, true),
        Var::RequestCookies => pair(&r.cookies, i, false),
        Var::RequestCookiesNames => pair(&r.cookies, i, true),
        Var::MultipartPartHeaders => pair(&r.part_headers, i, false),
        Var::ResponseHeaders => pair(&resp.headers, i, false),
        Var::ResponseHeadersNames => pair(&resp.headers, i, true),
        Var::Files => r.files.get(i).map_or(b"", |f| &f.filename),
        Var::FilesNames => r.files.get(i).map_or(b"", |f| &f.field),
        Var::FilesTmpContent => r.files.get(i).map_or(b"", |f| &f.content),
        Var::Xml if i == 0 => &r.xml_texts,
        Var::Xml => r.xml_attrs.get(i - 1).map_or(b"", Vec::as_slice),
        var => request_line_value(r, var).unwrap_or(b""),
    }
}

/// What visiting calls for each value: generic, so that each caller's closure is inlined
/// into the walk over the values instead of being called through a pointer per value.
trait Visitor {
    fn value(&mut self, var: Var, key: &[u8], raw: &[u8], slot: Option<u32>);

    /// [`Visitor::value`] out of line, for every variable but the collections of pairs: a
    /// visitor inlined into each of them would grow the walk without speeding it.
    #[inline(never)]
    fn value_cold(&mut self, var: Var, key: &[u8], raw: &[u8], slot: Option<u32>) {
        self.value(var, key, raw, slot)
    }
}

impl<F: FnMut(Var, &[u8], &[u8], Option<u32>)> Visitor for F {
    #[inline(always)]
    fn value(&mut self, var: Var, key: &[u8], raw: &[u8], slot: Option<u32>) {
        self(var, key, raw, slot)
    }
}

/// [`Transaction::group_bits_by_target`] for a target whose values have no slot (bodies):
/// each visited value through each chain; out of line, as the common paths do not need it.
/// None of the values has a slot: a group's targets are phase-stable variables
/// (`prefilter::phase_stable`), whose values either all have one or, the bodies', none
/// (`group_targets_have_slots_for_all_values_or_none`), and a target with a slotted value is
/// listed instead. (A slotted value would still be scanned right here, only uncached.)
#[cold]
#[inline(never)]
fn bits_by_visiting(
    data: &Data,
    rs: &RuleSet,
    scan: &PhaseScan,
    gt: &crate::prefilter::GroupTarget,
    cache: &mut TransformCache,
    (unslotted_scan, words): (&mut Vec<u64>, std::ops::Range<usize>),
    bits: &mut [u64],
) {
    let pf = &rs.prefilter;
    let w = pf.words;
    let t = usize::from(gt.target_id);
    visit_each(data, &pf.targets[t], &mut |_, _, raw, _| {
        for &GroupChain { chain, min, .. } in pf.chains_of(gt) {
            if raw.len() < usize::from(min) {
                continue;
            }
            unslotted_scan.clear();
            unslotted_scan.resize(w, 0);
            scan.scan(cache.get(&rs.chains, None, raw, chain), unslotted_scan);
            or_into(bits, &unslotted_scan[words.clone()]);
        }
    });
}

/// [`visit`] with a closure (which the bound gives its signature).
fn visit_each(d: &Data, t: &Target, f: &mut impl FnMut(Var, &[u8], &[u8], Option<u32>)) {
    visit(d, t, f)
}

/// Call `f(var, key, value, cache slot)` for every value `t` selects (or once with the
/// count for `&` targets).
fn visit(d: &Data, t: &Target, f: &mut impl Visitor) {
    if t.count {
        let mut n = 0i64;
        values(d, t, &mut |_: Var, _: &[u8], _: &[u8], _: Option<u32>| {
            n += 1
        });
        f.value_cold(t.var, b"", format_i64(n, &mut [0; 20]), None);
        return;
    }
    values(d, t, f)
}

/// [`visit`] for the values themselves (`t.count` ignored): the collections of pairs here,
/// the other variables in [`other_values`]. Apart, the walks' dispatch saves fewer registers
/// and has a smaller stack frame, paid on every visit.
fn values<F: Visitor>(d: &Data, t: &Target, f: &mut F) {
    let sel = &t.selector;
    // Most targets take the whole collection: no key test per member.
    let every = matches!(sel, Selector::All);
    let walk = |var: Var, slot_var: Var, ps: &[Pair], names: bool, base: usize, f: &mut F| {
        for (i, (k, v)) in ps.iter().enumerate() {
            if every || sel.selects(k) {
                // One call site: a visitor inlined here is inlined once.
                f.value(var, k, if names { k } else { v }, slot(slot_var, base + i));
            }
        }
    };
    // An empty collection (no cookies, no body arguments: most of a GET's) is told apart
    // where it is walked from, without a call to the walk.
    let pairs = |var: Var, slot_var: Var, ps: &[Pair], names: bool, base: usize, f: &mut F| {
        if !ps.is_empty() {
            walk(var, slot_var, ps, names, base, f)
        }
    };
    let r = &d.req;
    match t.var {
        Var::Args => {
            pairs(Var::Args, Var::ArgsGet, &r.args_get, false, 0, f);
            pairs(Var::Args, Var::ArgsPost, &r.args_post, false, 0, f);
        }
        Var::ArgsGet => pairs(Var::ArgsGet, Var::ArgsGet, &r.args_get, false, 0, f),
        Var::ArgsPost => pairs(Var::ArgsPost, Var::ArgsPost, &r.args_post, false, 0, f),
        Var::ArgsNames => {
            pairs(Var::ArgsNames, Var::ArgsGetNames, &r.args_get, true, 0, f);
            pairs(Var::ArgsNames, Var::ArgsPostNames, &r.args_post, true, 0, f);
        }
        Var::ArgsGetNames => pairs(
            Var::ArgsGetNames,
            Var::ArgsGetNames,
            &r.args_get,
            true,
            0,
            f,
        ),
        Var::ArgsPostNames => pairs(
            Var::ArgsPostNames,
            Var::ArgsPostNames,
            &r.args_post,
            true,
            0,
            f,
        ),
        Var::RequestHeaders => pairs(
            Var::RequestHeaders,
            Var::RequestHeaders,
            &r.headers,
            false,
            0,
            f,
        ),
        Var::RequestHeadersNames => pairs(
            Var::RequestHeadersNames,
            Var::RequestHeadersNames,
            &r.headers,
            true,
            0,
            f,
        ),
        Var::RequestCookies => pairs(
            Var::RequestCookies,
            Var::RequestCookies,
            &r.cookies,
            false,
            0,
            f,
        ),
        Var::RequestCookiesNames => pairs(
            Var::RequestCookiesNames,
            Var::RequestCookiesNames,
            &r.cookies,
            true,
            0,
            f,
        ),
        Var::MultipartPartHeaders => pairs(
            Var::MultipartPartHeaders,
            Var::MultipartPartHeaders,
            &r.part_headers,
            false,
            0,
            f,
        ),
        Var::ResponseHeaders => pairs(
            Var::ResponseHeaders,
            Var::ResponseHeaders,
            &d.resp.headers,
            false,
            0,
            f,
        ),
        Var::ResponseHeadersNames => pairs(
            Var::ResponseHeadersNames,
            Var::ResponseHeadersNames,
            &d.resp.headers,
            true,
            0,
            f,
        ),
        // The request line's parts, read from their cache slots. Out of line like the
        // other single values: a visitor inlined only into the walk over pairs keeps the
        // walk small (fewer instruction-cache misses, and fewer instructions measured).
        Var::RequestUri
        | Var::RequestUriRaw
        | Var::RequestFilename
        | Var::RequestBasename
        | Var::RequestLine
        | Var::RequestMethod
        | Var::RequestProtocol
        | Var::QueryString => f.value_cold(
            t.var,
            b"",
            request_line_value(r, t.var).unwrap_or_default(),
            slot(t.var, 0),
        ),
        // As in ModSecurity, a body the XML or multipart processor parsed is not also
        // exposed raw (unless `ctl:forceRequestBodyVariable=On`).
        Var::RequestBody if r.body_hidden => {}
        Var::RequestBody => f.value_cold(t.var, b"", &r.body, None),
        // No XML body, no files (most requests, whose links still name XML:/* and FILES):
        // nothing to select, told without the call.
        Var::Xml if r.xml_attrs.is_empty() && r.xml_texts.is_empty() => {}
        Var::Files
        | Var::FilesNames
        | Var::FilesSizes
        | Var::FilesTmpNames
        | Var::FilesTmpContent
            if r.files.is_empty() => {}
        _ => other_values(d, t, f),
    }
}

/// [`values`] for the variables other than the collections of pairs.
#[inline(never)]
fn other_values<F: Visitor>(d: &Data, t: &Target, f: &mut F) {
    let sel = &t.selector;
    let r = &d.req;
    // Values computed for the visit, which have no cache slot.
    let scalar = |f: &mut F, v: &[u8]| f.value_cold(t.var, b"", v, None);
    // Counts and lengths, written in decimal without allocating.
    let number = |f: &mut F, n: u64| {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        f.value_cold(t.var, b"", crate::store::format_i64(n, &mut [0; 20]), None)
    };
    match t.var {
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
        | Var::MultipartPartHeaders
        | Var::ResponseHeaders
        | Var::ResponseHeadersNames
        | Var::RequestUri
        | Var::RequestUriRaw
        | Var::RequestFilename
        | Var::RequestBasename
        | Var::RequestLine
        | Var::RequestMethod
        | Var::RequestProtocol
        | Var::QueryString
        | Var::RequestBody => {
            // Reached only if `values` stopped routing one of these: it would yield no
            // values, silently, in a release build.
            debug_assert!(false, "{:?} is walked by `values`", t.var);
        }
        Var::ArgsCombinedSize => {
            let n: usize = r
                .args_get
                .iter()
                .chain(&r.args_post)
                .map(|(k, v)| k.len() + v.len())
                .sum();
            number(f, n as u64)
        }
        Var::RequestBodyLength => number(f, r.body.len() as u64),
        Var::FullRequestLength => number(
            f,
            (r.line.len()
                + r.body.len()
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()) as u64,
        ),
        Var::FullRequest => {
            let mut full = r.line.clone();
            for (k, v) in &r.headers {
                full.extend_from_slice(b"\r\n");
                full.extend_from_slice(k);
                full.extend_from_slice(b": ");
                full.extend_from_slice(v);
            }
            full.extend_from_slice(b"\r\n\r\n");
            full.extend_from_slice(&r.body);
            scalar(f, &full)
        }
        Var::Files
        | Var::FilesNames
        | Var::FilesSizes
        | Var::FilesTmpNames
        | Var::FilesTmpContent => {
            for (i, file) in r.files.iter().enumerate() {
                if !sel.selects(&file.field) {
                    continue;
                }
                let size;
                let v: &[u8] = match t.var {
                    Var::Files => &file.filename,
                    Var::FilesNames => &file.field,
                    Var::FilesSizes => {
                        size = file.content.len().to_string();
                        size.as_bytes()
                    }
                    Var::FilesTmpContent => &file.content,
                    _ => b"",
                };
                f.value_cold(
                    t.var,
                    &file.field,
                    v,
                    if t.var == Var::FilesSizes {
                        None
                    } else {
                        slot(t.var, i)
                    },
                );
            }
        }
        Var::FilesCombinedSize => number(
            f,
            r.files.iter().map(|x| x.content.len()).sum::<usize>() as u64,
        ),
        Var::MultipartFilename => {
            if let Some(x) = r.files.last() {
                scalar(f, &x.filename)
            }
        }
        Var::MultipartName => {
            if let Some(x) = r.files.last() {
                scalar(f, &x.field)
            }
        }
        Var::MultipartStrictError => scalar(
            f,
            flag(r.mp_flags.any() || (r.mp_seen && r.reqbody_error.is_some())),
        ),
        Var::MultipartUnmatchedBoundary => scalar(f, flag(r.mp_flags.unmatched_boundary)),
        Var::MultipartBoundaryQuoted => scalar(f, flag(r.mp_flags.boundary_quoted)),
        Var::MultipartBoundaryWhitespace => scalar(f, flag(r.mp_flags.boundary_whitespace)),
        Var::MultipartDataBefore => scalar(f, flag(r.mp_flags.data_before)),
        Var::MultipartDataAfter => scalar(f, flag(r.mp_flags.data_after)),
        Var::MultipartHeaderFolding => scalar(f, flag(r.mp_flags.header_folding)),
        Var::MultipartLfLine => scalar(f, flag(r.mp_flags.lf_line)),
        Var::MultipartCrlfLfLines => scalar(f, flag(r.mp_flags.lf_line && r.mp_flags.crlf_line)),
        Var::MultipartMissingSemicolon => scalar(f, flag(r.mp_flags.missing_semicolon)),
        Var::MultipartInvalidQuoting => scalar(f, flag(r.mp_flags.invalid_quoting)),
        Var::MultipartInvalidPart => scalar(f, flag(r.mp_flags.invalid_part)),
        Var::MultipartInvalidHeaderFolding => scalar(f, flag(r.mp_flags.invalid_header_folding)),
        Var::MultipartFileLimitExceeded => scalar(f, flag(r.mp_flags.file_limit_exceeded)),
        Var::ReqbodyError => scalar(f, flag(r.reqbody_error.is_some())),
        Var::ReqbodyProcessorError => scalar(f, flag(r.reqbody_error.is_some())),
        Var::ReqbodyErrorMsg => scalar(f, r.reqbody_error.as_deref().unwrap_or("").as_bytes()),
        Var::ReqbodyProcessor => {
            if let Some(p) = &r.processor {
                scalar(f, p.as_bytes())
            }
        }
        Var::InboundDataError => scalar(f, flag(r.body_truncated)),
        Var::OutboundDataError => scalar(f, flag(d.resp.body_truncated)),
        Var::UrlencodedError => scalar(f, flag(r.urlencoded_error)),
        Var::Xml => match &t.selector {
            Selector::XPath(p) if p.contains('@') => {
                for (i, a) in r.xml_attrs.iter().enumerate() {
                    f.value_cold(Var::Xml, p.as_bytes(), a, slot(Var::Xml, i + 1));
                }
            }
            Selector::XPath(p) if !r.xml_texts.is_empty() => {
                f.value_cold(Var::Xml, p.as_bytes(), &r.xml_texts, slot(Var::Xml, 0))
            }
            _ => {}
        },
        Var::ResponseBody => scalar(f, &d.resp.body),
        Var::ResponseStatus => number(f, u64::from(d.resp.status)),
        Var::ResponseProtocol => scalar(f, &d.resp.protocol),
        Var::ResponseContentType => {
            if let Some(v) = header(&d.resp.headers, b"content-type") {
                scalar(f, v)
            }
        }
        Var::ResponseContentLength => {
            if let Some(v) = header(&d.resp.headers, b"content-length") {
                scalar(f, v)
            }
        }
        Var::StatusLine => scalar(
            f,
            format!(
                "{} {}",
                String::from_utf8_lossy(&d.resp.protocol),
                d.resp.status
            )
            .as_bytes(),
        ),
        Var::Tx => store(&d.tx, t, f),
        Var::Ip => store(&d.persistent[0], t, f),
        Var::Global => store(&d.persistent[1], t, f),
        Var::Session => store(&d.persistent[2], t, f),
        Var::User => store(&d.persistent[3], t, f),
        Var::Resource => store(&d.persistent[4], t, f),
        Var::Env => store(&d.env, t, f),
        Var::Geo | Var::Rule | Var::WebserverErrorLog | Var::RemoteUser | Var::AuthType => {}
        Var::RemoteAddr => scalar(f, d.input.remote_addr.as_bytes()),
        Var::RemoteHost => scalar(f, d.input.remote_addr.as_bytes()),
        Var::RemotePort => number(f, u64::from(d.input.remote_port)),
        Var::ServerAddr => scalar(f, d.input.server_addr.as_bytes()),
        Var::ServerName => scalar(f, d.input.server_name.as_bytes()),
        Var::ServerPort => number(f, u64::from(d.input.server_port)),
        Var::UniqueId => scalar(f, d.input.unique_id.as_bytes()),
        Var::MatchedVar => scalar(f, &d.matched.last.1),
        Var::MatchedVarName => scalar(f, &d.matched.last.0),
        Var::MatchedVars | Var::MatchedVarsNames => {
            for (n, v) in d.matched.list() {
                let key = n.splitn(2, |&c| c == b':').nth(1).unwrap_or(b"");
                if sel.selects(key) || sel.selects(n) {
                    f.value_cold(
                        t.var,
                        n,
                        if t.var == Var::MatchedVars { v } else { n },
                        None,
                    );
                }
            }
        }
        Var::HighestSeverity => number(f, d.highest_severity.map_or(255, u64::from)),
        Var::Duration => {}
        Var::Time
        | Var::TimeDay
        | Var::TimeEpoch
        | Var::TimeHour
        | Var::TimeMin
        | Var::TimeMon
        | Var::TimeSec
        | Var::TimeWday
        | Var::TimeYear => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let v = match t.var {
                Var::TimeEpoch => secs,
                Var::TimeSec => secs % 60,
                Var::TimeMin => secs / 60 % 60,
                Var::TimeHour => secs / 3600 % 24,
                Var::TimeWday => (secs / 86400 + 4) % 7,
                _ => secs,
            };
            number(f, v)
        }
    }
}

fn store(s: &Store, t: &Target, f: &mut impl Visitor) {
    match &t.selector {
        Selector::Key(k) => {
            let v = match t.slot {
                Some(slot) => s.get_slot(slot),
                None => s.get(k),
            };
            if let Some(v) = v {
                f.value_cold(t.var, k, v, None);
            }
        }
        sel => match &t.selected_slots {
            Some(slots) => s.each_of(slots, &|k| sel.selects(k), &mut |k, v| {
                f.value_cold(t.var, k, v, None)
            }),
            None => s.each(&|k| sel.selects(k), &mut |k, v| {
                f.value_cold(t.var, k, v, None)
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variables::parse_targets;

    /// Phase 1 of a GET with four arguments (an escaped escape, upper case, a space, an
    /// escaped letter), which no rule may block.
    fn four_args(rs: &Arc<RuleSet>) -> Transaction {
        let mut tx = rs.transaction(TxInput::default());
        tx.set_request_line(
            b"GET",
            b"/?a=ATT%2541CK&b=HELLO&c=Quiet%20One&d=%41ttack",
            b"HTTP/1.1",
        );
        assert!(tx.process_request_headers().is_none());
        tx
    }

    /// Phase 1 of `GET /?{query}`, which no rule may block, and what its rules wrote to
    /// `tx.hit`.
    fn phase1_hit(rs: &Arc<RuleSet>, query: &str) -> (Transaction, Option<String>) {
        let mut tx = rs.transaction(TxInput::default());
        tx.set_request_line(b"GET", format!("/?{query}").as_bytes(), b"HTTP/1.1");
        assert!(tx.process_request_headers().is_none());
        let hit = tx
            .tx_var("hit")
            .map(|v| String::from_utf8_lossy(v).into_owned());
        (tx, hit)
    }

    /// A target's exclusions apply to its own values only, whichever target of the link
    /// comes first (the link's targets share one visiting closure).
    #[test]
    fn exclusions_apply_to_their_own_target() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS|!ARGS:b|REQUEST_HEADERS \"@streq attack\" \"id:1,phase:1,pass,\
                   setvar:'tx.hit=%{MATCHED_VAR_NAME}'\"\n",
                "t",
            )
            .unwrap(),
        );
        for (query, header, hit) in [
            ("a=attack", "x", Some("ARGS:a")),
            ("b=attack", "x", None),
            ("b=attack", "b", Some("REQUEST_HEADERS:b")),
        ] {
            let mut tx = rs.transaction(TxInput::default());
            tx.set_request_line(b"GET", format!("/?{query}").as_bytes(), b"HTTP/1.1");
            // Only a header named `b` holds the word.
            let value: &[u8] = if header == "b" { b"attack" } else { b"calm" };
            tx.add_request_header(header.as_bytes(), value);
            assert!(tx.process_request_headers().is_none());
            let got = tx
                .tx_var("hit")
                .map(|v| String::from_utf8_lossy(v).into_owned());
            assert_eq!(got.as_deref(), hit, "{query}, header {header}");
        }
    }

    /// A rule whose chain only deletes whitespace and lower-cases, with a literal operator,
    /// runs its operator only when a value holds the literal with whitespace and case
    /// ignored; it matches as before.
    #[test]
    fn raw_screen_spares_the_transformations() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@contains <title>shell</title>\" \"id:1,phase:1,pass,\
                   t:none,t:removeWhitespace,t:lowercase,setvar:'tx.hit=%{MATCHED_VAR}'\"\n",
                "t",
            )
            .unwrap(),
        );
        assert!(rs.prefilter.raw_screen(0).is_some());
        for (query, hit) in [
            (
                "a=%3CTi%20tle%3ES%0AHELL%3C/title%3E",
                Some("<title>shell</title>"),
            ),
            ("a=%3Ctitle%3Eshel%3C/title%3E&b=title", None),
            ("a=calm&b=%3Ctitle%3E", None),
        ] {
            let (tx, got) = phase1_hit(&rs, query);
            assert_eq!(got.as_deref(), hit, "{query}");
            assert_eq!(tx.operator_runs, usize::from(hit.is_some()), "{query}");
        }
    }

    /// A value too short for a chain to make of it one with a literal of the group is
    /// neither transformed nor scanned through that chain; one just long enough matches.
    /// A chain that only deletes bytes of a value and folds its case (`cmdLine` here) is
    /// not computed for a value that cannot hold one of the group's literals that way.
    #[test]
    fn deleting_chains_skip_values_without_their_literals() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx \\.\\./\" \"id:1,phase:1,pass,t:none,t:cmdLine,\
                   multiMatch,setvar:'tx.hit=%{MATCHED_VAR_NAME}'\"\n",
                "t",
            )
            .unwrap(),
        );
        let pf = &rs.prefilter;
        let screens: Vec<_> = (pf.chains_of(&pf.group_targets[0]).iter())
            .map(|c| &c.screen)
            .collect();
        assert_eq!(screens.iter().filter(|s| s.is_some()).count(), 1);
        for (query, hit, computed) in [
            // Upper case and a comma: changed, and no `../` whatever is deleted.
            ("a=Hello,World", None, 0),
            // `.^./`: the caret goes.
            ("a=X.%5E./y", Some("ARGS:a"), 1),
            // A space between the dots stays, but the screen only knows it may go.
            ("a=A.%20./", None, 1),
            // Unchanged by `cmdLine`: its raw scan answers.
            ("a=../x", Some("ARGS:a"), 0),
        ] {
            let (tx, got) = phase1_hit(&rs, query);
            assert_eq!(got.as_deref(), hit, "{query}");
            assert_eq!(tx.scratch.cache.stored(), computed, "{query}");
        }
    }

    #[test]
    fn values_too_short_for_a_literal_skip_the_chain() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx eval\" \"id:1,phase:1,pass,t:none,t:base64Decode,\
                   multiMatch,setvar:'tx.hit=%{MATCHED_VAR_NAME}'\"\n",
                "t",
            )
            .unwrap(),
        );
        let pf = &rs.prefilter;
        assert_eq!(pf.groups[0].shortest, 4);
        // Raw, a value needs the literal's four bytes; base64 digits decode to three
        // quarters as many bytes.
        let mins: Vec<u16> = (pf.chains_of(&pf.group_targets[0]).iter())
            .map(|c| c.min)
            .collect();
        assert_eq!(mins, [4, 6]);
        for (query, hit, decoded) in [
            // "eval" in six digits.
            ("a=ZXZhbA", Some("ARGS:a"), 1),
            ("a=ZXZhbG", Some("ARGS:a"), 1),
            // Four digits make three bytes: not decoded (the rule does not run).
            ("a=ZXZh&b=ev", None, 0),
            // Six digits are decoded: "lave", whose bytes could make "eval" (the decoded
            // screen rules out "evad").
            ("a=bGF2ZQ&b=ZXZ", None, 1),
            ("a=ZXZhZH&b=ZXZ", None, 0),
        ] {
            let (tx, got) = phase1_hit(&rs, query);
            assert_eq!(got.as_deref(), hit, "{query}");
            assert_eq!(tx.scratch.cache.stored(), decoded, "{query}");
        }
    }

    /// A value whose base64 digits decode to bytes that cannot make a literal of the group
    /// is neither decoded nor scanned through the chains from the decoding on (nor through
    /// the earlier ones, where they leave it as it is); escapes in the decoded bytes, or a
    /// literal there, still reach the rule.
    #[test]
    fn decoded_chains_skip_values_without_their_literals() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx eval\" \"id:1,phase:1,pass,t:none,t:urlDecodeUni,\
                   t:base64Decode,t:urlDecodeUni,multiMatch,setvar:'tx.hit=%{MATCHED_VAR_NAME}'\"\n",
                "t",
            )
            .unwrap(),
        );
        let pf = &rs.prefilter;
        assert!(pf.decoded_screen_of(&pf.group_targets[0]).is_some());
        for (query, hit, computed) in [
            // Decodes to `q\xab^\x82\x8a\xf2`.
            ("a=category", None, 0),
            // URL-decoded first (the value is `cat%25gory`, decoded `cat%gory`), then
            // ruled out.
            ("a=cat%2525gory", None, 1),
            ("a=ZXZhbA", Some("ARGS:a"), 1),
            // `%65val`.
            ("a=JTY1dmFs", Some("ARGS:a"), 2),
            ("a=ZX%255AhbA", Some("ARGS:a"), 2),
        ] {
            let (tx, got) = phase1_hit(&rs, query);
            assert_eq!(got.as_deref(), hit, "{query}");
            assert_eq!(tx.scratch.cache.stored(), computed, "{query}");
        }
    }

    /// Members whose chain ends in `lowercase` (or has it followed only by case-blind
    /// steps) share the units of the chain without it, and their values are ruled out by
    /// the scan of that chain's value: the operator runs only on values that can match.
    #[test]
    fn lowercasing_members_share_units_and_their_scans() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx (?i)attack\" \"id:1,phase:1,pass,t:lowercase\"\n\
                 SecRule ARGS \"@rx (?i)probe\" \"id:2,phase:1,pass\"\n\
                 SecRule ARGS \"@rx (?i)attack\" \"id:3,phase:1,pass,t:urlDecodeUni,t:lowercase\"\n\
                 SecRule ARGS \"@rx (?i)attack\" \"id:4,phase:1,pass,t:lowercase,t:urlDecodeUni\"\n\
                 SecRule ARGS \"@rx (?i)probe\" \"id:5,phase:1,pass,t:urlDecodeUni\"\n\
                 SecRule ARGS \"@rx attack\" \"id:6,phase:1,pass,t:lowercase,t:jsDecode\"\n",
                "t",
            )
            .unwrap(),
        );
        // ARGS raw (1, 2), ARGS through urlDecodeUni (3, 4, 5), and jsDecode after
        // lowercase, which is not case-blind (6).
        let pf = &rs.prefilter;
        let units: std::collections::BTreeSet<_> = (pf.groups.iter())
            .flat_map(|g| pf.targets_of(g))
            .flat_map(|t| pf.chains_of(t).iter().map(|c| (t.target_id, c.chain)))
            .collect();
        assert_eq!(units.len(), 3);
        let tx = four_args(&rs);
        let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
        assert_eq!(ids, [1, 3, 4, 6]);
        // Rule 1 asks about `d` only (`a` keeps an escaped `A`), 3 and 4 about `a` and
        // `d`, 6 about `d` (`a`'s escape is not a JavaScript one); 2 and 5 never run.
        assert_eq!(tx.operator_runs, 6);

        // multiMatch: each changed value of the chain is ruled out by the scan of its
        // prefix's scan chain (the lower-cased `b` and `c` by their raw values).
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx (?i)attack\" \"id:7,phase:1,pass,multiMatch,\
                   t:urlDecodeUni,t:lowercase\"\n",
                "t",
            )
            .unwrap(),
        );
        let tx = four_args(&rs);
        assert_eq!(tx.matched_rules().len(), 1);
        // `a` decoded and lower-cased, `d` raw and lower-cased (each form that matches
        // counts); `b` and `c` never.
        assert_eq!(tx.operator_runs, 4);
    }

    /// Phases 1 and 2 share their automaton's scans. The values a body adds in phase 2 (a
    /// urlencoded body's; a JSON body's, which a phase-1 `ctl` asked for) are scanned; a
    /// transaction never reads the scans of the one before it on the same scratch; and every
    /// phase-2 member's candidate bit is what scanning each value afresh gives.
    #[test]
    fn phase_2_scans_the_values_the_body_adds() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\nSecRequestBodyAccess On\n\
                 SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/json\" \
                   \"id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
                 SecRule ARGS \"@rx (?i)probe\" \"id:2,phase:1,pass,log\"\n\
                 SecRule ARGS \"@rx (?i)attack\" \"id:3,phase:2,pass,log\"\n\
                 SecRule ARGS \"@rx (?i)probe\" \"id:4,phase:2,pass,log,t:urlDecodeUni\"\n\
                 SecRule ARGS_NAMES \"@rx (?i)evil\" \"id:5,phase:2,pass,log\"\n",
                "t",
            )
            .unwrap(),
        );
        let pf = &rs.prefilter;
        assert_eq!(pf.scan_id(1), pf.scan_id(2));
        let phase_2_members: Vec<(u32, u16)> = rs
            .rules
            .iter()
            .zip(&pf.member)
            .filter(|(r, _)| r.phase == 2)
            .filter_map(|(_, m)| *m)
            .collect();
        assert_eq!(phase_2_members.len(), 3);
        // Phase 2's candidates again: from the scans kept, or from scans made afresh.
        let candidates = |tx: &mut Transaction, afresh: bool| -> Vec<bool> {
            if afresh {
                tx.scratch.scans.clear();
                tx.scratch.scans.begin_phase(rs.prefilter.scan_id(2));
            }
            tx.scratch.gen += 1;
            phase_2_members
                .iter()
                .map(|&(g, m)| tx.member_may_match(&rs, g, m))
                .collect()
        };
        let run = |query: &str, content_type: &str, body: &str| -> Vec<u32> {
            let mut tx = rs.transaction(TxInput::default());
            tx.record_nolog_matches();
            let uri = format!("/p{query}");
            tx.set_request_line(b"POST", uri.as_bytes(), b"HTTP/1.1");
            tx.add_request_header(b"Content-Type", content_type.as_bytes());
            assert!(tx.process_request_headers().is_none());
            tx.append_request_body(body.as_bytes());
            assert!(tx.process_request_body().is_none());
            let kept = candidates(&mut tx, false);
            assert_eq!(kept, candidates(&mut tx, true), "{query} {body}");
            tx.matched_rules().iter().map(|m| m.id).collect()
        };
        let form = "application/x-www-form-urlencoded";
        // Without a body phase 2 reads phase 1's scans only.
        assert_eq!(run("?a=Probe", form, ""), [2, 4]);
        assert_eq!(run("?a=calm", form, ""), Vec::<u32>::new());
        // The same slots as the transaction before, other values.
        assert_eq!(run("?a=attack", form, ""), [3]);
        assert_eq!(run("?a=calm", form, "b=ATTACK&evil=1&c=pr%6Fbe"), [3, 4, 5]);
        assert_eq!(
            run("?a=calm", "application/json", r#"{"evil": "an attack"}"#),
            [1, 3, 5]
        );
    }

    /// Phase 2 of a request without a body reads what phase 1 listed of its targets'
    /// values (phase 2 lists only the target phase 1 did not read, after them); with a
    /// body it lists them again, the body's values among them.
    #[test]
    fn a_bodiless_phase_2_reads_the_values_phase_1_listed() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\nSecRequestBodyAccess On\n\
                 SecRule ARGS \"@rx (?i)probe\" \"id:1,phase:1,pass,log\"\n\
                 SecRule ARGS_NAMES \"@rx (?i)evil\" \"id:2,phase:2,pass,log\"\n\
                 SecRule ARGS \"@rx (?i)attack\" \"id:3,phase:2,pass,log\"\n\
                 SecRule ARGS \"@rx probe\" \"id:4,phase:2,pass,log,t:urlDecodeUni\"\n",
                "t",
            )
            .unwrap(),
        );
        let run = |body: &str| -> (bool, Vec<u32>) {
            let mut tx = rs.transaction(TxInput::default());
            tx.set_request_line(b"POST", b"/p?a=calm&b=pr%256Fbe", b"HTTP/1.1");
            tx.add_request_header(b"Content-Type", b"application/x-www-form-urlencoded");
            assert!(tx.process_request_headers().is_none());
            let listed = tx.scratch.target_values.clone();
            assert_eq!(listed.len(), 2);
            tx.append_request_body(body.as_bytes());
            assert!(tx.process_request_body().is_none());
            let values = &tx.scratch.target_values;
            let kept = values.len() == 4 && values.starts_with(&listed);
            (kept, tx.matched_rules().iter().map(|m| m.id).collect())
        };
        assert_eq!(run(""), (true, vec![4]));
        assert_eq!(run("evil=ATTACK"), (false, vec![2, 3, 4]));
    }

    /// A group member is a candidate exactly when one of its target's values (through its
    /// chain) holds one of its literals: over groups whose members' bits cross candidate
    /// words, groups sharing a unit from different words, and a target without values.
    #[test]
    fn group_candidates_are_the_members_whose_literals_occur() {
        // Six groups of 25 members, by rule number modulo 6. The third and last cross a
        // word; the first and fourth share the raw ARGS unit from words 0 and 1.
        let kinds = [
            ("ARGS", false),
            ("ARGS_NAMES", false),
            ("ARGS_NAMES", true),
            ("REQUEST_COOKIES|ARGS", false),
            ("ARGS", true),
            ("REQUEST_COOKIES|ARGS_NAMES", true),
        ];
        let mut rules = String::from("SecRuleEngine DetectionOnly\n");
        for i in 0..150 {
            let (target, decoded) = kinds[i % 6];
            let chain = if decoded { ",t:urlDecodeUni" } else { "" };
            rules.push_str(&format!(
                "SecRule {target} \"@pm w{i}a w{i}b\" \"id:{},phase:2,pass{chain}\"\n",
                1000 + i
            ));
        }
        let rs = Arc::new(RuleSet::from_text(&rules, "t").unwrap());
        assert!(rs.prefilter.words > 2);
        // The arguments as parsed. `%77` is `w`: those literals occur only once decoded.
        let args = [
            ("w7b", "%7710b"),
            ("%7792a", "W9A"),
            ("q", "w66bz"),
            ("w125a", "%7712a"),
        ];
        let escape = |s: &str| s.replace('%', "%25");
        let query: Vec<String> = args
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect();
        let mut tx = rs.transaction(TxInput::default());
        let uri = format!("/?{}", query.join("&"));
        tx.set_request_line(b"GET", uri.as_bytes(), b"HTTP/1.1");
        assert!(tx.process_request_headers().is_none());
        assert!(tx.process_request_body().is_none());
        let mut candidates = Vec::new();
        for i in 0..rs.rules.len() {
            let (target, decoded) = kinds[i % 6];
            let names = target.ends_with("ARGS_NAMES");
            let values = args
                .iter()
                .map(|&(name, value)| if names { name } else { value });
            let expected = values.into_iter().any(|v: &str| {
                let v = v.to_ascii_lowercase();
                let v = if decoded { v.replace("%77", "w") } else { v };
                v.contains(&format!("w{i}a")) || v.contains(&format!("w{i}b"))
            });
            let (g, m) = rs.prefilter.member[i].unwrap();
            let got = tx.member_may_match(&rs, g, m);
            assert_eq!(got, expected, "literals w{i}a, w{i}b");
            if got {
                candidates.push(i);
            }
        }
        // Not 12: its raw value holds `w12a` escaped.
        assert_eq!(candidates, [7, 9, 10, 66, 92, 125]);
        // The next transaction on this thread reuses the scratch, group bits included: none
        // of this one's candidates remains one.
        drop(tx);
        let mut tx = rs.transaction(TxInput::default());
        tx.set_request_line(b"GET", b"/?q=w&w=q", b"HTTP/1.1");
        assert!(tx.process_request_headers().is_none());
        assert!(tx.process_request_body().is_none());
        for i in 0..rs.rules.len() {
            let (g, m) = rs.prefilter.member[i].unwrap();
            assert!(!tx.member_may_match(&rs, g, m), "w{i}a, w{i}b");
        }
    }

    /// Groups with the same targets read one OR of those targets' raw scans when their
    /// chains change no value, and their own values otherwise: a member is a candidate
    /// exactly when one of its values (through its chain) holds its literal, with the
    /// literals in one target, the other, both or neither, and values the chains change.
    #[test]
    fn groups_sharing_targets_read_every_target_of_the_set() {
        // Two members per chain, each with a literal of its own.
        let chains = ["", ",t:lowercase", ",t:urlDecodeUni"];
        let words = ["alpha", "bravo", "lima", "mike", "tango", "xray"];
        let mut rules = String::from("SecRuleEngine DetectionOnly\n");
        for (i, word) in words.iter().enumerate() {
            rules.push_str(&format!(
                "SecRule ARGS|REQUEST_HEADERS \"@pm {word}\" \"id:{},phase:1,pass{}\"\n",
                i + 1,
                chains[i / 2]
            ));
        }
        let rs = Arc::new(RuleSet::from_text(&rules, "t").unwrap());
        let pf = &rs.prefilter;
        let groups: Vec<u32> = pf.member.iter().map(|m| m.unwrap().0).collect();
        let set = pf.groups[groups[0] as usize].set;
        assert_ne!(set, crate::prefilter::NO_SET);
        assert!(groups.iter().all(|&g| pf.groups[g as usize].set == set));
        // (argument value, header value); `%61` is `a`.
        let requests = [
            ("alpha", "bravo"),
            ("bravo", "alpha"),
            ("x", "alpha bravo"),
            ("x", "y"),
            ("LIMA", "mike"),
            ("t%61ngo", "MIKE"),
            ("lima", "xr%61y %61lpha br%61vo"),
        ];
        for (arg, header) in requests {
            let mut tx = rs.transaction(TxInput::default());
            let uri = format!("/?a={}", arg.replace('%', "%25"));
            tx.set_request_line(b"GET", uri.as_bytes(), b"HTTP/1.1");
            tx.add_request_header(b"X-Test", header.as_bytes());
            assert!(tx.process_request_headers().is_none());
            for (i, &(g, m)) in pf.member.iter().flatten().enumerate() {
                let literal = words[i];
                let through_chain = |v: &str| match i / 2 {
                    0 => v.to_string(),
                    1 => v.to_ascii_lowercase(),
                    _ => v.replace("%61", "a"),
                };
                // `@pm` ignores case; the header names and the other headers hold none.
                let expected = [arg, header]
                    .iter()
                    .any(|v| through_chain(v).to_ascii_lowercase().contains(literal));
                let got = tx.member_may_match(&rs, g, m);
                assert_eq!(got, expected, "{literal} in {arg:?} / {header:?}");
            }
        }
    }

    /// A set of four targets: its raw bits are the OR of every target with values, made
    /// in one pass, whether a target's own OR was made before the set's or after it (its
    /// first reading). Phase 1 reads the four (through a chain that changes every value,
    /// so not as their raw ORs), which numbers them, then reads the last of them alone,
    /// which makes that one's raw OR: phase 2 of a request without a body keeps it. Each
    /// of the four is the last in turn.
    #[test]
    fn set_raw_bits_or_every_target_with_values() {
        let targets = ["ARGS", "ARGS_NAMES", "REQUEST_HEADERS", "REQUEST_COOKIES"];
        let words = ["alpha", "bravo", "lima", "mike"];
        for k in 0..targets.len() {
            let mut order = targets.to_vec();
            order.rotate_left(k + 1);
            let last = order[3];
            let mut rules = format!(
                "SecRuleEngine DetectionOnly\n\
                 SecRule {} \"@pm zulu\" \"id:1,phase:1,pass,t:removeWhitespace\"\n\
                 SecRule {last} \"@pm yankee\" \"id:2,phase:1,pass\"\n",
                order.join("|")
            );
            // Two phase-2 groups (raw, urlDecodeUni) with the four targets: a set.
            for (i, word) in words.iter().enumerate() {
                rules.push_str(&format!(
                    "SecRule {} \"@pm {word}\" \"id:{},phase:2,pass{}\"\n",
                    targets.join("|"),
                    i + 10,
                    if i % 2 == 0 { "" } else { ",t:urlDecodeUni" }
                ));
            }
            let rs = Arc::new(RuleSet::from_text(&rules, "t").unwrap());
            let pf = &rs.prefilter;
            let set = pf.groups[pf.member[2].unwrap().0 as usize].set;
            assert_ne!(set, NO_SET);
            let set_order: Vec<Var> = pf
                .set_targets(set)
                .iter()
                .map(|t| pf.targets[usize::from(t.target_id)].var)
                .collect();
            assert_eq!(set_order.len(), 4);
            // (argument name, argument value, header value, cookie value), each with a
            // space (which phase 1's chain removes) and nothing to decode (the decoding
            // group reads the raw bits too). The cookie's value is in its header's too.
            let requests = [
                ("alpha", "x", "y", "z"),
                ("x", "bravo", "y", "z"),
                ("x", "y", "lima", "z"),
                ("x", "y", "z", "mike"),
                ("x", "y", "z", "w"),
                ("mike", "x", "alpha", "bravo"),
            ];
            for fields in requests {
                let (name, value, header, cookie) = fields;
                let spaced = |s: &str| format!("{s} q");
                let mut tx = rs.transaction(TxInput::default());
                let uri = format!("/?{name}%20q={value}%20q");
                tx.set_request_line(b"GET", uri.as_bytes(), b"HTTP/1.1");
                tx.add_request_header(b"X-Test", spaced(header).as_bytes());
                tx.add_request_header(b"Cookie", format!("c={}", spaced(cookie)).as_bytes());
                assert!(tx.process_request_headers().is_none());
                assert!(tx.process_request_body().is_none());
                for (i, word) in words.iter().enumerate() {
                    let (g, m) = pf.member[i + 2].unwrap();
                    let expected = [name, value, header, cookie].contains(word);
                    let got = tx.member_may_match(&rs, g, m);
                    assert_eq!(
                        got, expected,
                        "{word}, {last} read alone, set {set_order:?}"
                    );
                }
            }
        }
    }

    /// Random groups over a few target sets (chains that change some values, or none), asked
    /// in random order on random requests: a group's bits read through its set (whose raw
    /// OR is folded in while the set is read, or made after) are those read target by
    /// target.
    #[test]
    fn set_bits_agree_with_reading_target_by_target() {
        let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1d);
        let sets = [
            "ARGS|ARGS_NAMES|REQUEST_HEADERS|REQUEST_COOKIES",
            "REQUEST_COOKIES|REQUEST_HEADERS:X-Test|ARGS",
            "REQUEST_URI|ARGS_NAMES",
            "REQUEST_HEADERS:X-Test",
        ];
        let chains = [
            "",
            ",t:lowercase",
            ",t:urlDecodeUni",
            ",t:removeWhitespace",
            ",t:urlDecodeUni,t:lowercase",
        ];
        let words = ["alpha", "bravo", "lima", "mike", "kilo"];
        let parts = ["alpha", "Bravo", "li%6da", "m ike", "kilo", "x", "%20", "q"];
        for _ in 0..30 {
            let mut rules = String::from("SecRuleEngine DetectionOnly\n");
            for i in 0..8 {
                rules.push_str(&format!(
                    "SecRule {} \"@pm {} {}\" \"id:{},phase:2,pass{}\"\n",
                    sets[next(sets.len())],
                    words[next(words.len())],
                    words[next(words.len())],
                    i + 1,
                    chains[next(chains.len())]
                ));
            }
            let rs = Arc::new(RuleSet::from_text(&rules, "t").unwrap());
            let pf = &rs.prefilter;
            let members: Vec<(u32, u16)> = pf.member.iter().flatten().copied().collect();
            for _ in 0..6 {
                let mut field = || {
                    (0..next(3))
                        .map(|_| parts[next(parts.len())])
                        .collect::<String>()
                };
                let (name, value, header, cookie) = (field(), field(), field(), field());
                let uri = format!("/{}?{name}={value}", field());
                let run = |tx: &mut Transaction| {
                    tx.set_request_line(b"GET", uri.as_bytes(), b"HTTP/1.1");
                    tx.add_request_header(b"X-Test", header.as_bytes());
                    tx.add_request_header(b"Cookie", format!("c={cookie}").as_bytes());
                    assert!(tx.process_request_headers().is_none());
                    assert!(tx.process_request_body().is_none());
                };
                let mut by_set = rs.transaction(TxInput::default());
                run(&mut by_set);
                let mut by_target = rs.transaction(TxInput::default());
                run(&mut by_target);
                let mut order = members.clone();
                for i in (1..order.len()).rev() {
                    order.swap(i, next(i + 1));
                }
                for &(g, m) in &order {
                    let got = by_set.member_may_match(&rs, g, m);
                    by_target.group_bits_by_target(&rs, g as usize);
                    let (word, bit) = crate::ruleset::member_bit(pf, g, m);
                    let expected = by_target.scratch.group_bits[word as usize] & (1 << bit) != 0;
                    assert_eq!(
                        got, expected,
                        "member {m} of group {g}, {uri} {header:?} {cookie:?}\n{rules}"
                    );
                }
            }
        }
    }

    /// `or_into` on every length up to 11 words (whole chunks of four and remainders, and
    /// a longer `scanned`, of which as many words as `bits` has are read): each word the
    /// OR of the two, as word by word.
    #[test]
    fn or_into_ors_word_by_word() {
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
        for len in 0..12 {
            for extra in 0..3 {
                let bits: Vec<u64> = (0..len).map(|_| next(usize::MAX) as u64).collect();
                let scanned: Vec<u64> = (0..len + extra).map(|_| next(usize::MAX) as u64).collect();
                let expected: Vec<u64> = bits.iter().zip(&scanned).map(|(b, s)| b | s).collect();
                let mut got = bits.clone();
                or_into(&mut got, &scanned);
                assert_eq!(got, expected, "{len} words, {extra} more scanned");
            }
        }
    }

    /// Pair collections, empty or not (no arguments, no cookies: most of a GET's), with a
    /// key selector or all: visiting gives each selected pair of the request's data, in
    /// order, with its slot, and `&` targets count them.
    #[test]
    fn pair_collections_visit_every_pair_empty_or_not() {
        let mut next = crate::test_rng::below(0x0123_4567_89ab_cdef);
        let rs = Arc::new(RuleSet::from_text("SecRuleEngine DetectionOnly\n", "t").unwrap());
        for _ in 0..60 {
            let mut tx = rs.transaction(TxInput::default());
            let args: Vec<String> = (0..next(3)).map(|i| format!("a{i}={}", next(9))).collect();
            let uri = format!("/p?{}", args.join("&"));
            tx.set_request_line(b"GET", uri.as_bytes(), b"HTTP/1.1");
            for i in 0..next(3) {
                tx.add_request_header(format!("X-{i}").as_bytes(), b"v");
            }
            if next(2) == 1 {
                tx.add_request_header(b"Cookie", b"c=1; a1=2");
            }
            let r = &tx.data.req;
            let collections: [(Var, Var, Vec<&Pair>, bool); 6] = [
                (Var::Args, Var::ArgsGet, r.args_get.iter().collect(), false),
                (
                    Var::ArgsPost,
                    Var::ArgsPost,
                    r.args_post.iter().collect(),
                    false,
                ),
                (
                    Var::ArgsNames,
                    Var::ArgsGetNames,
                    r.args_get.iter().collect(),
                    true,
                ),
                (
                    Var::RequestHeaders,
                    Var::RequestHeaders,
                    r.headers.iter().collect(),
                    false,
                ),
                (
                    Var::RequestCookies,
                    Var::RequestCookies,
                    r.cookies.iter().collect(),
                    false,
                ),
                (
                    Var::RequestCookiesNames,
                    Var::RequestCookiesNames,
                    r.cookies.iter().collect(),
                    true,
                ),
            ];
            for (var, slot_var, ps, names) in collections {
                for (selector, key) in [
                    (Selector::All, None),
                    (Selector::Key(b"a1".to_vec()), Some(&b"a1"[..])),
                ] {
                    let expected: Vec<(Vec<u8>, Vec<u8>, Option<u32>)> = (ps.iter().enumerate())
                        .filter(|(_, (k, _))| key.is_none_or(|key| k.eq_ignore_ascii_case(key)))
                        .map(|(i, (k, v))| {
                            (
                                k.clone(),
                                if names { k } else { v }.clone(),
                                slot(slot_var, i),
                            )
                        })
                        .collect();
                    for count in [false, true] {
                        let target = Target {
                            var,
                            selector: selector.clone(),
                            count,
                            exclusions: Vec::new(),
                            slot: None,
                            selected_slots: None,
                        };
                        let mut got = Vec::new();
                        visit_each(&tx.data, &target, &mut |v, k, raw, s| {
                            assert_eq!(v, var);
                            got.push((k.to_vec(), raw.to_vec(), s));
                        });
                        if count {
                            let n = expected.len().to_string().into_bytes();
                            assert_eq!(got, [(Vec::new(), n, None)], "&{var:?} of {uri}");
                        } else {
                            assert_eq!(got, expected, "{var:?} of {uri}");
                        }
                    }
                }
            }
        }
    }

    /// An operator with macros is built again only when its expanded parameter changes:
    /// a TX value changed between transactions, or within one between two links, changes
    /// the outcome.
    #[test]
    fn dynamic_operators_follow_their_expanded_parameter() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule REQUEST_METHOD \"!@within %{tx.allowed}\" \"id:1,phase:1,pass,\
                   setvar:'tx.allowed=%{tx.allowed} %{REQUEST_METHOD}'\"\n\
                 SecRule REQUEST_METHOD \"!@within %{tx.allowed}\" \"id:2,phase:1,pass\"\n",
                "t",
            )
            .unwrap(),
        );
        // (allowed methods, method) → matched rules, operators built.
        let run = |allowed: &str, method: &[u8]| {
            let mut tx = rs.transaction(TxInput::default());
            tx.set_tx_var("allowed", allowed.as_bytes());
            tx.set_request_line(method, b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
            (ids, tx.operator_builds)
        };
        // Rule 1 adds the method it did not allow, so rule 2 (same parameter, new value)
        // allows it: both links build theirs.
        assert_eq!(run("GET HEAD", b"PUT"), (vec![1], 2));
        // The same texts again: both reuse what they built.
        assert_eq!(run("GET HEAD", b"PUT"), (vec![1], 0));
        // Allowed from the start: rule 1's text changed, rule 2's is the one it had.
        assert_eq!(run("GET HEAD PUT", b"PUT"), (vec![], 1));
        // Both texts changed back to "GET HEAD".
        assert_eq!(run("GET HEAD", b"GET"), (vec![], 2));
        assert_eq!(run("GET HEAD", b"GET"), (vec![], 0));
    }

    /// Rule sets whose dynamic links have the same numbers never share their operators,
    /// and each keeps its own across transactions that alternate between them.
    #[test]
    fn dynamic_operators_are_kept_per_rule_set() {
        let load = |op: &str| {
            Arc::new(
                RuleSet::from_text(
                    &format!(
                        "SecRuleEngine DetectionOnly\n\
                         SecRule REQUEST_METHOD \"@{op} %{{tx.allowed}}\" \"id:1,phase:1,pass\"\n"
                    ),
                    "t",
                )
                .unwrap(),
            )
        };
        let (within, streq) = (load("within"), load("streq"));
        let run = |rs: &Arc<RuleSet>| {
            let mut tx = rs.transaction(TxInput::default());
            tx.set_tx_var("allowed", b"GET HEAD");
            tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            (tx.matched_rules().len(), tx.operator_builds)
        };
        assert_eq!(run(&within), (1, 1));
        assert_eq!(run(&streq), (0, 1));
        assert_eq!(run(&within), (1, 0));
        assert_eq!(run(&streq), (0, 0));
    }

    /// REQUEST_URI_RAW shares REQUEST_URI's cache row (transformations, scans) only when
    /// their bytes are the same: the rules on each see their own value either way.
    #[test]
    fn uri_raw_shares_the_uri_row_only_when_equal() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule REQUEST_URI_RAW \"@contains http:\" \"id:1,phase:1,pass,t:lowercase\"\n\
                 SecRule REQUEST_URI \"@contains http:\" \"id:2,phase:1,pass,t:lowercase\"\n\
                 SecRule REQUEST_URI_RAW \"@contains attack\" \"id:3,phase:1,pass,\
                   t:urlDecodeUni,t:lowercase\"\n\
                 SecRule REQUEST_URI \"@contains attack\" \"id:4,phase:1,pass,\
                   t:urlDecodeUni,t:lowercase\"\n\
                 SecRule REQUEST_URI_RAW|REQUEST_URI \"@contains HTTP\" \"id:5,phase:1,pass\"\n\
                 SecRule REQUEST_URI|REQUEST_URI_RAW \"@rx ^/x\" \"id:6,phase:1,pass\"\n",
                "t",
            )
            .unwrap(),
        );
        let run = |target: &[u8]| {
            let mut tx = rs.transaction(TxInput::default());
            tx.set_request_line(b"GET", target, b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            let same = tx.scratch.cache.row(slot(Var::RequestUriRaw, 0).unwrap())
                == tx.scratch.cache.row(slot(Var::RequestUri, 0).unwrap());
            let matched: Vec<(u32, String, Vec<u8>)> = (tx.matched_rules().iter())
                .map(|m| (m.id, m.matched_var_name.clone(), m.matched_var.clone()))
                .collect();
            (same, matched)
        };
        let m = |id, name: &str, v: &[u8]| (id, name.to_string(), v.to_vec());
        assert_eq!(
            run(b"/x?a=%41TTACK&b=HTTP"),
            (
                true,
                vec![
                    m(3, "REQUEST_URI_RAW", b"/x?a=attack&b=http"),
                    m(4, "REQUEST_URI", b"/x?a=attack&b=http"),
                    // The last of the variables that match.
                    m(5, "REQUEST_URI", b"/x?a=%41TTACK&b=HTTP"),
                    m(6, "REQUEST_URI_RAW", b"/x?a=%41TTACK&b=HTTP"),
                ]
            )
        );
        assert_eq!(
            run(b"HTTP://h/x?a=%41TTACK"),
            (
                false,
                vec![
                    m(1, "REQUEST_URI_RAW", b"http://h/x?a=%41ttack"),
                    m(3, "REQUEST_URI_RAW", b"http://h/x?a=attack"),
                    m(4, "REQUEST_URI", b"/x?a=attack"),
                    m(5, "REQUEST_URI_RAW", b"HTTP://h/x?a=%41TTACK"),
                    m(6, "REQUEST_URI", b"/x?a=%41TTACK"),
                ]
            )
        );
    }

    /// Every value `visit` gives with a cache slot is what `slot_value` reads back; a
    /// request-line variable's, what `request_line_value` gives the rule loop without
    /// visiting (one value, in its slot), and no other variable has one there.
    #[test]
    fn slot_values_are_the_visited_values() {
        let rs = Arc::new(RuleSet::from_text("SecRuleEngine DetectionOnly\n", "t").unwrap());
        let mut tx = rs.transaction(TxInput::default());
        tx.set_request_line(b"POST", b"/a/b.php?x=1&Yy=%41", b"HTTP/1.1");
        tx.add_request_header(b"Host", b"example.com");
        tx.add_request_header(b"Cookie", b"s=1; t=two");
        tx.add_request_header(b"Content-Type", b"multipart/form-data; boundary=XyZ");
        assert!(tx.process_request_headers().is_none());
        tx.append_request_body(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\
              Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ\r\n\
              Content-Disposition: form-data; name=\"p\"\r\n\r\npost value\r\n--XyZ--\r\n",
        );
        assert!(tx.process_request_body().is_none());
        tx.set_response_status(200, b"HTTP/1.1");
        tx.add_response_header(b"Content-Type", b"text/html");
        let targets = parse_targets(
            "ARGS|ARGS_NAMES|ARGS_GET|ARGS_POST|ARGS_GET_NAMES|ARGS_POST_NAMES|REQUEST_HEADERS|\
             REQUEST_HEADERS_NAMES|REQUEST_COOKIES|REQUEST_COOKIES_NAMES|REQUEST_URI|\
             REQUEST_URI_RAW|REQUEST_FILENAME|REQUEST_BASENAME|REQUEST_LINE|REQUEST_METHOD|\
             REQUEST_PROTOCOL|QUERY_STRING|FILES|FILES_NAMES|FILES_TMP_CONTENT|\
             MULTIPART_PART_HEADERS|RESPONSE_HEADERS|RESPONSE_HEADERS_NAMES",
        )
        .unwrap();
        let request_line = [
            Var::RequestUri,
            Var::RequestUriRaw,
            Var::RequestFilename,
            Var::RequestBasename,
            Var::RequestLine,
            Var::RequestMethod,
            Var::RequestProtocol,
            Var::QueryString,
        ];
        for t in &targets {
            let direct = request_line_value(&tx.data.req, t.var);
            assert_eq!(direct.is_some(), request_line.contains(&t.var));
            let mut seen = 0;
            visit_each(&tx.data, t, &mut |var, key, raw, slot| {
                let slot = slot.unwrap_or_else(|| panic!("{} has no slot", var.name()));
                assert_eq!(slot_value(&tx.data, slot), raw, "{}", var.name());
                if let Some(v) = direct {
                    assert_eq!((key, raw, Some(slot)), (&b""[..], v, super::slot(var, 0)));
                }
                seen += 1;
            });
            assert!(seen > 0, "{} has no value in this request", t.var.name());
            assert!(direct.is_none() || seen == 1, "{}", t.var.name());
        }
    }

    /// The values of each variable a prefilter group can read all have a cache slot or none
    /// has (`bits_by_visiting` relies on it): checked on a multipart request, whose files,
    /// part headers and arguments have values, and a plain-text one, whose body has.
    #[test]
    fn group_targets_have_slots_for_all_values_or_none() {
        let rs = Arc::new(RuleSet::from_text("SecRuleEngine DetectionOnly\n", "t").unwrap());
        let bodies: [(&[u8], &[u8]); 2] = [
            (
                b"multipart/form-data; boundary=XyZ",
                b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\
                  Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ\r\n\
                  Content-Disposition: form-data; name=\"p\"\r\n\r\npost value\r\n--XyZ--\r\n",
            ),
            (b"text/plain", b"a plain body"),
        ];
        let mut unslotted = std::collections::BTreeSet::new();
        for (content_type, body) in bodies {
            let mut tx = rs.transaction(TxInput::default());
            tx.set_request_line(b"POST", b"/a/b.php?x=1&Yy=%41", b"HTTP/1.1");
            tx.add_request_header(b"Cookie", b"s=1; t=two");
            tx.add_request_header(b"Content-Type", content_type);
            assert!(tx.process_request_headers().is_none());
            tx.append_request_body(body);
            assert!(tx.process_request_body().is_none());
            tx.set_response_status(200, b"HTTP/1.1");
            tx.add_response_header(b"Content-Type", b"text/html");
            tx.append_response_body(b"<html></html>");
            for &(name, var, _) in VARS {
                if !crate::prefilter::phase_stable(var) {
                    continue;
                }
                let target = match var {
                    Var::Xml => "XML:/*",
                    _ => name,
                };
                for t in parse_targets(target).unwrap() {
                    let mut slots = Vec::new();
                    visit_each(&tx.data, &t, &mut |_, _, _, slot| {
                        slots.push(slot.is_some())
                    });
                    assert!(slots.windows(2).all(|p| p[0] == p[1]), "{name}: {slots:?}");
                    if slots.first() == Some(&false) {
                        unslotted.insert(name);
                    }
                }
            }
        }
        assert_eq!(
            unslotted.into_iter().collect::<Vec<_>>(),
            ["REQUEST_BODY", "RESPONSE_BODY"]
        );
    }

    /// `f` on a new transaction of `rs`, a pooled one or a plain one.
    fn with_transaction<R>(
        rs: &Arc<RuleSet>,
        pooled: bool,
        f: impl FnOnce(&mut Transaction) -> R,
    ) -> R {
        if pooled {
            f(&mut rs.pooled_transaction(TxInput::default()))
        } else {
            f(&mut rs.transaction(TxInput::default()))
        }
    }

    /// A transaction that reuses the buffers of the one before it (the per-thread pools,
    /// of scratch and of pooled transactions) sees none of that one's request, response,
    /// variables or matches.
    #[test]
    fn reused_buffers_carry_no_state_over() {
        let checks = [
            "&ARGS",
            "&ARGS_POST",
            "&REQUEST_HEADERS",
            "&REQUEST_COOKIES",
            "REQUEST_URI",
            "REQUEST_URI_RAW",
            "REQUEST_LINE",
            "QUERY_STRING",
            "REQUEST_FILENAME",
            "REQUEST_BASENAME",
            "REQUEST_METHOD",
            "REQUEST_PROTOCOL",
            "REQUEST_BODY",
            "&TX:seen",
            "&RESPONSE_HEADERS",
            "RESPONSE_PROTOCOL",
            "MATCHED_VAR",
        ];
        let mut rules = String::from(
            "SecRuleEngine DetectionOnly\nSecRequestBodyAccess On\n\
             SecRule REQUEST_METHOD \"@streq POST\" \"id:1,phase:1,pass,log,setvar:tx.seen=1\"\n",
        );
        for (i, target) in checks.iter().enumerate() {
            let op = if target.starts_with('&') {
                "@gt 0"
            } else {
                "@rx ."
            };
            rules.push_str(&format!(
                "SecRule {target} \"{op}\" \"id:{},phase:3,pass,log\"\n",
                100 + i
            ));
        }
        let rs = Arc::new(RuleSet::from_text(&rules, "t").unwrap());
        let run = |full: bool, pooled: bool| {
            with_transaction(&rs, pooled, |tx| {
                if full {
                    tx.set_request_line(b"POST", b"/a/b.php?x=1", b"HTTP/1.1");
                    tx.add_request_header(b"Cookie", b"s=1");
                    tx.add_request_header(b"Content-Type", b"application/x-www-form-urlencoded");
                    tx.append_request_body(b"p=2");
                }
                assert!(tx.process_request_headers().is_none());
                assert!(tx.process_request_body().is_none());
                if full {
                    tx.set_response_status(200, b"HTTP/1.1");
                    tx.add_response_header(b"Content-Type", b"text/html");
                }
                assert!(tx.process_response_headers().is_none());
                let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
                ids
            })
        };
        let all: Vec<u32> = std::iter::once(1)
            .chain(100..100 + checks.len() as u32)
            .collect();
        for pooled in [false, true, false] {
            assert_eq!(
                run(true, pooled),
                all,
                "the first transaction sees every value"
            );
            assert_eq!(
                run(false, pooled),
                Vec::<u32>::new(),
                "the next one sees none of them (pooled: {pooled})"
            );
        }
    }

    /// A pooled transaction is made new whole: what the one before it changed at run time
    /// (rules and targets removed by `ctl`, the engine mode, an intervention, `allow`,
    /// TX, matches) is gone, for its own rule set and for another one.
    #[test]
    fn a_pooled_transaction_starts_as_a_new_one() {
        let rules = |engine: &str| {
            format!(
                "SecRuleEngine {engine}\n\
                 SecRule ARGS:a \"@streq 1\" \"id:1,phase:1,pass,nolog,ctl:ruleRemoveById=3,ctl:ruleRemoveTargetById=4;ARGS:b,ctl:ruleEngine=DetectionOnly,setvar:tx.seen=1\"\n\
                 SecRule ARGS:a \"@streq 2\" \"id:2,phase:1,allow\"\n\
                 SecRule ARGS \"@rx x\" \"id:3,phase:2,deny,status:403,log\"\n\
                 SecRule ARGS \"@rx y\" \"id:4,phase:2,deny,status:406,log\"\n\
                 SecRule &TX:seen \"@eq 1\" \"id:5,phase:2,pass,log\"\n"
            )
        };
        let on = Arc::new(RuleSet::from_text(&rules("On"), "on").unwrap());
        let detect = Arc::new(RuleSet::from_text(&rules("DetectionOnly"), "detect").unwrap());
        // Phases 1-2 of a GET of `/?{query}`: the intervention, the mode after, the matches.
        let run = |rs: &Arc<RuleSet>, query: &str, pooled: bool| {
            with_transaction(rs, pooled, |tx| {
                tx.set_request_line(b"GET", format!("/?{query}").as_bytes(), b"HTTP/1.1");
                let iv = tx
                    .process_request_headers()
                    .or_else(|| tx.process_request_body())
                    .map(|iv| iv.status);
                let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
                (iv, tx.engine_mode(), ids)
            })
        };
        let queries = ["a=1&b=xy", "b=xy", "a=2&b=x", "b=y", "a=1&b=x", "c=x"];
        let fresh: Vec<_> = [&on, &detect]
            .iter()
            .flat_map(|rs| queries.iter().map(|q| run(rs, q, false)))
            .collect();
        assert!(
            fresh.contains(&(Some(403), EngineMode::On, vec![3])),
            "{fresh:?}"
        );
        // Each query after every other one, on either rule set, pooled.
        for _ in 0..2 {
            let pooled: Vec<_> = [&on, &detect]
                .iter()
                .flat_map(|rs| queries.iter().map(|q| run(rs, q, true)))
                .collect();
            assert_eq!(pooled, fresh);
        }
    }

    /// `msg` and `logdata` with macros show what they expanded to when their rule matched.
    #[test]
    fn expanded_texts_are_kept_per_match() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS:a \"@rx .\" \"id:1,phase:1,pass,msg:'in %{MATCHED_VAR_NAME}',\
                   logdata:'saw %{MATCHED_VAR}'\"\n\
                 SecRule ARGS:b \"@rx .\" \"id:2,phase:1,pass,msg:'in %{MATCHED_VAR_NAME}',\
                   logdata:'saw %{MATCHED_VAR}'\"\n",
                "t",
            )
            .unwrap(),
        );
        let mut tx = rs.transaction(TxInput::default());
        tx.set_request_line(b"GET", b"/?a=first&b=second", b"HTTP/1.1");
        assert!(tx.process_request_headers().is_none());
        let texts: Vec<(String, String)> = tx
            .matched_rules()
            .iter()
            .map(|m| (m.msg.clone(), m.logdata.clone()))
            .collect();
        let want = [("in ARGS:a", "saw first"), ("in ARGS:b", "saw second")];
        assert_eq!(texts, want.map(|(m, l)| (m.to_string(), l.to_string())));
    }

    /// What an audit record takes is the logging matches with an id, each as
    /// `matched_rules` shows it: literal and expanded texts, tags, the matched value.
    #[test]
    fn logged_matches_are_the_logging_matched_rules() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS:a \"@rx .\" \"id:1,phase:1,pass,msg:'literal',tag:'t1',tag:'t2',\
                   severity:'CRITICAL',logdata:'saw %{MATCHED_VAR}'\"\n\
                 SecRule ARGS:a \"@rx .\" \"id:2,phase:1,pass,nolog,msg:'not logged'\"\n\
                 SecRule ARGS:b \"@rx .\" \"id:3,phase:1,pass,msg:'in %{MATCHED_VAR_NAME}',\
                   logdata:'plain'\"\n\
                 SecRule ARGS:c \"@rx .\" \"id:4,phase:1,pass\"\n",
                "t",
            )
            .unwrap(),
        );
        let mut tx = rs.transaction(TxInput::default());
        tx.set_request_line(b"GET", b"/?a=first&b=%ff&c=third", b"HTTP/1.1");
        assert!(tx.process_request_headers().is_none());
        let logged: Vec<MatchedRule> = tx
            .logged()
            .map(|m| MatchedRule {
                id: m.id,
                phase: m.phase,
                msg: lossy_string(m.msg),
                logdata: lossy_string(m.logdata),
                tags: Arc::clone(m.tags),
                severity: m.severity,
                matched_var_name: lossy_string(m.matched_var_name),
                matched_var: m.matched_var.to_vec(),
                disruptive: m.disruptive,
                log: true,
            })
            .collect();
        let want: Vec<&MatchedRule> = tx
            .matched_rules()
            .iter()
            .filter(|m| m.log && m.id != 0)
            .collect();
        assert_eq!(
            logged.iter().map(|m| m.id).collect::<Vec<_>>(),
            [1, 3, 4],
            "{logged:?}"
        );
        assert_eq!(format!("{logged:?}"), format!("{want:?}"));
        let texts = |m: &MatchedRule| {
            [&m.msg, &m.logdata, &m.matched_var_name].map(|t| t.as_str().to_owned())
        };
        assert_eq!(
            logged.iter().map(texts).collect::<Vec<_>>(),
            [
                ["literal", "saw first", "ARGS:a"],
                ["in ARGS:b", "plain", "ARGS:b"],
                ["", "", "ARGS:c"],
            ]
        );
        assert_eq!(&logged[0].tags[..], ["t1", "t2"]);
        assert_eq!(logged[0].severity, Some(2));
        assert_eq!(logged[1].matched_var, b"\xff");
        assert_eq!(logged[2].matched_var, b"third");
    }

    /// A `TX:key` match pushed by `push_tx_key` leaves MATCHED_VAR(_NAME) and MATCHED_VARS
    /// as the general push and copy leave them, on random runs of rules that match keys
    /// (two names, each with a few values, the empty one too, as the paranoia-level gates
    /// read them), other values, several values a rule, and the end of a transaction.
    #[test]
    fn tx_key_pushes_agree_with_the_general_push() {
        let mut below = crate::test_rng::below(0x7a3c_91e5_d2b8_4f06);
        let names: [&[u8]; 2] = [
            b"TX:detection_paranoia_level",
            b"TX:blocking_paranoia_level",
        ];
        let values: [&[u8]; 4] = [b"1", b"2", b"12", b""];
        let (mut fast, mut general) = (MatchVars::default(), MatchVars::default());
        for step in 0..20_000 {
            match below(8) {
                0..=2 => {
                    fast.begin_rule();
                    general.begin_rule();
                }
                3..=5 => {
                    let (at, value) = (below(2), values[below(4)]);
                    // Where each name starts in a rule set's key names.
                    fast.push_tx_key(at as u32 * 40, names[at], value);
                    let (n, v) = general.push();
                    n.extend_from_slice(names[at]);
                    v.extend_from_slice(value);
                }
                6 => {
                    // Another variable's match, or one with a key's name and value.
                    let name: &[u8] = if below(2) == 0 { b"ARGS:a" } else { names[0] };
                    let value = values[below(4)];
                    for m in [&mut fast, &mut general] {
                        let (n, v) = m.push();
                        n.extend_from_slice(name);
                        v.extend_from_slice(value);
                    }
                }
                _ => {
                    fast.recycle(MAX_KEPT_BYTES);
                    general.recycle(MAX_KEPT_BYTES);
                }
            }
            assert_eq!(fast.last, general.last, "step {step}");
            assert_eq!(
                fast.list().collect::<Vec<_>>(),
                general.list().collect::<Vec<_>>(),
                "step {step}"
            );
        }
    }

    /// MATCHED_VAR is the last value matched by any rule, and outlives rules that match
    /// nothing; MATCHED_VARS holds the current rule's values only, every link's, in order.
    #[test]
    fn matched_vars_are_the_current_rules_and_matched_var_the_last() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRule ARGS \"@rx .\" \"id:1,phase:1,pass,nolog,\
                   setvar:'tx.first=%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'\"\n\
                 SecRule ARGS \"@rx ^never$\" \"id:2,phase:1,pass,nolog\"\n\
                 SecAction \"id:3,phase:1,pass,nolog,\
                   setvar:'tx.kept=%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'\"\n\
                 SecRule ARGS:a|ARGS:b \"@rx .\" \"id:4,phase:1,pass,nolog,chain\"\n\
                   SecRule &MATCHED_VARS \"@eq 2\" \"chain,setvar:'tx.count=%{MATCHED_VAR}'\"\n\
                   SecRule MATCHED_VARS_NAMES \"@rx ^ARGS:a$\" \"setvar:'tx.name=%{MATCHED_VAR}'\"\n",
                "t",
            )
            .unwrap(),
        );
        let mut tx = rs.transaction(TxInput::default());
        tx.record_nolog_matches();
        tx.set_request_line(b"GET", b"/?a=1&b=2&c=3", b"HTTP/1.1");
        assert!(tx.process_request_headers().is_none());
        let tx_var = |k: &str| {
            tx.tx_var(k)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        // Rule 1 matched all three arguments; MATCHED_VAR is the last.
        assert_eq!(tx_var("first").as_deref(), Some("ARGS:c=3"));
        // Rule 2 matched nothing and SecAction reads no value: MATCHED_VAR stays.
        assert_eq!(tx_var("kept").as_deref(), Some("ARGS:c=3"));
        // Rule 4's second link counts its first link's two values, none of rule 1's.
        assert_eq!(tx_var("count").as_deref(), Some("2"));
        // Its third link still finds the first value of the first link among three.
        assert_eq!(tx_var("name").as_deref(), Some("ARGS:a"));
        let records: Vec<(u32, String, Vec<u8>)> = tx
            .matched_rules()
            .iter()
            .map(|m| (m.id, m.matched_var_name.clone(), m.matched_var.clone()))
            .collect();
        let want = [
            (1, "ARGS:c", &b"3"[..]),
            (3, "ARGS:c", b"3"),
            (4, "MATCHED_VARS_NAMES:ARGS:a", b"ARGS:a"),
        ];
        assert_eq!(
            records,
            want.map(|(i, n, v)| (i, n.to_string(), v.to_vec()))
        );
    }

    /// A GET / through phase 1 of `rules`, which must intervene.
    fn phase_1_intervention(rules: &str) -> (Transaction, Intervention) {
        let rs = Arc::new(RuleSet::from_text(rules, "t").unwrap());
        let mut tx = rs.transaction(TxInput::default());
        tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
        let iv = tx.process_request_headers().unwrap();
        (tx, iv)
    }

    /// A TX key target removed at run time is removed from the rules it names, and only
    /// from those, whether the rule reads its value or counts it.
    #[test]
    fn run_time_target_removal_applies_to_tx_keys() {
        let (_, iv) = phase_1_intervention(
            "SecRuleEngine On\n\
             SecAction \"id:1,phase:1,pass,nolog,setvar:tx.foo=1,\
               ctl:ruleRemoveTargetById=2;TX:foo,ctl:ruleRemoveTargetByTag=t3;TX\"\n\
             SecRule TX:foo \"@eq 1\" \"id:2,phase:1,deny,status:401\"\n\
             SecRule &TX:foo \"@eq 1\" \"id:3,phase:1,deny,status:402,tag:t3\"\n\
             SecRule TX:foo \"@eq 1\" \"id:4,phase:1,deny,status:403\"\n",
        );
        assert_eq!((iv.rule_id, iv.status), (4, 403));
    }

    /// A `setvar` name built from macros is the lower-cased expansion of the name as
    /// written, over random names of mixed-case text, TX values (numbered keys and not)
    /// and request variables.
    #[test]
    fn setvar_names_from_macros_are_lower_cased() {
        let mut below = crate::test_rng::below(0x6a09_e667_f3bc_c909);
        let texts = ["Ab", "c_D", "x", "Q-9", ""];
        let values = ["MiXeD", "lower", "UP", "", "a.B"];
        for _ in 0..100 {
            // (name as written, its expansion)
            let mut name = (String::from("k"), String::from("k"));
            let mut rules = String::from("SecRuleEngine DetectionOnly\n");
            let mut tx_values = Vec::new();
            for i in 0..1 + below(4) {
                let text = texts[below(texts.len())];
                name.0.push_str(text);
                name.1.push_str(text);
                match below(3) {
                    0 => {
                        let v = values[below(values.len())];
                        name.0.push_str(&format!("%{{TX.v{i}}}"));
                        name.1.push_str(v);
                        tx_values.push((format!("v{i}"), v));
                    }
                    1 => {
                        name.0.push_str("%{REQUEST_METHOD}");
                        name.1.push_str("PoSt");
                    }
                    _ => {}
                }
            }
            // Some TX keys read numbered by the rule set (another rule names them).
            for (j, (k, _)) in tx_values.iter().enumerate().filter(|_| below(2) == 0) {
                rules.push_str(&format!(
                    "SecAction \"id:{},phase:2,pass,nolog,setvar:tx.{k}=1\"\n",
                    90 + j
                ));
            }
            rules.push_str(&format!(
                "SecAction \"id:1,phase:1,pass,nolog,setvar:'tx.{}=set'\"\n",
                name.0
            ));
            let rs = Arc::new(RuleSet::from_text(&rules, "t").unwrap());
            let mut tx = rs.transaction(TxInput::default());
            for (k, v) in &tx_values {
                tx.set_tx_var(k, v.as_bytes());
            }
            tx.set_request_line(b"PoSt", b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            let want = name.1.to_ascii_lowercase();
            let mut keys = Vec::new();
            tx.each_tx_var(&mut |k, v| {
                if v == b"set" {
                    keys.push(k.to_vec());
                }
            });
            assert_eq!(keys, [want.into_bytes()], "{}", name.0);
        }
    }

    /// A single-link TX-key rule that matches runs its `setvar`s (seeing its MATCHED_VAR*)
    /// and its `ctl`s and `setenv`s as the general path runs them (the same test on
    /// `TX:key|TX:unset`).
    #[test]
    fn matched_tx_key_rules_run_their_actions_as_the_general_path() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule TX:v \"@ge 1\" \"id:1,phase:1,pass,nolog,ctl:ruleRemoveById=3,\
                     setenv:e1=%{MATCHED_VAR},setvar:'tx.a=%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'\"\n\
                 SecRule TX:v|TX:unset \"@ge 1\" \"id:2,phase:1,pass,nolog,ctl:ruleRemoveById=4,\
                     setenv:e2=%{MATCHED_VAR},setvar:'tx.b=%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'\"\n\
                 SecAction \"id:3,phase:1,pass,nolog,setvar:tx.three=1\"\n\
                 SecAction \"id:4,phase:1,pass,nolog,setvar:tx.four=1\"\n",
                "t",
            )
            .unwrap(),
        );
        assert!(rs.rules[0].tx_key.is_some() && rs.rules[1].tx_key.is_none());
        for (v, matches) in [(&b"2"[..], true), (b"0", false)] {
            let mut tx = rs.transaction(TxInput::default());
            tx.record_nolog_matches();
            tx.set_tx_var("v", v);
            tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
            assert_eq!(ids, if matches { vec![1, 2] } else { vec![3, 4] });
            assert_eq!(tx.tx_var("a"), tx.tx_var("b"));
            assert_eq!(tx.tx_var("a").is_some(), matches);
            let env = |k: &[u8]| tx.data.env.get(k).map(<[u8]>::to_vec);
            assert_eq!(env(b"e1"), env(b"e2"));
            assert_eq!(env(b"e1").is_some(), matches);
        }
    }

    /// A link testing one TX key with `@lt/@le/@gt/@ge/@eq` compares the key's integer
    /// without the operator (and the rule loop passes over such a first link that fails
    /// without setting up the chain); it must decide and report as the general path does
    /// (the same test on `TX:key|TX:unset`), for every value ModSecurity would read oddly.
    #[test]
    fn tx_key_comparisons_agree_with_the_general_path() {
        let mut text = String::from("SecRuleEngine DetectionOnly\n");
        let mut pairs = 0;
        for op in ["lt", "le", "gt", "ge", "eq"] {
            for operand in ["2", "-3", "0", "abc", " 7x"] {
                for neg in ["", "!"] {
                    for count in ["", "&"] {
                        pairs += 1;
                        for (kind, extra) in [("fast", ""), ("slow", "|TX:unset")] {
                            let id = 2 * pairs + usize::from(kind == "slow");
                            text.push_str(&format!(
                                "SecRule {count}TX:v{extra} \"{neg}@{op} {operand}\" \
                                 \"id:{id},phase:1,pass,nolog,\
                                 setvar:'tx.{kind}_{pairs}=%{{MATCHED_VAR_NAME}}=%{{MATCHED_VAR}}'\"\n"
                            ));
                        }
                    }
                }
            }
        }
        let rs = Arc::new(RuleSet::from_text(&text, "t").unwrap());
        let fast = rs.rules.iter().filter(|r| r.id % 2 == 0);
        assert!(fast
            .clone()
            .all(|r| r.tx_key.is_some() && r.int_cmp.is_some()));
        assert!(rs
            .rules
            .iter()
            .filter(|r| r.id % 2 == 1)
            .all(|r| r.tx_key.is_none()));
        let values: [Option<&[u8]>; 15] = [
            None,
            Some(b""),
            Some(b"0"),
            Some(b"2"),
            Some(b"-3"),
            Some(b" 7"),
            Some(b"\t-2"),
            Some(b"+5"),
            Some(b"abc"),
            Some(b"3abc"),
            Some(b"-"),
            Some(b"1.9"),
            Some(b"99999999999999999999"),
            Some(b"-99999999999999999999"),
            Some(b"0x10"),
        ];
        let (mut matched, mut unmatched) = (0, 0);
        for value in values {
            let mut tx = rs.transaction(TxInput::default());
            if let Some(v) = value {
                tx.set_tx_var("v", v);
            }
            tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            tally_fast_against_slow(&tx, pairs, &mut matched, &mut unmatched, &value);
        }
        assert!(matched > 0 && unmatched > 0);
    }

    /// Compares TX `fast_<p>` with `slow_<p>` for every pair (what a fast path and the general
    /// one wrote), counting the pairs that matched and those that did not.
    fn tally_fast_against_slow(
        tx: &Transaction,
        pairs: usize,
        matched: &mut usize,
        unmatched: &mut usize,
        case: &dyn std::fmt::Debug,
    ) {
        for p in 1..=pairs {
            let got = tx.tx_var(&format!("fast_{p}")).map(<[u8]>::to_vec);
            let want = tx.tx_var(&format!("slow_{p}")).map(<[u8]>::to_vec);
            assert_eq!(got, want, "pair {p}, case {case:?}");
            match got {
                Some(_) => *matched += 1,
                None => *unmatched += 1,
            }
        }
    }

    /// Counts compared as integers (one counted target) give what the operator gives on
    /// the count's text (a second, empty target takes the general path), match or not,
    /// with the same MATCHED_VAR_NAME and MATCHED_VAR.
    #[test]
    fn count_comparisons_agree_with_the_general_path() {
        let mut text = String::from("SecRuleEngine DetectionOnly\n");
        let mut pairs = 0;
        for target in ["REQUEST_HEADERS:X-N", "ARGS"] {
            for op in ["lt", "le", "gt", "ge", "eq"] {
                for operand in ["2", "-3", "0", "abc", " 1x"] {
                    for neg in ["", "!"] {
                        pairs += 1;
                        for (kind, extra) in [("fast", ""), ("slow", "|REQUEST_HEADERS:X-None")] {
                            let id = 2 * pairs + usize::from(kind == "slow");
                            text.push_str(&format!(
                                "SecRule &{target}{extra} \"{neg}@{op} {operand}\" \
                                 \"id:{id},phase:1,pass,nolog,\
                                 setvar:'tx.{kind}_{pairs}=%{{MATCHED_VAR_NAME}}=%{{MATCHED_VAR}}'\"\n"
                            ));
                        }
                    }
                }
            }
        }
        let rs = Arc::new(RuleSet::from_text(&text, "t").unwrap());
        let (mut matched, mut unmatched) = (0, 0);
        for n in 0..4 {
            let mut tx = rs.transaction(TxInput::default());
            let query = vec!["a=1"; n].join("&");
            tx.set_request_line(b"GET", format!("/?{query}").as_bytes(), b"HTTP/1.1");
            for _ in 0..n {
                tx.add_request_header(b"x-n", b"v");
            }
            assert!(tx.process_request_headers().is_none());
            // Each link asked once (a slow one's second target has no values).
            assert_eq!(tx.operator_runs, 2 * pairs);
            tally_fast_against_slow(&tx, pairs, &mut matched, &mut unmatched, &n);
        }
        assert!(matched > 0 && unmatched > 0);
    }

    /// `setvar` arithmetic reads the integer the store keeps for a slot; a later plain
    /// `setvar` of text must replace it.
    #[test]
    fn slot_integers_follow_the_text_written() {
        let (tx, iv) = phase_1_intervention(
            "SecRuleEngine On\n\
             SecAction \"id:1,phase:1,pass,nolog,setvar:tx.n=+5,setvar:tx.n=-7\"\n\
             SecRule TX:n \"@eq -2\" \"id:2,phase:1,pass,nolog,setvar:tx.n=9x\"\n\
             SecRule TX:n \"@lt 9\" \"id:3,phase:1,deny,status:401\"\n\
             SecAction \"id:4,phase:1,pass,nolog,setvar:tx.n=+1\"\n\
             SecRule TX:n \"@eq 10\" \"id:5,phase:1,deny,status:402\"\n",
        );
        assert_eq!((iv.rule_id, iv.status), (5, 402));
        assert_eq!(tx.tx_var("n"), Some(&b"10"[..]));
    }

    /// An `@rx` known to match every input whole answers and captures without the regex
    /// as the regex does (the same test written so that it is not recognised), on empty
    /// values, newlines and bytes that are not UTF-8.
    #[test]
    fn whole_input_patterns_match_and_capture_as_the_regex() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx ^.*$\" \"id:1,phase:1,pass,nolog,capture,\
                   setvar:'tx.fast=%{MATCHED_VAR_NAME}|%{tx.0}|%{MATCHED_VAR}'\"\n\
                 SecRule ARGS \"@rx ^.*$|^x\" \"id:2,phase:1,pass,nolog,capture,\
                   setvar:'tx.slow=%{MATCHED_VAR_NAME}|%{tx.0}|%{MATCHED_VAR}'\"\n\
                 SecRule ARGS \"!@rx ^.*$\" \"id:3,phase:1,pass,nolog,setvar:tx.negated=1\"\n",
                "t",
            )
            .unwrap(),
        );
        let whole = |i: usize| match &rs.rules[i].operator {
            RuleOperator::Static(op) => op.as_rx().is_some_and(|rx| rx.matches_every_input()),
            _ => false,
        };
        assert!(whole(0) && !whole(1));
        for query in ["a=", "b=x%0Ay%0A", "c=%FF%C3", "d=plain&e=last"] {
            let mut tx = rs.transaction(TxInput::default());
            let uri = format!("/?{query}");
            tx.set_request_line(b"GET", uri.as_bytes(), b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            let slow = tx.tx_var("slow").map(<[u8]>::to_vec);
            assert!(slow.is_some(), "{query}");
            assert_eq!(tx.tx_var("fast").map(<[u8]>::to_vec), slow, "{query}");
            assert_eq!(tx.tx_var("negated"), None);
            if query.starts_with('b') {
                assert_eq!(slow.as_deref(), Some(&b"ARGS:b|x\ny\n|x\ny\n"[..]));
            }
        }
    }

    #[test]
    fn lossy_strings_are_the_standard_ones() {
        let cases: [&[u8]; 6] = [
            b"",
            b"Matched Data: 1' UNION SELECT found within ARGS:q",
            "caf\u{e9} \u{2019}".as_bytes(),
            b"bad \xff byte",
            b"cut \xe2\x80",
            b"\xc3\x28 and \xf0\x9f\x98\x80",
        ];
        for b in cases {
            assert_eq!(lossy_string(b), String::from_utf8_lossy(b), "{b:?}");
        }
    }

    /// Macros name the TX keys the rule set numbers by their slots (a key set only at run
    /// time keeps its name), and expand to what the keys hold.
    #[test]
    fn macros_read_numbered_tx_keys_from_their_slots() {
        use crate::macros::Part;
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecAction \"id:1,phase:1,pass,nolog,setvar:tx.known=5,setvar:'tx.k%{tx.known}=x'\"\n\
                 SecRule ARGS \"@rx (b)\" \"id:2,phase:1,pass,capture,\
                   msg:'%{tx.known}/%{tx.1}/%{tx.k5}/%{tx.missing}',\
                   setvar:'tx.copy=%{tx.0}+%{TX.KNOWN}'\"\n",
                "t",
            )
            .unwrap(),
        );
        let msg = rs.rules[1].actions.msg.as_ref().unwrap();
        let slotted = |key: &[u8]| {
            msg.parts.iter().any(
                |p| matches!(p, Part::TxSlot(k, s) if k == key && rs.tx_slots.get(key) == Some(*s)),
            )
        };
        assert!(slotted(b"known") && slotted(b"1"));
        assert!(!slotted(b"k5") && !slotted(b"missing"));
        let mut tx = rs.transaction(TxInput::default());
        tx.record_nolog_matches();
        tx.set_request_line(b"GET", b"/?a=abc", b"HTTP/1.1");
        assert!(tx.process_request_headers().is_none());
        assert_eq!(tx.matched_rules()[1].msg, "5/b/x/");
        assert_eq!(tx.tx_var("copy"), Some(&b"b+5"[..]));
    }

    /// The rule loop's `TX` integer tests, made from the step alone ([`StepTest::TxInt`]),
    /// and the matches of the quiet ones, recorded without the rule, against the same rules
    /// tested by their operators (a `t:trim`, which changes none of the values, keeps them
    /// from being so made), on random comparisons, `TX` values, actions, `skipAfter`s and
    /// removals, with `nolog` matches recorded or not: the same rules match, and leave the
    /// same MATCHED_VARS, MATCHED_VAR, rule running and highest severity.
    #[test]
    fn tx_int_steps_test_as_the_operators_do() {
        const OPS: [&str; 5] = ["lt", "le", "gt", "ge", "eq"];
        const VALUES: [&[u8]; 9] = [b"0", b"1", b"2", b"3", b"-1", b"x", b"", b"40000", b"2z"];
        let mut below = crate::test_rng::below(0x6a09_e667_f3bc_c908);
        let (mut tx_int_steps, mut quiet_steps, mut matched) = (0, 0, 0);
        for round in 0..150 {
            let mut text = [String::new(), String::new()];
            for id in 1..=(5 + below(25) as u32) {
                let phase = 1 + below(2);
                if below(6) == 0 {
                    let target = 1 + below(30);
                    let actions = format!("id:{id},phase:{phase},pass,nolog");
                    let ctl = match below(2) {
                        0 => format!("ruleRemoveById={target}"),
                        _ => format!("ruleRemoveTargetById={target};TX:{}", ["a", "b"][below(2)]),
                    };
                    let rule = format!("SecAction \"{actions},ctl:{ctl}\"\n");
                    text.iter_mut().for_each(|t| t.push_str(&rule));
                    continue;
                }
                if below(8) == 0 {
                    let m = below(3);
                    text.iter_mut()
                        .for_each(|t| t.push_str(&format!("SecMarker M{m}\n")));
                }
                let key = ["a", "b", "c"][below(3)];
                let count = if below(4) == 0 { "&" } else { "" };
                let negated = if below(3) == 0 { "!" } else { "" };
                let (op, k) = (OPS[below(OPS.len())], below(5) as i64 - 1);
                // Most are quiet: they do not log, and have no actions.
                let log = ["nolog", "nolog", "log"][below(3)];
                let mut actions = format!("id:{id},phase:{phase},pass,{log}");
                if below(3) > 0 {
                    actions.push_str(&format!(",skipAfter:M{}", below(3)));
                }
                match below(10) {
                    0 => actions.push_str(",setvar:tx.b=+1"),
                    1 => actions.push_str(",severity:2"),
                    2 => actions.push_str(",skip:1"),
                    _ => {}
                }
                for (t, trim) in text.iter_mut().zip(["", ",t:trim"]) {
                    t.push_str(&format!(
                        "SecRule {count}TX:{key} \"{negated}@{op} {k}\" \"{actions}{trim}\"\n"
                    ));
                }
                if below(2) == 0 {
                    // Logs the MATCHED_VAR_NAME it finds: a `TX` one if the rule before
                    // matched (its own, `MATCHED_VAR_NAME`, otherwise).
                    let probe = format!(
                        "SecRule MATCHED_VAR_NAME \"@rx .\" \"id:{},phase:{phase},pass,log\"\n",
                        1000 + id
                    );
                    text.iter_mut().for_each(|t| t.push_str(&probe));
                }
            }
            let [fast, general] =
                [&text[0], &text[1]].map(|t| Arc::new(RuleSet::from_text(t, "t").unwrap()));
            tx_int_steps += fast.phases[1..=2]
                .iter()
                .flat_map(|p| &p.steps)
                .filter(|s| matches!(s.test, StepTest::TxInt { .. }))
                .count();
            assert!(general.phases[1..=2]
                .iter()
                .flat_map(|p| &p.steps)
                .all(|s| !matches!(s.test, StepTest::TxInt { .. })));
            quiet_steps += fast.phases[1..=2]
                .iter()
                .flat_map(|p| &p.steps)
                .filter(|s| {
                    matches!(s.test, StepTest::TxInt { flags, .. } if flags.has(TxIntFlags::QUIET))
                })
                .count();
            let values: Vec<Option<&[u8]>> = (0..3)
                .map(|_| (below(4) > 0).then(|| VALUES[below(VALUES.len())]))
                .collect();
            let record_nolog = below(4) == 0;
            let run = |rs: &Arc<RuleSet>| {
                let mut tx = rs.transaction(TxInput::default());
                if record_nolog {
                    tx.record_nolog_matches();
                }
                for (key, v) in ["a", "b", "c"].iter().zip(&values) {
                    if let Some(v) = v {
                        tx.set_tx_var(key, v);
                    }
                }
                tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
                let mut states = Vec::new();
                for phase in [1, 2] {
                    assert!(match phase {
                        1 => tx.process_request_headers(),
                        _ => tx.process_request_body(),
                    }
                    .is_none());
                    let list: Vec<Pair> = tx.data.matched.list().cloned().collect();
                    let last = tx.data.matched.last.clone();
                    let severity = tx.data.highest_severity;
                    states.push((tx.data.rule_id, tx.data.rule_idx, list, last, severity));
                }
                let matches: Vec<(u32, String, Vec<u8>)> = tx
                    .matched_rules()
                    .iter()
                    .map(|m| (m.id, m.matched_var_name.clone(), m.matched_var.clone()))
                    .collect();
                (matches, states)
            };
            let (f, g) = (run(&fast), run(&general));
            assert_eq!(f, g, "round {round}: {values:?}\n{}", text[0]);
            matched += f.0.len();
        }
        assert!(
            tx_int_steps > 500,
            "{tx_int_steps} steps tested from the step"
        );
        assert!(quiet_steps > 200, "{quiet_steps} quiet steps");
        assert!(matched > 200, "{matched} matches");
    }

    /// The rule loop (its markers left out of the steps, `skip` a jump, the steps a
    /// group bit rules out passed over in a loop of their own) against a plain walk over the
    /// rules and markers as written, on random rule sets of grouped, negated and ungrouped
    /// rules with `skip` and `skipAfter`, and random arguments.
    #[test]
    fn rule_loop_follows_skips_and_markers_as_written() {
        const WORDS: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
        enum Item {
            Marker(usize),
            Rule {
                id: u32,
                phase: u8,
                /// The word its `@rx` (or `!@rx`) looks for; `None` for a `SecAction`.
                test: Option<(usize, bool)>,
                skip: usize,
                skip_after: Option<usize>,
            },
        }
        let mut below = crate::test_rng::below(0x2545_f491_4f6c_dd1d);
        for _ in 0..60 {
            let mut items = Vec::new();
            let mut text = String::from("SecRuleEngine DetectionOnly\n");
            for id in 1..=(10 + below(30) as u32) {
                if below(5) == 0 {
                    let m = below(4);
                    text.push_str(&format!("SecMarker M{m}\n"));
                    items.push(Item::Marker(m));
                }
                let phase = 1 + below(2) as u8;
                let test = (below(6) != 0).then(|| (below(WORDS.len()), below(5) == 0));
                let (skip, skip_after) = match below(6) {
                    0 => (1 + below(3), None),
                    1 => (0, Some(below(4))),
                    _ => (0, None),
                };
                let mut actions = format!("id:{id},phase:{phase},pass,log");
                if skip > 0 {
                    actions.push_str(&format!(",skip:{skip}"));
                }
                if let Some(m) = skip_after {
                    actions.push_str(&format!(",skipAfter:M{m}"));
                }
                // Transformations vary the groups the rules fall in.
                let t = [",t:none", ",t:lowercase", ",t:none,t:urlDecodeUni"][below(3)];
                match test {
                    Some((w, negated)) => text.push_str(&format!(
                        "SecRule ARGS \"{}@rx {}\" \"{actions}{t}\"\n",
                        if negated { "!" } else { "" },
                        WORDS[w]
                    )),
                    None => text.push_str(&format!("SecAction \"{actions}\"\n")),
                }
                items.push(Item::Rule {
                    id,
                    phase,
                    test,
                    skip,
                    skip_after,
                });
            }
            let rs = Arc::new(RuleSet::from_text(&text, "t").unwrap());
            for _ in 0..4 {
                let values: Vec<&str> = (0..1 + below(3))
                    .map(|_| {
                        if below(3) == 0 {
                            "zulu"
                        } else {
                            WORDS[below(WORDS.len())]
                        }
                    })
                    .collect();
                let query: Vec<String> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("a{i}={v}"))
                    .collect();
                let uri = format!("/?{}", query.join("&"));
                let mut want = Vec::new();
                for phase in [1, 2] {
                    let steps: Vec<&Item> = items
                        .iter()
                        .filter(|it| match it {
                            Item::Marker(_) => true,
                            Item::Rule { phase: p, .. } => *p == phase,
                        })
                        .collect();
                    let (mut i, mut skip) = (0, 0);
                    while i < steps.len() {
                        let Item::Rule {
                            id,
                            test,
                            skip: n,
                            skip_after,
                            ..
                        } = steps[i]
                        else {
                            i += 1;
                            continue;
                        };
                        i += 1;
                        if skip > 0 {
                            skip -= 1;
                            continue;
                        }
                        let matches = match *test {
                            None => true,
                            Some((w, false)) => values.iter().any(|v| *v == WORDS[w]),
                            Some((w, true)) => values.iter().any(|v| *v != WORDS[w]),
                        };
                        if !matches {
                            continue;
                        }
                        want.push(*id);
                        match skip_after {
                            Some(m) => {
                                i = (i..steps.len())
                                    .find(|&j| matches!(steps[j], Item::Marker(x) if x == m))
                                    .map_or(steps.len(), |j| j + 1)
                            }
                            None => skip = *n,
                        }
                    }
                }
                let mut tx = rs.transaction(TxInput::default());
                tx.set_request_line(b"GET", uri.as_bytes(), b"HTTP/1.1");
                assert!(tx.process_request_headers().is_none());
                assert!(tx.process_request_body().is_none());
                let got: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
                assert_eq!(got, want, "{text}{uri}");
            }
        }
    }

    /// A match of a rule that does not log is recorded only when asked for; what it sets
    /// (HIGHEST_SEVERITY here) is set either way, and a `skipAfter` it has is taken.
    #[test]
    fn nolog_matches_are_recorded_when_asked_for() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx a\" \"id:1,phase:1,pass,nolog,severity:2,skipAfter:END\"\n\
                 SecAction \"id:2,phase:1,pass,log,setvar:tx.skipped=1\"\n\
                 SecMarker END\n\
                 SecRule ARGS \"@rx a\" \"id:3,phase:1,pass,log,setvar:tx.sev=%{HIGHEST_SEVERITY}\"\n",
                "t",
            )
            .unwrap(),
        );
        for record in [false, true] {
            let mut tx = rs.transaction(TxInput::default());
            if record {
                tx.record_nolog_matches();
            }
            tx.set_request_line(b"GET", b"/?x=a", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            tx.process_logging();
            let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
            assert_eq!(ids, if record { vec![1, 3] } else { vec![3] });
            let logged: Vec<u32> = tx.logged().map(|m| m.id).collect();
            assert_eq!(logged, [3]);
            assert_eq!(tx.tx_var("sev"), Some(&b"2"[..]));
            assert_eq!(tx.tx_var("skipped"), None);
        }
    }

    /// Counts, lengths and ports read as their decimal text.
    #[test]
    fn numeric_variables_read_as_decimal_text() {
        let vars = [
            ("ARGS_COMBINED_SIZE", 2, "6"),
            ("REQUEST_BODY_LENGTH", 2, "4"),
            ("FILES_COMBINED_SIZE", 2, "0"),
            ("REMOTE_PORT", 2, "51000"),
            ("SERVER_PORT", 2, "8080"),
            ("HIGHEST_SEVERITY", 2, "255"),
            ("RESPONSE_STATUS", 3, "418"),
        ];
        let mut text = String::from("SecRuleEngine DetectionOnly\nSecRequestBodyAccess On\n");
        for (i, (var, phase, _)) in vars.iter().enumerate() {
            text.push_str(&format!(
                "SecRule {var} \"@unconditionalMatch\" \"id:{},phase:{phase},pass,nolog,\
                 setvar:'tx.{var}=%{{MATCHED_VAR}}'\"\n",
                i + 1
            ));
        }
        let rs = Arc::new(RuleSet::from_text(&text, "t").unwrap());
        let mut tx = rs.transaction(TxInput {
            remote_port: 51000,
            server_port: 8080,
            ..TxInput::default()
        });
        tx.set_request_line(b"POST", b"/?ab=c", b"HTTP/1.1");
        tx.add_request_header(b"Content-Type", b"application/x-www-form-urlencoded");
        assert!(tx.process_request_headers().is_none());
        tx.append_request_body(b"x=yz");
        assert!(tx.process_request_body().is_none());
        tx.set_response_status(418, b"HTTP/1.1");
        assert!(tx.process_response_headers().is_none());
        for (var, _, want) in vars {
            assert_eq!(tx.tx_var(var), Some(want.as_bytes()), "{var}");
        }
    }

    /// CRS v4's blocking scores, else v3's, else 0.
    #[test]
    fn anomaly_scores_read_v4_then_v3_keys() {
        let scores = |actions: &str| {
            let text = format!("SecAction \"id:1,phase:1,pass,nolog{actions}\"\n");
            let rs = Arc::new(RuleSet::from_text(&text, "t").unwrap());
            let mut tx = rs.transaction(TxInput::default());
            tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            let s = tx.anomaly_scores();
            (s.inbound, s.outbound)
        };
        assert_eq!(scores(""), (0, 0));
        assert_eq!(
            scores(",setvar:tx.inbound_anomaly_score=3,setvar:TX.OUTBOUND_ANOMALY_SCORE=4"),
            (3, 4)
        );
        assert_eq!(
            scores(
                ",setvar:tx.inbound_anomaly_score=3,setvar:tx.blocking_inbound_anomaly_score=8,\
                 setvar:tx.blocking_outbound_anomaly_score=+2"
            ),
            (8, 2)
        );
    }

    /// Captures are written to slots 0..9 without looking their keys up: those must be
    /// the slots of TX:0..TX:9, in every rule set.
    #[test]
    fn capture_groups_are_the_first_tx_slots() {
        for text in [
            "",
            "SecAction \"id:1,phase:1,pass,setvar:tx.a=1,setvar:tx.12=2\"\n",
        ] {
            let rs = RuleSet::from_text(text, "t").unwrap();
            for i in 0..10u8 {
                assert_eq!(rs.tx_slots.get(&[b'0' + i]), Some(u32::from(i)), "{text}");
            }
        }
    }

    #[test]
    fn slot_setvars_agree_with_the_general_path() {
        // Each `setvar` twice: on a literal key (planned as a slot setvar) and on a key
        // named through a macro (run by `exec`), from the same starting values.
        let ops = [
            "=5",
            "=+3",
            "=-2",
            "=+%{tx.k}",
            "=-%{tx.k}",
            "=abc",
            "=+x9",
            "=",
            "DEL",
        ];
        let mut text = String::from("SecRuleEngine DetectionOnly\n");
        for (i, op) in ops.iter().enumerate() {
            for (kind, key) in [("f", format!("f_{i}")), ("s", format!("%{{tx.pfx}}s_{i}"))] {
                let id = 2 * i + usize::from(kind == "s") + 1;
                let setvar = match *op {
                    "DEL" => format!("setvar:!tx.{key}"),
                    op => format!("setvar:tx.{key}{op}"),
                };
                text.push_str(&format!(
                    "SecAction \"id:{id},phase:1,pass,nolog,{setvar}\"\n"
                ));
            }
        }
        text.push_str(
            "SecAction \"id:999,phase:1,pass,nolog,setvar:tx.other=1,ctl:ruleRemoveById=5\"\n",
        );
        let rs = Arc::new(RuleSet::from_text(&text, "t").unwrap());
        for r in &rs.rules {
            let slots = matches!(r.execs, ExecPlan::Slots { .. });
            assert_eq!(slots, r.id % 2 == 1 && r.id != 999, "rule {}", r.id);
        }
        let starts: [Option<&[u8]>; 4] = [None, Some(b"7"), Some(b"-4x"), Some(b"")];
        let mut changed = 0;
        for start in starts {
            for k in starts {
                let mut tx = rs.transaction(TxInput::default());
                tx.set_tx_var("pfx", b"");
                if let Some(k) = k {
                    tx.set_tx_var("k", k);
                }
                for i in 0..ops.len() {
                    if let Some(v) = start {
                        tx.set_tx_var(&format!("f_{i}"), v);
                        tx.set_tx_var(&format!("s_{i}"), v);
                    }
                }
                tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
                assert!(tx.process_request_headers().is_none());
                for (i, op) in ops.iter().enumerate() {
                    let fast = tx.tx_var(&format!("f_{i}")).map(<[u8]>::to_vec);
                    let slow = tx.tx_var(&format!("s_{i}")).map(<[u8]>::to_vec);
                    assert_eq!(fast, slow, "{op} from {start:?}, k {k:?}");
                    changed += usize::from(fast.as_deref() != start);
                }
            }
        }
        assert!(changed > 0);
    }

    /// `setvar` adding or subtracting one TX key reads the key's integer from its slot; it
    /// must give what expanding the macro and reading the text gives (written so that it
    /// is expanded), for unset keys and values read oddly.
    #[test]
    fn setvar_operands_read_from_slots_as_when_expanded() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecAction \"id:1,phase:1,pass,nolog,setvar:tx.add=10,setvar:tx.add_x=10,\
                   setvar:tx.add=+%{tx.d},setvar:tx.add_x=+%{tx.d}%{tx.unset},\
                   setvar:tx.sub=-%{tx.d},setvar:tx.sub_x=-%{tx.d}%{tx.unset},\
                   setvar:tx.d=+%{tx.d},setvar:tx.d_x=%{tx.d}\"\n",
                "t",
            )
            .unwrap(),
        );
        let Exec::SetVar(sv) = &rs.rules[0].actions.exec[2] else {
            panic!("not a setvar");
        };
        assert!(sv.operand_slot.is_some());
        let values: [Option<&[u8]>; 6] = [
            None,
            Some(b"3"),
            Some(b" -4x"),
            Some(b"abc"),
            Some(b""),
            Some(b"99999999999999999999"),
        ];
        for value in values {
            let mut tx = rs.transaction(TxInput::default());
            if let Some(v) = value {
                tx.set_tx_var("d", v);
            }
            tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            for key in ["add", "sub"] {
                let fast = tx.tx_var(key).map(<[u8]>::to_vec);
                assert!(fast.is_some());
                let slow = tx.tx_var(&format!("{key}_x")).map(<[u8]>::to_vec);
                assert_eq!(fast, slow, "{key}, {value:?}");
            }
            let doubled = parse_int(value.unwrap_or_default()).saturating_mul(2);
            assert_eq!(tx.tx_var("d_x"), Some(doubled.to_string().as_bytes()));
        }
    }

    /// Rules removed at run time by id, tag or message are skipped from then on, and only
    /// those: each removal alone must take effect.
    #[test]
    fn run_time_rule_removals_skip_the_rules_they_name() {
        let removals = [
            ("ctl:ruleRemoveById=2", 2),
            ("ctl:ruleRemoveByTag=t3", 3),
            ("ctl:ruleRemoveByMsg=m4", 4),
        ];
        for (ctl, removed) in removals {
            let rs = Arc::new(
                RuleSet::from_text(
                    &format!(
                        "SecRuleEngine On\n\
                         SecAction \"id:1,phase:1,pass,nolog,{ctl}\"\n\
                         SecAction \"id:2,phase:1,pass,nolog,setvar:tx.ran_2=1\"\n\
                         SecAction \"id:3,phase:1,pass,nolog,tag:t3,setvar:tx.ran_3=1\"\n\
                         SecAction \"id:4,phase:1,pass,nolog,msg:m4,setvar:tx.ran_4=1\"\n"
                    ),
                    "t",
                )
                .unwrap(),
            );
            let mut tx = rs.transaction(TxInput::default());
            tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
            assert!(tx.process_request_headers().is_none());
            for id in 2..=4 {
                let ran = tx.tx_var(&format!("ran_{id}")).is_some();
                assert_eq!(ran, id != removed, "{ctl}: rule {id}");
            }
        }
    }

    /// A link planned as [`ExecPlan::CaptureSetVar`] (CRS 920450's shape) leaves the TX
    /// collection, TX:0-9, MATCHED_VAR(S) and the outcome of its chain as the general path
    /// does, for random header names: upper case, non-ASCII bytes, duplicates, empty ones,
    /// names alike once lower-cased; and for links whose values have too few groups. The
    /// general path asks its `@rx` of each value too: `^.*$|^$` (the same matches) is not
    /// taken for a pattern that matches every value whole.
    #[test]
    fn capture_setvars_agree_with_the_general_path() {
        let text = "SecRuleEngine DetectionOnly\n\
             SecRule REQUEST_HEADERS_NAMES \"@rx ^.*$\" \"id:1,phase:1,pass,capture,\
               t:none,t:lowercase,setvar:'tx.header_name_1_%{tx.0}=/%{tx.0}/',chain\"\n\
               SecRule TX:/^header_name_1_/ \"@within /x-b/ /content-type/ /\u{e4}/\" \
               \"setvar:'tx.restricted=+1'\"\n\
             SecAction \"id:2,phase:1,pass,nolog,setvar:tx.mv=%{MATCHED_VAR},\
               setvar:tx.mvn=%{MATCHED_VAR_NAME}\"\n\
             SecRule REQUEST_HEADERS_NAMES \"@rx ^(.)(.*)$\" \"id:3,phase:1,pass,capture,\
               setvar:'tx.Pair_%{tx.2}_%{tx.1}=%{tx.0}|%{tx.1}'\"\n\
             SecRule REQUEST_HEADERS_NAMES \"@beginsWith x\" \"id:4,phase:1,pass,capture,\
               t:lowercase,setvar:'tx.begins_%{tx.0}=%{tx.1}'\"\n\
             SecRule REQUEST_HEADERS_NAMES \"@rx ^([a-c])?(.?)\" \"id:5,phase:1,pass,capture,\
               setvar:'tx.opt_%{tx.1}=%{tx.2}'\"\n\
             SecRule REQUEST_HEADERS_NAMES \"@detectSQLi\" \"id:6,phase:1,pass,capture,\
               t:lowercase,setvar:'tx.sqli_%{tx.0}=%{tx.0}'\"\n\
             SecRule REQUEST_HEADERS_NAMES \"!@rx ^.*$\" \"id:7,phase:1,pass,capture,\
               setvar:'tx.never_%{tx.0}=1'\"\n";
        let fast = Arc::new(RuleSet::from_text(text, "t").unwrap());
        let general_text = text.replace("@rx ^.*$\"", "@rx ^.*$|^$\"");
        let mut general = RuleSet::from_text(&general_text, "t").unwrap();
        assert!(fast.rules[0].captures_whole && !general.rules[0].captures_whole);
        for r in &mut general.rules {
            if matches!(r.execs, ExecPlan::CaptureSetVar { .. }) {
                r.execs = ExecPlan::General;
            }
        }
        let general = Arc::new(general);
        let planned: Vec<u32> = (fast.rules.iter())
            .filter(|r| matches!(r.execs, ExecPlan::CaptureSetVar { .. }))
            .map(|r| r.id)
            .collect();
        assert_eq!(planned, [1, 3, 4, 5, 6, 7]);
        // Only rule 1's groups are lower case already (`@rx` after `t:lowercase`).
        let lowered: Vec<u32> = (fast.rules.iter())
            .filter(|r| {
                matches!(
                    r.execs,
                    ExecPlan::CaptureSetVar {
                        lower_groups: false,
                        ..
                    }
                )
            })
            .map(|r| r.id)
            .collect();
        assert_eq!(lowered, [1]);
        let pieces: [&[u8]; 14] = [
            b"X-B",
            b"x-b",
            b"Content-Type",
            b"CONTENT-type",
            b"\xc3\xa4",
            b"\xc3\x84",
            b"\xff",
            b"",
            b"a",
            b"B",
            b"c-",
            b"_",
            b"1' UNION SELECT 1",
            b"' oR 1=1-- ",
        ];
        let mut below = crate::test_rng::below(0x3c6e_f372_fe94_f82b);
        let (mut restricted, mut sqli) = (0, 0);
        for round in 0..400 {
            let mut names = Vec::new();
            for _ in 0..below(8) {
                let mut name = Vec::new();
                for _ in 0..1 + below(2) {
                    name.extend_from_slice(pieces[below(pieces.len())]);
                }
                names.push(name);
            }
            let groups: Vec<Option<Vec<u8>>> = (0..4)
                .map(|_| (below(3) > 0).then(|| pieces[below(pieces.len())].to_vec()))
                .collect();
            let run = |rs: &Arc<RuleSet>| {
                let mut tx = rs.transaction(TxInput::default());
                for (i, g) in groups.iter().enumerate() {
                    if let Some(g) = g {
                        tx.set_tx_var(&i.to_string(), g);
                    }
                }
                tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
                for n in &names {
                    tx.add_request_header(n, b"v");
                }
                assert!(tx.process_request_headers().is_none());
                let mut vars = Vec::new();
                tx.each_tx_var(&mut |k, v| vars.push((k.to_vec(), v.to_vec())));
                let matched: Vec<Pair> = tx.data.matched.list().cloned().collect();
                let last = tx.data.matched.last.clone();
                let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
                (vars, matched, last, ids)
            };
            let (f, g) = (run(&fast), run(&general));
            assert_eq!(f, g, "round {round}: {names:?}");
            restricted += usize::from(f.3.contains(&1));
            sqli += usize::from(f.3.contains(&6));
        }
        assert!(restricted > 0, "the chain matched in some rounds");
        assert!(sqli > 0, "@detectSQLi matched in some rounds");
    }

    /// A link's `setvar`s run once for each value it matched, each seeing that value's
    /// captures and MATCHED_VAR, as ModSecurity runs them (CRS 920450 names a TX key after
    /// each header; a rule matching three values adds its score three times).
    #[test]
    fn setvars_run_once_per_matched_value() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx ^(a[a-z]*)\" \"id:1,phase:1,pass,nolog,capture,\
                   setvar:'tx.seen_%{tx.1}=%{MATCHED_VAR_NAME}'\"\n\
                 SecRule ARGS \"@rx ^[a-z]+$\" \"id:2,phase:1,pass,nolog,setvar:tx.words=+5\"\n\
                 SecRule ARGS_NAMES \"@rx .\" \"id:3,phase:1,pass,nolog,setvar:tx.names=+1,chain\"\n\
                   SecRule TX:nothing \"@eq 1\" \"t:none\"\n\
                 SecRule ARGS:only \"@rx .\" \"id:4,phase:1,pass,nolog,setvar:tx.only=+1\"\n",
                "t",
            )
            .unwrap(),
        );
        // Both plans: a setvar with macros runs through the actions, literal ones by slot.
        assert_eq!(rs.rules[0].execs, ExecPlan::General);
        assert!(matches!(rs.rules[1].execs, ExecPlan::Slots { .. }));
        let (tx, _) = phase1_hit(&rs, "x=abc&y=def&z=axe&only=1");
        assert_eq!(tx.tx_var("seen_abc"), Some(&b"ARGS:x"[..]));
        assert_eq!(tx.tx_var("seen_axe"), Some(&b"ARGS:z"[..]));
        assert_eq!(tx.tx_var("seen_def"), None);
        // TX:1 holds the last value's capture, as if the link had run once.
        assert_eq!(tx.tx_var("1"), Some(&b"axe"[..]));
        assert_eq!(tx.tx_var("words"), Some(&b"15"[..]));
        // The first link of a chain that fails ran its setvar for each name all the same.
        assert_eq!(tx.tx_var("names"), Some(&b"4"[..]));
        assert_eq!(tx.tx_var("only"), Some(&b"1"[..]));
    }

    /// A positive `@rx` reads `^`/`$` at line breaks too (as ModSecurity v3 and Coraza), a
    /// negated one only at the value's ends (as ModSecurity v2): a value ending in a newline
    /// does not step around an anchored detection (CRS 932340 on `time who%0a`), nor does a
    /// well-formed first line pass a whole value (`abc%0a--` through `!@rx ^\w+$`). Operators
    /// built per transaction (macros) read them the same way.
    #[test]
    fn positive_rx_anchors_at_lines_negated_at_the_value() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecAction \"id:1,phase:1,pass,nolog,setvar:tx.word=^\\w+$\"\n\
                 SecRule ARGS \"@rx ^who$\" \"id:2,phase:1,pass,nolog,setvar:tx.who=+1\"\n\
                 SecRule ARGS \"!@rx ^\\w+$\" \"id:3,phase:1,pass,nolog,setvar:tx.odd=+1\"\n\
                 SecRule ARGS \"@rx %{tx.word}\" \"id:4,phase:1,pass,nolog,setvar:tx.dyn_word=+1\"\n\
                 SecRule ARGS \"!@rx %{tx.word}\" \"id:5,phase:1,pass,nolog,setvar:tx.dyn_odd=+1\"\n\
                 SecRule ARGS \"@rx \\Awho\\z\" \"id:6,phase:1,pass,nolog,setvar:tx.exact=+1\"\n",
                "t",
            )
            .unwrap(),
        );
        let (tx, _) = phase1_hit(&rs, "a=who&b=x%0awho&c=who%0ax&d=abc%0a--&e=abc");
        // `who`, the second line of b, the first line of c.
        assert_eq!(tx.tx_var("who"), Some(&b"3"[..]));
        // Not a word as a whole: b, c, d.
        assert_eq!(tx.tx_var("odd"), Some(&b"3"[..]));
        // A line that is a word: a, b, c, d (`abc`), e.
        assert_eq!(tx.tx_var("dyn_word"), Some(&b"5"[..]));
        assert_eq!(tx.tx_var("dyn_odd"), Some(&b"3"[..]));
        // `\A` and `\z` are the value's ends whatever the reading.
        assert_eq!(tx.tx_var("exact"), Some(&b"1"[..]));
    }

    /// A link's `ctl`s and `setenv`s run only when the whole chain matched, deepest link
    /// first, as ModSecurity v3 runs them: an exclusion on a chain's first link, chained to
    /// a client address, leaves other clients' requests to the rule it removes. Its
    /// `setvar`s still run as it matches, for the links after it to read.
    #[test]
    fn ctl_and_setenv_wait_for_the_whole_chain() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine On\n\
                 SecRule REQUEST_URI \"@beginsWith /api\" \"id:1,phase:1,pass,nolog,\
                   ctl:ruleRemoveById=9,setenv:excluded=1,setvar:tx.api=1,chain\"\n\
                   SecRule TX:api \"@eq 1\" \"chain\"\n\
                   SecRule REMOTE_ADDR \"@ipMatch 10.0.0.0/8\" \"ctl:ruleEngine=DetectionOnly\"\n\
                 SecRule REQUEST_URI \"@beginsWith /api/v2\" \"id:2,phase:1,pass,nolog,\
                   ctl:ruleEngine=Off,chain\"\n\
                   SecRule REMOTE_ADDR \"@ipMatch 10.0.0.0/8\" \"ctl:ruleEngine=DetectionOnly\"\n\
                 SecRule ARGS \"@contains attack\" \"id:9,phase:2,deny,status:403,log\"\n",
                "t",
            )
            .unwrap(),
        );
        let run = |path: &str, addr: &str| {
            let mut tx = rs.transaction(TxInput {
                remote_addr: addr.into(),
                ..TxInput::default()
            });
            tx.set_request_line(b"GET", format!("{path}?x=attack").as_bytes(), b"HTTP/1.1");
            let iv = tx
                .process_request_headers()
                .or_else(|| tx.process_request_body())
                .map(|iv| iv.status);
            let env = tx.data.env.get(b"excluded").map(<[u8]>::to_vec);
            (iv, tx.engine_mode(), env, tx.tx_var("api").is_some())
        };
        // From outside: the chain fails at its last link; nothing of it but the setvar ran.
        assert_eq!(
            run("/api/x", "192.0.2.1"),
            (Some(403), EngineMode::On, None, true)
        );
        // From inside: rule 9 removed, the environment set, the last link's ctl run.
        assert_eq!(
            run("/api/x", "10.1.2.3"),
            (None, EngineMode::DetectionOnly, Some(b"1".to_vec()), true)
        );
        // Rule 2 runs its last link's ctl first, then its first link's: Off stays.
        assert_eq!(run("/api/v2", "10.1.2.3").1, EngineMode::Off);
    }

    /// A `multiMatch` link matches once for each form of a value that matches: the raw
    /// value and each transformation's result that differs from the one before, as
    /// ModSecurity counts them (CRS 930110 on `.../.../WINDOWS/win.ini` scores twice per
    /// value: as sent and lower-cased).
    #[test]
    fn multi_match_counts_each_form_that_matches() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx a\" \"id:1,phase:1,pass,nolog,multiMatch,\
                   t:none,t:lowercase,t:urlDecode,setvar:tx.forms=+1\"\n",
                "t",
            )
            .unwrap(),
        );
        // x: not as sent, then lower-cased and decoded; y: as sent only (no change).
        let (tx, _) = phase1_hit(&rs, "x=A%2561&y=abc&z=QQ");
        assert_eq!(tx.tx_var("forms"), Some(&b"3"[..]));
    }

    /// A `setvar` name built at run time that no numbered key can be goes straight to the
    /// run-time keys; one that could be (a key some rule names) still finds its slot, where
    /// the rules reading that key look. Sets, additions and deletions alike.
    #[test]
    fn run_time_names_find_the_slots_they_could_be() {
        let rs = Arc::new(
            RuleSet::from_text(
                "SecRuleEngine DetectionOnly\n\
                 SecRule ARGS \"@rx ^(.*)$\" \"id:1,phase:1,pass,capture,\
                   setvar:'tx.k_%{tx.1}_v=%{tx.1}',setvar:'tx.n_%{tx.1}=+2',\
                   setvar:'tx.n_%{tx.1}=+3'\"\n\
                 SecRule ARGS:b \"@rx ^(.*)$\" \"id:2,phase:1,pass,capture,\
                   setvar:'!tx.n_%{tx.1}',setvar:'!tx.k_%{tx.1}_v'\"\n\
                 SecRule TX:k_Num_v \"@streq NUM\" \"id:3,phase:1,pass,\
                   setvar:'tx.hit=%{tx.k_num_v}',setvar:'tx.k_v=short'\"\n",
                "t",
            )
            .unwrap(),
        );
        let unnumbered: Vec<(String, bool)> = rs
            .rules
            .iter()
            .flat_map(|r| &r.actions.exec)
            .filter_map(|e| match e {
                Exec::SetVar(sv) => Some((
                    String::from_utf8_lossy(sv.name.literal_ends().0).into_owned(),
                    sv.unnumbered,
                )),
                _ => None,
            })
            .collect();
        let expected = [
            ("k_", false),
            ("n_", true),
            ("n_", true),
            ("n_", true),
            ("k_", false),
            ("hit", false),
            ("k_v", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|&(n, u)| (n.to_string(), u)).collect();
        assert_eq!(unnumbered, expected);
        let (tx, hit) = phase1_hit(&rs, "a=NUM&b=x/Y&c=&d=%C3%A9");
        assert_eq!(hit.as_deref(), Some("NUM"), "k_num_v is in its slot");
        let mut all = Vec::new();
        tx.each_tx_var(&mut |k, v| {
            if !k.starts_with(b"k_") && !k.starts_with(b"n_") {
                return;
            }
            all.push(format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            ))
        });
        assert_eq!(
            all,
            [
                "k__v=",
                "k_num_v=NUM",
                "k_v=short",
                "k_\u{e9}_v=\u{e9}",
                "n_=5",
                "n_num=5",
                "n_\u{e9}=5"
            ]
        );
        assert_eq!(tx.tx_var("n_x/y"), None);
        assert_eq!(tx.tx_var("k_x/y_v"), None);
    }
}
