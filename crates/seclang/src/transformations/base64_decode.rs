//! `base64Decode`: standard alphabet; decoding stops at the first byte outside it (or `=`).

pub(crate) const fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Decode `sextets` (already filtered) into `out`, dropping an incomplete trailing group's bits.
pub(crate) fn decode_sextets(sextets: impl Iterator<Item = u8>, out: &mut Vec<u8>) {
    let (mut acc, mut bits) = (0u32, 0u32);
    for s in sextets {
        acc = (acc << 6) | u32::from(s);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
}

/// Byte → its sextet, or [`NOT_BASE64`].
static SEXTET: [u8; 256] = {
    let mut t = [NOT_BASE64; 256];
    let mut c = 0;
    while c < 256 {
        if let Some(s) = sextet(c as u8) {
            t[c] = s;
        }
        c += 1;
    }
    t
};
const NOT_BASE64: u8 = 0xff;

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    // The valid prefix is found first, then decoded four sextets (three bytes) at a time:
    // a table lookup per byte and a write per group, instead of bit bookkeeping per byte.
    let valid = input
        .iter()
        .position(|&c| SEXTET[usize::from(c)] == NOT_BASE64)
        .unwrap_or(input.len());
    let mut groups = input[..valid].chunks_exact(4);
    out.reserve(valid / 4 * 3 + 2);
    for g in &mut groups {
        let v = g
            .iter()
            .fold(0u32, |v, &c| v << 6 | u32::from(SEXTET[usize::from(c)]));
        out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
    }
    // Two or three trailing sextets hold one or two whole bytes; the bits left over drop.
    decode_sextets(
        groups.remainder().iter().map(|&c| SEXTET[usize::from(c)]),
        out,
    );
}

/// The set of bytes [`apply`] makes of `input` (bit `b % 64` of word `b / 64`), without
/// writing them: what the prefilter asks of a decoded value (see `DecodedScreen`).
pub(crate) fn decoded_bytes(input: &[u8]) -> [u64; 4] {
    let mut set = [0u64; 4];
    let mut add = |b: u32| set[(b >> 6 & 3) as usize] |= 1 << (b & 63);
    let valid = input
        .iter()
        .position(|&c| SEXTET[usize::from(c)] == NOT_BASE64)
        .unwrap_or(input.len());
    let mut groups = input[..valid].chunks_exact(4);
    for g in &mut groups {
        let v = g
            .iter()
            .fold(0u32, |v, &c| v << 6 | u32::from(SEXTET[usize::from(c)]));
        add(v >> 16 & 0xff);
        add(v >> 8 & 0xff);
        add(v & 0xff);
    }
    // Two trailing sextets hold one byte, three two (as in `decode_sextets`).
    let rest = groups.remainder();
    let v = rest
        .iter()
        .fold(0u32, |v, &c| v << 6 | u32::from(SEXTET[usize::from(c)]));
    match rest.len() {
        2 => add(v >> 4 & 0xff),
        3 => {
            add(v >> 10 & 0xff);
            add(v >> 2 & 0xff);
        }
        _ => {}
    }
    set
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn decodes_and_stops_at_invalid() {
        assert_eq!(run(super::apply, b"VGVzdENhc2U="), b"TestCase");
        assert_eq!(run(super::apply, b"VGVzdA==garbage"), b"Test");
        assert_eq!(run(super::apply, b"VGV*zdA"), b"Te");
        assert_eq!(run(super::apply, b""), b"");
        assert_eq!(run(super::apply, b"P"), b"");
    }

    /// The definition: the sextets up to the first byte outside the alphabet, decoded one
    /// at a time.
    fn bytewise(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        super::decode_sextets(input.iter().map_while(|&c| super::sextet(c)), &mut out);
        out
    }

    /// 20,000 values of up to 23 bytes, mostly valid base64 so that groups of every length
    /// get decoded, some with `=`, `*`, NUL or 0xff among them.
    fn values(seed: u64) -> impl Iterator<Item = Vec<u8>> {
        let mut below = crate::test_rng::below(seed);
        let alphabet = b"AZaz09+-/_=*\x00\xff";
        (0..20_000).map(move |_| {
            let len = below(24);
            (0..len)
                .map(|_| match below(12) {
                    0 => alphabet[below(alphabet.len())],
                    _ => alphabet[below(10)],
                })
                .collect()
        })
    }

    #[test]
    fn agrees_with_the_bytewise_definition() {
        for value in values(0xba5e_64de_c0de) {
            let mut out = b"keep".to_vec();
            super::apply(&value, &mut out);
            let mut expected = b"keep".to_vec();
            expected.extend(bytewise(&value));
            assert_eq!(out, expected, "{value:?}");
        }
    }

    #[test]
    fn decoded_bytes_are_the_bytes_decoded() {
        for value in values(0xb17e_5e70_64de) {
            let mut expected = [0u64; 4];
            for b in run(super::apply, &value) {
                expected[usize::from(b / 64)] |= 1 << (b % 64);
            }
            assert_eq!(super::decoded_bytes(&value), expected, "{value:?}");
        }
    }
}
