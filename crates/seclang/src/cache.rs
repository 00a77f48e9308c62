//! Per-transaction cache of transformed values: a value (identified by its slot) run
//! through a transformation chain is computed once, and chains sharing a prefix share the
//! intermediate results. A transformation that leaves its input unchanged stores no copy:
//! its entry points at the input's, so callers can tell "unchanged" without comparing.
//! Chains that reach the same value by different paths (`urlDecode,lowercase` on a value
//! without escapes, and `lowercase`) share the next result too.

use rustc_hash::FxHashMap;

use crate::rule::{ChainId, ChainTable};
use crate::transformations;

/// Where a transformed value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    /// Identical to the untransformed value.
    Raw,
    /// `store[i]`.
    Stored(u32),
}

/// A cached value's row in the table: one entry per transformation chain.
pub type Row = u32;

/// Table entry: not computed yet.
const UNKNOWN: u32 = 0;
/// Table entry: [`Val::Raw`]; larger entries are `Val::Stored(entry - STORED)`.
const RAW: u32 = 1;
const STORED: u32 = 2;

/// Rows whose table entries a new row's numbering makes at once: most of a transaction's
/// rows are then numbered without growing the table (a call to `memset`). Four rows of the
/// CRS v4.28.0's 90 entries are 1.4 KB; from 2 KB glibc's `memset` turns to `rep stosb`,
/// which callgrind counts a byte at a time (8 rows showed +10 k instructions a benign GET
/// that the clock does not see), so the counts stay comparable.
const ROWS_AHEAD: usize = 4;

/// A known value as a table entry.
fn entry(v: Val) -> u32 {
    match v {
        Val::Raw => RAW,
        Val::Stored(i) => i + STORED,
    }
}

/// The value of a known table entry.
fn value(e: u32) -> Val {
    match e {
        RAW => Val::Raw,
        e => Val::Stored(e - STORED),
    }
}

/// A row's `tested` and `changing` sets (see [`TransformCache`]).
#[derive(Debug, Default, Clone, Copy)]
struct Tested {
    tested: u64,
    changing: u64,
}

#[derive(Debug, Default)]
pub struct TransformCache {
    /// Slot → row + 1 (0: not numbered yet), indexed by the slot's high byte (its
    /// variable) and then by its low bits (the value's index), without hashing.
    rows: Vec<Vec<Row>>,
    row_count: Row,
    /// Per row, `chains` entries, indexed directly (the chain prefix tree is walked
    /// without hashing), then one per transformation applied to the raw value, the most
    /// common input (as `applied` would hash them): `stride` entries a row, made at once
    /// when a value is numbered.
    table: Vec<u32>,
    /// Per row, side by side (one bounds check and one cache line for both): the
    /// transformations known to leave the raw value as it is or not (`tested`), and those
    /// among them that may change it (`changing`). A chain of transformations that all
    /// leave the raw value as it is yields the raw value, without walking the chain.
    /// `tested` is 0 until the row's value has been looked at; then the value's features
    /// settle every transformation but those whose own test has not run yet.
    tested: Vec<Tested>,
    chains: usize,
    /// `chains` + the number of transformations.
    stride: usize,
    /// (row, table entry of the input, transformation) → table entry of the result, for
    /// every transformation applied to a stored value: a value reached by two chains is
    /// transformed once.
    applied: FxHashMap<(Row, u32, transformations::TransformId), u32>,
    store: Vec<Vec<u8>>,
    /// Per stored value: [`transformations::may_change`] of its features ((0, 0): not
    /// computed yet), for the transformations applied to it next.
    stored_may: Vec<(u64, u64)>,
    /// Buffers whose result turned out unchanged, reused for the next transformation.
    spare: Vec<Vec<u8>>,
    scratch: [Vec<u8>; 2],
    steps: Vec<transformations::TransformId>,
}

impl TransformCache {
    /// Forget every value but keep the buffers, for the next transaction (buffers grown
    /// past `max_keep` bytes are freed, so one huge request does not pin its memory).
    /// `chains` is the number of chains of the rule set it will serve.
    pub fn clear(&mut self, max_keep: usize, chains: usize) {
        for r in &mut self.rows {
            if r.capacity() * std::mem::size_of::<Row>() > max_keep {
                *r = Vec::new();
            }
            r.clear();
        }
        self.row_count = 0;
        self.table.clear();
        self.tested.clear();
        self.applied.clear();
        self.chains = chains;
        self.stride = chains + transformations::TABLE.len();
        self.stored_may.clear();
        // Spare buffers keep their bytes: `transformations::apply` clears its output.
        self.store.retain(|b| b.capacity() <= max_keep);
        self.spare.append(&mut self.store);
        self.spare.truncate(4096);
        for b in &mut self.scratch {
            if b.capacity() > max_keep {
                *b = Vec::new();
            }
        }
    }

