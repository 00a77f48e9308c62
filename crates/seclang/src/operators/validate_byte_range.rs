//! `@validateByteRange`: matches when the input holds a byte outside the allowed list of
//! values and ranges (`10, 13, 32-126`).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct ValidateByteRange([bool; 256]);

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    let mut allowed = [false; 256];
    for part in param.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.parse::<u8>()
                .map_err(|_| format!("@validateByteRange: bad value {s:?}"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("@validateByteRange: empty range {part:?}"));
        }
        for b in lo..=hi {
            allowed[usize::from(b)] = true;
        }
    }
    Ok(Box::new(ValidateByteRange(allowed)))
}

impl Operator for ValidateByteRange {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        input.iter().any(|&b| !self.0[usize::from(b)])
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn flags_bytes_outside() {
        let op = build("validateByteRange", "9,10, 32-126");
        assert!(!test_match(&*op, b"hello\tworld\n"));
        assert!(test_match(&*op, b"nul\x00"));
        assert!(test_match(&*op, b"\xff"));
        assert!(!test_match(&*op, b""));
        let full = build("validateByteRange", "1-255");
        assert!(test_match(&*full, b"a\x00"));
    }
}
