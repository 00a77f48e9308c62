//! `@detectXSS`: libinjection's HTML5-tokenizer XSS detection (pure-Rust `libinjectionrs`).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct DetectXss;

pub fn new(_: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(DetectXss))
}

/// Whether libinjectionrs 0.1.1 provably answers "not XSS" for `input`: it holds neither
/// `<` nor `=`.
///
/// Why, from `XssDetector::is_xss` and its HTML5 tokenizer, in each of the five contexts:
/// `is_xss` answers yes only on a doctype, a tag name, a comment, or an attribute value
/// right after a listed attribute name. The first three come from the tag-open state,
/// which only the data state enters, at a `<`. An attribute value follows a name only
/// through the before-value state, which the name states enter only at an `=`; the value
/// a quoted context starts in follows no name.
///
/// `screen_differential` checks this against the library on millions of inputs.
pub(super) fn provably_not_xss(input: &[u8]) -> bool {
    memchr::memchr2(b'<', b'=', input).is_none()
}

impl Operator for DetectXss {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        if provably_not_xss(input) {
            return false;
        }
        libinjectionrs::detect_xss(input).is_injection()
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn detects_script() {
        let op = build("detectXSS", "");
        assert!(test_match(&*op, b"<script>alert(1)</script>"));
        assert!(test_match(&*op, b"<img src=x onerror=alert(1)>"));
        assert!(!test_match(&*op, b"just text"));
        assert!(!test_match(&*op, b""));
    }
}
