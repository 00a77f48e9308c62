//! `@contains`: the parameter occurs in the input.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Contains(Vec<u8>);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Contains(param.as_bytes().to_vec())))
}

impl Operator for Contains {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        memchr::memmem::find(input, &self.0).is_some()
    }

    // Not `literals`: that would put its rules in the phase scans' groups, for no gain (a
    // search as cheap as theirs) and at the cost of bigger automata.
    fn screen_literals(&self) -> Option<Vec<Vec<u8>>> {
        Some(vec![self.0.clone()])
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn compares() {
        assert!(test_match(&*build("contains", "abc"), b"xxabcxx"));
        assert!(!test_match(&*build("contains", "abc"), b"ab\x00c"));
        assert!(!test_match(&*build("contains", "abc"), b""));
    }
}
