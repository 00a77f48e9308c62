//! `urlDecode`: `%HH` to a byte and `+` to space; an invalid `%` sequence is kept as is.

use super::hex_pair;

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => match hex_pair(&input[i + 1..]) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn decodes() {
        assert_eq!(run(super::apply, b"a%20b+c%2"), b"a b c%2");
        assert_eq!(run(super::apply, b"%zz%00%"), b"%zz\x00%");
    }
}
