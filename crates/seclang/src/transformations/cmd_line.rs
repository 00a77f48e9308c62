//! `cmdLine`: undo shell obfuscation — drop `\ " ' ^`, fold `, ;` and whitespace to one space,
//! drop a space before `/` or `(`, lowercase.

/// What `cmdLine` does with a byte.
const KEEP: u8 = 0;
const DROP: u8 = 1;
const SPACE: u8 = 2;
/// `/` and `(`: kept, and a space written just before is taken back.
const JOIN: u8 = 3;

static CLASS: [u8; 256] = {
    let mut t = [KEEP; 256];
    t[b'"' as usize] = DROP;
    t[b'\'' as usize] = DROP;
    t[b'\\' as usize] = DROP;
    t[b'^' as usize] = DROP;
    t[b' ' as usize] = SPACE;
    t[b',' as usize] = SPACE;
    t[b';' as usize] = SPACE;
    t[b'\t' as usize] = SPACE;
    t[b'\r' as usize] = SPACE;
    t[b'\n' as usize] = SPACE;
    t[b'/' as usize] = JOIN;
    t[b'(' as usize] = JOIN;
    t
};

/// Byte → itself ASCII lower-cased: one load where the comparison and add cost three.
static LOWER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).to_ascii_lowercase();
        c += 1;
    }
    t
};

/// Bytes `cmdLine` changes wherever they are: those it drops, folds to a space or
/// lower-cases (a space is the one byte it keeps or drops by what follows).
static ALWAYS_CHANGED: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let class = CLASS[c];
        if class == DROP || (class == SPACE && c != b' ' as usize) || LOWER[c] != c as u8 {
            t[c] = 1;
        }
        c += 1;
    }
    t
};

/// Whether `cmdLine` returns `input` as it is: no byte it always changes, and no space
/// before a space, `/` or `(`.
pub(crate) fn unchanged(input: &[u8]) -> bool {
    // Eight bytes a turn, or-ed: a value's bytes are mostly plain, and the per-byte loop's
    // branch costs as much as the lookup.
    let mut chunks = input.chunks_exact(8);
    for chunk in &mut chunks {
        if chunk
            .iter()
            .fold(0, |any, &c| any | ALWAYS_CHANGED[usize::from(c)])
            != 0
        {
            return false;
        }
    }
    let rest = chunks.remainder();
    rest.iter().all(|&c| ALWAYS_CHANGED[usize::from(c)] == 0)
        && memchr::memchr_iter(b' ', input)
            .all(|i| !matches!(input.get(i + 1), Some(b' ' | b'/' | b'(')))
}

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    // The output is never longer than the input: it is written in place into a buffer of
    // the input's length and cut to size, instead of a capacity check per pushed byte.
    let start = out.len();
    out.resize(start + input.len(), 0);
    let buf = &mut out[start..];
    let mut len = 0;
    let mut space = false;
    for &c in input {
        match CLASS[usize::from(c)] {
            KEEP => {
                buf[len] = LOWER[usize::from(c)];
                len += 1;
                space = false;
            }
            SPACE if !space => {
                buf[len] = b' ';
                len += 1;
                space = true;
            }
            JOIN => {
                len -= usize::from(space);
                buf[len] = c;
                len += 1;
                space = false;
            }
            // Dropped bytes, and a space after a space.
            _ => {}
        }
    }
    out.truncate(start + len);
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn deobfuscates() {
        assert_eq!(
            run(super::apply, b"C^at  ,; /e\"t\"c/p'a's'swd"),
            b"cat/etc/passwd"
        );
        assert_eq!(run(super::apply, b"ECHO (x)"), b"echo(x)");
        assert_eq!(run(super::apply, b""), b"");
    }

    /// The definition one pushed byte at a time: the reference the in-place writer must
    /// agree with.
    fn bytewise(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut space = false;
        for &c in input {
            match c {
                b'"' | b'\'' | b'\\' | b'^' => {}
                b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                    if !space {
                        out.push(b' ');
                        space = true;
                    }
                }
                b'/' | b'(' => {
                    if space {
                        out.pop();
                    }
                    space = false;
                    out.push(c);
                }
                _ => {
                    out.push(c.to_ascii_lowercase());
                    space = false;
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
            b"aZ ,;\t\r\n/(\"'\\^\x0b\xa0\xc3\x00-",
            20,
            0xc0de_c0ff_ee11,
        );
    }

    /// The unchanged-value test against its definition (the output equals the input), on
    /// values mostly left as they are, of every length around the eight-byte steps.
    #[test]
    fn unchanged_agrees_with_applying() {
        let mut below = crate::test_rng::below(0xc3d1_7e57_0dd5);
        let (plain, rare) = (b"az09 /(.-", b"AZ\"'\\^,;\t\r\n\x0b\xa0\xc3");
        let mut kept = 0;
        for _ in 0..20_000 {
            let len = below(20);
            let value: Vec<u8> = (0..len)
                .map(|_| match below(30) {
                    0 => rare[below(rare.len())],
                    _ => plain[below(plain.len())],
                })
                .collect();
            let expected = run(super::apply, &value) == value;
            assert_eq!(super::unchanged(&value), expected, "{value:?}");
            kept += usize::from(expected);
        }
        assert!(kept > 2000 && kept < 18_000, "{kept}");
    }

    #[test]
    fn appends_after_what_the_output_holds() {
        let mut out = b"Keep ".to_vec();
        super::apply(b"/X", &mut out);
        assert_eq!(out, b"Keep /x");
    }
}
