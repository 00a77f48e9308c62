//! `@beginsWith`: the input starts with the parameter.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct BeginsWith(Vec<u8>);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(BeginsWith(param.as_bytes().to_vec())))
}

impl Operator for BeginsWith {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        input.starts_with(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn compares() {
        assert!(test_match(&*build("beginsWith", "abc"), b"abcd"));
        assert!(!test_match(&*build("beginsWith", "abc"), b"xabc"));
        assert!(!test_match(&*build("beginsWith", "abc"), b"ab"));
        assert!(test_match(&*build("beginsWith", ""), b""));
    }
}
