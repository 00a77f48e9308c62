//! `hexEncode`: each byte as two lowercase hex digits.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &c in input {
        out.push(HEX[usize::from(c >> 4)]);
        out.push(HEX[usize::from(c & 15)]);
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn encodes() {
        assert_eq!(run(super::apply, b"A\x00\xff"), b"4100ff");
    }
}
