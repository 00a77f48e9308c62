//! `@validateUtf8Encoding`: matches when the input is not valid UTF-8 (overlong forms,
//! surrogates, truncated sequences, out-of-range code points all count as invalid).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct ValidateUtf8Encoding;

pub fn new(_: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(ValidateUtf8Encoding))
}

impl Operator for ValidateUtf8Encoding {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        std::str::from_utf8(input).is_err()
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn flags_invalid_utf8() {
        let op = build("validateUtf8Encoding", "");
        assert!(!test_match(&*op, "héllo €".as_bytes()));
        assert!(test_match(&*op, b"\xc0\xaf")); // overlong '/'
        assert!(test_match(&*op, b"\xed\xa0\x80")); // surrogate
        assert!(test_match(&*op, b"\xe2\x82")); // truncated
        assert!(test_match(&*op, b"\xf5\x80\x80\x80")); // beyond U+10FFFF
        assert!(!test_match(&*op, b""));
    }
}
