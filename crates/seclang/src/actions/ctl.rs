//! `ctl:name=value`: per-transaction configuration changes (engine mode, rule and target
//! removal, body processing switches).

use super::{need, Actions, Exec};
use crate::variables::{parse_var_ref, VarRef};

/// `SecRuleEngine` / `ctl:ruleEngine` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

impl EngineMode {
    pub fn parse(s: &str) -> Result<EngineMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" => Ok(EngineMode::On),
            "off" => Ok(EngineMode::Off),
            "detectiononly" => Ok(EngineMode::DetectionOnly),
            _ => Err(format!("bad engine mode {s:?}")),
        }
    }
}

/// An inclusive rule id range (`910000` or `910000-910999`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange(pub u32, pub u32);

impl IdRange {
    pub fn contains(&self, id: u32) -> bool {
        self.0 <= id && id <= self.1
    }

    /// Parse a space/comma separated list of ids and ranges.
    pub fn parse_list(s: &str) -> Result<Vec<IdRange>, String> {
        let mut out = Vec::new();
        for item in s.split([' ', ',']).map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || format!("bad rule id or range {item:?}");
            let r = match item.split_once('-') {
                Some((a, b)) => IdRange(
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                ),
                None => {
                    let n = item.parse().map_err(|_| bad())?;
                    IdRange(n, n)
                }
            };
            out.push(r);
        }
        if out.is_empty() {
            return Err("no rule ids".into());
        }
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub enum Ctl {
    RuleEngine(EngineMode),
    RuleRemoveById(Vec<IdRange>),
    RuleRemoveByTag(String),
    RuleRemoveByMsg(String),
    RuleRemoveTargetById(Vec<IdRange>, VarRef),
    RuleRemoveTargetByTag(String, VarRef),
    RuleRemoveTargetByMsg(String, VarRef),
    RequestBodyProcessor(String),
    RequestBodyAccess(bool),
    ResponseBodyAccess(bool),
    ForceRequestBodyVariable(bool),
    RequestBodyLimit(u64),
    /// Audit log settings: no audit log is written by this engine itself.
    Audit,
}

fn on_off(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!("expected On or Off, got {v:?}")),
    }
}

fn target_pair(v: &str) -> Result<(&str, VarRef), String> {
    let (what, target) = v
        .split_once(';')
        .ok_or_else(|| format!("expected WHAT;TARGET in {v:?}"))?;
    Ok((what.trim(), parse_var_ref(target.trim())?))
}

pub fn parse(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let v = need(v)?;
    let (name, value) = v
        .split_once('=')
        .ok_or_else(|| format!("expected name=value in {v:?}"))?;
    let ctl = match name.trim().to_ascii_lowercase().as_str() {
        "ruleengine" => Ctl::RuleEngine(EngineMode::parse(value)?),
        "ruleremovebyid" => Ctl::RuleRemoveById(IdRange::parse_list(value)?),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(value.trim().to_string()),
        "ruleremovebymsg" => Ctl::RuleRemoveByMsg(value.trim().to_string()),
        "ruleremovetargetbyid" => {
            let (ids, t) = target_pair(value)?;
            Ctl::RuleRemoveTargetById(IdRange::parse_list(ids)?, t)
        }
        "ruleremovetargetbytag" => {
            let (tag, t) = target_pair(value)?;
            Ctl::RuleRemoveTargetByTag(tag.to_string(), t)
        }
        "ruleremovetargetbymsg" => {
            let (msg, t) = target_pair(value)?;
            Ctl::RuleRemoveTargetByMsg(msg.to_string(), t)
        }
        "requestbodyprocessor" => {
            let p = value.trim().to_ascii_uppercase();
            if !["URLENCODED", "MULTIPART", "JSON", "XML"].contains(&p.as_str()) {
                return Err(format!("unknown body processor {p:?}"));
            }
            Ctl::RequestBodyProcessor(p)
        }
        "requestbodyaccess" => Ctl::RequestBodyAccess(on_off(value)?),
        "responsebodyaccess" => Ctl::ResponseBodyAccess(on_off(value)?),
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on_off(value)?),
        "requestbodylimit" => Ctl::RequestBodyLimit(
            value
                .trim()
                .parse()
                .map_err(|_| format!("bad limit {value:?}"))?,
        ),
        "auditengine" | "auditlogparts" => Ctl::Audit,
        other => return Err(format!("unsupported ctl {other:?}")),
    };
    a.exec.push(Exec::Ctl(ctl));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Actions, Exec};
    use super::*;

    fn one(s: &str) -> Ctl {
        match Actions::parse(s).unwrap().exec.remove(0) {
            Exec::Ctl(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_ctls() {
        assert!(matches!(
            one("ctl:ruleEngine=DetectionOnly"),
            Ctl::RuleEngine(EngineMode::DetectionOnly)
        ));
        match one("ctl:ruleRemoveById=1-999999") {
            Ctl::RuleRemoveById(r) => assert!(r[0].contains(942100) && !r[0].contains(1_000_000)),
            c => panic!("{c:?}"),
        }
        match one("ctl:ruleRemoveTargetById=942100;ARGS:foo") {
            Ctl::RuleRemoveTargetById(_, t) => {
                assert!(t.covers(crate::variables::Var::Args, b"FOO"))
            }
            c => panic!("{c:?}"),
        }
        assert!(
            matches!(one("ctl:requestBodyProcessor=json"), Ctl::RequestBodyProcessor(ref p) if p == "JSON")
        );
        assert!(Actions::parse("ctl:debugLogLevel=9").is_err());
        assert!(Actions::parse("ctl:ruleRemoveById=abc").is_err());
    }
}
