//! Collection storage (TX, IP, GLOBAL, ..., ENV) for one transaction.
//!
//! Keys that the rule set names literally (`TX:foo` targets, `setvar:tx.foo=...`) are
//! numbered at load time ([`SlotTable`]); their values live in a vector indexed by that
//! number, so rules read and write them without comparing strings. Keys built at run time
//! from macros go to an ordered map ([`RunKeys`]). Iteration merges both in key order, as
//! one ordered map would give.

use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::operators::parse_int;

/// Keys numbered at load time (lower-case, as collection keys compare).
#[derive(Debug, Default)]
pub struct SlotTable {
    index: FxHashMap<Vec<u8>, u32>,
    keys: Vec<Vec<u8>>,
}

impl SlotTable {
    /// The slot of `key`, numbering it if new.
    pub fn intern(&mut self, key: &[u8]) -> u32 {
        if let Some(&s) = self.index.get(key) {
            return s;
        }
        let s = self.keys.len() as u32;
        self.keys.push(key.to_vec());
        self.index.insert(key.to_vec(), s);
        s
    }

    pub fn get(&self, key: &[u8]) -> Option<u32> {
        self.index.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether `keep` accepts some key.
    pub fn any(&self, keep: impl Fn(&[u8]) -> bool) -> bool {
        self.keys.iter().any(|k| keep(k))
    }

    /// The slots whose keys `keep` accepts, in key order.
    pub fn selected_by(&self, keep: impl Fn(&[u8]) -> bool) -> Vec<u32> {
        let mut slots: Vec<u32> = (0..self.keys.len() as u32)
            .filter(|&s| keep(&self.keys[s as usize]))
            .collect();
        slots.sort_unstable_by(|&a, &b| self.keys[a as usize].cmp(&self.keys[b as usize]));
        slots
    }
}

/// One collection's variables.
#[derive(Debug, Default)]
pub struct Store {
    /// No table (the default) numbers no key: a store made and dropped unused costs no
    /// reference count.
    table: Option<Arc<SlotTable>>,
    /// Per slot: whether it is set and its integer ([`SlotState`]), and its value. Buffers
    /// of unset slots are kept, so a store reused by the next transaction
    /// ([`Store::reset`]) does not allocate again.
    states: Vec<SlotState>,
    values: Vec<Vec<u8>>,
    /// What marks a slot set in this transaction (even, never 0): clearing the store moves
    /// it on instead of writing every slot.
    epoch: u32,
    extra: RunKeys,
    /// Per slot: whether its buffer still holds what the last [`Store::restore`] of the
    /// values numbered `restored_from` put there (no write since).
    restored: Vec<bool>,
    restored_from: u64,
}

impl Store {
    pub fn new(table: Arc<SlotTable>) -> Store {
        Store {
            states: vec![SlotState::UNSET; table.len()],
            values: vec![Vec::new(); table.len()],
            epoch: FIRST_EPOCH,
            restored: vec![false; table.len()],
            restored_from: 0,
            table: Some(table),
            extra: RunKeys::default(),
        }
    }

    /// Empty the store for slots numbered by `table`, keeping its buffers.
    pub fn reset(&mut self, table: &Arc<SlotTable>) {
        if !self.table.as_ref().is_some_and(|t| Arc::ptr_eq(t, table)) {
            *self = Store::new(Arc::clone(table));
            return;
        }
        self.clear();
    }

    /// Empty the store, keeping its slot numbering and buffers.
    pub fn clear(&mut self) {
        self.epoch = self.epoch.wrapping_add(2);
        if self.epoch == 0 {
            // Every even tag was an epoch once: tags left from then must not read as set.
            self.states.fill(SlotState::UNSET);
            self.epoch = FIRST_EPOCH;
        }
        self.extra.clear();
    }

    fn is_set(&self, s: usize) -> bool {
        self.states[s].tag & !INT_UNREAD == self.epoch
    }

