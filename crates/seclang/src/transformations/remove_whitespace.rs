//! `removeWhitespace`: delete whitespace, NBSP included.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend(input.iter().filter(|c| !super::is_space(**c)));
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn removes() {
        assert_eq!(run(super::apply, b" a\tb\xa0c\r\n"), b"abc");
    }
}
