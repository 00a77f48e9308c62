//! `normalisePath`: collapse `//`, drop `./` segments, resolve `../` against the previous
//! segment (never above the start), keeping a trailing slash.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    normalise(input, out, false);
}

/// Shared with `normalisePathWin`, which first turns `\` into `/`.
pub(crate) fn normalise(input: &[u8], out: &mut Vec<u8>, win: bool) {
    if input.is_empty() {
        return;
    }
    let absolute = input[0] == b'/' || (win && input[0] == b'\\');
    let trailing = matches!(input.last(), Some(b'/')) || (win && input.last() == Some(&b'\\'));
    let mut segs: Vec<Vec<u8>> = Vec::new();
    let mut leading_up = 0usize;
    let sep = |c: &u8| *c == b'/' || (win && *c == b'\\');
    for seg in input.split(sep) {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segs.pop().is_none() && !absolute {
                    leading_up += 1;
                }
            }
            s => segs.push(
                s.iter()
                    .map(|&c| if win && c == b'\\' { b'/' } else { c })
                    .collect(),
            ),
        }
    }
    if absolute {
        out.push(b'/');
    }
    let mut parts: Vec<&[u8]> = vec![b".."; leading_up];
    parts.extend(segs.iter().map(Vec::as_slice));
    out.extend_from_slice(&parts.join(&b'/'));
    let ends_dot =
        input.ends_with(b"/.") || input.ends_with(b"/..") || input == b"." || input == b"..";
    if (trailing || ends_dot) && !parts.is_empty() {
        out.push(b'/');
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn normalises() {
        assert_eq!(run(super::apply, b"/a//b/./c/../d"), b"/a/b/d");
        assert_eq!(run(super::apply, b"/../../etc/passwd"), b"/etc/passwd");
        assert_eq!(run(super::apply, b"../../etc/passwd"), b"../../etc/passwd");
        assert_eq!(run(super::apply, b"/a/b/"), b"/a/b/");
        assert_eq!(run(super::apply, b""), b"");
        assert_eq!(run(super::apply, b"/"), b"/");
    }
}
