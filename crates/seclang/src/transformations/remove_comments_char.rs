//! `removeCommentsChar`: delete comment punctuation (`/*`, `*/`, `<!--`, `-->`, `--`, `#`).

/// The bytes a mark starts with.
static MARK_START: [bool; 256] = {
    let mut t = [false; 256];
    t[b'<' as usize] = true;
    t[b'-' as usize] = true;
    t[b'/' as usize] = true;
    t[b'*' as usize] = true;
    t[b'#' as usize] = true;
    t
};

/// The length of the mark `rest` starts with, if any (`-->` before `--`).
fn mark_len(rest: &[u8]) -> Option<usize> {
    match rest {
        [b'<', b'!', b'-', b'-', ..] => Some(4),
        [b'-', b'-', b'>', ..] => Some(3),
        [b'/', b'*', ..] | [b'*', b'/', ..] | [b'-', b'-', ..] => Some(2),
        [b'#', ..] => Some(1),
        _ => None,
    }
}

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    // The bytes between possible marks are copied a run at a time.
    out.reserve(input.len());
    let mut i = 0;
    while let Some(at) = input[i..].iter().position(|&c| MARK_START[usize::from(c)]) {
        out.extend_from_slice(&input[i..i + at]);
        i += at;
        match mark_len(&input[i..]) {
            Some(n) => i += n,
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    out.extend_from_slice(&input[i..]);
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn removes_chars() {
        assert_eq!(run(super::apply, b"a/*b*/c<!--d-->e--f#g"), b"abcdefg");
    }

    /// The definition: at each byte, the first mark of the list that starts there is
    /// skipped, else the byte is kept.
    fn bytewise(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let rest = &input[i..];
            let skip = [&b"<!--"[..], b"-->", b"/*", b"*/", b"--", b"#"]
                .iter()
                .find(|m| rest.starts_with(m))
                .map(|m| m.len());
            match skip {
                Some(n) => i += n,
                None => {
                    out.push(rest[0]);
                    i += 1;
                }
            }
        }
        out
    }

    #[test]
    fn agrees_with_the_bytewise_definition() {
        crate::transformations::assert_agrees(
            super::apply,
            bytewise,
            b"ab<!-->/*#",
            20,
            0x7e57_c0de_b10c,
        );
    }
}
