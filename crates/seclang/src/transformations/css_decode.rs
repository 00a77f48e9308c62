//! `cssDecode`: CSS 2.x escapes — `\` + 1..6 hex digits (one following whitespace eaten),
//! `\` + newline removed, `\` + other character gives that character.

use super::{hex_val, is_space, unicode_to_byte};

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        i += 1;
        if i >= input.len() {
            break; // a lone trailing backslash is dropped
        }
        let digits = input[i..]
            .iter()
            .take(6)
            .take_while(|c| hex_val(**c).is_some())
            .count();
        if digits > 0 {
            let code = input[i..i + digits].iter().fold(0u32, |acc, &c| {
                acc << 4 | u32::from(hex_val(c).unwrap_or(0))
            });
            out.push(unicode_to_byte(code));
            i += digits;
            if i < input.len() && is_space(input[i]) && input[i] != 0xa0 {
                i += 1;
            }
        } else if input[i] == b'\n' {
            i += 1;
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
    fn decodes_escapes() {
        assert_eq!(run(super::apply, b"\\6a\\61vascript"), b"javascript");
        assert_eq!(run(super::apply, b"\\00006a  x"), b"j x");
        assert_eq!(run(super::apply, b"\\6a x"), b"jx");
        assert_eq!(run(super::apply, b"a\\\nb\\zc\\"), b"abzc");
        assert_eq!(run(super::apply, b"\\ff21"), b"A");
    }
}
