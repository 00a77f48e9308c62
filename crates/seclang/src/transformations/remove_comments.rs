//! `removeComments`: drop `/* */` and `<!-- -->` comments (an unterminated one runs to the
//! end), and everything from `--` or `#` on.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    let mut close: Option<&[u8]> = None;
    while i < input.len() {
        let rest = &input[i..];
        if let Some(end) = close {
            if rest.starts_with(end) {
                close = None;
                i += end.len();
            } else {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            close = Some(b"*/");
            i += 2;
        } else if rest.starts_with(b"<!--") {
            close = Some(b"-->");
            i += 4;
        } else if rest.starts_with(b"--") || rest[0] == b'#' {
            break;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn removes() {
        assert_eq!(run(super::apply, b"a/*x*/b<!--y-->c-- z"), b"abc");
        assert_eq!(run(super::apply, b"a#b"), b"a");
        assert_eq!(run(super::apply, b"a/*open"), b"a");
    }
}
