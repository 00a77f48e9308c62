//! `md5`: the raw 16-byte MD5 digest.

use md5::{Digest, Md5};

pub fn apply(input: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&Md5::digest(input));
}

#[cfg(test)]
mod tests {
    use crate::transformations::run;

    #[test]
    fn digests() {
        let d = run(super::apply, b"");
        assert_eq!(d.len(), 16);
        assert_eq!(d[..4], [0xd4, 0x1d, 0x8c, 0xd9]);
    }
}
