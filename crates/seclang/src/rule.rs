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
    Dynamic {
        build: BuildFn,
        param: Macro,
        base_dir: PathBuf,
        /// Number of the link among the rule set's dynamic operators (set on loading).
        slot: u32,
    },
}

/// One rule (or chain link).
#[derive(Debug)]
pub struct Rule {
    /// 0 for chain links.
    pub id: u32,
    pub phase: u8,
    pub targets: Vec<Target>,
    pub operator: RuleOperator,
    pub operator_name: String,
    pub negated: bool,
    /// The full transformation chain, and its prefixes (for `multiMatch`).
    pub chain_ids: Vec<ChainId>,
    /// Actions as written (defaults are folded in by [`Rule::finish`]).
    pub actions: Actions,
    /// `SecDefaultAction` in force where the rule was defined.
    pub defaults: Option<Arc<Actions>>,
    /// Effective disruptive action (defaults applied; `block` resolved at run time).
    pub disruptive: Disruptive,
    pub log: bool,
    pub status: Option<u16>,
    pub chained: Option<Box<Rule>>,
    pub origin: Arc<str>,
    pub line: usize,
    /// For a static `@lt/@le/@gt/@ge/@eq`: the comparison, so that a TX value can be
    /// compared as an integer without calling the operator.
    pub int_cmp: Option<IntCmp>,
    /// For a link that tests one `TX:key` (or `&TX:key`) value as it is (set when the rule
    /// set is built): the slot, read directly instead of visiting the target.
    pub tx_key: Option<TxKeyTest>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntCmp {
    pub op: IntOp,
    pub operand: i64,
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
            operand: operators::parse_int(param.as_bytes()),
        })
    }

    /// Whether a value read as the integer `n` matches (before negation).
    pub fn holds(self, n: i64) -> bool {
        match self.op {
            IntOp::Lt => n < self.operand,
            IntOp::Le => n <= self.operand,
            IntOp::Gt => n > self.operand,
            IntOp::Ge => n >= self.operand,
            IntOp::Eq => n == self.operand,
        }
    }
}

/// A link whose only target is `TX:key` or `&TX:key`, without exclusions,
/// transformations, `multiMatch` or `capture`: its one value is the slot's.
#[derive(Debug, Clone)]
pub struct TxKeyTest {
    pub slot: u32,
    pub count: bool,
    /// MATCHED_VAR_NAME when it matches (`TX:key`, or `TX` when counting).
    pub name: Box<[u8]>,
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
    let m = Macro::parse(param);
    let op = if macros && m.as_literal().is_none() {
        RuleOperator::Dynamic {
            build,
            param: m,
            base_dir: ctx.base_dir.to_path_buf(),
            slot: 0,
        }
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
    fn operator_forms() {
        let mut n = Vec::new();
        let mut ctx = BuildContext {
            base_dir: std::path::Path::new("."),
            notices: &mut n,
        };
        let p = parse_operator("!@within %{tx.allowed_methods}", &mut ctx).unwrap();
        assert!(p.negated && p.name == "within" && matches!(p.op, RuleOperator::Dynamic { .. }));
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
        assert!(parse_operator("@nosuch x", &mut ctx).is_err());
    }
}
