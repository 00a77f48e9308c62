//! Actions (the third `SecRule` argument): parsed into [`Actions`] through [`TABLE`], one
//! handler per action name, grouped by kind in the files below.

mod collections;
mod ctl;
mod disruptive;
mod flow;
mod logging;
mod metadata;
mod setvar;
mod transformation;

pub use ctl::{Ctl, EngineMode, IdRange};
pub use setvar::{SetVar, SetVarOp};

use crate::macros::Macro;
use crate::transformations::TransformId;

/// What a matching rule does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruptive {
    Pass,
    /// Whatever `SecDefaultAction` says for the phase.
    Block,
    Deny,
    Drop,
    Redirect,
    Allow(AllowScope),
}

/// How far `allow` reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowScope {
    /// Skip the rest of this phase and all later ones (except logging).
    All,
    Phase,
    Request,
}

/// Actions run, in order, when a rule (chain) matches.
#[derive(Debug, Clone)]
pub enum Exec {
    SetVar(SetVar),
    Ctl(Ctl),
    SetEnv(Macro, Macro),
    /// `initcol`/`setsid`/`setuid`/`expirevar`: persistent collections are per transaction
    /// here, so these only note what they would have opened.
    Noop,
}

/// The parsed action list of one rule (or of `SecDefaultAction`).
#[derive(Debug, Clone, Default)]
pub struct Actions {
    pub id: Option<u32>,
    pub phase: Option<u8>,
    pub msg: Option<Macro>,
    pub logdata: Option<Macro>,
    /// Shared with every audit record of the rule's matches: a match clones no tag.
    pub tags: std::sync::Arc<[String]>,
    pub severity: Option<u8>,
    pub ver: Option<String>,
    pub rev: Option<String>,
    pub maturity: Option<u8>,
    pub accuracy: Option<u8>,
    /// Transformations named after the last `t:none`.
    pub transforms: Vec<TransformId>,
    /// Whether `t:none` appeared (drops inherited default transformations).
    pub t_none: bool,
    pub disruptive: Option<Disruptive>,
    pub status: Option<u16>,
    pub redirect: Option<Macro>,
    pub chain: bool,
    pub skip: u32,
    pub skip_after: Option<String>,
    pub capture: bool,
    pub multi_match: bool,
    pub log: Option<bool>,
    pub auditlog: Option<bool>,
    pub exec: Vec<Exec>,
}

impl Actions {
    /// Every macro the actions expand when their rule matches.
    pub fn macros_mut(&mut self) -> impl Iterator<Item = &mut Macro> {
        let texts = [&mut self.msg, &mut self.logdata, &mut self.redirect]
            .into_iter()
            .flatten();
        let exec = self.exec.iter_mut().flat_map(|e| {
            let (a, b) = match e {
                Exec::SetVar(sv) => (
                    Some(&mut sv.name),
                    match &mut sv.op {
                        SetVarOp::Set(m) | SetVarOp::Add(m) | SetVarOp::Sub(m) => Some(m),
                        SetVarOp::Delete => None,
                    },
                ),
                Exec::SetEnv(n, v) => (Some(n), Some(v)),
                Exec::Ctl(_) | Exec::Noop => (None, None),
            };
            a.into_iter().chain(b)
        });
        texts.chain(exec)
    }
}

type Handler = fn(&mut Actions, Option<&str>) -> Result<(), String>;

/// Every action name (lower case) and its handler.
const TABLE: &[(&str, Handler)] = &[
    ("accuracy", metadata::accuracy),
    ("allow", disruptive::allow),
    ("auditlog", logging::auditlog),
    ("block", disruptive::block),
    ("capture", logging::capture),
    ("chain", flow::chain),
    ("ctl", ctl::parse),
    ("deny", disruptive::deny),
    ("drop", disruptive::drop),
    ("expirevar", collections::noop),
    ("id", metadata::id),
    ("initcol", collections::noop),
    ("log", logging::log),
    ("logdata", metadata::logdata),
    ("maturity", metadata::maturity),
    ("msg", metadata::msg),
    ("multimatch", logging::multi_match),
    ("noauditlog", logging::noauditlog),
    ("nolog", logging::nolog),
    ("pass", disruptive::pass),
    ("phase", flow::phase),
    ("redirect", disruptive::redirect),
    ("rev", metadata::rev),
    ("setenv", collections::setenv),
    ("setsid", collections::noop),
    ("setuid", collections::noop),
    ("setvar", setvar::parse),
    ("severity", metadata::severity),
    ("skip", flow::skip),
    ("skipafter", flow::skip_after),
    ("status", disruptive::status),
    ("t", transformation::parse),
    ("tag", metadata::tag),
    ("ver", metadata::ver),
];

