//! `removeCommentsChar`: delete comment punctuation (`/*`, `*/`, `<!--`, `-->`, `--`, `#`).

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
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
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn removes_chars() {
        assert_eq!(run(super::apply, b"a/*b*/c<!--d-->e--f#g"), b"abcdefg");
    }
}
