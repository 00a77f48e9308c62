//! A compiled rule: targets, operator, transformation chain and effective actions.

use std::path::PathBuf;
use std::sync::Arc;

use crate::actions::{Actions, Disruptive};
use crate::macros::Macro;
use crate::operators::{self, BuildContext, BuildFn, Operator};
use crate::transformations::TransformId;
use crate::variables::Target;

/// Identifies an interned transformation chain (a prefix tree, so a chain's prefixes
/// share cached results).
pub type ChainId = u32;

/// Interns transformation chains: each id is `(parent, last transformation)`.
#[derive(Debug, Default)]
pub struct ChainTable {
    pub nodes: Vec<(Option<ChainId>, TransformId)>,
    /// Per chain: the set of its transformations (bit `1 << id`).
    pub masks: Vec<u64>,
    index: rustc_hash::FxHashMap<(Option<ChainId>, TransformId), ChainId>,
}

impl ChainTable {
    /// Intern `transforms`; `None` is the empty chain. Returns the id of every prefix too.
    pub fn intern(&mut self, transforms: &[TransformId]) -> Vec<ChainId> {
        let mut cur = None;
        let mut ids = Vec::with_capacity(transforms.len());
        for &t in transforms {
            let next = self.nodes.len() as ChainId;
            let id = *self.index.entry((cur, t)).or_insert_with(|| {
                self.nodes.push((cur, t));
                let parent = cur.map_or(0, |p| self.masks[p as usize]);
                self.masks.push(parent | 1 << t);
                next
            });
            ids.push(id);
            cur = Some(id);
        }
        ids
    }
}

/// How a rule tests values.
#[derive(Debug)]
pub enum RuleOperator {
    /// `SecAction`: matches once, with no target.
    Always,
    Static(Box<dyn Operator>),
    /// Parameter with macros: expanded per evaluation, and built again when the expanded
    /// text differs from the one the operator last built for this link was built from.
    /// Boxed: rare, and it would make every rule's hot fields span one more cache line.
    Dynamic(Box<DynamicOperator>),
}

/// A [`RuleOperator::Dynamic`]'s parts.
#[derive(Debug)]
pub struct DynamicOperator {
    pub build: BuildFn,
    pub param: Macro,
    pub base_dir: PathBuf,
    pub negated: bool,
    /// Number of the link among the rule set's dynamic operators (set on loading).
    pub slot: u32,
}

/// One rule (or chain link).
///
/// `repr(C)` and aligned to a cache line: the fields the rule loop reads for every link
/// it evaluates come first, instead of lying wherever the compiler puts them in a struct
/// of seven lines (the rule loop's cache misses, on a worker's cold caches, were mostly
/// these). The first line holds all that a `TX:key` link (the commonest in CRS) reads; the
/// second what the loop reads after a match, and the targets that other links visit.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Rule {
    pub operator: RuleOperator,
    pub chained: Option<Box<Rule>>,
    /// For a link that tests one `TX:key` (or `&TX:key`) value as it is (set when the rule
    /// set is built): the slot, read directly instead of visiting the target.
    pub tx_key: Option<TxKeyTest>,
    /// For a static `@lt/@le/@gt/@ge/@eq`: the comparison, so that a TX value can be
    /// compared as an integer without calling the operator.
    pub int_cmp: Option<IntCmp>,
    /// How the link's actions run when it matches (set when the rule set is built).
    pub execs: ExecPlan,
    pub negated: bool,
    /// Effective disruptive action (defaults applied; `block` resolved at run time).
    pub disruptive: Disruptive,
    /// `actions.multi_match` and `actions.capture`, next to the other fields read per link.
    pub multi_match: bool,
    pub capture: bool,
    /// On a chain's first link: whether a link of the chain has a `ctl` or `setenv`, which
    /// run once the whole chain matched (set when the rule set is built).
    pub chain_others: bool,
    pub log: bool,
    pub phase: u8,
    /// Whether the link captures and its static operator matches every value whole (CRS
    /// 920450's `@rx ^.*$`; negated, it matches none), set when the rule set is built: a
    /// value's one group is the value, recorded without asking the operator. Next to the
    /// targets, read with them.
    pub captures_whole: bool,
    /// 0 for chain links. (The rule loop reads it from its phase steps.)
    pub id: u32,
    /// `actions.skip` and `actions.severity`, which the rule loop reads after every match,
    /// next to `log` and `id` (the actions lie three cache lines further).
    pub skip: u32,
    pub severity: Option<u8>,
    /// What a match does: `disruptive` with `block` resolved by the defaults (read by the
    /// rule loop after every match, without following `defaults`).
    pub on_match: Disruptive,
    pub targets: Vec<Target>,
    /// The full transformation chain, and its prefixes (for `multiMatch`).
    pub chain_ids: Vec<ChainId>,
    /// Actions as written (defaults are folded in by [`Rule::finish`]).
    pub actions: Actions,
    /// `SecDefaultAction` in force where the rule was defined.
    pub defaults: Option<Arc<Actions>>,
    pub operator_name: String,
    pub origin: Arc<str>,
    pub line: usize,
    /// Read only when the rule denies or redirects.
    pub status: Option<u16>,
}

