//! `setvar:[!]collection.name[=[+|-]value]`: set, add to, subtract from or delete a
//! collection variable; name and value may hold macros.

use super::{need, Actions, Exec};
use crate::macros::Macro;
use crate::variables::Var;

#[derive(Debug, Clone)]
pub enum SetVarOp {
    Set(Macro),
    Add(Macro),
    Sub(Macro),
    Delete,
}

#[derive(Debug, Clone)]
pub struct SetVar {
    pub collection: Var,
    pub name: Macro,
    pub op: SetVarOp,
    /// For a literal TX name: its slot, numbered when the rule set is built.
    pub slot: Option<u32>,
    /// For `=+%{tx.key}` and `=-%{tx.key}` (CRS's anomaly scoring): the key's slot,
    /// whose integer is the operand, so the value needs no expansion nor parsing.
    pub operand_slot: Option<u32>,
    /// For a TX name built at run time: no numbered key starts and ends as its literal
    /// text does, so the name expanded is none, and the store is not asked for its slot
    /// (hashing the name; CRS 920450 builds one per request header).
    pub unnumbered: bool,
}

pub fn parse(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let v = need(v)?.trim();
    let (delete, v) = match v.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (lhs, rhs) = match v.split_once('=') {
        Some((l, r)) => (l, Some(r)),
        None => (v, None),
    };
    let (coll, name) = lhs
        .split_once('.')
        .ok_or_else(|| format!("setvar needs collection.name: {v:?}"))?;
    let collection = match Var::from_name(coll.trim()) {
        Some((
            var @ (Var::Tx | Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource),
            _,
        )) => var,
        _ => return Err(format!("setvar: collection {coll:?} is not writable")),
    };
    let op = match (delete, rhs) {
        (true, _) => SetVarOp::Delete,
        (false, None) => SetVarOp::Set(Macro::parse("1")),
        (false, Some(r)) => {
            if let Some(n) = r.strip_prefix('+') {
                SetVarOp::Add(Macro::parse(n))
            } else if let Some(n) = r.strip_prefix('-') {
                SetVarOp::Sub(Macro::parse(n))
            } else {
                SetVarOp::Set(Macro::parse(r))
            }
        }
    };
    a.exec.push(Exec::SetVar(SetVar {
        collection,
        name: Macro::parse(&name.to_ascii_lowercase()),
        op,
        slot: None,
        operand_slot: None,
        unnumbered: false,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Actions, Exec};
    use super::*;

    fn one(s: &str) -> SetVar {
        match Actions::parse(s).unwrap().exec.remove(0) {
            Exec::SetVar(sv) => sv,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forms() {
        assert!(matches!(one("setvar:tx.a=+5").op, SetVarOp::Add(_)));
        assert!(matches!(one("setvar:tx.a=-%{tx.b}").op, SetVarOp::Sub(_)));
        assert!(matches!(one("setvar:!tx.a").op, SetVarOp::Delete));
        assert!(
            matches!(one("setvar:ip.a").op, SetVarOp::Set(ref m) if m.as_literal() == Some(b"1"))
        );
        assert_eq!(
            one("setvar:'tx.Foo=bar'").name.as_literal(),
            Some(&b"foo"[..])
        );
        assert!(Actions::parse("setvar:args.x=1").is_err());
        assert!(Actions::parse("setvar:nodot").is_err());
    }
}
