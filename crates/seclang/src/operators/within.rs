//! `@within`: the input occurs somewhere in the parameter (e.g. a method in an allow-list).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Within {
    list: Vec<u8>,
    /// How often each byte occurs in `list` (saturating): the search looks for the input's
    /// rarest byte, where a general substring search would first analyse the input.
    counts: [u16; 256],
    /// The pairs of adjacent bytes in `list`, a bit each (hashed, [`pair_bit`]): an input
    /// with a pair the list lacks is nowhere in it. Most inputs are not in the list (header
    /// names and extensions tested against CRS's restricted ones) and most of those hold
    /// such a pair among their first few, where the search would scan the list.
    pairs: [u64; 64],
}

/// The bit of the pair `a`, `b` in [`Within::pairs`] (of 4096: pairs may share one).
fn pair_bit(a: u8, b: u8) -> usize {
    usize::from(a) << 4 ^ usize::from(b)
}

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    let list = param.as_bytes().to_vec();
    let mut counts = [0u16; 256];
    for &b in &list {
        counts[usize::from(b)] = counts[usize::from(b)].saturating_add(1);
    }
    let mut pairs = [0u64; 64];
    for w in list.windows(2) {
        let bit = pair_bit(w[0], w[1]);
        pairs[bit / 64] |= 1 << (bit % 64);
    }
    Ok(Box::new(Within {
        list,
        counts,
        pairs,
    }))
}

impl Operator for Within {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        let list = &self.list;
        if input.len() > list.len() {
            return false;
        }
        let lacks = |w: &[u8]| {
            let bit = pair_bit(w[0], w[1]);
            self.pairs[bit / 64] & 1 << (bit % 64) == 0
        };
        if input.windows(2).any(lacks) {
            return false;
        }
        let Some((at, &rare)) = input
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| self.counts[usize::from(**b)])
        else {
            // The empty input occurs in every list.
            return true;
        };
        if self.counts[usize::from(rare)] == 0 {
            return false;
        }
        // Where the rare byte can stand with the whole input inside the list; a hit at `i`
        // of this stretch puts the input's start at `i` in the list.
        let stretch = &list[at..list.len() - (input.len() - 1 - at)];
        memchr::memchr_iter(rare, stretch).any(|i| list[i..i + input.len()] == *input)
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn finds_input_in_list() {
        let op = build("within", "GET HEAD POST");
        assert!(test_match(&*op, b"HEAD"));
        assert!(!test_match(&*op, b"PUT"));
        assert!(test_match(&*op, b""));
        assert!(test_match(&*op, b"GET HEAD POST"));
        assert!(!test_match(&*op, b"GET HEAD POST "));
        assert!(test_match(&*op, b"T"));
        assert!(!test_match(&*build("within", ""), b"x"));
    }

    /// Agrees with a plain substring search, inputs at the list's edges included; over
    /// bytes whose pairs share bits of [`super::pair_bit`] (`\x01\x00` and `\x00\x10`),
    /// both cases of a letter, and the bytes of a multi-byte character too.
    #[test]
    fn agrees_with_a_substring_search() {
        let mut next = crate::test_rng::below(0x853c_49e6_748f_ea9bu64);
        assert_eq!(super::pair_bit(1, 0), super::pair_bit(0, 0x10));
        for alphabet in [
            &["/", "a", "b", "-", "c"][..],
            &["a", "A", "\u{1}", "\0", "\u{10}", "é", "/"],
        ] {
            let mut found = 0;
            for _ in 0..3000 {
                let list: String = (0..next(24))
                    .map(|_| alphabet[next(alphabet.len())])
                    .collect();
                let list = list.as_bytes();
                // A piece of the list (a character's first byte alone, too) or any text.
                let input: Vec<u8> = if !list.is_empty() && next(2) == 0 {
                    let start = next(list.len());
                    list[start..start + next(list.len() - start + 1)].to_vec()
                } else {
                    let text: String = (0..next(6))
                        .map(|_| alphabet[next(alphabet.len())])
                        .collect();
                    text.into_bytes()
                };
                let op = build("within", std::str::from_utf8(list).unwrap());
                let expected = memchr::memmem::find(list, &input).is_some();
                assert_eq!(test_match(&*op, &input), expected, "{list:?} {input:?}");
                found += usize::from(expected);
            }
            assert!(found > 900, "{found}");
        }
    }

    /// An input whose pairs all share bits with the list's, but is not in it.
    #[test]
    fn pairs_sharing_a_bit_still_search() {
        let op = build("within", "\u{1}\0");
        assert!(test_match(&*op, b"\x01\x00"));
        assert!(!test_match(&*op, b"\x00\x10"));
        let op = build("within", "/content-type/ /host/");
        assert!(test_match(&*op, b"/host/"));
        assert!(!test_match(&*op, b"/Host/"), "case counts");
        assert!(!test_match(&*op, b"/ho/"));
    }
}
