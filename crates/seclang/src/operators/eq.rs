//! `@eq`: the input, read as an integer, == the parameter (non-numbers read as 0).

use super::{parse_int, BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Eq(i64);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Eq(parse_int(param.as_bytes()))))
}

impl Operator for Eq {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        parse_int(input) == self.0
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn compares_numbers() {
        assert!(test_match(&*build("eq", "5"), b"5"));
        assert!(!test_match(&*build("eq", "5"), b"6"));
        assert_eq!(test_match(&*build("eq", "0"), b"junk"), 0 == 0);
    }
}
