//! `@endsWith`: the input ends with the parameter.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct EndsWith(Vec<u8>);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(EndsWith(param.as_bytes().to_vec())))
}

impl Operator for EndsWith {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        input.ends_with(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn compares() {
        assert!(test_match(&*build("endsWith", "abc"), b"xabc"));
        assert!(!test_match(&*build("endsWith", "abc"), b"abcx"));
        assert!(!test_match(&*build("endsWith", "abc"), b""));
    }
}
