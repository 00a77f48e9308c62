//! The randomized unit tests' generator: xorshift64, seeded, so a failure repeats.

/// A function giving numbers below its argument, from `seed` (not zero).
pub(crate) fn below(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    }
}
