//! `compressWhitespace`: each run of whitespace (NBSP included) becomes one space.

use super::is_space;

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut in_space = false;
    for &c in input {
        if is_space(c) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn compresses() {
        assert_eq!(run(super::apply, b"a \t\r\n\xa0b  c "), b"a b c ");
        assert_eq!(run(super::apply, b""), b"");
    }
}
