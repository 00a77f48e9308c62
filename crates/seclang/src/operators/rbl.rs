//! `@rbl`: DNS block-list lookups would put network I/O on the request path; the operator
//! loads and never matches.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Rbl;

pub fn new(param: &str, ctx: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    ctx.notices.push(format!(
        "@rbl {param}: DNS lookups are not performed; the operator never matches"
    ));
    Ok(Box::new(Rbl))
}

impl Operator for Rbl {
    fn matches(&self, _: &[u8], _: &mut Captures) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_matches() {
        assert!(!crate::operators::test_match(
            &*crate::operators::build("rbl", "x.example"),
            b"1.2.3.4"
        ));
    }
}
