//! `urlEncode`: percent-encode everything but unreserved characters; space becomes `+`.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &c in input {
        if c.is_ascii_alphanumeric() || matches!(c, b'*' | b'-' | b'.' | b'_') {
            out.push(c);
        } else if c == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn encodes() {
        assert_eq!(run(super::apply, b"a b/\xff"), b"a+b%2f%ff");
    }
}
