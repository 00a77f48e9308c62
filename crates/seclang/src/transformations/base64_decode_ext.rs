//! `base64DecodeExt`: forgiving decode that skips every byte outside the alphabet.

use super::base64_decode::{decode_sextets, sextet};

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    decode_sextets(input.iter().filter_map(|&c| sextet(c)), out);
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn skips_invalid() {
        assert_eq!(run(super::apply, b"VGV*zd.A="), b"Test");
        assert_eq!(run(super::apply, b"\x00\xff"), b"");
    }
}
