//! Loading: directives → rules, compiled once into a [`RuleSet`] that many transactions
//! share through an `Arc`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::actions::{Actions, Disruptive, EngineMode, Exec, IdRange, SetVarOp};
use crate::error::LoadError;
use crate::macros::{Macro, Part};
use crate::operators::BuildContext;
use crate::parser::{parse_directives, Directive};
use crate::prefilter::Prefilter;
use crate::rule::{
    parse_operator, Amount, ChainTable, ExecPlan, IntOp, ParsedOperator, Rule, RuleOperator,
    SlotOp, SlotSetVar, TxKeyTest,
};
use crate::store::SlotTable;
use crate::transaction::{write_var_name, SetupSnapshot};
use crate::variables::{add_exclusion, parse_targets, parse_var_ref, Selector, Var};

/// Engine-wide settings from `Sec*` directives.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub engine: EngineMode,
    pub request_body_access: bool,
    pub response_body_access: bool,
    pub response_body_mime_types: Vec<String>,
    pub request_body_limit: usize,
    pub request_body_no_files_limit: usize,
    /// `SecRequestBodyLimitAction Reject` (else `ProcessPartial`).
    pub request_body_limit_reject: bool,
    pub response_body_limit: usize,
    pub response_body_limit_reject: bool,
    pub arguments_limit: usize,
    pub component_signatures: Vec<String>,
    pub collection_timeout: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            // A loaded rule set evaluates; blocking needs an explicit `SecRuleEngine On`.
            engine: EngineMode::DetectionOnly,
            request_body_access: true,
            response_body_access: false,
            response_body_mime_types: vec!["text/plain".into(), "text/html".into()],
            request_body_limit: 13_107_200,
            request_body_no_files_limit: 131_072,
            request_body_limit_reject: true,
            response_body_limit: 524_288,
            response_body_limit_reject: true,
            arguments_limit: 1000,
            component_signatures: Vec::new(),
            collection_timeout: 3600,
        }
    }
}

/// One position in a phase's rule list, as the rule set is built (and the prefilter reads
/// it); transactions run the packed [`PhaseSteps`] made from it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// Rule index, and where its `skipAfter` lands (index of the step after the marker).
    Rule {
        rule: usize,
        skip_after: Option<usize>,
    },
    Marker,
}

/// An entry of [`PhaseSteps::skip_after`] for a rule without `skipAfter`.
pub(crate) const NO_SKIP_AFTER: u32 = u32::MAX;

/// What the rule loop reads of a step before it needs the rule itself, packed in 16 bytes
/// (four to a cache line): a step the prefilter rules out, or whose `TX` integer test
/// fails, never touches the [`Rule`], whose fields lie far apart in a struct of several
/// cache lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PhaseStep {
    /// Index in `RuleSet::rules`.
    pub rule: u32,
    pub test: StepTest,
}

const _: () = assert!(std::mem::size_of::<PhaseStep>() == 16);

/// What decides, before the rule is read, whether a step's rule can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepTest {
    /// A member of a prefilter group whose first operator is not negated: an unset group
    /// bit passes over the step (what the rule loop's scan for the next step to run reads).
    /// The bit's fields inline, not a [`GroupBit`]: the tag then fits beside `bit`.
    Member {
        group: u32,
        word: u32,
        bit: u8,
    },
    /// A negated member: an unset bit means its first operator matches no value, so that
    /// it holds for every value.
    NegatedMember {
        group: u32,
        word: u32,
        bit: u8,
    },
    /// A first link that compares a `TX:key`'s integer (or, `count`, whether it is set),
    /// as `Transaction::tx_int_holds` reads it: most steps a benign CRS request runs (the
    /// paranoia-level gates), half of which fail without reading the rule. The comparison
    /// is whether the integer is at most `bound` (or, [`TxIntFlags::EQUAL`], equal to it),
    /// unless [`TxIntFlags::NEGATED`] (`@lt 2` is `<= 1`, `@ge 2` not `<= 1`). `id`: the
    /// rule's, which a failed test names the rule running; `name_at`: where its
    /// MATCHED_VAR_NAME starts in `RuleSet::tx_key_names`, if [`TxIntFlags::QUIET`].
    TxInt {
        id: u32,
        slot: u16,
        bound: i16,
        name_at: u16,
        flags: TxIntFlags,
    },
    Other,
}

/// A [`StepTest::TxInt`]'s booleans, in one byte: the step keeps to 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxIntFlags(pub u8);

impl TxIntFlags {
    /// The integer is compared for equality, not for being at most the bound.
    pub const EQUAL: u8 = 1;
    /// The link counts the key (`&TX:key`): 1 if it is set, else 0.
    pub const COUNT: u8 = 2;
    /// The comparison's outcome is negated.
    pub const NEGATED: u8 = 4;
    /// A match does nothing but record MATCHED_VARS (a single link without actions, that
    /// does not log, disrupt, score severity or `skip`) and follow its `skipAfter`: the
    /// paranoia-level gates that match (35 of a benign CRS GET's steps), run without the
    /// rule.
    pub const QUIET: u8 = 8;

    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

/// Where a group member's bit is: word `word` of a transaction's group bits (the group's
/// row, then the member's word in it), bit `bit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupBit {
    pub group: u32,
    pub word: u32,
    pub bit: u8,
}

