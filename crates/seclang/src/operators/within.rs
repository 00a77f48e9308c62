//! `@within`: the input occurs somewhere in the parameter (e.g. a method in an allow-list).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Within(Vec<u8>);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Within(param.as_bytes().to_vec())))
}

impl Operator for Within {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        memchr::memmem::find(&self.0, input).is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn finds_input_in_list() {
        let op = build("within", "GET HEAD POST");
        assert!(test_match(&*op, b"HEAD"));
        assert!(!test_match(&*op, b"PUT"));
        assert!(test_match(&*op, b""));
    }
}
