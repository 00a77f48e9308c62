//! `removeNulls`: delete NUL bytes.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend(input.iter().filter(|c| **c != 0));
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn removes() {
        assert_eq!(run(super::apply, b"\x00a\x00b\x00"), b"ab");
    }
}
