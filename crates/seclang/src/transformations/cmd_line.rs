//! `cmdLine`: undo shell obfuscation — drop `\ " ' ^`, fold `, ;` and whitespace to one space,
//! drop a space before `/` or `(`, lowercase.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
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
}
