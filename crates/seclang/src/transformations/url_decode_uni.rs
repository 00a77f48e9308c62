//! `urlDecodeUni`: `urlDecode` plus IIS-style `%uHHHH` (full-width ASCII folded, else low byte).

use super::{hex_pair, hex_val, unicode_to_byte};

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'%' {
            let rest = &input[i + 1..];
            if matches!(rest.first(), Some(b'u' | b'U'))
                && rest.len() >= 5
                && rest[1..5].iter().all(|c| hex_val(*c).is_some())
            {
                let code = rest[1..5]
                    .iter()
                    .fold(0u32, |a, &c| a << 4 | u32::from(hex_val(c).unwrap_or(0)));
                out.push(unicode_to_byte(code));
                i += 6;
                continue;
            }
            if let Some(b) = hex_pair(rest) {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(b'%');
        } else if c == b'+' {
            out.push(b' ');
        } else {
            out.push(c);
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn decodes_unicode() {
        assert_eq!(run(super::apply, b"%u0041%uff0e%2e+%u12"), b"A.. %u12");
        assert_eq!(run(super::apply, b"%"), b"%");
    }
}
