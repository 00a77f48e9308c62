//! `@noMatch`: never matches.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct NoMatch;

pub fn new(_: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(NoMatch))
}

impl Operator for NoMatch {
    fn matches(&self, _: &[u8], _: &mut Captures) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn never() {
        assert!(!crate::operators::test_match(
            &*crate::operators::build("noMatch", ""),
            b"x"
        ));
    }
}
