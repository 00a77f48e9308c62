//! `replaceComments`: each C-style `/* */` comment becomes one space; an unterminated one
//! runs to the end.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(b"/*") {
            out.push(b' ');
            match memchr::memmem::find(&input[i + 2..], b"*/") {
                Some(p) => i += 2 + p + 2,
                None => return,
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn replaces() {
        assert_eq!(run(super::apply, b"un/**/ion/*x*/select"), b"un ion select");
        assert_eq!(run(super::apply, b"a/*b"), b"a ");
        assert_eq!(run(super::apply, b"a*/b"), b"a*/b");
    }
}