impl StepTest {
    fn of(rule: &Rule, member: Option<GroupBit>) -> StepTest {
        if let Some(GroupBit { group, word, bit }) = member {
            return match rule.negated {
                false => StepTest::Member { group, word, bit },
                true => StepTest::NegatedMember { group, word, bit },
            };
        }
        let (Some(t), Some(cmp)) = (&rule.tx_key, rule.int_cmp) else {
            return StepTest::Other;
        };
        let k = i64::from(cmp.operand);
        let (bound, equal, flipped) = match cmp.op {
            IntOp::Lt => (k - 1, false, false),
            IntOp::Le => (k, false, false),
            IntOp::Gt => (k, false, true),
            IntOp::Ge => (k - 1, false, true),
            IntOp::Eq => (k, true, false),
        };
        let name_at = u16::try_from(t.name_start).ok();
        let quiet = rule.chained.is_none()
            && rule.execs == ExecPlan::None
            && rule.actions.exec.is_empty()
            && !rule.chain_others
            && !(rule.log && rule.id != 0)
            && rule.on_match == Disruptive::Pass
            && rule.severity.is_none()
            && rule.skip == 0
            && name_at.is_some();
        let flags = [
            (equal, TxIntFlags::EQUAL),
            (t.count, TxIntFlags::COUNT),
            (rule.negated != flipped, TxIntFlags::NEGATED),
            (quiet, TxIntFlags::QUIET),
        ];
        let flags = flags
            .iter()
            .filter(|(on, _)| *on)
            .fold(0, |f, (_, b)| f | b);
        // The few that do not fit are tested with the rule (no CRS rule).
        match (u16::try_from(t.slot), i16::try_from(bound)) {
            (Ok(slot), Ok(bound)) => StepTest::TxInt {
                id: rule.id,
                slot,
                bound,
                name_at: name_at.unwrap_or(0),
                flags: TxIntFlags(flags),
            },
            _ => StepTest::Other,
        }
    }

    /// The step's group and bit, if its rule is a prefilter group member.
    pub fn member(self) -> Option<GroupBit> {
        match self {
            StepTest::Member { group, word, bit }
            | StepTest::NegatedMember { group, word, bit } => Some(GroupBit { group, word, bit }),
            _ => None,
        }
    }
}

/// A phase's rule steps (its markers left out: they do nothing but name where a
/// `skipAfter` lands), and where each rule's `skipAfter` lands (index of the first step
/// after the marker, or [`NO_SKIP_AFTER`]): read only after a match, so kept out of the
/// steps.
#[derive(Debug, Default)]
pub(crate) struct PhaseSteps {
    pub steps: Vec<PhaseStep>,
    pub skip_after: Vec<u32>,
}

impl PhaseSteps {
    fn pack(steps: &[Step], rules: &[Rule], prefilter: &Prefilter) -> PhaseSteps {
        // By index in `steps` (and its end): the index of the first rule step from there.
        let mut packed_at = Vec::with_capacity(steps.len() + 1);
        let mut n = 0u32;
        for s in steps {
            packed_at.push(n);
            n += u32::from(matches!(s, Step::Rule { .. }));
        }
        packed_at.push(n);
        let mut packed = PhaseSteps::default();
        for s in steps {
            let Step::Rule { rule, skip_after } = *s else {
                continue;
            };
            let member = prefilter.member[rule].map(|(group, m)| {
                let (word, bit) = member_bit(prefilter, group, m);
                GroupBit { group, word, bit }
            });
            packed.steps.push(PhaseStep {
                rule: rule as u32,
                test: StepTest::of(&rules[rule], member),
            });
            packed
                .skip_after
                .push(skip_after.map_or(NO_SKIP_AFTER, |at| packed_at[at]));
        }
        packed
    }
}

/// [`GroupBit::word`] and [`GroupBit::bit`] of member `m` of group `g`.
pub(crate) fn member_bit(prefilter: &Prefilter, g: u32, m: u16) -> (u32, u8) {
    let bit = prefilter.groups[g as usize].bit + usize::from(m);
    let word = g as usize * prefilter.words + bit / 64;
    (word as u32, (bit % 64) as u8)
}

/// Compiled rules, shared by transactions.
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    /// Steps for phases 1..=5 (index 0 unused).
    pub(crate) phases: [PhaseSteps; 6],
    pub(crate) chains: ChainTable,
    pub(crate) config: EngineConfig,
    pub(crate) prefilter: Prefilter,
    /// TX keys the rules name literally, numbered (see `store`).
    pub(crate) tx_slots: Arc<SlotTable>,
    /// The MATCHED_VAR_NAMEs of the links' [`TxKeyTest`]s, each once: the few keys CRS
    /// tests most share a few cache lines.
    pub(crate) tx_key_names: Vec<u8>,
    /// The `setvar`s of the links whose actions are [`ExecPlan::Slots`], and the literal
    /// values they set.
    pub(crate) slot_setvars: Vec<SlotSetVar>,
    pub(crate) setvar_values: Vec<u8>,
    /// Links whose operator is built per transaction (`RuleOperator::Dynamic`).
    pub(crate) dynamic_operators: usize,
    /// What phase 1's leading rules leave in every transaction (see
    /// `transaction::setup`), if they do not depend on the request.
    pub(crate) setup: Option<SetupSnapshot>,
    /// Unique per rule set built in this process: what a transaction's pooled state keeps
    /// for one rule set is never used for another, even one at the same address.
    pub(crate) uid: u64,
    notices: Vec<String>,
}

enum Entry {
    Rule(Box<Rule>),
    Marker(String),
}

/// Accumulates files and text in order, then compiles.
pub struct RuleSetBuilder {
    entries: Vec<Entry>,
    defaults: [Option<Arc<Actions>>; 6],
    config: EngineConfig,
    notices: Vec<String>,
    /// Whether the last rule ended with `chain` and awaits its next link.
    open_chain: bool,
    depth: usize,
    /// Whether `build` takes the setup snapshot (on unless turned off).
    setup_snapshot: bool,
}

impl RuleSet {
    /// Load files in order (each may `Include` others).
    pub fn from_files<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, LoadError> {
        let mut b = RuleSetBuilder::default();
        for p in paths {
            b.add_file(p.as_ref())?;
        }
        b.build()
    }

    /// Load SecLang text; `origin` names it in errors and anchors relative paths.
    pub fn from_text(text: &str, origin: &str) -> Result<RuleSet, LoadError> {
        let mut b = RuleSetBuilder::default();
        b.add_text(text, origin, Path::new("."))?;
        b.build()
    }

    pub fn builder() -> RuleSetBuilder {
        RuleSetBuilder::default()
    }

