//! `uppercase`: ASCII letters to upper case.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend(input.iter().map(u8::to_ascii_uppercase));
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn uppers() {
        assert_eq!(run(super::apply, b"aB1"), b"AB1");
    }
}
