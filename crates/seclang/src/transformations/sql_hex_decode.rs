//! `sqlHexDecode`: SQL hex literals `0xHHHH...` become the bytes they spell.

use super::hex_pair;

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'0'
            && matches!(input.get(i + 1), Some(b'x' | b'X'))
            && hex_pair(&input[i + 2..]).is_some()
        {
            i += 2;
            while let Some(b) = hex_pair(&input[i..]) {
                out.push(b);
                i += 2;
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn decodes() {
        assert_eq!(
            run(super::apply, b"SELECT 0x414243, 0x4"),
            b"SELECT ABC, 0x4"
        );
        assert_eq!(run(super::apply, b"0x41424"), b"AB4");
    }
}
