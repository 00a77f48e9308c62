//! `@detectSQLi`: libinjection's SQL injection tokenizer and fingerprint list (through the
//! pure-Rust `libinjectionrs` port); the fingerprint is captured as TX:0.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct DetectSqli;

pub fn new(_: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(DetectSqli))
}

impl Operator for DetectSqli {
    fn matches(&self, input: &[u8], caps: &mut Captures) -> bool {
        let result = libinjectionrs::detect_sqli(input);
        if !result.is_injection() {
            return false;
        }
        if caps.wanted {
            caps.groups.clear();
            caps.groups.push(
                result
                    .fingerprint
                    .map(|f| f.to_string().into_bytes())
                    .unwrap_or_default(),
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn detects_classic_injection() {
        let op = build("detectSQLi", "");
        assert!(test_match(&*op, b"1' OR '1'='1"));
        assert!(test_match(&*op, b"1 UNION SELECT password FROM users--"));
        assert!(!test_match(&*op, b"hello world"));
        assert!(!test_match(&*op, b""));
    }
}
