//! Collection actions: `setenv`, and `initcol setsid setuid expirevar`, which are accepted
//! but have no effect: persistent collections live only as long as the transaction here.

use super::{need, Actions, Exec};
use crate::macros::Macro;

pub fn noop(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    need(v)?;
    a.exec.push(Exec::Noop);
    Ok(())
}

pub fn setenv(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let v = need(v)?;
    let (name, value) = v.split_once('=').unwrap_or((v, "1"));
    a.exec
        .push(Exec::SetEnv(Macro::parse(name.trim()), Macro::parse(value)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Actions, Exec};

    #[test]
    fn setenv_and_noops() {
        let a = Actions::parse("setenv:X=%{tx.a},initcol:ip=%{remote_addr}").unwrap();
        assert!(matches!(a.exec[0], Exec::SetEnv(..)));
        assert!(matches!(a.exec[1], Exec::Noop));
        assert!(Actions::parse("initcol").is_err());
    }
}
