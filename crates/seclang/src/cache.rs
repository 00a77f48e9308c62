//! Per-transaction cache of transformed values: a value (identified by its slot) run
//! through a transformation chain is computed once, and chains sharing a prefix share the
//! intermediate results.

use rustc_hash::FxHashMap;

use crate::rule::{ChainId, ChainTable};
use crate::transformations;

#[derive(Debug, Default)]
pub struct TransformCache {
    index: FxHashMap<(u32, ChainId), usize>,
    store: Vec<Vec<u8>>,
    scratch: [Vec<u8>; 2],
    steps: Vec<transformations::TransformId>,
}

impl TransformCache {
    /// `raw` through `chain`; `slot` identifies an immutable value (cached) or `None`.
    pub fn get<'a>(
        &'a mut self,
        chains: &ChainTable,
        slot: Option<u32>,
        raw: &'a [u8],
        chain: Option<ChainId>,
    ) -> &'a [u8] {
        let Some(chain) = chain else { return raw };
        match slot {
            Some(s) => {
                let i = self.cached(chains, s, raw, chain);
                &self.store[i]
            }
            None => self.uncached(chains, raw, chain),
        }
    }

    fn cached(&mut self, chains: &ChainTable, slot: u32, raw: &[u8], chain: ChainId) -> usize {
        if let Some(&i) = self.index.get(&(slot, chain)) {
            return i;
        }
        let (parent, t) = chains.nodes[chain as usize];
        let parent_idx = parent.map(|p| self.cached(chains, slot, raw, p));
        let mut out = Vec::new();
        {
            let input: &[u8] = match parent_idx {
                Some(i) => &self.store[i],
                None => raw,
            };
            transformations::apply(t, input, &mut out);
        }
        self.store.push(out);
        let i = self.store.len() - 1;
        self.index.insert((slot, chain), i);
        i
    }

    fn uncached<'a>(&'a mut self, chains: &ChainTable, raw: &[u8], chain: ChainId) -> &'a [u8] {
        self.steps.clear();
        let mut cur = Some(chain);
        while let Some(c) = cur {
            let (p, t) = chains.nodes[c as usize];
            self.steps.push(t);
            cur = p;
        }
        let [a, b] = &mut self.scratch;
        transformations::apply(self.steps[self.steps.len() - 1], raw, a);
        for &t in self.steps.iter().rev().skip(1) {
            transformations::apply(t, a, b);
            std::mem::swap(a, b);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_and_shares_prefixes() {
        let mut chains = ChainTable::default();
        let lower = transformations::lookup("lowercase").unwrap();
        let url = transformations::lookup("urlDecode").unwrap();
        let ids = chains.intern(&[url, lower]);
        let mut c = TransformCache::default();
        assert_eq!(c.get(&chains, Some(1), b"A%42", Some(ids[1])), b"ab");
        assert_eq!(c.store.len(), 2); // prefix result kept too
        assert_eq!(
            c.get(&chains, Some(1), b"ignored: cached", Some(ids[1])),
            b"ab"
        );
        assert_eq!(c.get(&chains, None, b"X%59", Some(ids[1])), b"xy");
        assert_eq!(c.get(&chains, None, b"X%59", Some(ids[0])), b"XY");
        assert_eq!(c.get(&chains, None, b"raw", None), b"raw");
    }
}