    /// The state of a slot set to a value whose integer is `n`, if known.
    fn set_state(&self, n: Option<i64>) -> SlotState {
        match n {
            Some(int) => SlotState {
                int,
                tag: self.epoch,
            },
            None => SlotState {
                int: 0,
                tag: self.epoch | INT_UNREAD,
            },
        }
    }

    pub fn slot(&self, key: &[u8]) -> Option<u32> {
        self.table.as_ref()?.get(key)
    }

    /// The key of slot `s`, a slot of this store's table.
    fn key(&self, s: usize) -> &[u8] {
        self.table.as_ref().map_or(&[][..], |t| &t.keys[s])
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        match self.slot(key) {
            Some(s) => self.get_slot(s),
            None => self.extra.get(key),
        }
    }

    pub fn get_slot(&self, s: u32) -> Option<&[u8]> {
        let s = s as usize;
        (self.states.get(s)?.tag & !INT_UNREAD == self.epoch).then(|| self.values[s].as_slice())
    }

    /// The value of slot `s` read as an integer ([`parse_int`]), if it is set. Inlined:
    /// the rule loop asks it of every integer comparison of a TX key (84 a benign CRS
    /// transaction), most of them finding the integer cached: one bounds check and the
    /// slot's tag compared with the epoch.
    #[inline]
    pub fn slot_int(&mut self, s: u32) -> Option<i64> {
        let s = s as usize;
        let state = *self.states.get(s)?;
        if state.tag == self.epoch {
            Some(state.int)
        } else if state.tag == self.epoch | INT_UNREAD {
            Some(self.parse_slot(s))
        } else {
            None
        }
    }

    /// [`Store::slot_int`] for a value not read as an integer yet.
    #[inline(never)]
    fn parse_slot(&mut self, s: usize) -> i64 {
        let n = parse_int(&self.values[s]);
        self.states[s] = self.set_state(Some(n));
        n
    }

    /// Set `key` (or `slot`, when the caller resolved it) to `value`, reusing the old
    /// value's buffer.
    pub fn set(&mut self, key: &[u8], slot: Option<u32>, value: &[u8]) {
        self.set_known_int(key, slot, value, None);
    }

    /// [`Store::set`] to the text of `n` (as `setvar` arithmetic writes it), keeping `n`
    /// as the slot's integer.
    pub fn set_int(&mut self, key: &[u8], slot: Option<u32>, n: i64) {
        let mut digits = [0u8; 20];
        self.set_known_int(key, slot, format_i64(n, &mut digits), Some(n));
    }

    fn set_known_int(&mut self, key: &[u8], slot: Option<u32>, value: &[u8], n: Option<i64>) {
        match slot.or_else(|| self.slot(key)) {
            Some(s) => {
                let v = &mut self.values[s as usize];
                v.clear();
                v.extend_from_slice(value);
                self.states[s as usize] = self.set_state(n);
                self.restored[s as usize] = false;
            }
            None => self.extra.set(key, value),
        }
    }

    /// Sets numbered keys as [`Store::set_known_int`] does, from `values`: (slot, value's
    /// range in `bytes`, its integer if known). `id` names `values` (nonzero, the same for
    /// the same values): a buffer that still holds what the last restore of them put there
    /// is not copied again, so that a store reused by the next transaction restores the
    /// values it did not change by setting flags.
    pub fn restore(&mut self, id: u64, values: &[(u32, Range<usize>, Option<i64>)], bytes: &[u8]) {
        if self.restored_from != id {
            self.restored.fill(false);
            self.restored_from = id;
        }
        for (slot, value, n) in values {
            let s = *slot as usize;
            if !self.restored[s] {
                let v = &mut self.values[s];
                v.clear();
                v.extend_from_slice(&bytes[value.clone()]);
                self.restored[s] = true;
            }
            self.states[s] = self.set_state(*n);
        }
    }

