//! `htmlEntityDecode`: `&#DDD;`, `&#xHH;` and the named entities ModSecurity knows
//! (`quot amp lt gt nbsp`); the `;` is optional, numeric values keep their low byte.

use super::hex_val;

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    // The output is never longer than the input; the bytes between `&`s are copied a run
    // at a time.
    out.reserve(input.len());
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'&', &input[i..]) {
        out.extend_from_slice(&input[i..i + at]);
        i += at;
        match entity(&input[i + 1..]) {
            Some((byte, used)) => {
                out.push(byte);
                i += 1 + used;
            }
            None => {
                out.push(b'&');
                i += 1;
            }
        }
    }
    out.extend_from_slice(&input[i..]);
}

/// Decode the entity after `&`: the byte and how many input bytes it used.
fn entity(s: &[u8]) -> Option<(u8, usize)> {
    let (value, mut used) = if s.first() == Some(&b'#') {
        let hex = matches!(s.get(1), Some(b'x' | b'X'));
        let start = if hex { 2 } else { 1 };
        let radix = if hex { 16 } else { 10 };
        let digits = s[start..]
            .iter()
            .take_while(|c| {
                if hex {
                    hex_val(**c).is_some()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return None;
        }
        let v = s[start..start + digits].iter().fold(0u32, |a, &c| {
            a.wrapping_mul(radix)
                .wrapping_add(u32::from(hex_val(c).unwrap_or(0)))
        });
        ((v & 0xff) as u8, start + digits)
    } else {
        let n = s.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        let name = &s[..n];
        let v = [
            (&b"quot"[..], b'"'),
            (b"amp", b'&'),
            (b"lt", b'<'),
            (b"gt", b'>'),
            (b"nbsp", 0xa0),
        ]
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))?
        .1;
        (v, n)
    };
    if s.get(used) == Some(&b';') {
        used += 1;
    }
    Some((value, used))
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn decodes_entities() {
        assert_eq!(
            run(super::apply, b"&lt;script&GT;&#x41;&#66&quot;&amp"),
            b"<script>AB\"&"
        );
        assert_eq!(run(super::apply, b"&#;&#x;&bogus;&"), b"&#;&#x;&bogus;&");
        assert_eq!(run(super::apply, b"&#x4141;"), b"A");
        assert_eq!(run(super::apply, b"&nbsp;"), b"\xa0");
    }

    /// The decoding one byte at a time: the reference the run-at-a-time decoder must
    /// agree with.
    fn bytewise(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            if input[i] == b'&' {
                if let Some((byte, used)) = super::entity(&input[i + 1..]) {
                    out.push(byte);
                    i += 1 + used;
                    continue;
                }
            }
            out.push(input[i]);
            i += 1;
        }
        out
    }

    #[test]
    fn agrees_with_the_bytewise_decoding() {
        let mut below = crate::test_rng::below(0x4e71_7e5d_ec0d);
        let words: [&[u8]; 12] = [
            b"&", b"#", b"x", b"X", b";", b"4", b"1f", b"lt", b"AMP", b"nbsp", b"quot", b"z ",
        ];
        for _ in 0..20_000 {
            let mut value = Vec::new();
            for _ in 0..below(10) {
                value.extend_from_slice(words[below(words.len())]);
            }
            assert_eq!(run(super::apply, &value), bytewise(&value), "{value:?}");
        }
    }
}