/// Split an action list into `(name, value)` pairs, honouring `'quoted'` values.
pub fn split(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != b':' && b[i] != b',' {
            i += 1;
        }
        let name = text[start..i].trim().to_string();
        if i >= b.len() || b[i] == b',' {
            out.push((name, None));
            continue;
        }
        i += 1; // ':'
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                if i >= b.len() {
                    return Err(format!("unterminated quote in action {name}"));
                }
                if b[i] == b'\\' && i + 1 < b.len() && (b[i + 1] == b'\'' || b[i + 1] == b'\\') {
                    value.push(b[i + 1]);
                    i += 2;
                } else if b[i] == b'\'' {
                    i += 1;
                    break;
                } else {
                    value.push(b[i]);
                    i += 1;
                }
            }
            // Text after the closing quote up to the next comma is ignored, as ModSecurity does.
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value.extend_from_slice(text[vs..i].trim_end().as_bytes());
        }
        out.push((
            name,
            Some(String::from_utf8(value).map_err(|e| e.to_string())?),
        ));
    }
    Ok(out)
}

impl Actions {
    /// Parse an action list.
    pub fn parse(text: &str) -> Result<Actions, String> {
        let mut a = Actions::default();
        for (name, value) in split(text)? {
            a.apply(&name, value.as_deref())?;
        }
        // Kept for the rule set's life in every worker: no spare capacity.
        a.exec.shrink_to_fit();
        a.transforms.shrink_to_fit();
        Ok(a)
    }

    /// Apply one action (also used by `SecRuleUpdateActionById`).
    pub fn apply(&mut self, name: &str, value: Option<&str>) -> Result<(), String> {
        let lower = name.to_ascii_lowercase();
        let handler = TABLE
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, h)| *h)
            .ok_or_else(|| format!("unknown action {name:?}"))?;
        handler(self, value).map_err(|e| format!("action {name}: {e}"))
    }
}

/// The value, or an error naming what is missing.
pub(crate) fn need(value: Option<&str>) -> Result<&str, String> {
    value.ok_or_else(|| "needs a value".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_values() {
        let v = split("id:1, msg:'a, b\\'c',tag:x , pass,setvar:'tx.a=%{tx.b}'").unwrap();
        assert_eq!(v[0], ("id".into(), Some("1".into())));
        assert_eq!(v[1], ("msg".into(), Some("a, b'c".into())));
        assert_eq!(v[2], ("tag".into(), Some("x".into())));
        assert_eq!(v[3], ("pass".into(), None));
        assert_eq!(v[4], ("setvar".into(), Some("tx.a=%{tx.b}".into())));
        assert!(split("msg:'open").is_err());
    }

    #[test]
    fn parses_a_crs_rule() {
        let a = Actions::parse(
            "id:942100,phase:2,block,capture,t:none,t:utf8toUnicode,t:urlDecodeUni,msg:'SQLi',\
             tag:'attack-sqli',severity:'CRITICAL',setvar:'tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}'",
        )
        .unwrap();
        assert_eq!(a.id, Some(942100));
        assert_eq!(a.phase, Some(2));
        assert_eq!(a.disruptive, Some(Disruptive::Block));
        assert!(a.capture && a.t_none);
        assert_eq!(a.transforms.len(), 2);
        assert_eq!(a.severity, Some(2));
        assert_eq!(a.exec.len(), 1);
        assert!(Actions::parse("id:1,frobnicate")
            .unwrap_err()
            .contains("frobnicate"));
    }
}
