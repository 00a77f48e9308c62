//! `hexDecode`: pairs of hex digits to bytes; decoding stops at the first invalid pair.

use super::hex_pair;

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend(input.chunks(2).map_while(hex_pair));
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn decodes_pairs() {
        assert_eq!(run(super::apply, b"414243"), b"ABC");
        assert_eq!(run(super::apply, b"4142G3"), b"AB");
        assert_eq!(run(super::apply, b"414"), b"A");
    }
}
