//! `sha1`: the raw 20-byte SHA-1 digest.

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&sha1_smol::Sha1::from(input).digest().bytes());
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn digests() {
        let d = run(super::apply, b"abc");
        assert_eq!(d.len(), 20);
        assert_eq!(d[..4], [0xa9, 0x99, 0x3e, 0x36]);
    }
}