/// How a link's actions (`Rule::actions.exec`) run when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecPlan {
    /// It has none.
    #[default]
    None,
    /// Each is a `setvar` of a literal `TX` key to a literal value (or by a literal amount,
    /// or by another key's integer), as CRS's setup and scoring rules write them: run from
    /// `RuleSet::slot_setvars[start..start + len]`, without reading the actions.
    Slots { start: u32, len: u16 },
    /// One `setvar` of a `TX` key named at run time (no numbered key), whose name and value
    /// are literal text and capture groups `TX:0`..`TX:{groups - 1}` (CRS 920450's
    /// `tx.header_name_920450_%{tx.0}=/%{tx.0}/`): where a link matched several values, each
    /// value's key is written from its groups directly. Run one by one otherwise.
    /// `lower_groups`: whether the groups may hold upper case, which the key may not
    /// (`@rx`'s groups are parts of the value it tests, lower-cased by a last `t:lowercase`).
    CaptureSetVar { groups: u8, lower_groups: bool },
    /// Run one by one from the actions.
    General,
}

/// A `setvar` that [`ExecPlan::Slots`] runs: on `TX` slot `slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotSetVar {
    pub slot: u32,
    pub op: SlotOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOp {
    /// To the literal text `RuleSet::setvar_values[start..start + len]`.
    Set {
        start: u32,
        len: u32,
    },
    Add(Amount),
    Sub(Amount),
    Delete,
}

/// What `=+` and `=-` add or subtract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// A literal, read as an integer at load time.
    Const(i64),
    /// The integer of another `TX` slot (`=+%{tx.key}`), 0 when it is unset.
    Slot(u32),
}

/// The integer comparisons of `@lt @le @gt @ge @eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// An integer comparison with its operand read at load time, as the operator reads it.
/// The operand is 32-bit (8 bytes in all, beside the other fields read per link); a
/// comparison with a wider one is left to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntCmp {
    pub op: IntOp,
    pub operand: i32,
}

impl IntCmp {
    /// The comparison of operator `name` with parameter `param`, if it is one.
    pub fn of(name: &str, param: &str) -> Option<IntCmp> {
        let op = [
            ("lt", IntOp::Lt),
            ("le", IntOp::Le),
            ("gt", IntOp::Gt),
            ("ge", IntOp::Ge),
            ("eq", IntOp::Eq),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?
        .1;
        Some(IntCmp {
            op,
            operand: i32::try_from(operators::parse_int(param.as_bytes())).ok()?,
        })
    }

    /// Whether a value read as the integer `n` matches (before negation).
    pub fn holds(self, n: i64) -> bool {
        let operand = i64::from(self.operand);
        match self.op {
            IntOp::Lt => n < operand,
            IntOp::Le => n <= operand,
            IntOp::Gt => n > operand,
            IntOp::Ge => n >= operand,
            IntOp::Eq => n == operand,
        }
    }
}

/// A link whose only target is `TX:key` or `&TX:key`, without exclusions,
/// transformations, `multiMatch` or `capture`: its one value is the slot's.
#[derive(Debug, Clone)]
pub struct TxKeyTest {
    pub slot: u32,
    /// MATCHED_VAR_NAME when it matches (`TX:key`, or `TX` when counting):
    /// `RuleSet::tx_key_names[name_start..name_start + name_len]`, where the links testing
    /// the same key share it.
    pub name_start: u32,
    pub name_len: u16,
    pub count: bool,
}

impl Rule {
    /// The final transformation chain, if any.
    pub fn chain_id(&self) -> Option<ChainId> {
        self.chain_ids.last().copied()
    }

