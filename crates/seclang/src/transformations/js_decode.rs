//! `jsDecode`: JavaScript escapes — `\uHHHH` (full-width ASCII folded, else low byte),
//! `\xHH`, octal `\OOO`, `\b \f \n \r \t \v`, and `\c` for any other `c`.

use super::{hex_pair, hex_val, unicode_to_byte};

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let rest = &input[i + 1..];
        match rest[0] {
            b'u' if rest.len() >= 5 && rest[1..5].iter().all(|c| hex_val(*c).is_some()) => {
                let code = rest[1..5]
                    .iter()
                    .fold(0u32, |a, &c| a << 4 | u32::from(hex_val(c).unwrap_or(0)));
                out.push(unicode_to_byte(code));
                i += 6;
            }
            b'x' if hex_pair(&rest[1..]).is_some() => {
                out.push(hex_pair(&rest[1..]).unwrap_or(0));
                i += 4;
            }
            b'0'..=b'7' => {
                let n = rest
                    .iter()
                    .take(3)
                    .take_while(|d| (b'0'..=b'7').contains(*d))
                    .count();
                // A three-digit octal escape is only valid up to \377.
                let n = if n == 3 && rest[0] > b'3' { 2 } else { n };
                let v = rest[..n]
                    .iter()
                    .fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                out.push(v as u8);
                i += 1 + n;
            }
            c => {
                out.push(match c {
                    b'a' => 7,
                    b'b' => 8,
                    b'f' => 12,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 11,
                    other => other,
                });
                i += 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn decodes_escapes() {
        assert_eq!(run(super::apply, b"\\u0061\\x62\\143\\n\\'\\"), b"abc\n'\\");
        assert_eq!(run(super::apply, b"\\uff41\\u12"), b"au12");
        assert_eq!(run(super::apply, b"\\477"), b"'7");
        assert_eq!(run(super::apply, b""), b"");
    }
}
