//! `base64Decode`: standard alphabet; decoding stops at the first byte outside it (or `=`).

pub(crate) fn sextet(c: u8) -> Option<u8> {
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

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    decode_sextets(input.iter().map_while(|&c| sextet(c)), out);
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
}
