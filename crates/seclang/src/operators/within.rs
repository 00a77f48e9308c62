//! `@within`: the input occurs somewhere in the parameter (e.g. a method in an allow-list).

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct Within {
    list: Vec<u8>,
    /// How often each byte occurs in `list` (saturating): the search looks for the input's
    /// rarest byte, where a general substring search would first analyse the input.
    counts: [u16; 256],
}

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    let list = param.as_bytes().to_vec();
    let mut counts = [0u16; 256];
    for &b in &list {
        counts[usize::from(b)] = counts[usize::from(b)].saturating_add(1);
    }
    Ok(Box::new(Within { list, counts }))
}

impl Operator for Within {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        let list = &self.list;
        let Some((at, &rare)) = input
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| self.counts[usize::from(**b)])
        else {
            // The empty input occurs in every list.
            return true;
        };
        if input.len() > list.len() || self.counts[usize::from(rare)] == 0 {
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

    /// Agrees with a plain substring search, inputs at the list's edges included.
    #[test]
    fn agrees_with_a_substring_search() {
        let mut next = crate::test_rng::below(0x853c_49e6_748f_ea9bu64);
        let alphabet = b"/ab-c";
        let mut found = 0;
        for _ in 0..3000 {
            let list: Vec<u8> = (0..next(24)).map(|_| alphabet[next(5)]).collect();
            let input: Vec<u8> = if !list.is_empty() && next(2) == 0 {
                let start = next(list.len());
                list[start..start + next(list.len() - start + 1)].to_vec()
            } else {
                (0..next(6)).map(|_| alphabet[next(5)]).collect()
            };
            let op = build("within", std::str::from_utf8(&list).unwrap());
            let expected = memchr::memmem::find(&list, &input).is_some();
            assert_eq!(test_match(&*op, &input), expected, "{list:?} {input:?}");
            found += usize::from(expected);
        }
        assert!(found > 1000, "{found}");
    }
}