    /// Fold defaults into the effective fields and intern the transformation chain.
    pub fn finish(&mut self, chains: &mut ChainTable) {
        let d = self.defaults.clone();
        let mut transforms = Vec::new();
        if let Some(d) = &d {
            if !self.actions.t_none {
                transforms.extend_from_slice(&d.transforms);
            }
        }
        transforms.extend_from_slice(&self.actions.transforms);
        self.chain_ids = chains.intern(&transforms);
        self.disruptive = self
            .actions
            .disruptive
            .or_else(|| d.as_ref().and_then(|d| d.disruptive))
            .unwrap_or(Disruptive::Pass);
        self.log = self
            .actions
            .log
            .or_else(|| d.as_ref().and_then(|d| d.log))
            .unwrap_or(true);
        self.status = self
            .actions
            .status
            .or_else(|| d.as_ref().and_then(|d| d.status));
        self.multi_match = self.actions.multi_match;
        self.capture = self.actions.capture;
        self.skip = self.actions.skip;
        self.severity = self.actions.severity;
        self.on_match = match self.disruptive {
            Disruptive::Block => d
                .as_ref()
                .and_then(|d| d.disruptive)
                .filter(|d| *d != Disruptive::Block)
                .unwrap_or(Disruptive::Pass),
            other => other,
        };
        if let Some(c) = self.chained.as_mut() {
            c.finish(chains);
        }
    }

    /// Whether the rule or any link carries `tag` (exact, case-insensitive).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.actions
            .tags
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// Parse `"[!]@name param"` (no `@` means `@rx`) into an operator.
pub fn parse_operator(text: &str, ctx: &mut BuildContext<'_>) -> Result<ParsedOperator, String> {
    let t = text.trim_start();
    let (negated, t) = match t.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, t),
    };
    let (name, param) = match t.strip_prefix('@') {
        Some(r) => {
            let end = r.find([' ', '\t']).unwrap_or(r.len());
            (&r[..end], r[end..].trim_start_matches([' ', '\t']))
        }
        None => ("rx", t),
    };
    let (build, macros) =
        operators::lookup(name).ok_or_else(|| format!("unknown operator @{name}"))?;
    ctx.negated = negated;
    let m = Macro::parse(param);
    let op = if macros && m.as_literal().is_none() {
        RuleOperator::Dynamic(Box::new(DynamicOperator {
            build,
            param: m,
            base_dir: ctx.base_dir.to_path_buf(),
            negated,
            slot: 0,
        }))
    } else {
        RuleOperator::Static(build(param, ctx).map_err(|e| format!("@{name}: {e}"))?)
    };
    let int_cmp = match op {
        RuleOperator::Static(_) => IntCmp::of(name, param),
        _ => None,
    };
    Ok(ParsedOperator {
        op,
        negated,
        name: name.to_string(),
        int_cmp,
    })
}

/// An operator as [`parse_operator`] reads it.
pub struct ParsedOperator {
    pub op: RuleOperator,
    pub negated: bool,
    pub name: String,
    pub int_cmp: Option<IntCmp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_share_prefixes() {
        let mut c = ChainTable::default();
        let a = c.intern(&[1, 2, 3]);
        let b = c.intern(&[1, 2, 4]);
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
        assert_eq!(c.nodes.len(), 4);
        assert_eq!(c.masks[a[2] as usize], 0b1110);
        assert_eq!(c.masks[b[2] as usize], 0b10110);
        assert!(c.intern(&[]).is_empty());
    }

    #[test]
    fn fields_read_per_link_lie_in_the_first_cache_lines() {
        use std::mem::{align_of, offset_of, size_of_val};
        let r = crate::RuleSet::from_text("SecRule ARGS \"@rx a\" \"id:1\"", "t").unwrap();
        let r = &r.rules()[0];
        assert_eq!(align_of::<Rule>(), 64);
        // What a `TX:key` link reads.
        let first = [
            offset_of!(Rule, operator) + size_of_val(&r.operator),
            offset_of!(Rule, chained) + size_of_val(&r.chained),
            offset_of!(Rule, tx_key) + size_of_val(&r.tx_key),
            offset_of!(Rule, int_cmp) + size_of_val(&r.int_cmp),
            offset_of!(Rule, execs) + size_of_val(&r.execs),
            offset_of!(Rule, negated) + 1,
            offset_of!(Rule, multi_match) + 1,
            offset_of!(Rule, capture) + 1,
        ];
        assert!(first.iter().all(|&end| end <= 64), "{first:?}");
        // What the loop reads after a match, and what a matched chain reads next to `log`.
        let second = [
            offset_of!(Rule, id) + 4,
            offset_of!(Rule, skip) + 4,
            offset_of!(Rule, severity) + size_of_val(&r.severity),
            offset_of!(Rule, on_match) + size_of_val(&r.on_match),
            offset_of!(Rule, chain_others) + 1,
            offset_of!(Rule, log) + 1,
            offset_of!(Rule, captures_whole) + 1,
            offset_of!(Rule, targets) + size_of_val(&r.targets),
            offset_of!(Rule, chain_ids) + size_of_val(&r.chain_ids),
        ];
        assert!(second.iter().all(|&end| end <= 128), "{second:?}");
    }