    /// Notes about the load worth logging once (e.g. regexes that needed PCRE2).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Number of rules (chain starters and `SecAction`s).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Ids of all loaded rules, in order.
    pub fn rule_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.rules.iter().map(|r| r.id)
    }

    /// How many of phase 1's first steps (rules and markers) transactions skip, starting
    /// from the state they leave, computed once when the set was built because it does not
    /// depend on the request (CRS's setup: `crs-setup.conf` and REQUEST-901's defaults); 0
    /// when phase 1 does not start with such rules.
    pub fn setup_snapshot_steps(&self) -> usize {
        self.setup.as_ref().map_or(0, SetupSnapshot::resume_at)
    }

    /// The compiled rules in load order (chain starters and `SecAction`s; links hang off
    /// `chained`), so that tools can summarise or explain a set without re-parsing it.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

impl Default for RuleSetBuilder {
    fn default() -> Self {
        RuleSetBuilder {
            entries: Vec::new(),
            defaults: Default::default(),
            config: EngineConfig::default(),
            notices: Vec::new(),
            open_chain: false,
            depth: 0,
            setup_snapshot: true,
        }
    }
}

impl RuleSetBuilder {
    /// Whether the built set starts each transaction from the state its request-independent
    /// leading phase-1 rules leave (on by default; the outcome is the same either way, so
    /// this is for comparing the two).
    pub fn setup_snapshot(&mut self, on: bool) -> &mut Self {
        self.setup_snapshot = on;
        self
    }

    /// Override engine settings (e.g. from the embedding server's own configuration).
    pub fn config_mut(&mut self) -> &mut EngineConfig {
        &mut self.config
    }

