//! `removeWhitespace`: delete whitespace, NBSP included.

/// 1 for the bytes kept.
static KEEP: [u8; 256] = {
    let mut t = [1u8; 256];
    let mut c = 0;
    while c < 256 {
        if super::is_space(c as u8) {
            t[c] = 0;
        }
        c += 1;
    }
    t
};

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len());
    // Every byte is written to a block on the stack and the end advances past the kept ones
    // only: no branch per byte, which matters on response bodies.
    let mut block = [0u8; 64];
    for chunk in input.chunks(64) {
        let mut len = 0;
        for &c in chunk {
            block[len & 63] = c;
            len += usize::from(KEEP[usize::from(c)]);
        }
        out.extend_from_slice(&block[..len]);
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn removes() {
        assert_eq!(run(super::apply, b" a\tb\xa0c\r\n"), b"abc");
        assert_eq!(run(super::apply, b""), b"");
        assert_eq!(run(super::apply, b" \x0b\x0c"), b"");
        assert_eq!(run(super::apply, b"x\x00y "), b"x\x00y");
    }

    /// Values around and across the 64-byte blocks, dense in whitespace or not: the same
    /// as dropping every space byte one by one.
    #[test]
    fn blocks_agree_with_a_plain_filter() {
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15u64);
        let alphabet = b"ab<> \t\n\r\x0b\x0c\xa0\x00";
        for _ in 0..500 {
            let len = next(300);
            let dense = 1 + next(alphabet.len());
            let input: Vec<u8> = (0..len).map(|_| alphabet[next(dense)]).collect();
            let expected: Vec<u8> = input
                .iter()
                .copied()
                .filter(|&c| !crate::transformations::is_space(c))
                .collect();
            assert_eq!(run(super::apply, &input), expected, "{input:?}");
        }
    }

    #[test]
    fn appends_after_what_the_output_holds() {
        let mut out = b"keep".to_vec();
        super::apply(b" a b ", &mut out);
        assert_eq!(out, b"keepab");
    }
}
