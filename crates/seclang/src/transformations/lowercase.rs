//! `lowercase`: ASCII letters to lower case; other bytes unchanged.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    // Copied, then lower-cased in place: both run over whole words rather than a push per byte.
    let start = out.len();
    out.extend_from_slice(input);
    out[start..].make_ascii_lowercase();
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn lowers_ascii_only() {
        assert_eq!(run(super::apply, b"AbC\xc3\x89"), b"abc\xc3\x89");
    }

    /// Values of many lengths walking all bytes in steps, so every byte (letters included)
    /// lands at every offset of the word-wide steps, after what the output already holds:
    /// the same as lower-casing byte by byte.
    #[test]
    fn agrees_with_the_bytewise_definition() {
        for first in 0..=255u8 {
            let len = usize::from(first) % 70;
            let value: Vec<u8> = (0..len)
                .map(|i| first.wrapping_add((i as u8).wrapping_mul(31)))
                .collect();
            let mut out = b"KEEP".to_vec();
            super::apply(&value, &mut out);
            let mut expected = b"KEEP".to_vec();
            expected.extend(value.iter().map(u8::to_ascii_lowercase));
            assert_eq!(out, expected, "{value:?}");
        }
    }
}