    /// The numbered keys that are set: slot, value, and the value's integer if known.
    pub fn set_slots(&self) -> impl Iterator<Item = (u32, &[u8], Option<i64>)> {
        (0..self.states.len()).filter(|&s| self.is_set(s)).map(|s| {
            let n = self.states[s];
            let int = (n.tag == self.epoch).then_some(n.int);
            (s as u32, self.values[s].as_slice(), int)
        })
    }

    /// Whether a key made at run time (not numbered) is set.
    pub fn has_unnumbered(&self) -> bool {
        !self.extra.is_empty()
    }

    pub fn remove(&mut self, key: &[u8], slot: Option<u32>) {
        match slot.or_else(|| self.slot(key)) {
            Some(s) => self.states[s as usize] = SlotState::UNSET,
            None => {
                self.extra.remove(key);
            }
        }
    }

    /// [`Store::get`], [`Store::set`] and [`Store::remove`] for a key the caller knows no
    /// slot numbers: it is a run-time key, found without looking for its slot.
    pub fn get_unnumbered(&self, key: &[u8]) -> Option<&[u8]> {
        self.extra.get(key)
    }

    pub fn set_unnumbered(&mut self, key: &[u8], value: &[u8]) {
        self.extra.set(key, value)
    }

    /// [`Store::set_unnumbered`] of the key and value that `key` and `value` append to the
    /// buffer given them: written where the store keeps them, not copied there.
    pub fn set_unnumbered_with(
        &mut self,
        key: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce(&mut Vec<u8>),
    ) {
        self.extra.set_with(key, value)
    }

    pub fn remove_unnumbered(&mut self, key: &[u8]) {
        self.extra.remove(key)
    }

    /// Every variable whose key `keep` accepts, in key order.
    pub fn each(&self, keep: &dyn Fn(&[u8]) -> bool, f: &mut dyn FnMut(&[u8], &[u8])) {
        if !(0..self.states.len()).any(|s| self.is_set(s)) {
            for (k, v) in self.extra.iter() {
                if keep(k) {
                    f(k, v);
                }
            }
            return;
        }
        // Filter before sorting: selectors usually keep few keys, if any.
        let mut all: Vec<(&[u8], &[u8])> = (0..self.states.len())
            .filter(|&i| self.is_set(i))
            .map(|i| (self.key(i), self.values[i].as_slice()))
            .chain(self.extra.iter())
            .filter(|(k, _)| keep(k))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, v) in all {
            f(k, v);
        }
    }
}

impl Store {
    /// [`Store::each`] for a selection made in advance among the numbered keys (`slots`,
    /// from [`SlotTable::selected_by`] with the same test as `keep`): `keep` is asked only
    /// about keys made at run time.
    pub fn each_of(
        &self,
        slots: &[u32],
        keep: &dyn Fn(&[u8]) -> bool,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) {
        let mut numbered = slots
            .iter()
            .filter(|&&s| self.is_set(s as usize))
            .map(|&s| {
                let s = s as usize;
                (self.key(s), self.values[s].as_slice())
            })
            .peekable();
        // Numbered and run-time keys are distinct: merge the two ordered runs.
        for (k, v) in self.extra.iter().filter(|(k, _)| keep(k)) {
            while let Some((nk, nv)) = numbered.next_if(|(nk, _)| *nk < k) {
                f(nk, nv);
            }
            f(k, v);
        }
        for (k, v) in numbered {
            f(k, v);
        }
    }
}

/// Whether a numbered key is set, and its value's integer once read (TX values are read as
/// numbers far more often than they are written), side by side: the rule loop's TX
/// integer tests read one of these.
#[derive(Debug, Clone, Copy)]
struct SlotState {
    /// The value's integer, if `tag` says so.
    int: i64,
    /// The store's epoch: set, `int` is its integer (the case compared first, so left
    /// unmarked); the epoch `| INT_UNREAD`: set, integer not read yet; anything else: unset.
    tag: u32,
}

