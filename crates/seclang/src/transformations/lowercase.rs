//! `lowercase`: ASCII letters to lower case; other bytes unchanged.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend(input.iter().map(u8::to_ascii_lowercase));
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn lowers_ascii_only() {
        assert_eq!(run(super::apply, b"AbC\xc3\x89"), b"abc\xc3\x89");
    }
}
