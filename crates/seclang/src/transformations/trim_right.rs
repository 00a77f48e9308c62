//! `trimRight`: strip trailing whitespace.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    let end = input
        .iter()
        .rposition(|c| !super::is_space(*c))
        .map_or(0, |p| p + 1);
    out.extend_from_slice(&input[..end]);
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn trims_right() {
        assert_eq!(run(super::apply, b" a \r\n"), b" a");
    }
}