impl SlotState {
    /// No epoch is 0.
    const UNSET: SlotState = SlotState { int: 0, tag: 0 };
}

const INT_UNREAD: u32 = 1;
const FIRST_EPOCH: u32 = 2;

/// The keys a collection is given at run time (names built from macros: CRS 920450 sets one
/// per request header), in key order, their bytes in one buffer that the next transaction
/// reuses: a transaction sets them without allocating, and clearing them frees nothing
/// (a map of owned keys and values made two allocations a key, besides its nodes, and
/// freed them all).
#[derive(Debug, Default)]
struct RunKeys {
    /// Sorted by key; ranges of `bytes`.
    entries: Vec<RunKey>,
    bytes: Vec<u8>,
    /// Bytes of `bytes` no entry uses any more (removed keys, values replaced by longer
    /// ones): when they outgrow the rest, the live bytes are copied into a new buffer, so
    /// a rule that keeps growing one key's value holds its size, not the sum of its writes.
    unused: usize,
}

#[derive(Debug, Clone, Copy)]
struct RunKey {
    key: (usize, usize),
    value: (usize, usize),
}

/// Bytes [`RunKeys`] keeps between transactions; a transaction that wrote more gives the
/// rest back when cleared.
const RUN_KEY_BYTES_KEPT: usize = 64 << 10;
/// Unused bytes [`RunKeys`] lets be before it compacts (when they are half its buffer).
const RUN_KEY_UNUSED_KEPT: usize = 4 << 10;

impl RunKeys {
    fn slice(&self, (start, len): (usize, usize)) -> &[u8] {
        &self.bytes[start..][..len]
    }

    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| self.slice(e.key).cmp(key))
    }

    fn push_bytes(&mut self, b: &[u8]) -> (usize, usize) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        (start, b.len())
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let i = self.find(key).ok()?;
        Some(self.slice(self.entries[i].value))
    }

    /// A value replaced by one no longer is written over; a longer one is appended (the
    /// old bytes stay unused until the store is cleared).
    fn set(&mut self, key: &[u8], value: &[u8]) {
        match self.find(key) {
            Ok(i) => {
                let (start, len) = self.entries[i].value;
                if value.len() <= len {
                    self.bytes[start..][..value.len()].copy_from_slice(value);
                    self.entries[i].value = (start, value.len());
                    self.unused += len - value.len();
                } else {
                    self.unused += len;
                    self.entries[i].value = self.push_bytes(value);
                    self.compact_if_sparse();
                }
            }
            Err(i) => {
                let key = self.push_bytes(key);
                let value = self.push_bytes(value);
                self.entries.insert(i, RunKey { key, value });
            }
        }
    }

    /// [`RunKeys::set`] of the key and value that `key` and `value` append to `bytes`. A key
    /// set before keeps its bytes: the new ones go unused, or, for a value no longer than
    /// the one replaced, are dropped once it is written over that one.
    fn set_with(&mut self, key: impl FnOnce(&mut Vec<u8>), value: impl FnOnce(&mut Vec<u8>)) {
        let key_at = self.bytes.len();
        key(&mut self.bytes);
        let value_at = self.bytes.len();
        value(&mut self.bytes);
        let new_key = (key_at, value_at - key_at);
        let new_value = (value_at, self.bytes.len() - value_at);
        match self.find(self.slice(new_key)) {
            Err(i) => self.entries.insert(
                i,
                RunKey {
                    key: new_key,
                    value: new_value,
                },
            ),
            Ok(i) => {
                let (start, len) = self.entries[i].value;
                if new_value.1 <= len {
                    self.bytes.copy_within(value_at.., start);
                    self.bytes.truncate(key_at);
                    self.entries[i].value = (start, new_value.1);
                    self.unused += len - new_value.1;
                } else {
                    self.unused += len + new_key.1;
                    self.entries[i].value = new_value;
                    self.compact_if_sparse();
                }
            }
        }
    }

    fn remove(&mut self, key: &[u8]) {
        if let Ok(i) = self.find(key) {
            let e = self.entries.remove(i);
            self.unused += e.key.1 + e.value.1;
            self.compact_if_sparse();
        }
    }

    fn compact_if_sparse(&mut self) {
        if self.unused <= RUN_KEY_UNUSED_KEPT || self.unused * 2 <= self.bytes.len() {
            return;
        }
        let mut bytes = Vec::with_capacity(self.bytes.len() - self.unused);
        for e in &mut self.entries {
            for range in [&mut e.key, &mut e.value] {
                let start = bytes.len();
                bytes.extend_from_slice(&self.bytes[range.0..][..range.1]);
                range.0 = start;
            }
        }
        self.bytes = bytes;
        self.unused = 0;
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
        self.unused = 0;
        if self.bytes.capacity() > RUN_KEY_BYTES_KEPT {
            self.bytes.shrink_to(RUN_KEY_BYTES_KEPT);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|e| (self.slice(e.key), self.slice(e.value)))
    }
}

