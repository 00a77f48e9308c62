//! Request body processors: URLENCODED, MULTIPART, JSON, XML. Each turns a buffered body
//! into arguments (and files, part headers, XML text); a malformed body yields an error
//! message (→ `REQBODY_ERROR`), never a panic.

pub mod json;
pub mod multipart;
pub mod urlencoded;
pub mod xml;

/// A name/value pair (argument, header, cookie).
pub type Pair = (Vec<u8>, Vec<u8>);

/// A list of pairs whose byte buffers survive [`Pairs::clear`]: a list reused by the next
/// transaction refills them instead of allocating new ones.
#[derive(Debug, Default)]
pub struct Pairs {
    /// The first `len` are the list; the rest are emptied buffers kept for reuse.
    items: Vec<Pair>,
    len: usize,
}

impl std::ops::Deref for Pairs {
    type Target = [Pair];

    // Inlined: visiting a collection of pairs takes its slice (`values`, `slot_value`), a
    // call through the global offset table otherwise.
    #[inline]
    fn deref(&self) -> &[Pair] {
        &self.items[..self.len]
    }
}

impl<'a> IntoIterator for &'a Pairs {
    type Item = &'a Pair;
    type IntoIter = std::slice::Iter<'a, Pair>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Pairs {
    /// Empty the list. Kept are at most `max_pairs` pairs of buffers, none larger than
    /// `max_bytes`, so one huge request does not pin its memory.
    pub fn clear(&mut self, max_pairs: usize, max_bytes: usize) {
        self.items.truncate(max_pairs);
        for (n, v) in &mut self.items {
            for b in [n, v] {
                if b.capacity() > max_bytes {
                    *b = Vec::new();
                }
            }
        }
        self.len = 0;
    }

    /// Append an empty pair to fill in place, reusing kept buffers.
    pub fn push_empty(&mut self) -> &mut Pair {
        if self.len == self.items.len() {
            self.items.push(Pair::default());
        }
        let p = &mut self.items[self.len];
        p.0.clear();
        p.1.clear();
        self.len += 1;
        p
    }

    /// Append a copy of `name` and `value`.
    pub fn push_copy(&mut self, name: &[u8], value: &[u8]) {
        let (n, v) = self.push_empty();
        n.extend_from_slice(name);
        v.extend_from_slice(value);
    }

    /// Append a pair that already owns its bytes.
    pub fn push(&mut self, pair: Pair) {
        *self.push_empty() = pair;
    }

    /// Keep the first `n` pairs.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_reuse_buffers_after_clear() {
        let mut p = Pairs::default();
        p.push_copy(b"name", b"a long enough value");
        p.push(Pair::from((b"b".to_vec(), b"2".to_vec())));
        assert_eq!(p.len(), 2);
        let kept = p[0].1.as_ptr();
        p.clear(16, 1024);
        assert!(p.is_empty());
        p.push_copy(b"x", b"y");
        assert_eq!(&p[..], &[(b"x".to_vec(), b"y".to_vec())]);
        assert_eq!(p[0].1.as_ptr(), kept, "the cleared buffer is refilled");
        p.truncate(0);
        assert!(p.is_empty());
    }

    #[test]
    fn pairs_clear_drops_what_is_over_the_bounds() {
        let mut p = Pairs::default();
        for _ in 0..4 {
            p.push_copy(b"n", &[b'v'; 100]);
        }
        p.clear(2, 50);
        assert_eq!(p.items.len(), 2);
        assert!(p
            .items
            .iter()
            .all(|(n, v)| n.capacity() <= 50 && v.capacity() == 0));
    }
}