    pub fn add_file(&mut self, path: &Path) -> Result<(), LoadError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::new(&origin, 0, format!("cannot read: {e}")))?;
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        self.add_text(&text, &origin, &dir)
    }

    /// Add text whose relative paths resolve against `base_dir`.
    pub fn add_text(&mut self, text: &str, origin: &str, base_dir: &Path) -> Result<(), LoadError> {
        for d in parse_directives(text, origin)? {
            self.directive(&d, origin, base_dir)
                .map_err(|reason| match reason {
                    DirError::Msg(m) => LoadError::new(origin, d.line, format!("{}: {m}", d.name)),
                    DirError::Nested(e) => e,
                })?;
        }
        Ok(())
    }

    pub fn build(mut self) -> Result<RuleSet, LoadError> {
        if self.open_chain {
            return Err(LoadError::new(
                "",
                0,
                "the last rule ends with chain but no rule follows",
            ));
        }
        let mut chains = ChainTable::default();
        let mut rules = Vec::new();
        let mut phases: [Vec<Step>; 6] = Default::default();
        let mut markers: [Vec<(String, usize)>; 6] = Default::default();
        for e in self.entries.drain(..) {
            match e {
                Entry::Rule(r) => {
                    let mut r = *r;
                    r.finish(&mut chains);
                    phases[r.phase as usize].push(Step::Rule {
                        rule: rules.len(),
                        skip_after: None,
                    });
                    rules.push(r);
                }
                Entry::Marker(name) => {
                    for p in 1..6 {
                        markers[p].push((name.clone(), phases[p].len()));
                        phases[p].push(Step::Marker);
                    }
                }
            }
        }
        // Kept for the set's life in every worker: no spare capacity.
        rules.shrink_to_fit();
        for p in 1..6 {
            let len = phases[p].len();
            for (i, step) in phases[p].iter_mut().enumerate() {
                if let Step::Rule { rule, skip_after } = step {
                    if let Some(target) = &rules[*rule].actions.skip_after {
                        // The first marker of that name after this rule; else the end of the phase.
                        let at = markers[p]
                            .iter()
                            .find(|(n, at)| n == target && *at > i)
                            .map(|(_, at)| at + 1);
                        if at.is_none() {
                            self.notices.push(format!(
                                "skipAfter:{target} (rule {}) names no later marker",
                                rules[*rule].id
                            ));
                        }
                        *skip_after = Some(at.unwrap_or(len));
                    }
                }
            }
        }
        let mut tx_key_names = Vec::new();
        let tx_slots = Arc::new(number_tx_keys(&mut rules, &mut tx_key_names));
        let dynamic_operators = number_dynamic_operators(&mut rules);
        let (slot_setvars, setvar_values) = plan_execs(&mut rules, &chains);
        static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let prefilter = Prefilter::build(&rules, &phases, &mut chains);
        let phases = phases.map(|steps| PhaseSteps::pack(&steps, &rules, &prefilter));
        let rs = RuleSet {
            rules,
            phases,
            chains,
            config: self.config,
            prefilter,
            tx_slots,
            tx_key_names,
            slot_setvars,
            setvar_values,
            dynamic_operators,
            setup: None,
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            notices: self.notices,
        };
        if !self.setup_snapshot {
            return Ok(rs);
        }
        // Taken by running transactions of the set, which are gone when it returns.
        SetupSnapshot::attach(rs).ok_or_else(|| {
            LoadError::new(
                "",
                0,
                "internal: the setup snapshot's transactions outlived it",
            )
        })
    }

    fn directive(&mut self, d: &Directive, origin: &str, base_dir: &Path) -> Result<(), DirError> {
        let name = d.name.to_ascii_lowercase();
        let args = &d.args;
        let want = |n: usize| -> Result<(), DirError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(DirError::Msg(format!(
                    "expects {n} argument(s), got {}",
                    args.len()
                )))
            }
        };
        if self.open_chain && name != "secrule" {
            return Err(DirError::Msg(
                "a rule ending with chain must be followed by SecRule".into(),
            ));
        }
        match name.as_str() {
            "include" => {
                want(1)?;
                let pattern = if Path::new(&args[0]).is_absolute() {
                    PathBuf::from(&args[0])
                } else {
                    base_dir.join(&args[0])
                };
                let mut files: Vec<PathBuf> = glob::glob(&pattern.to_string_lossy())
                    .map_err(|e| DirError::Msg(format!("bad pattern: {e}")))?
                    .filter_map(Result::ok)
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(DirError::Msg(format!(
                        "no file matches {}",
                        pattern.display()
                    )));
                }
                for f in files {
                    self.add_file(&f).map_err(DirError::Nested)?;
                }
            }
            "secrule" => {
                want(3).or_else(|_| want(2))?;
                self.rule(
                    Some(&args[0]),
                    Some(&args[1]),
                    args.get(2).map_or("", String::as_str),
                    origin,
                    d.line,
                    base_dir,
                )?;
            }
            "secaction" => {
                want(1)?;
                self.rule(None, None, &args[0], origin, d.line, base_dir)?;
            }
            "secmarker" => {
                want(1)?;
                self.entries.push(Entry::Marker(args[0].trim().to_string()));
            }
            "secdefaultaction" => {
                want(1)?;
                let a = Actions::parse(&args[0]).map_err(DirError::Msg)?;
                let phase = a
                    .phase
                    .ok_or_else(|| DirError::Msg("needs a phase".into()))?;
                if a.disruptive.is_none() {
                    return Err(DirError::Msg("needs a disruptive action".into()));
                }
                if a.id.is_some() || !a.exec.is_empty() || a.chain || a.skip_after.is_some() {
                    return Err(DirError::Msg(
                        "may not carry id, setvar, ctl, chain or skipAfter".into(),
                    ));
                }
                self.defaults[phase as usize] = Some(Arc::new(a));
            }
            "secruleengine" => {
                want(1)?;
                self.config.engine = EngineMode::parse(&args[0]).map_err(DirError::Msg)?;
            }
            "secrequestbodyaccess" => {
                want(1)?;
                self.config.request_body_access = on_off(&args[0])?;
            }
            "secresponsebodyaccess" => {
                want(1)?;
                self.config.response_body_access = on_off(&args[0])?;
            }
            "secresponsebodymimetype" => {
                if args.is_empty() {
                    return Err(DirError::Msg("needs MIME types".into()));
                }
                for a in args {
                    self.config
                        .response_body_mime_types
                        .extend(a.split_whitespace().map(|s| s.to_ascii_lowercase()));
                }
            }
            "secresponsebodymimetypesclear" => {
                want(0)?;
                self.config.response_body_mime_types.clear();
            }
            "secrequestbodylimit" => self.config.request_body_limit = number(args)?,
            "secrequestbodynofileslimit" => self.config.request_body_no_files_limit = number(args)?,
            "secrequestbodyinmemorylimit" => {
                number(args)?;
            }
            "secresponsebodylimit" => self.config.response_body_limit = number(args)?,
            "secargumentslimit" => self.config.arguments_limit = number(args)?,
            "seccollectiontimeout" => self.config.collection_timeout = number(args)? as u64,
            "secpcrematchlimit" | "secpcrematchlimitrecursion" => {
                number(args)?;
            }
            "secrequestbodylimitaction" | "secresponsebodylimitaction" => {
                want(1)?;
                let reject = match args[0].to_ascii_lowercase().as_str() {
                    "reject" => true,
                    "processpartial" => false,
                    other => {
                        return Err(DirError::Msg(format!(
                            "expects Reject or ProcessPartial, got {other:?}"
                        )))
                    }
                };
                if name == "secrequestbodylimitaction" {
                    self.config.request_body_limit_reject = reject;
                } else {
                    self.config.response_body_limit_reject = reject;
                }
            }
            "seccomponentsignature" => {
                want(1)?;
                self.config.component_signatures.push(args[0].clone());
            }
            "secruleremovebyid" => {
                if args.is_empty() {
                    return Err(DirError::Msg("needs rule ids".into()));
                }
                let ranges = IdRange::parse_list(&args.join(" ")).map_err(DirError::Msg)?;
                self.entries.retain(
                    |e| !matches!(e, Entry::Rule(r) if ranges.iter().any(|x| x.contains(r.id))),
                );
            }
            "secruleremovebytag" | "secruleremovebymsg" => {
                want(1)?;
                let re = pattern_matcher(&args[0])?;
                let by_tag = name.ends_with("tag");
                self.entries.retain(|e| match e {
                    Entry::Rule(r) if by_tag => !r.actions.tags.iter().any(|t| re.is_match(t)),
                    Entry::Rule(r) => !r
                        .actions
                        .msg
                        .as_ref()
                        .and_then(|m| m.as_literal())
                        .is_some_and(|m| re.is_match(&String::from_utf8_lossy(m))),
                    Entry::Marker(_) => true,
                });
            }
            "secruleupdatetargetbyid" | "secruleupdatetargetbytag" | "secruleupdatetargetbymsg" => {
                want(2).or_else(|_| want(3))?;
                self.update_targets(&name, &args[0], &args[1], args.get(2).map(String::as_str))?;
            }
            "secruleupdateactionbyid" => {
                want(2)?;
                let ranges = IdRange::parse_list(&args[0]).map_err(DirError::Msg)?;
                let pairs = crate::actions::split(&args[1]).map_err(DirError::Msg)?;
                let mut found = false;
                for r in self
                    .rules_mut()
                    .filter(|r| ranges.iter().any(|x| x.contains(r.id)))
                {
                    found = true;
                    for (n, v) in &pairs {
                        if n.eq_ignore_ascii_case("t")
                            && v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("none"))
                        {
                            r.actions.transforms.clear();
                        }
                        if ["id", "phase", "chain"]
                            .iter()
                            .any(|x| n.eq_ignore_ascii_case(x))
                        {
                            return Err(DirError::Msg(format!("cannot update {n}")));
                        }
                        if ["pass", "block", "deny", "drop", "allow", "redirect"]
                            .iter()
                            .any(|x| n.eq_ignore_ascii_case(x))
                        {
                            r.actions.disruptive = None;
                        }
                        r.actions.apply(n, v.as_deref()).map_err(DirError::Msg)?;
                    }
                }
                if !found {
                    return Err(DirError::Msg(format!("no rule with id {}", args[0])));
                }
            }
            _ => return Err(DirError::Msg("unsupported directive".into())),
        }
        Ok(())
    }

    fn rules_mut(&mut self) -> impl Iterator<Item = &mut Rule> {
        self.entries.iter_mut().filter_map(|e| match e {
            Entry::Rule(r) => Some(&mut **r),
            Entry::Marker(_) => None,
        })
    }

    fn update_targets(
        &mut self,
        kind: &str,
        which: &str,
        targets: &str,
        replace: Option<&str>,
    ) -> Result<(), DirError> {
        let ranges = if kind.ends_with("byid") {
            Some(IdRange::parse_list(which).map_err(DirError::Msg)?)
        } else {
            None
        };
        let re = pattern_matcher(which)?;
        let mut found = false;
        for r in self.rules_mut() {
            let hit = match &ranges {
                Some(rs) => rs.iter().any(|x| x.contains(r.id)),
                None if kind.ends_with("bytag") => r.actions.tags.iter().any(|t| re.is_match(t)),
                None => r
                    .actions
                    .msg
                    .as_ref()
                    .and_then(|m| m.as_literal())
                    .is_some_and(|m| re.is_match(&String::from_utf8_lossy(m))),
            };
            if !hit {
                continue;
            }
            found = true;
            if let Some(old) = replace {
                let old = parse_var_ref(old).map_err(DirError::Msg)?;
                r.targets.retain(|t| {
                    !(t.var == old.var
                        && format!("{:?}", t.selector) == format!("{:?}", old.selector))
                });
            }
            for part in targets.split('|').map(str::trim).filter(|p| !p.is_empty()) {
                if let Some(ex) = part.strip_prefix('!') {
                    add_exclusion(&mut r.targets, parse_var_ref(ex).map_err(DirError::Msg)?);
                } else {
                    r.targets
                        .extend(parse_targets(part).map_err(DirError::Msg)?);
                }
            }
        }
        if ranges.is_some() && !found {
            // ModSecurity errors on an id that names no rule defined so far.
            return Err(DirError::Msg(format!("no rule with id {which}")));
        }
        Ok(())
    }

    fn rule(
        &mut self,
        targets: Option<&str>,
        operator: Option<&str>,
        actions: &str,
        origin: &str,
        line: usize,
        base_dir: &Path,
    ) -> Result<(), DirError> {
        let actions = Actions::parse(actions).map_err(DirError::Msg)?;
        let targets = match targets {
            Some(t) => parse_targets(t).map_err(DirError::Msg)?,
            None => Vec::new(),
        };
        let mut ctx = BuildContext {
            base_dir,
            notices: &mut self.notices,
            negated: false,
        };
        let parsed = match operator {
            Some(o) => parse_operator(o, &mut ctx).map_err(DirError::Msg)?,
            None => ParsedOperator {
                op: RuleOperator::Always,
                negated: false,
                name: "unconditionalMatch".to_string(),
                int_cmp: None,
            },
        };
        let is_link = self.open_chain;
        if is_link {
            if actions.id.is_some()
                || actions.phase.is_some()
                || actions.skip_after.is_some()
                || actions.skip > 0
            {
                return Err(DirError::Msg(
                    "a chained rule may not carry id, phase, skip or skipAfter".into(),
                ));
            }
            if actions.disruptive.is_some() {
                return Err(DirError::Msg(
                    "a chained rule may not carry a disruptive action".into(),
                ));
            }
        } else if actions.id.is_none() {
            return Err(DirError::Msg("rule has no id".into()));
        }
        let phase = if is_link {
            0
        } else {
            let p = actions.phase.unwrap_or(2);
            if let Some(id) = actions.id {
                if self.rules_mut().any(|r| r.id == id) {
                    return Err(DirError::Msg(format!("duplicate rule id {id}")));
                }
            }
            p
        };
        let chain = actions.chain;
        let rule = Rule {
            id: actions.id.unwrap_or(0),
            phase,
            targets,
            operator: parsed.op,
            operator_name: parsed.name,
            negated: parsed.negated,
            int_cmp: parsed.int_cmp,
            tx_key: None,
            execs: ExecPlan::None,
            chain_others: false,
            multi_match: false,
            capture: false,
            captures_whole: false,
            skip: 0,
            severity: None,
            on_match: crate::actions::Disruptive::Pass,
            chain_ids: Vec::new(),
            defaults: self.defaults[if is_link { 0 } else { phase as usize }].clone(),
            actions,
            disruptive: crate::actions::Disruptive::Pass,
            log: true,
            status: None,
            chained: None,
            origin: Arc::from(origin),
            line,
        };
        if is_link {
            let Some(Entry::Rule(start)) = self.entries.last_mut() else {
                return Err(DirError::Msg("chain link without a starting rule".into()));
            };
            let mut rule = rule;
            rule.phase = start.phase;
            rule.defaults = start.defaults.clone();
            let mut tail: &mut Rule = start;
            while tail.chained.is_some() {
                tail = tail
                    .chained
                    .as_deref_mut()
                    .ok_or_else(|| DirError::Msg("chain".into()))?;
            }
            tail.chained = Some(Box::new(rule));
            self.depth += 1;
        } else {
            self.entries.push(Entry::Rule(Box::new(rule)));
            self.depth = 0;
        }
        self.open_chain = chain;
        Ok(())
    }
}

