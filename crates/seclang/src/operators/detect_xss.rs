//! `@detectXSS`: libinjection's HTML5-tokenizer XSS detection (pure-Rust `libinjectionrs`).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct DetectXss;

pub fn new(_: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(DetectXss))
}

impl Operator for DetectXss {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
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
