//! `escapeSeqDecode`: ANSI C escapes (`\n`, `\xHH`, octal `\OOO`, `\\`, ...).

use super::hex_pair;

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let c = input[i + 1];
        let simple = match c {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' | b'?' | b'\'' | b'"' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            i += 2;
        } else if (c == b'x' || c == b'X') && hex_pair(&input[i + 2..]).is_some() {
            out.push(hex_pair(&input[i + 2..]).unwrap_or(0));
            i += 4;
        } else if (b'0'..=b'7').contains(&c) {
            let n = input[i + 1..]
                .iter()
                .take(3)
                .take_while(|d| (b'0'..=b'7').contains(*d))
                .count();
            let v = input[i + 1..i + 1 + n]
                .iter()
                .fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
            out.push(v as u8);
            i += 1 + n;
        } else {
            // Unknown escape: ModSecurity keeps both characters.
            out.extend_from_slice(&input[i..i + 2]);
            i += 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn decodes() {
        assert_eq!(run(super::apply, b"\\x41\\102\\n\\q\\"), b"AB\n\\q\\");
        assert_eq!(run(super::apply, b"\\xZZ"), b"\\xZZ");
    }
}
