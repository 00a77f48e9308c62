//! `trimLeft`: strip leading whitespace.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let start = input
        .iter()
        .position(|c| !super::is_space(*c))
        .unwrap_or(input.len());
    out.extend_from_slice(&input[start..]);
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn trims_left() {
        assert_eq!(run(super::apply, b"  a "), b"a ");
    }
}
