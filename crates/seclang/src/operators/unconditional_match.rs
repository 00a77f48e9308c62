//! `@unconditionalMatch`: always matches.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct UnconditionalMatch;

pub fn new(_: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(UnconditionalMatch))
}

impl Operator for UnconditionalMatch {
    fn matches(&self, _: &[u8], _: &mut Captures) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn always() {
        let op = crate::operators::build("unconditionalMatch", "");
        assert!(crate::operators::test_match(&*op, b""));
    }
}
