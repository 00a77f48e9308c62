//! Deterministic choices seeded by the installation secret.
//!
//! Decoy paths, field and cookie names must differ between installations yet stay the same
//! across restarts of one, so they are drawn from HMAC(secret-derived key, counter) blocks.
//! A general-purpose PRNG would also do, but its sequence may change with a crate upgrade,
//! and every decoy path already published in a robots.txt would silently stop being one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::secret::Secret;

pub(crate) struct Choices {
    mac: Hmac<Sha256>,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl Choices {
    /// The sequence for one purpose (`label`) of one installation.
    pub(crate) fn new(secret: &Secret, label: &str) -> Choices {
        let key = secret.derive(label);
        Choices {
            mac: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key"),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn next_u32(&mut self) -> u32 {
        if self.used == self.block.len() {
            let mut mac = self.mac.clone();
            mac.update(&self.counter.to_be_bytes());
            self.block = mac.finalize().into_bytes().into();
            self.counter += 1;
            self.used = 0;
        }
        let bytes = [
            self.block[self.used],
            self.block[self.used + 1],
            self.block[self.used + 2],
            self.block[self.used + 3],
        ];
        self.used += 4;
        u32::from_be_bytes(bytes)
    }

    /// A uniform number in `0..n`; `n` must be positive and fit in a `u32`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let n = u32::try_from(n).expect("choice among at most u32::MAX items");
        assert!(n > 0, "choice among no items");
        // Rejection sampling: a plain modulo would favour the first items.
        let zone = u32::MAX - (u32::MAX % n);
        loop {
            let x = self.next_u32();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_secret_and_label_give_the_same_sequence() {
        let secret = Secret::from_material(&[5u8; 32]);
        let draw = |label| {
            let mut c = Choices::new(&secret, label);
            (0..50).map(|_| c.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw("a"), draw("a"));
        assert_ne!(draw("a"), draw("b"));
        let other = Secret::from_material(&[6u8; 32]);
        let mut c = Choices::new(&other, "a");
        let from_other: Vec<_> = (0..50).map(|_| c.below(1000)).collect();
        assert_ne!(draw("a"), from_other);
    }

    #[test]
    fn choices_cover_the_range_evenly() {
        let secret = Secret::from_material(&[7u8; 32]);
        let mut c = Choices::new(&secret, "spread");
        let mut counts = [0u32; 6];
        for _ in 0..6000 {
            counts[c.below(6)] += 1;
        }
        // 1000 expected each; 800..1200 is over 6 standard deviations wide.
        assert!(
            counts.iter().all(|&n| (800..1200).contains(&n)),
            "{counts:?}"
        );
    }
}
