//! Logging and matching switches: `log nolog auditlog noauditlog capture multiMatch`.

use super::Actions;

pub fn log(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    a.log = Some(true);
    Ok(())
}

pub fn nolog(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    a.log = Some(false);
    // ModSecurity: nolog implies noauditlog unless auditlog follows.
    a.auditlog = Some(false);
    Ok(())
}

pub fn auditlog(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    a.auditlog = Some(true);
    Ok(())
}

pub fn noauditlog(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    a.auditlog = Some(false);
    Ok(())
}

pub fn capture(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    a.capture = true;
    Ok(())
}

pub fn multi_match(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    a.multi_match = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Actions;

    #[test]
    fn switches() {
        let a = Actions::parse("nolog,capture,multiMatch").unwrap();
        assert_eq!(
            (a.log, a.auditlog, a.capture, a.multi_match),
            (Some(false), Some(false), true, true)
        );
        assert_eq!(
            Actions::parse("nolog,auditlog").unwrap().auditlog,
            Some(true)
        );
    }
}
