//! Metadata actions: `id msg logdata tag severity ver rev maturity accuracy`.

use super::{need, Actions};
use crate::macros::Macro;

pub fn id(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let n: u32 = need(v)?
        .trim()
        .parse()
        .map_err(|_| format!("bad id {v:?}"))?;
    if n == 0 {
        return Err("id 0 is not allowed".into());
    }
    a.id = Some(n);
    Ok(())
}

pub fn msg(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.msg = Some(Macro::parse(need(v)?));
    Ok(())
}

pub fn logdata(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.logdata = Some(Macro::parse(need(v)?));
    Ok(())
}

pub fn tag(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let mut tags = a.tags.to_vec();
    tags.push(need(v)?.to_string());
    a.tags = tags.into();
    Ok(())
}

/// Severity by number (0-7) or syslog name.
pub fn severity(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    const NAMES: [&str; 8] = [
        "EMERGENCY",
        "ALERT",
        "CRITICAL",
        "ERROR",
        "WARNING",
        "NOTICE",
        "INFO",
        "DEBUG",
    ];
    let v = need(v)?.trim();
    let n = match v.parse::<u8>() {
        Ok(n) if n < 8 => n,
        _ => NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(v))
            .ok_or_else(|| format!("bad severity {v:?}"))? as u8,
    };
    a.severity = Some(n);
    Ok(())
}

pub fn ver(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.ver = Some(need(v)?.to_string());
    Ok(())
}

pub fn rev(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.rev = Some(need(v)?.to_string());
    Ok(())
}

fn small(v: Option<&str>) -> Result<u8, String> {
    need(v)?
        .trim()
        .parse()
        .map_err(|_| format!("bad number {v:?}"))
}

pub fn maturity(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.maturity = Some(small(v)?);
    Ok(())
}

pub fn accuracy(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.accuracy = Some(small(v)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Actions;

    #[test]
    fn severities_and_ids() {
        assert_eq!(
            Actions::parse("severity:WARNING").unwrap().severity,
            Some(4)
        );
        assert_eq!(Actions::parse("severity:2").unwrap().severity, Some(2));
        assert!(Actions::parse("severity:LOUD").is_err());
        assert!(Actions::parse("id:abc").is_err());
        assert!(Actions::parse("id:0").is_err());
        assert!(Actions::parse("msg").is_err());
    }
}
