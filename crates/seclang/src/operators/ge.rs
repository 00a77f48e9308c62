//! `@ge`: the input, read as an integer, >= the parameter (non-numbers read as 0).

use super::{parse_int, BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Ge(i64);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Ge(parse_int(param.as_bytes()))))
}

impl Operator for Ge {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        parse_int(input) >= self.0
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn compares_numbers() {
        assert!(test_match(&*build("ge", "5"), b"5"));
        assert!(!test_match(&*build("ge", "5"), b"4"));
        assert_eq!(test_match(&*build("ge", "0"), b"junk"), 0 >= 0);
    }
}
