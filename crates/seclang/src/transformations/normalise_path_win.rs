//! `normalisePathWin`: `normalisePath` with `\` read as a separator (and written as `/`).

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    super::normalise_path::normalise(input, out, true);
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn backslashes() {
        assert_eq!(
            run(super::apply, b"c:\\windows\\..\\boot.ini"),
            b"c:/boot.ini"
        );
        assert_eq!(run(super::apply, b"\\a\\.\\b"), b"/a/b");
    }
}
