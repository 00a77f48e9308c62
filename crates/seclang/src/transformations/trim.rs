//! `trim`: strip leading and trailing whitespace.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut t = Vec::new();
    super::trim_left::apply(input, &mut t);
    super::trim_right::apply(&t, out);
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn trims() {
        assert_eq!(run(super::apply, b" \t a b \n"), b"a b");
        assert_eq!(run(super::apply, b"   "), b"");
    }
}
