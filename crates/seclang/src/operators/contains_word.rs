//! `@containsWord`: the parameter occurs in the input bounded by non-word characters.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct ContainsWord(Vec<u8>);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(ContainsWord(param.as_bytes().to_vec())))
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Operator for ContainsWord {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        if self.0.is_empty() {
            return true;
        }
        memchr::memmem::find_iter(input, &self.0).any(|at| {
            let end = at + self.0.len();
            (at == 0 || !is_word(input[at - 1])) && (end == input.len() || !is_word(input[end]))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn needs_word_boundaries() {
        let op = build("containsWord", "select");
        assert!(test_match(&*op, b"1 select x"));
        assert!(test_match(&*op, b"selectx select"));
        assert!(!test_match(&*op, b"selected"));
        assert!(!test_match(&*op, b""));
    }
}
