//! `@validateByteRange`: matches when the input holds a byte outside the allowed list of
//! values and ranges (`10, 13, 32-126`).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct ValidateByteRange {
    allowed: [bool; 256],
    /// The only byte not allowed, if one is (`1-255`, CRS 920270 on every request value):
    /// searched for with `memchr`, many bytes a step.
    only_forbidden: Option<u8>,
}

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    let mut allowed = [false; 256];
    for part in param.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.parse::<u8>()
                .map_err(|_| format!("@validateByteRange: bad value {s:?}"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("@validateByteRange: empty range {part:?}"));
        }
        for b in lo..=hi {
            allowed[usize::from(b)] = true;
        }
    }
    let mut forbidden = (0..=255u8).filter(|&b| !allowed[usize::from(b)]);
    let only_forbidden = match (forbidden.next(), forbidden.next()) {
        (Some(b), None) => Some(b),
        _ => None,
    };
    Ok(Box::new(ValidateByteRange {
        allowed,
        only_forbidden,
    }))
}

impl Operator for ValidateByteRange {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        match self.only_forbidden {
            Some(b) => memchr::memchr(b, input).is_some(),
            None => input.iter().any(|&b| !self.allowed[usize::from(b)]),
        }
    }

    /// The forbidden bytes, each a one-byte literal, when the set holds both ASCII cases of
    /// every letter in it (the prefilter compares case-insensitively): then the operator
    /// matches exactly the inputs that hold one, and the phase prefilter answers for it
    /// (CRS 920270, `1-255`, on every request value: most values are cleared by the scan
    /// that other rules need anyway).
    fn literals(&self) -> Option<Vec<Vec<u8>>> {
        let forbidden: Vec<Vec<u8>> = (0..=255u8)
            .filter(|&b| !self.allowed[usize::from(b)])
            .map(|b| vec![b])
            .collect();
        let case_closed = forbidden.iter().all(|b| {
            let other = b[0] ^ 0x20;
            !b[0].is_ascii_alphabetic() || !self.allowed[usize::from(other)]
        });
        (case_closed && !forbidden.is_empty()).then_some(forbidden)
    }

    fn is_literal_search(&self) -> bool {
        self.literals().is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn flags_bytes_outside() {
        let op = build("validateByteRange", "9,10, 32-126");
        assert!(!test_match(&*op, b"hello\tworld\n"));
        assert!(test_match(&*op, b"nul\x00"));
        assert!(test_match(&*op, b"\xff"));
        assert!(!test_match(&*op, b""));
        let full = build("validateByteRange", "1-255");
        assert!(test_match(&*full, b"a\x00"));
        assert!(!test_match(&*full, b"a\x01\xff"));
        // One forbidden byte other than NUL, anywhere in a long input.
        let no_dot = build("validateByteRange", "0-45,47-255");
        assert!(!test_match(&*no_dot, &[b'a'; 100]));
        let mut dotted = vec![b'a'; 100];
        dotted[77] = b'.';
        assert!(test_match(&*no_dot, &dotted));
        // Everything allowed: nothing matches.
        assert!(!test_match(
            &*build("validateByteRange", "0-255"),
            b"\x00\xff"
        ));
    }

    /// The literals the prefilter looks for are the forbidden bytes, and only where a
    /// case-insensitive search for them finds exactly the inputs the operator matches.
    #[test]
    fn literals_are_the_forbidden_bytes_closed_under_case() {
        let lits = |p: &str| build("validateByteRange", p).literals();
        assert_eq!(lits("1-255"), Some(vec![vec![0]]));
        let pl2 = lits("9,10,13,32-126,128-255").expect("control bytes only");
        let want: Vec<Vec<u8>> = (0..=8u8)
            .chain([11, 12])
            .chain(14..=31)
            .chain([127])
            .map(|b| vec![b])
            .collect();
        assert_eq!(pl2, want);
        // 'A' forbidden but 'a' allowed: "a" would pass a case-insensitive search for "A".
        assert_eq!(lits("0-64,66-255"), None);
        // Both cases forbidden: exact again.
        assert_eq!(
            lits("0-64,66-96,98-255"),
            Some(vec![vec![b'A'], vec![b'a']])
        );
        assert_eq!(lits("0-255"), None);
        for p in ["1-255", "0-64,66-96,98-255"] {
            let op = build("validateByteRange", p);
            let lits = op.literals().unwrap();
            for input in [&b"abc"[..], b"a\x00", b"xAy", b"xay", b""] {
                let holds = lits
                    .iter()
                    .any(|l| input.windows(l.len()).any(|w| w.eq_ignore_ascii_case(l)));
                assert_eq!(test_match(&*op, input), holds, "{p} {input:?}");
            }
        }
    }
}