/// Sets every link's [`ExecPlan`] (the TX keys numbered already) and every chain's
/// [`Rule::chain_others`]; returns the `setvar`s that [`ExecPlan::Slots`] refer to, and
/// their values.
fn plan_execs(rules: &mut [Rule], chains: &ChainTable) -> (Vec<SlotSetVar>, Vec<u8>) {
    let (mut setvars, mut values) = (Vec::new(), Vec::new());
    for r in rules.iter_mut() {
        let mut others = false;
        let mut link = Some(&*r);
        while let Some(l) = link {
            others |= l
                .actions
                .exec
                .iter()
                .any(|e| matches!(e, Exec::Ctl(_) | Exec::SetEnv(..)));
            link = l.chained.as_deref();
        }
        r.chain_others = others;
        let mut link = Some(r);
        while let Some(l) = link {
            l.captures_whole = l.capture
                && matches!(&l.operator, RuleOperator::Static(op)
                    if op.as_rx().is_some_and(crate::operators::Rx::matches_every_input));
            let values_len = values.len();
            let slots: Option<Vec<SlotSetVar>> = l
                .actions
                .exec
                .iter()
                .map(|e| slot_setvar(e, &mut values))
                .collect();
            let at = (u32::try_from(setvars.len()).ok())
                .zip(slots.as_ref().and_then(|s| u16::try_from(s.len()).ok()));
            l.execs = match (slots, at) {
                _ if l.actions.exec.is_empty() => ExecPlan::None,
                (Some(s), Some((start, len))) => {
                    setvars.extend(s);
                    ExecPlan::Slots { start, len }
                }
                _ => {
                    // The values of the link's planned `setvar`s before the one that is not.
                    values.truncate(values_len);
                    match capture_setvar_groups(l) {
                        Some(groups) => ExecPlan::CaptureSetVar {
                            groups,
                            lower_groups: !lowercased_groups(l, chains),
                        },
                        None => ExecPlan::General,
                    }
                }
            };
            link = l.chained.as_deref_mut();
        }
    }
    (setvars, values)
}

