//! `urlDecodeUni`: `urlDecode` plus IIS-style `%uHHHH` (full-width ASCII folded, else low byte).

use super::{hex_pair, hex_val, unicode_to_byte};

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    // The output is never longer than the input. The bytes between escapes are copied a
    // run at a time: most values have few escapes or none.
    out.reserve(input.len());
    let mut i = 0;
    while let Some(at) = memchr::memchr2(b'%', b'+', &input[i..]) {
        out.extend_from_slice(&input[i..i + at]);
        i += at;
        if input[i] == b'+' {
            out.push(b' ');
            i += 1;
            continue;
        }
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
        } else if let Some(b) = hex_pair(rest) {
            out.push(b);
            i += 3;
        } else {
            out.push(b'%');
            i += 1;
        }
    }
    out.extend_from_slice(&input[i..]);
}

#[cfg(test)]
mod tests {
    use crate::transformations::{hex_pair, hex_val, run, unicode_to_byte};

    #[test]
    fn decodes_unicode() {
        assert_eq!(run(super::apply, b"%u0041%uff0e%2e+%u12"), b"A.. %u12");
        assert_eq!(run(super::apply, b"%"), b"%");
    }

    /// The decoding one byte at a time, as it reads in ModSecurity: the reference the
    /// run-at-a-time decoder must agree with.
    fn bytewise(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let rest = &input[i + 1..];
            match input[i] {
                b'%' if matches!(rest.first(), Some(b'u' | b'U'))
                    && rest.len() >= 5
                    && rest[1..5].iter().all(|c| hex_val(*c).is_some()) =>
                {
                    let code = rest[1..5]
                        .iter()
                        .fold(0, |a, &c| a << 4 | u32::from(hex_val(c).unwrap_or(0)));
                    out.push(unicode_to_byte(code));
                    i += 6;
                    continue;
                }
                b'%' => match hex_pair(rest) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                },
                b'+' => out.push(b' '),
                c => out.push(c),
            }
            i += 1;
        }
        out
    }

    #[test]
    fn agrees_with_the_bytewise_decoding() {
        crate::transformations::assert_agrees(
            super::apply,
            bytewise,
            b"%uU+0aFfg 9\x00\xff",
            16,
            0x5eed_0fde_c0de,
        );
    }
}
