//! `t:name`: append a transformation; `t:none` clears the list (and inherited defaults).

use super::{need, Actions};
use crate::transformations;

pub fn parse(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let name = need(v)?.trim();
    if name.eq_ignore_ascii_case("none") {
        a.transforms.clear();
        a.t_none = true;
        return Ok(());
    }
    let id =
        transformations::lookup(name).ok_or_else(|| format!("unknown transformation {name:?}"))?;
    a.transforms.push(id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Actions;

    #[test]
    fn none_resets() {
        let a = Actions::parse("t:lowercase,t:none,t:urlDecode").unwrap();
        assert_eq!(a.transforms.len(), 1);
        assert!(a.t_none);
        assert!(Actions::parse("t:sparkle").is_err());
    }
}