/// For a capturing link whose one action is a `setvar` that [`ExecPlan::CaptureSetVar`]
/// runs: how many capture groups it reads.
fn capture_setvar_groups(l: &Rule) -> Option<u8> {
    let [Exec::SetVar(sv)] = &l.actions.exec[..] else {
        return None;
    };
    let SetVarOp::Set(value) = &sv.op else {
        return None;
    };
    // Unnumbered: the key is none of TX:0..9, so writing it cannot change a group.
    if !l.capture || !sv.unnumbered {
        return None;
    }
    let mut groups = 0;
    for p in sv.name.parts.iter().chain(&value.parts) {
        match (p, p.capture_group()) {
            (Part::Lit(_), _) => {}
            (_, Some(g)) => groups = groups.max(g + 1),
            _ => return None,
        }
    }
    (groups > 0).then_some(groups as u8)
}

/// Whether the groups `l`'s operator captures are lower case: `@rx`'s are parts of the
/// value it tests, which a last `t:lowercase` lower-cased (all forms of the value are
/// tested under `multiMatch`).
fn lowercased_groups(l: &Rule, chains: &ChainTable) -> bool {
    let last = l.chain_id().map(|c| chains.nodes[c as usize].1);
    l.operator_name == "rx"
        && !l.multi_match
        && last.is_some_and(|t| Some(t) == crate::transformations::lookup("lowercase"))
}

/// `e` as a [`SlotSetVar`], if it is one; a literal value goes into `values`.
fn slot_setvar(e: &Exec, values: &mut Vec<u8>) -> Option<SlotSetVar> {
    let Exec::SetVar(sv) = e else {
        return None;
    };
    if sv.collection != Var::Tx {
        return None;
    }
    let slot = sv.slot?;
    let amount = |m: &crate::macros::Macro| match sv.operand_slot {
        Some(s) => Some(Amount::Slot(s)),
        None => Some(Amount::Const(crate::operators::parse_int(m.as_literal()?))),
    };
    let op = match &sv.op {
        SetVarOp::Delete => SlotOp::Delete,
        SetVarOp::Set(m) => {
            let text = m.as_literal()?;
            values.extend_from_slice(text);
            SlotOp::Set {
                start: (values.len() - text.len()) as u32,
                len: text.len() as u32,
            }
        }
        SetVarOp::Add(m) => SlotOp::Add(amount(m)?),
        SetVarOp::Sub(m) => SlotOp::Sub(amount(m)?),
    };
    Some(SlotSetVar { slot, op })
}

/// Numbers the links whose operator is built per transaction; returns how many there are.
fn number_dynamic_operators(rules: &mut [Rule]) -> usize {
    let mut next = 0u32;
    for r in rules.iter_mut() {
        let mut link = Some(r);
        while let Some(l) = link {
            if let RuleOperator::Dynamic(d) = &mut l.operator {
                d.slot = next;
                next += 1;
            }
            link = l.chained.as_deref_mut();
        }
    }
    next as usize
}

