//! `replaceNulls`: NUL bytes become spaces.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend(input.iter().map(|&c| if c == 0 { b' ' } else { c }));
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn replaces() {
        assert_eq!(run(super::apply, b"a\x00b"), b"a b");
    }
}
