//! Flow actions: `phase chain skip skipAfter`.

use super::{need, Actions};

pub fn phase(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    let v = need(v)?.trim();
    let p = match v {
        "request" => 2,
        "response" => 4,
        "logging" => 5,
        n => n.parse().map_err(|_| format!("bad phase {n:?}"))?,
    };
    if !(1..=5).contains(&p) {
        return Err(format!("phase {p} out of range"));
    }
    a.phase = Some(p);
    Ok(())
}

pub fn chain(a: &mut Actions, _: Option<&str>) -> Result<(), String> {
    a.chain = true;
    Ok(())
}

pub fn skip(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.skip = need(v)?
        .trim()
        .parse()
        .map_err(|_| format!("bad skip {v:?}"))?;
    Ok(())
}

pub fn skip_after(a: &mut Actions, v: Option<&str>) -> Result<(), String> {
    a.skip_after = Some(need(v)?.trim().to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Actions;

    #[test]
    fn phases() {
        assert_eq!(Actions::parse("phase:request").unwrap().phase, Some(2));
        assert_eq!(Actions::parse("phase:5").unwrap().phase, Some(5));
        assert!(Actions::parse("phase:6").is_err());
        assert_eq!(
            Actions::parse("skipAfter:END-X")
                .unwrap()
                .skip_after
                .as_deref(),
            Some("END-X")
        );
        assert!(Actions::parse("skip:x").is_err());
    }
}
