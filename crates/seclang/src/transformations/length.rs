//! `length`: the input's length in bytes, as decimal text.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(input.len().to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn counts_bytes() {
        assert_eq!(run(super::apply, b"\xc3\xa9x"), b"3");
        assert_eq!(run(super::apply, b""), b"0");
    }
}