/// `n` in decimal, without allocating.
pub(crate) fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_extra_behave_as_one_ordered_map() {
        let mut t = SlotTable::default();
        let b = t.intern(b"b");
        assert_eq!(t.intern(b"b"), b);
        t.intern(b"d");
        let mut s = Store::new(Arc::new(t));
        s.set(b"d", None, b"4");
        s.set(b"a", None, b"1");
        s.set(b"b", Some(b), b"2");
        s.set(b"c", None, b"3");
        s.set(b"b", None, b"22");
        assert_eq!(s.get(b"b"), Some(&b"22"[..]));
        assert_eq!(s.get_slot(b), Some(&b"22"[..]));
        let mut seen = Vec::new();
        s.each(&|_| true, &mut |k, v| seen.push((k.to_vec(), v.to_vec())));
        let keys: Vec<&[u8]> = seen.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"c", b"d"]);
        s.remove(b"b", None);
        s.remove(b"a", None);
        assert_eq!(s.get(b"b"), None);
        assert_eq!(s.get(b"a"), None);
        assert_eq!(s.get(b"zz"), None);
        let table = Arc::clone(s.table.as_ref().unwrap());
        s.reset(&table);
        assert_eq!(s.get(b"d"), None);
        assert_eq!(s.get(b"c"), None);
        s.set(b"d", None, b"5");
        assert_eq!(s.get(b"d"), Some(&b"5"[..]));
    }

    /// A slot's integer, cached or read afresh, is what its value reads as, over random
    /// sets of text and of integers and removals.
    #[test]
    fn slot_integers_are_what_the_values_read_as() {
        let mut t = SlotTable::default();
        let slots: Vec<u32> = (0..4)
            .map(|i| t.intern(format!("k{i}").as_bytes()))
            .collect();
        let mut s = Store::new(Arc::new(t));
        let texts: [&[u8]; 6] = [b"7", b"-3", b" 12", b"x", b"", b"99999999999999999999"];
        let mut below = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let slot = slots[below(slots.len())];
            match below(4) {
                0 => s.set(b"", Some(slot), texts[below(texts.len())]),
                1 => s.set_int(b"", Some(slot), below(200) as i64 - 100),
                2 => s.remove(b"", Some(slot)),
                _ => {}
            }
            let slot = slots[below(slots.len())];
            let want = s.get_slot(slot).map(parse_int);
            assert_eq!(s.slot_int(slot), want);
            assert_eq!(s.slot_int(slot), want);
        }
    }

    /// Numbered keys answer as a map of owned values does (values, integers, the set
    /// slots listed) over random sets, removals, restores and clears, across the epoch's
    /// wrap: slots set in the first epochs are not read as set when it comes round again.
    #[test]
    fn numbered_keys_behave_as_a_map_across_clears() {
        let mut t = SlotTable::default();
        let slots: Vec<u32> = (0..6)
            .map(|i| t.intern(format!("k{i}").as_bytes()))
            .collect();
        // Set in the first epoch only, left alone since.
        let first_epoch_only: Vec<u32> = (0..3)
            .map(|i| t.intern(format!("first{i}").as_bytes()))
            .collect();
        let mut s = Store::new(Arc::new(t));
        let mut model: Vec<Option<Vec<u8>>> = vec![None; slots.len()];
        let texts: [&[u8]; 5] = [b"7", b"-3", b" 12", b"x", b""];
        let mut below = crate::test_rng::below(0x51_7cc1_b727_220a);
        for (n, &slot) in first_epoch_only.iter().enumerate() {
            s.set(b"", Some(slot), b"1");
            if n > 0 {
                s.slot_int(slot);
            }
        }
        // As if after 2^31 - 60 clears: the wrap comes within the run.
        s.clear();
        model.fill(None);
        s.epoch = 0u32.wrapping_sub(2 * 30);
        let mut wrapped = false;
        for _ in 0..4000 {
            let i = below(slots.len());
            let slot = slots[i];
            match below(12) {
                0..=3 => {
                    let text = texts[below(texts.len())];
                    s.set(b"", Some(slot), text);
                    model[i] = Some(text.to_vec());
                }
                4..=6 => {
                    let n = below(200) as i64 - 100;
                    s.set_int(b"", Some(slot), n);
                    model[i] = Some(n.to_string().into_bytes());
                }
                7 => {
                    s.remove(b"", Some(slot));
                    model[i] = None;
                }
                8 => {
                    // The same id for the same values, as restore asks.
                    let at = below(2);
                    let id = 1 + (2 * i + at) as u64;
                    s.restore(id, &[(slot, at..at + 2, None)], b"4x5");
                    model[i] = Some(b"4x5"[at..at + 2].to_vec());
                }
                9 => {
                    s.clear();
                    model.fill(None);
                    wrapped |= s.epoch == FIRST_EPOCH;
                }
                _ => {}
            }
            let i = below(slots.len());
            assert_eq!(s.get_slot(slots[i]), model[i].as_deref());
            let want = model[i].as_deref().map(parse_int);
            assert_eq!(s.slot_int(slots[i]), want);
            let listed: Vec<(u32, Vec<u8>)> =
                s.set_slots().map(|(k, v, _)| (k, v.to_vec())).collect();
            let wanted: Vec<(u32, Vec<u8>)> = (0..slots.len())
                .filter_map(|i| Some((slots[i], model[i].clone()?)))
                .collect();
            assert_eq!(listed, wanted);
            for (slot, value, int) in s.set_slots() {
                assert!(int.is_none_or(|n| n == parse_int(value)), "slot {slot}");
            }
        }
        assert!(wrapped);
    }

    /// Keys made at run time answer as an ordered map of owned keys and values does, over
    /// random sets (longer and shorter values than the one replaced, given as slices or
    /// written in place), removals and clears,
    /// and their buffer stays within twice what they hold (plus what may go unused).
    #[test]
    fn run_keys_behave_as_an_ordered_map() {
        use std::collections::BTreeMap;
        let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1d);
        let mut keys = RunKeys::default();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let (mut replaced_longer, mut replaced_shorter) = (0, 0);
        let (mut compactions, mut buffered) = (0, 0);
        for _ in 0..20_000 {
            let key = format!("k{}", next(40)).into_bytes();
            match next(20) {
                0..=11 => {
                    let value = vec![b'a' + next(26) as u8; next(12)];
                    match model.get(&key) {
                        Some(old) if old.len() < value.len() => replaced_longer += 1,
                        Some(_) => replaced_shorter += 1,
                        None => {}
                    }
                    if next(2) == 0 {
                        keys.set(&key, &value);
                    } else {
                        keys.set_with(
                            |b| b.extend_from_slice(&key),
                            |b| b.extend_from_slice(&value),
                        );
                    }
                    model.insert(key, value);
                }
                12..=17 => {
                    keys.remove(&key);
                    model.remove(&key);
                }
                18 => assert_eq!(keys.get(&key), model.get(&key).map(Vec::as_slice)),
                _ => {
                    if next(100) == 0 {
                        keys.clear();
                        model.clear();
                        continue;
                    }
                }
            }
            assert_eq!(keys.is_empty(), model.is_empty());
            let live: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert!(keys.bytes.len() <= 2 * live + RUN_KEY_UNUSED_KEPT + 64);
            compactions += usize::from(keys.bytes.len() < buffered);
            buffered = keys.bytes.len();
            assert!(keys
                .iter()
                .eq(model.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))));
        }
        assert!(replaced_longer > 1000 && replaced_shorter > 1000);
        assert!(compactions > 10, "{compactions}");
    }

    #[test]
    fn restoring_again_gives_the_values_whatever_was_written_since() {
        let mut t = SlotTable::default();
        let (a, b, c) = (t.intern(b"a"), t.intern(b"b"), t.intern(b"c"));
        let mut s = Store::new(Arc::new(t));
        let bytes = b"onetwo";
        let values = [(a, 0..3, None), (b, 3..6, Some(7))];
        let seen = |s: &mut Store| {
            let ints = (s.slot_int(a), s.slot_int(b));
            (
                s.get_slot(a).map(<[u8]>::to_vec),
                s.get_slot(b).map(<[u8]>::to_vec),
                ints,
            )
        };
        let fresh = (
            Some(b"one".to_vec()),
            Some(b"two".to_vec()),
            (Some(0), Some(7)),
        );
        for round in 0..3 {
            s.restore(1, &values, bytes);
            assert_eq!(seen(&mut s), fresh, "round {round}");
            // What a transaction may do: the next restore must undo it.
            s.set(b"a", Some(a), b"changed");
            s.set_int(b"b", Some(b), 9);
            s.set(b"c", Some(c), b"3");
            s.clear();
        }
        // Other values under another id are copied, not taken from the buffers.
        s.restore(1, &values, bytes);
        s.clear();
        s.restore(2, &[(a, 3..6, None)], bytes);
        assert_eq!(s.get_slot(a), Some(&b"two"[..]));
        assert_eq!((s.get_slot(b), s.get_slot(c)), (None, None));
    }

    #[test]
    fn a_selection_made_in_advance_gives_what_each_gives() {
        let mut t = SlotTable::default();
        for k in [&b"score_pl1"[..], b"score_pl2", b"other", b"score_a"] {
            t.intern(k);
        }
        let keep = |k: &[u8]| k.starts_with(b"score");
        let slots = t.selected_by(keep);
        let mut s = Store::new(Arc::new(t));
        let listed = |s: &Store, advance: bool| {
            let mut seen = Vec::new();
            let mut f = |k: &[u8], v: &[u8]| seen.push((k.to_vec(), v.to_vec()));
            if advance {
                s.each_of(&slots, &keep, &mut f);
            } else {
                s.each(&keep, &mut f);
            }
            seen
        };
        assert!(listed(&s, true).is_empty());
        s.set(b"score_pl2", None, b"2");
        s.set(b"other", None, b"x");
        s.set(b"score_b", None, b"run time");
        s.set(b"score_0", None, b"run time, first");
        s.set(b"score_zz", None, b"run time, last");
        s.set(b"score_a", None, b"a");
        let got = listed(&s, true);
        assert_eq!(got, listed(&s, false));
        let keys: Vec<&[u8]> = got.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(
            keys,
            [
                &b"score_0"[..],
                b"score_a",
                b"score_b",
                b"score_pl2",
                b"score_zz"
            ]
        );
    }
}
