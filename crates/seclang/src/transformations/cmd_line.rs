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

    #[test]
    fn appends_after_what_the_output_holds() {
        let mut out = b"Keep ".to_vec();
        super::apply(b"/X", &mut out);
        assert_eq!(out, b"Keep /x");
    }
}
