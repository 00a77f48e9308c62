//! `@geoLookup`: no GeoIP database is configured in this engine, so the lookup never succeeds
//! (ModSecurity without `SecGeoLookupDb` behaves the same way for rule flow).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct GeoLookup;

pub fn new(_: &str, ctx: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    ctx.notices
        .push("@geoLookup: no GeoIP database; the operator never matches".into());
    Ok(Box::new(GeoLookup))
}

impl Operator for GeoLookup {
    fn matches(&self, _: &[u8], _: &mut Captures) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_matches() {
        assert!(!crate::operators::test_match(
            &*crate::operators::build("geoLookup", ""),
            b"1.2.3.4"
        ));
    }
}
