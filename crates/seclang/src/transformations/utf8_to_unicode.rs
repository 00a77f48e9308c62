//! `utf8toUnicode`: each valid multi-byte UTF-8 sequence becomes `%uHHHH` (lowercase hex,
//! at least four digits); ASCII and invalid bytes pass through unchanged.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        let len = match c {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        };
        if len > 1 && i + len <= input.len() {
            if let Ok(s) = std::str::from_utf8(&input[i..i + len]) {
                let cp = s.chars().next().map_or(0, u32::from);
                out.extend_from_slice(format!("%u{cp:04x}").as_bytes());
                i += len;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn converts_valid_sequences_only() {
        assert_eq!(run(super::apply, "aé€".as_bytes()), b"a%u00e9%u20ac");
        // Overlong encoding of '/' and a truncated sequence stay raw.
        assert_eq!(run(super::apply, b"\xc0\xaf\xe2\x82"), b"\xc0\xaf\xe2\x82");
    }
}