    /// The row of the value in `slot` (an immutable value), numbering it if new.
    #[inline]
    pub fn row(&mut self, slot: u32) -> Row {
        let (high, low) = ((slot >> 24) as usize, (slot & 0xff_ffff) as usize);
        match self.rows.get(high).and_then(|rows| rows.get(low)) {
            Some(&r) if r != 0 => r - 1,
            _ => self.number(slot),
        }
    }

    /// Gives the value in `slot`, if it has no row yet, the row of the value in `with`: for
    /// values with the same bytes, which then share their transformations and scans.
    pub fn share_row(&mut self, slot: u32, with: u32) {
        let r = self.row(with) + 1;
        let entry = self.row_entry(slot);
        if *entry == 0 {
            *entry = r;
        }
    }

    /// Where the row of the value in `slot` is kept, plus 1 (0: none yet), made room for.
    fn row_entry(&mut self, slot: u32) -> &mut Row {
        let (high, low) = ((slot >> 24) as usize, (slot & 0xff_ffff) as usize);
        if self.rows.len() <= high {
            self.rows.resize_with(high + 1, Vec::new);
        }
        let rows = &mut self.rows[high];
        if rows.len() <= low {
            rows.resize(low + 1, 0);
        }
        &mut rows[low]
    }

    /// [`TransformCache::row`] for a value without a row yet.
    #[inline(never)]
    fn number(&mut self, slot: u32) -> Row {
        let next = self.row_count + 1;
        let entry = self.row_entry(slot);
        if *entry != 0 {
            return *entry - 1;
        }
        *entry = next;
        self.row_count = next;
        let rows = next as usize;
        if self.table.len() < rows * self.stride {
            self.table
                .resize((rows + ROWS_AHEAD - 1) * self.stride, UNKNOWN);
        }
        self.tested.push(Tested::default());
        next - 1
    }

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
                let v = self.cached(chains, s, raw, chain);
                self.bytes(v, raw)
            }
            None => self.uncached(chains, raw, chain),
        }
    }

    /// How many transformed values the cache holds.
    #[cfg(test)]
    pub fn stored(&self) -> usize {
        self.store.len()
    }

    /// The bytes of a [`Val`] that [`TransformCache::cached`] returned for `raw`.
    pub fn bytes<'a>(&'a self, v: Val, raw: &'a [u8]) -> &'a [u8] {
        match v {
            Val::Raw => raw,
            Val::Stored(i) => &self.store[i as usize],
        }
    }

    /// Slot `slot` (whose untransformed value is `raw`) through `chain`, computed at most
    /// once per transaction.
    pub fn cached(&mut self, chains: &ChainTable, slot: u32, raw: &[u8], chain: ChainId) -> Val {
        let row = self.row(slot);
        self.in_row(chains, row, raw, chain)
    }

    /// [`TransformCache::cached`] for a value whose row is known.
    #[inline]
    pub fn in_row(&mut self, chains: &ChainTable, row: Row, raw: &[u8], chain: ChainId) -> Val {
        // Most calls find the value known: answered without the computing path's frame.
        match self.known(chains, row, chain) {
            Some(v) => v,
            None => self.compute(chains, row, raw, chain),
        }
    }

    /// [`TransformCache::in_row`] when its answer is known already (so the caller need
    /// not fetch the raw value).
    #[inline]
    pub fn known(&self, chains: &ChainTable, row: Row, chain: ChainId) -> Option<Val> {
        let r = row as usize;
        let used = chains.masks[chain as usize];
        let row_tests = self.tested[r];
        if row_tests.tested & used != used {
            return None;
        }
        if row_tests.changing & used == 0 {
            return Some(Val::Raw);
        }
        match self.table[r * self.stride + chain as usize] {
            UNKNOWN => None,
            e => Some(value(e)),
        }
    }

    /// Those of `transforms` (a set of [`ChainTable::masks`] bits) that may change row
    /// `row`'s raw value (`raw()`): a chain made of the others yields the raw value. Tests
    /// the transformations not tested on the value yet.
    #[inline]
    pub fn changed_by<'a>(
        &mut self,
        row: Row,
        raw: impl FnOnce() -> &'a [u8],
        transforms: u64,
    ) -> u64 {
        let row_tests = self.tested[row as usize];
        if row_tests.tested & transforms != transforms {
            return self.test(row, raw(), transforms);
        }
        row_tests.changing & transforms
    }

    /// Tests which of `transforms` change row `row`'s raw value `raw`, and returns them.
    #[inline(never)]
    fn test(&mut self, row: Row, raw: &[u8], transforms: u64) -> u64 {
        let row_tests = &mut self.tested[row as usize];
        if row_tests.tested == 0 {
            // One pass over the value answers for every transformation whose features it
            // lacks, and for those that change any value with them (never all 64 bits).
            let (may, refined) = transformations::may_change(transformations::features(raw));
            row_tests.changing = may & !refined;
            row_tests.tested = !refined;
        }
        let mut untested = transforms & !row_tests.tested;
        while untested != 0 {
            let t = untested.trailing_zeros();
            untested &= untested - 1;
            let t = t as transformations::TransformId;
            if !transformations::unchanged(t, raw) {
                row_tests.changing |= 1 << t;
            }
        }
        row_tests.tested |= transforms;
        row_tests.changing & transforms
    }

    /// [`TransformCache::in_row`] for a value not known yet (or whose transformations'
    /// unchanged-value tests have not all run).
    #[inline(never)]
    fn compute(&mut self, chains: &ChainTable, row: Row, raw: &[u8], chain: ChainId) -> Val {
        let r = row as usize;
        let used = chains.masks[chain as usize];
        if self.changed_by(row, || raw, used) == 0 {
            return Val::Raw;
        }
        let at = r * self.stride + chain as usize;
        match self.table[at] {
            UNKNOWN => {}
            RAW => return Val::Raw,
            e => return Val::Stored(e - STORED),
        }
        let (parent, t) = chains.nodes[chain as usize];
        let input = match parent {
            Some(p) => self.in_row(chains, row, raw, p),
            None => Val::Raw,
        };
        let unchanged = match input {
            // The row's tests above already tell whether `t` leaves the raw value as it is.
            Val::Raw => self.tested[r].changing & 1 << t == 0,
            Val::Stored(i) => self.stored_unchanged(i as usize, t),
        };
        let v = if unchanged {
            input
        } else {
            let key = (row, entry(input), t);
            let known = match input {
                Val::Raw => self.table[self.raw_applied_at(r, t)],
                Val::Stored(_) => self.applied.get(&key).copied().unwrap_or(UNKNOWN),
            };
            match known {
                UNKNOWN => {
                    let mut out = self.spare.pop().unwrap_or_default();
                    transformations::apply(t, self.bytes(input, raw), &mut out);
                    let v = if out == self.bytes(input, raw) {
                        self.spare.push(out);
                        input
                    } else {
                        self.store.push(out);
                        self.stored_may.push((0, 0));
                        Val::Stored(self.store.len() as u32 - 1)
                    };
                    match input {
                        Val::Raw => {
                            let at = self.raw_applied_at(r, t);
                            self.table[at] = entry(v)
                        }
                        Val::Stored(_) => {
                            self.applied.insert(key, entry(v));
                        }
                    }
                    v
                }
                e => value(e),
            }
        };
        self.table[at] = entry(v);
        v
    }

    /// Where `table` holds row `r`'s raw value through transformation `t`.
    fn raw_applied_at(&self, r: usize, t: transformations::TransformId) -> usize {
        r * self.stride + self.chains + usize::from(t)
    }

    /// Whether transformation `t` leaves stored value `i` as it is: one pass over the value
    /// serves every transformation applied to it.
    fn stored_unchanged(&mut self, i: usize, t: transformations::TransformId) -> bool {
        if self.stored_may[i].0 == 0 {
            self.stored_may[i] =
                transformations::may_change(transformations::features(&self.store[i]));
        }
        let (may, refined) = self.stored_may[i];
        let bit = 1u64 << t;
        may & bit == 0 || (refined & bit != 0 && transformations::unchanged(t, &self.store[i]))
    }

    fn uncached<'a>(&'a mut self, chains: &ChainTable, raw: &'a [u8], chain: ChainId) -> &'a [u8] {
        self.steps.clear();
        let mut cur = Some(chain);
        while let Some(c) = cur {
            let (p, t) = chains.nodes[c as usize];
            self.steps.push(t);
            cur = p;
        }
        // Transformations that change nothing are skipped; `a` holds the value once one did.
        let [a, b] = &mut self.scratch;
        let mut in_a = false;
        for &t in self.steps.iter().rev() {
            let cur: &[u8] = if in_a { a } else { raw };
            if transformations::unchanged(t, cur) {
                continue;
            }
            transformations::apply(t, cur, b);
            std::mem::swap(a, b);
            in_a = true;
        }
        if in_a {
            a
        } else {
            raw
        }
    }

    /// For `multiMatch` on an uncached value: call `f` with `raw`, then with the result of
    /// each prefix of `chain_ids` that differs from the previous value (the operator is a
    /// function of its input, so an unchanged value cannot change the outcome).
    pub fn each_changed(
        &mut self,
        chains: &ChainTable,
        raw: &[u8],
        chain_ids: &[ChainId],
        f: &mut dyn FnMut(&[u8]),
    ) {
        f(raw);
        let [a, b] = &mut self.scratch;
        a.clear();
        a.extend_from_slice(raw);
        for &c in chain_ids {
            let t = chains.nodes[c as usize].1;
            if transformations::unchanged(t, a) {
                continue;
            }
            transformations::apply(t, a, b);
            if *a == *b {
                continue;
            }
            std::mem::swap(a, b);
            f(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain table with `t:urlDecode,t:lowercase`, and the ids of its two prefixes.
    fn url_decode_then_lowercase() -> (ChainTable, Vec<ChainId>) {
        let mut chains = ChainTable::default();
        let lower = transformations::lookup("lowercase").unwrap();
        let url = transformations::lookup("urlDecode").unwrap();
        let ids = chains.intern(&[url, lower]);
        (chains, ids)
    }

    #[test]
    fn caches_and_shares_prefixes() {
        let (chains, ids) = url_decode_then_lowercase();
        let mut c = TransformCache::default();
        c.clear(0, chains.nodes.len());
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

    /// `changed_by` a chain's transformations is empty only where the chain yields the
    /// raw value (it may be not empty there too: the features test is conservative), asked
    /// before or after the chain ran, on values that some steps change.
    #[test]
    fn changed_by_agrees_with_the_chains() {
        let names = [
            "lowercase",
            "urlDecodeUni",
            "compressWhitespace",
            "base64Decode",
        ];
        let steps: Vec<_> = names
            .iter()
            .map(|n| transformations::lookup(n).unwrap())
            .collect();
        let mut chains = ChainTable::default();
        let mut ids = Vec::new();
        for a in &steps {
            for b in &steps {
                ids.push(*chains.intern(&[*a, *b]).last().unwrap());
            }
        }
        let values: [&[u8]; 6] = [b"abc", b"ABC", b"a%41", b"a  b", b"", b"aGVsbG8="];
        let mut answers = [0; 2];
        for first in [false, true] {
            let mut c = TransformCache::default();
            c.clear(0, chains.nodes.len());
            for (slot, v) in values.iter().enumerate() {
                let row = c.row(slot as u32);
                for &id in &ids {
                    let mask = chains.masks[id as usize];
                    let ran = |c: &mut TransformCache| c.in_row(&chains, row, v, id) == Val::Raw;
                    let (asked, expected) = if first {
                        (c.changed_by(row, || v, mask) == 0, ran(&mut c))
                    } else {
                        let expected = ran(&mut c);
                        (c.changed_by(row, || v, mask) == 0, expected)
                    };
                    assert!(expected || !asked, "{:?} through {id}", v);
                    answers[usize::from(asked)] += 1;
                }
            }
            let lower = chains.intern(&steps[..1])[0];
            let blank = chains.intern(&[steps[2], steps[2]])[1];
            let (abc, ab) = (c.row(0), c.row(3));
            assert!(c.changed_by(abc, || b"abc", chains.masks[lower as usize]) == 0);
            assert!(c.changed_by(abc, || b"abc", chains.masks[ids[3] as usize]) != 0);
            assert!(c.changed_by(ab, || b"a  b", chains.masks[blank as usize]) != 0);
            // No transformation at all leaves every value as it is.
            assert_eq!(c.changed_by(0, || unreachable!(), 0), 0);
        }
        assert!(answers[0] > 0 && answers[1] > 0, "{answers:?}");
    }

    /// The buffers kept for the next transaction are reused without a byte of the last.
    #[test]
    fn values_after_clear_hold_nothing_of_the_last_transaction() {
        let (chains, ids) = url_decode_then_lowercase();
        let mut c = TransformCache::default();
        c.clear(1 << 20, chains.nodes.len());
        let first = c.get(&chains, Some(1), b"LONG%20VALUE%21", Some(ids[1]));
        assert_eq!(first, b"long value!");
        c.clear(1 << 20, chains.nodes.len());
        assert_eq!(c.spare.len(), 2);
        assert_eq!(c.get(&chains, Some(1), b"A%42", Some(ids[1])), b"ab");
        assert_eq!(c.get(&chains, Some(1), b"A%42", Some(ids[0])), b"AB");
    }

    #[test]
    fn unchanged_values_alias_their_input() {
        let (chains, ids) = url_decode_then_lowercase();
        let mut c = TransformCache::default();
        c.clear(0, chains.nodes.len());
        assert_eq!(c.cached(&chains, 7, b"abc", ids[1]), Val::Raw);
        assert_eq!(c.cached(&chains, 8, b"a%41", ids[0]), Val::Stored(0));
        assert_eq!(c.cached(&chains, 8, b"a%41", ids[1]), Val::Stored(1));
        assert_eq!(c.cached(&chains, 9, b"a%61", ids[1]), Val::Stored(2));
        assert!(c.store.len() == 3);
        let mut seen = Vec::new();
        c.each_changed(&chains, b"A%41", &ids, &mut |v| seen.push(v.to_vec()));
        assert_eq!(seen, vec![b"A%41".to_vec(), b"AA".to_vec(), b"aa".to_vec()]);
        seen.clear();
        c.each_changed(&chains, b"abc", &ids, &mut |v| seen.push(v.to_vec()));
        assert_eq!(seen, vec![b"abc".to_vec()]);
    }

    #[test]
    fn chains_reaching_the_same_value_share_its_result() {
        let mut chains = ChainTable::default();
        let lower = transformations::lookup("lowercase").unwrap();
        let url = transformations::lookup("urlDecode").unwrap();
        let trim = transformations::lookup("trim").unwrap();
        let decoded_lower = chains.intern(&[url, lower])[1];
        let lower_only = chains.intern(&[lower])[0];
        let trimmed_lower = chains.intern(&[trim, lower])[1];
        let mut c = TransformCache::default();
        c.clear(0, chains.nodes.len());
        // Nothing to decode or trim: all three chains lower-case the raw value.
        let v = c.cached(&chains, 1, b"ABC", decoded_lower);
        assert_eq!(c.cached(&chains, 1, b"ABC", lower_only), v);
        assert_eq!(c.cached(&chains, 1, b"ABC", trimmed_lower), v);
        assert_eq!(c.store.len(), 1);
        assert_eq!(c.bytes(v, b"ABC"), b"abc");
        // Where decoding changes the value, the paths part.
        let d = c.cached(&chains, 2, b"A%42", decoded_lower);
        let l = c.cached(&chains, 2, b"A%42", lower_only);
        assert_ne!(d, l);
        assert_eq!(c.bytes(d, b"A%42"), b"ab");
        assert_eq!(c.bytes(l, b"A%42"), b"a%42");
    }

    /// Random chains over every transformation, on random values (each a slot, asked
    /// through chains in random order, so rows are first seen through any chain): the
    /// cache answers what applying the chain's transformations in turn gives.
    #[test]
    fn cached_values_match_the_transformations_applied_in_turn() {
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15u64);
        let alphabet = b"aAzZfF09%%2+&#;\\//..-*<! \t\x00\xa0\xc3\xa9\"'^,()";
        let count = transformations::TABLE.len();
        for _ in 0..300 {
            let mut chains = ChainTable::default();
            let picked: Vec<Vec<transformations::TransformId>> = (0..6)
                .map(|_| {
                    let len = 1 + next(4);
                    (0..len)
                        .map(|_| next(count) as transformations::TransformId)
                        .collect()
                })
                .collect();
            let ids: Vec<ChainId> = picked
                .iter()
                .map(|p| *chains.intern(p).last().unwrap())
                .collect();
            // Up to three times `ROWS_AHEAD` rows, numbered a few at a time, over two
            // transactions of one cache.
            let values: Vec<Vec<u8>> = (0..5 + next(3 * ROWS_AHEAD))
                .map(|_| {
                    let len = next(14);
                    (0..len).map(|_| alphabet[next(alphabet.len())]).collect()
                })
                .collect();
            let mut c = TransformCache::default();
            for round in 0..80 {
                if round % 40 == 0 {
                    c.clear(0, chains.nodes.len());
                }
                let (k, v) = (next(ids.len()), next(values.len()));
                let mut expected = values[v].clone();
                for &t in &picked[k] {
                    let mut out = Vec::new();
                    transformations::apply(t, &expected, &mut out);
                    expected = out;
                }
                let slot = v as u32 + 1;
                let cached = c.get(&chains, Some(slot), &values[v], Some(ids[k]));
                assert_eq!(cached, expected, "{:?} on {:?}", picked[k], values[v]);
                let direct = c.get(&chains, None, &values[v], Some(ids[k]));
                assert_eq!(direct, expected, "{:?} on {:?}", picked[k], values[v]);
            }
        }
    }
}