/// Number the TX keys that targets and `setvar`s name literally, and record each slot
/// where it is used (and each link that tests just one, its name placed in `names`), so
/// that transactions reach them without string comparisons.
fn number_tx_keys(rules: &mut [Rule], names: &mut Vec<u8>) -> SlotTable {
    let mut t = SlotTable::default();
    let mut placed: rustc_hash::FxHashMap<Vec<u8>, std::ops::Range<u32>> = Default::default();
    // Capture groups TX:0..TX:9.
    for i in 0..10u8 {
        t.intern(&[b'0' + i]);
    }
    type Names<'a> = (
        &'a mut Vec<u8>,
        &'a mut rustc_hash::FxHashMap<Vec<u8>, std::ops::Range<u32>>,
    );
    fn walk(r: &mut Rule, t: &mut SlotTable, names: &mut Names<'_>) {
        for target in &mut r.targets {
            if let (Var::Tx, Selector::Key(k)) = (target.var, &target.selector) {
                target.slot = Some(t.intern(k));
            }
        }
        for e in &mut r.actions.exec {
            if let Exec::SetVar(sv) = e {
                if sv.collection == Var::Tx {
                    if let Some(name) = sv.name.as_literal() {
                        sv.slot = Some(t.intern(name));
                    }
                }
                if let SetVarOp::Add(m) | SetVarOp::Sub(m) = &sv.op {
                    if let [Part::Var(Var::Tx, Some(key))] = m.parts.as_slice() {
                        sv.operand_slot = Some(t.intern(key));
                    }
                }
            }
        }
        r.tx_key = match r.targets.as_slice() {
            [target]
                if target.exclusions.is_empty()
                    && r.chain_ids.is_empty()
                    && !r.multi_match
                    && !r.capture =>
            {
                match (target.var, &target.selector, target.slot) {
                    // `TX:` and the key fit the name's 16-bit length.
                    (Var::Tx, Selector::Key(key), Some(slot)) if key.len() < 0xff00 => {
                        let mut name = Vec::new();
                        let key: &[u8] = if target.count { b"" } else { key };
                        write_var_name(&mut name, Var::Tx, key);
                        let (pool, placed) = names;
                        let name = placed.entry(name).or_insert_with_key(|name| {
                            pool.extend_from_slice(name);
                            (pool.len() - name.len()) as u32..pool.len() as u32
                        });
                        Some(TxKeyTest {
                            slot,
                            name_start: name.start,
                            name_len: name.len() as u16,
                            count: target.count,
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(c) = r.chained.as_deref_mut() {
            walk(c, t, names);
        }
    }
    for r in rules.iter_mut() {
        walk(r, &mut t, &mut (&mut *names, &mut placed));
    }
    // Keys are all numbered now: a TX regex selector's choice among them is fixed, and
    // macros can name their slots.
    fn select(r: &mut Rule, t: &SlotTable) {
        for target in &mut r.targets {
            if let (Var::Tx, Selector::Regex(re)) = (target.var, &target.selector) {
                target.selected_slots = Some(t.selected_by(|k| re.is_match(k)));
            }
        }
        r.actions.macros_mut().for_each(|m| m.number_tx_keys(t));
        for e in &mut r.actions.exec {
            if let Exec::SetVar(sv) = e {
                sv.unnumbered = sv.collection == Var::Tx
                    && sv.name.as_literal().is_none()
                    && !t.any(|k| could_be(&sv.name, k));
            }
        }
        if let RuleOperator::Dynamic(d) = &mut r.operator {
            d.param.number_tx_keys(t);
        }
        if let Some(c) = r.chained.as_deref_mut() {
            select(c, t);
        }
    }
    for r in rules {
        select(r, &t);
    }
    t
}

/// Whether `key` could be what `name` (a lower-cased `setvar` name) expands to, lower-cased:
/// its literal ends are lower-case already, so the expansion keeps them.
fn could_be(name: &Macro, key: &[u8]) -> bool {
    if let Some(l) = name.as_literal() {
        return key == l;
    }
    let (start, end) = name.literal_ends();
    key.len() >= start.len() + end.len() && key.starts_with(start) && key.ends_with(end)
}

enum DirError {
    Msg(String),
    Nested(LoadError),
}

fn on_off(v: &str) -> Result<bool, DirError> {
    match v.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(DirError::Msg(format!("expects On or Off, got {v:?}"))),
    }
}

fn number(args: &[String]) -> Result<usize, DirError> {
    match args {
        [n] => n
            .trim()
            .parse()
            .map_err(|_| DirError::Msg(format!("expects a number, got {n:?}"))),
        _ => Err(DirError::Msg("expects one number".into())),
    }
}

/// Tag/msg selection in `SecRuleRemoveByTag` and friends is a regular expression.
fn pattern_matcher(p: &str) -> Result<regex::Regex, DirError> {
    regex::Regex::new(p)
        .or_else(|_| regex::Regex::new(&regex::escape(p)))
        .map_err(|e| DirError::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key could be a name's expansion only if it starts and ends with the name's literal
    /// ends, and is long enough to hold both.
    #[test]
    fn keys_a_run_time_name_could_be() {
        let could = |name: &str, key: &[u8]| could_be(&Macro::parse(name), key);
        let name = "k_%{tx.1}_v";
        assert!(could(name, b"k__v"));
        assert!(could(name, b"k_num_v"));
        assert!(could(name, b"k_a/b_v"));
        assert!(!could(name, b"k_v"), "too short for both ends");
        assert!(!could(name, b"knum_v"));
        assert!(!could(name, b"k_num_"));
        assert!(could("%{tx.1}", b""));
        assert!(could("%{tx.1}%{tx.2}", b"anything"));
        assert!(could("a%{tx.1}", b"a"));
        assert!(!could("a%{tx.1}", b"ba"));
        assert!(
            could("%{tx.1}-%{tx.2}", b"x"),
            "a middle literal is not asked"
        );
        assert!(could("ab", b"ab"));
        assert!(!could("ab", b"abab"));
    }

    #[test]
    fn rules_exposes_phase_operator_and_chain() {
        let rs = RuleSet::from_text(
            "SecRule ARGS \"@rx a\" \"id:1,phase:2,chain\"\n  SecRule ARGS \"@streq b\" \"t:none\"\n\
             SecAction \"id:2,phase:1,pass\"\n",
            "t.conf",
        )
        .unwrap();
        let r = rs.rules();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].id, r[0].phase, r[0].operator_name.as_str()),
            (1, 2, "rx")
        );
        assert_eq!(r[0].chained.as_ref().unwrap().operator_name, "streq");
        assert_eq!((r[1].id, r[1].phase), (2, 1));
    }

    #[test]
    fn loads_rules_markers_and_chains() {
        let rs = RuleSet::from_text(
            "SecDefaultAction \"phase:2,log,auditlog,pass,t:lowercase\"\n\
             SecRule ARGS \"@rx a\" \"id:1,phase:2,deny,chain\"\n  SecRule ARGS_NAMES \"@rx b\" \"t:none\"\n\
             SecMarker END\nSecAction \"id:2,phase:1,nolog,pass,skipAfter:END\"\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!(rs.rule_count(), 2);
        assert!(rs.rules[0].chained.is_some());
        assert_eq!(rs.rules[0].chain_ids.len(), 1); // inherited t:lowercase
        assert_eq!(rs.rules[0].chained.as_ref().unwrap().chain_ids.len(), 0); // t:none
        assert!(!rs.rules[1].log);
    }

    #[test]
    fn packed_steps_carry_what_their_rules_say() {
        let rs = RuleSet::from_text(
            "SecRule ARGS \"@rx attack\" \"id:10,phase:2,pass,skipAfter:END\"\n\
             SecRule REQUEST_BODY \"!@rx needle\" \"id:11,phase:2,pass\"\n\
             SecAction \"id:12,phase:1,pass\"\n\
             SecMarker END\n\
             SecRule REQUEST_URI \"@streq /x\" \"id:13,phase:2,pass\"\n\
             SecRule TX:pl \"@lt 2\" \"id:14,phase:1,pass,nolog\"\n\
             SecRule &TX:x \"!@eq 0\" \"id:15,phase:1,pass\"\n",
            "t.conf",
        )
        .unwrap();
        let pf = &rs.prefilter;
        let mut seen = Vec::new();
        for p in 1..6 {
            let packed = &rs.phases[p];
            assert_eq!(packed.steps.len(), packed.skip_after.len());
            for (i, step) in packed.steps.iter().enumerate() {
                let ri = step.rule as usize;
                let r = &rs.rules[ri];
                assert_eq!(r.phase as usize, p);
                let member = step.test.member();
                assert_eq!(
                    member.map(|m| m.group),
                    pf.member[ri].map(|(g, _)| g),
                    "rule {}",
                    r.id
                );
                if let (Some((g, m)), Some(at)) = (pf.member[ri], member) {
                    // The step's bit is the one the group's row holds for the member.
                    let bit = pf.groups[g as usize].bit + usize::from(m);
                    assert_eq!(
                        (at.word as usize, at.bit as usize),
                        (g as usize * pf.words + bit / 64, bit % 64)
                    );
                }
                if member.is_none() {
                    let tested = matches!(step.test, StepTest::TxInt { .. });
                    assert_eq!(
                        tested,
                        r.tx_key.is_some() && r.int_cmp.is_some(),
                        "rule {}",
                        r.id
                    );
                }
                let passable = matches!(step.test, StepTest::Member { .. });
                assert_eq!(passable, member.is_some() && !r.negated);
                seen.push((r.id, member.is_some(), packed.skip_after[i]));
            }
        }
        seen.sort();
        // Phase 2 is [10, 11, 13] (END left out): 10's skipAfter lands after the marker, at 13.
        let phase_2 = &rs.phases[2].steps;
        assert_eq!(rs.rules[phase_2[2].rule as usize].id, 13);
        assert_eq!(seen[0], (10, true, 2));
        assert_eq!(seen[1], (11, true, NO_SKIP_AFTER));
        assert!(!seen[2].1);
        let tx_int = |id| {
            let ri = rs.rules.iter().position(|r| r.id == id).unwrap();
            let step = rs.phases[1].steps.iter().find(|s| s.rule as usize == ri);
            step.map(|s| s.test)
        };
        let slot = |key: &[u8]| rs.tx_slots.get(key).unwrap() as u16;
        let tx_key = |id: u32| {
            let t = rs
                .rules
                .iter()
                .find(|r| r.id == id)
                .unwrap()
                .tx_key
                .as_ref();
            t.unwrap().name_start as u16
        };
        // `&TX:x "!@eq 0"`: whether it is set, not equal to 0; it logs.
        let count = StepTest::TxInt {
            id: 15,
            slot: slot(b"x"),
            bound: 0,
            name_at: tx_key(15),
            flags: TxIntFlags(TxIntFlags::EQUAL | TxIntFlags::COUNT | TxIntFlags::NEGATED),
        };
        assert_eq!(tx_int(15), Some(count));
        // `TX:pl "@lt 2"`: at most 1; a quiet gate.
        let lt = StepTest::TxInt {
            id: 14,
            slot: slot(b"pl"),
            bound: 1,
            name_at: tx_key(14),
            flags: TxIntFlags(TxIntFlags::QUIET),
        };
        assert_eq!(tx_int(14), Some(lt));
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let e = RuleSet::from_text("\n\nSecFoo bar\n", "x.conf").unwrap_err();
        assert_eq!((e.origin.as_str(), e.line), ("x.conf", 3));
        assert!(
            e.to_string().contains("SecFoo: unsupported directive"),
            "{e}"
        );
        let e = RuleSet::from_text("SecRule ARGS \"@rx (\" \"id:1\"", "y.conf").unwrap_err();
        assert!(e.reason.contains("regex"), "{e}");
        let e = RuleSet::from_text(
            "SecRule ARGS \"@rx a\" \"id:1\"\nSecRule ARGS \"@rx a\" \"id:1\"",
            "z",
        )
        .unwrap_err();
        assert!(e.reason.contains("duplicate") && e.line == 2, "{e}");
        assert!(RuleSet::from_text("SecRule ARGS \"@rx a\" \"id:1,chain\"", "z").is_err());
        assert!(RuleSet::from_text("Include /nonexistent/*.conf", "z")
            .unwrap_err()
            .reason
            .contains("no file"));
    }

    #[test]
    fn remove_and_update_by_id() {
        let rs = RuleSet::from_text(
            "SecRule ARGS \"@rx a\" \"id:1\"\nSecRule ARGS \"@rx a\" \"id:2,tag:x\"\nSecRuleRemoveById 1\n\
             SecRuleUpdateTargetById 2 \"!ARGS:foo|REQUEST_URI\"\nSecRuleRemoveByTag y\n",
            "t",
        )
        .unwrap();
        assert_eq!(rs.rule_ids().collect::<Vec<_>>(), vec![2]);
        assert_eq!(rs.rules[0].targets.len(), 2);
        assert_eq!(rs.rules[0].targets[0].exclusions.len(), 1);
        assert!(RuleSet::from_text("SecRuleUpdateTargetById 5 ARGS", "t").is_err());
    }
}
