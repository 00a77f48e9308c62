//! Disruptive actions: `pass block deny drop allow redirect`, and `status`.

use super::{need, Actions, AllowScope, Disruptive};
use crate::macros::Macro;

fn set(a: &mut Actions, d: Disruptive) -> Result<(), String> {
    a.disruptive = Some(d);
    Ok(())
}

pub fn pass(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    set(a, Disruptive::Pass)
}

pub fn block(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    set(a, Disruptive::Block)
}

pub fn deny(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    set(a, Disruptive::Deny)
}

pub fn drop(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    set(a, Disruptive::Drop)
}

pub fn allow(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let scope = match v.map(str::trim) {
        None | Some("") => AllowScope::All,
        Some("phase") => AllowScope::Phase,
        Some("request") => AllowScope::Request,
        Some(other) => return Err(format!("bad allow scope {other:?}")),
    };
    set(a, Disruptive::Allow(scope))
}

pub fn redirect(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.redirect = Some(Macro::parse(need(v)?));
    set(a, Disruptive::Redirect)
}

pub fn status(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let s: u16 = need(v)?
        .trim()
        .parse()
        .map_err(|_| format!("bad status {v:?}"))?;
    if !(100..=999).contains(&s) {
        return Err(format!("status {s} out of range"));
    }
    a.status = Some(s);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Actions, AllowScope, Disruptive};

    #[test]
    fn last_disruptive_wins() {
        let a = Actions::parse("deny,status:406,allow:request").unwrap();
        assert_eq!(a.disruptive, Some(Disruptive::Allow(AllowScope::Request)));
        assert_eq!(a.status, Some(406));
        assert!(Actions::parse("status:20").is_err());
        assert!(Actions::parse("allow:sometimes").is_err());
        assert!(Actions::parse("redirect:http://x/%{tx.a}")
            .unwrap()
            .redirect
            .is_some());
    }
}
