//! Stable, client-generated UUIDs for MISP events and attributes.
//!
//! MISP keys everything by UUID and refuses a second event or attribute with a UUID it already
//! has. Deriving the UUIDs from what identifies the data (sensor, day, source IP; event, type,
//! value) makes every push idempotent: a replay after a crash or an outage finds the event by
//! its UUID instead of creating a second one, and a re-sent attribute is refused as a
//! duplicate instead of being stored twice.
//!
//! The UUIDs are RFC 4122 version 5 (SHA-1, name-based). SHA-1 is implemented here (about 60
//! lines, checked against the FIPS 180 vectors) rather than pulled in as a dependency; it only
//! names things, it protects nothing.

use std::fmt;

/// Namespace of every UUID this sink derives; fixed forever, or re-sent data would no longer
/// match what is already in MISP.
pub const NAMESPACE: Uuid = Uuid([
    0x5b, 0x1e, 0x6f, 0x3a, 0x94, 0x0d, 0x4c, 0x27, 0x8e, 0x31, 0x2a, 0x7c, 0x48, 0xd6, 0x0b, 0x95,
]);

/// A UUID as 16 bytes; `Display` gives the canonical lower-case hyphenated form MISP stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// RFC 4122 version 5: SHA-1 of namespace bytes then name, with version and variant set.
    pub fn v5(namespace: &Uuid, name: &[u8]) -> Uuid {
        let mut sha = Sha1::new();
        sha.update(&namespace.0);
        sha.update(name);
        let digest = sha.finish();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x50;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }

    /// Parses the hyphenated form (any case), as found in MISP answers.
    pub fn parse(s: &str) -> Option<Uuid> {
        let s = s.as_bytes();
        if s.len() != 36 {
            return None;
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in s.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let v = (c as char).to_digit(16)? as u8;
            out[nibbles / 2] |= if nibbles % 2 == 0 { v << 4 } else { v };
            nibbles += 1;
        }
        Some(Uuid(out))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Streaming SHA-1 (FIPS 180-4), enough for UUID v5.
struct Sha1 {
    state: [u32; 5],
    block: [u8; 64],
    filled: usize,
    length: u64,
}

impl Sha1 {
    fn new() -> Sha1 {
        Sha1 {
            state: [
                0x6745_2301,
                0xEFCD_AB89,
                0x98BA_DCFE,
                0x1032_5476,
                0xC3D2_E1F0,
            ],
            block: [0; 64],
            filled: 0,
            length: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (64 - self.filled).min(data.len());
            self.block[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == 64 {
                let block = self.block;
                self.compress(&block);
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> [u8; 20] {
        let bits = self.length.wrapping_mul(8);
        self.update(&[0x80]);
        while self.filled != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 20];
        for (chunk, word) in out.chunks_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn compress(&mut self, block: &[u8; 64]) {
        let mut w = [0u32; 80];
        for (i, chunk) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = self.state;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d, e]) {
            *s = s.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sha1(data: &[u8]) -> String {
        let mut s = Sha1::new();
        s.update(data);
        hex(&s.finish())
    }

    #[test]
    fn sha1_matches_fips_vectors() {
        assert_eq!(sha1(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(sha1(&million_a), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }

    #[test]
    fn sha1_streaming_equals_one_shot() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let mut s = Sha1::new();
        for piece in data.chunks(13) {
            s.update(piece);
        }
        assert_eq!(hex(&s.finish()), sha1(&data));
    }

    #[test]
    fn v5_matches_rfc_namespace_examples() {
        // The DNS namespace and a well-known v5 result (also what Python's uuid5 gives).
        let dns = Uuid::parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
        assert_eq!(
            Uuid::v5(&dns, b"python.org").to_string(),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn v5_is_stable_and_distinct() {
        let a = Uuid::v5(&NAMESPACE, b"sensor-1\n2026-05-01");
        let b = Uuid::v5(&NAMESPACE, b"sensor-1\n2026-05-01");
        let c = Uuid::v5(&NAMESPACE, b"sensor-1\n2026-05-02");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let s = a.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "5", "version nibble");
        assert!(
            matches!(&s[19..20], "8" | "9" | "a" | "b"),
            "RFC 4122 variant"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let u = Uuid::v5(&NAMESPACE, b"x");
        assert_eq!(Uuid::parse(&u.to_string()), Some(u));
        assert_eq!(Uuid::parse(&u.to_string().to_uppercase()), Some(u));
        assert_eq!(Uuid::parse("not-a-uuid"), None);
        assert_eq!(Uuid::parse("5b1e6f3a-940d-4c27-8e31-2a7c48d60b9"), None);
        assert_eq!(Uuid::parse("5b1e6f3a-940d-4c27-8e31+2a7c48d60b95"), None);
        assert_eq!(Uuid::parse("5b1e6f3a-940d-4c27-8e31-2a7c48d60bzz"), None);
    }
}
