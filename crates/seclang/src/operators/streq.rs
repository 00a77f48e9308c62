//! `@streq`: the input equals the parameter, byte for byte.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Streq(Vec<u8>);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Streq(param.as_bytes().to_vec())))
}

impl Operator for Streq {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        input == self.0.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn compares() {
        assert!(test_match(&*build("streq", "abc"), b"abc"));
        assert!(!test_match(&*build("streq", "abc"), b"ABC"));
        assert!(!test_match(&*build("streq", "abc"), b"abc\x00"));
        assert!(test_match(&*build("streq", ""), b""));
    }
}