    #[test]
    fn finish_copies_multi_match_and_capture() {
        let rs = crate::RuleSet::from_text(
            "SecRule ARGS \"@rx a\" \"id:1,multiMatch,chain\"\n  SecRule ARGS \"@rx (b)\" \"capture\"\n\
             SecRule ARGS \"@rx a\" \"id:2\"\nSecRuleUpdateActionById 2 \"capture\"\n",
            "t",
        )
        .unwrap();
        let [one, two] = rs.rules() else {
            panic!("two rules")
        };
        let link = one.chained.as_deref().unwrap();
        assert_eq!((one.multi_match, one.capture), (true, false));
        assert_eq!((link.multi_match, link.capture), (false, true));
        assert_eq!((two.multi_match, two.capture), (false, true));
    }

    /// The copies the rule loop reads after a match (`skip`, `severity`, and `on_match`,
    /// `block` resolved as the phase's defaults say) are what the actions say, also after
    /// an update of the actions.
    #[test]
    fn finish_copies_what_the_loop_reads_after_a_match() {
        let rs = crate::RuleSet::from_text(
            "SecRule ARGS \"@rx a\" \"id:1,phase:2,block,skip:3,severity:2\"\n\
             SecDefaultAction \"phase:2,log,deny,status:403\"\n\
             SecRule ARGS \"@rx a\" \"id:2,phase:2,block\"\n\
             SecRule ARGS \"@rx a\" \"id:3,phase:2,pass,severity:CRITICAL\"\n\
             SecRule ARGS \"@rx a\" \"id:4,phase:2\"\n\
             SecDefaultAction \"phase:1,log,block\"\n\
             SecRule ARGS \"@rx a\" \"id:5,phase:1,block\"\n\
             SecRule ARGS \"@rx a\" \"id:6,phase:2,allow\"\n\
             SecRuleUpdateActionById 6 \"skip:1,severity:5\"\n",
            "t",
        )
        .unwrap();
        let seen: Vec<_> = rs
            .rules()
            .iter()
            .map(|r| (r.id, r.skip, r.severity, r.on_match))
            .collect();
        use Disruptive::*;
        assert_eq!(
            seen,
            [
                (1, 3, Some(2), Pass),
                (2, 0, None, Deny),
                (3, 0, Some(2), Pass),
                (4, 0, None, Deny),
                (5, 0, None, Pass),
                (6, 1, Some(5), Allow(crate::actions::AllowScope::All)),
            ]
        );
        for r in rs.rules() {
            assert_eq!((r.skip, r.severity), (r.actions.skip, r.actions.severity));
        }
    }

    #[test]
    fn operator_forms() {
        let mut n = Vec::new();
        let mut ctx = BuildContext {
            base_dir: std::path::Path::new("."),
            notices: &mut n,
            negated: false,
        };
        let p = parse_operator("!@within %{tx.allowed_methods}", &mut ctx).unwrap();
        assert!(p.negated && p.name == "within" && matches!(p.op, RuleOperator::Dynamic(_)));
        let p = parse_operator("^foo$", &mut ctx).unwrap();
        assert!(!p.negated && p.name == "rx" && matches!(p.op, RuleOperator::Static(_)));
        assert!(p.int_cmp.is_none());
        let p = parse_operator("@LT  -3x", &mut ctx).unwrap();
        let want = IntCmp {
            op: IntOp::Lt,
            operand: -3,
        };
        assert_eq!(p.int_cmp, Some(want));
        // A parameter expanded per transaction is compared by the operator built then.
        let p = parse_operator("@lt %{tx.n}", &mut ctx).unwrap();
        assert!(p.int_cmp.is_none());
        // An operand wider than the comparison keeps is left to the operator.
        let p = parse_operator("@gt 2147483648", &mut ctx).unwrap();
        assert!(p.int_cmp.is_none());
        let p = parse_operator("@gt -2147483648", &mut ctx).unwrap();
        assert_eq!(p.int_cmp.map(|c| c.operand), Some(i32::MIN));
        assert!(parse_operator("@nosuch x", &mut ctx).is_err());
    }
}
