//! `@validateUrlEncoding`: matches when a `%` is not followed by two hex digits.

use super::{BuildContext, Captures, Operator};
use crate::transformations::hex_pair;

#[derive(Debug)]
pub struct ValidateUrlEncoding;

pub fn new(_: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(ValidateUrlEncoding))
}

impl Operator for ValidateUrlEncoding {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        memchr::memchr_iter(b'%', input).any(|i| hex_pair(&input[i + 1..]).is_none())
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn flags_bad_escapes() {
        let op = build("validateUrlEncoding", "");
        assert!(!test_match(&*op, b"a%20b%2F"));
        assert!(test_match(&*op, b"a%2"));
        assert!(test_match(&*op, b"%zz"));
        assert!(test_match(&*op, b"%"));
        assert!(!test_match(&*op, b""));
    }
}
