//! The table of flagged clients that all nginx workers share.
//!
//! The memory is a fixed array of [`Slot`]s in a shared memory zone; the nginx layer hands it
//! here under the zone's lock. Open addressing with a short probe window: a lookup or a flag
//! touches at most [`WINDOW`] slots, and when the window is full the entry seen least recently
//! is evicted, so a full zone degrades into forgetting old attackers, never into a failure.

use std::net::IpAddr;

/// Slots probed from an address's home slot.
pub const WINDOW: usize = 16;

/// One remembered client; plain data, so it can live in memory shared by processes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// IPv4 addresses are stored IPv4-mapped.
    pub ip: [u8; 16],
    /// Unix seconds of the first bait touch; 0 marks an empty slot.
    pub flagged_at: u64,
    pub last_seen: u64,
    pub hits: u32,
    pub reserved: u32,
}

/// What the table knows about a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flagged {
    pub since: u64,
    pub hits: u32,
}

pub struct FlaggedTable<'a> {
    slots: &'a mut [Slot],
    ttl: u64,
}

impl<'a> FlaggedTable<'a> {
    /// `ttl`: seconds after the last touch an entry is forgotten (0: never).
    pub fn new(slots: &'a mut [Slot], ttl: u64) -> FlaggedTable<'a> {
        FlaggedTable { slots, ttl }
    }

    /// How many slots fit in `bytes`.
    pub fn capacity_for(bytes: usize) -> usize {
        bytes / std::mem::size_of::<Slot>()
    }

    fn live(&self, slot: &Slot, now: u64) -> bool {
        slot.flagged_at != 0 && (self.ttl == 0 || slot.last_seen.saturating_add(self.ttl) > now)
    }

    fn window(&self, key: &[u8; 16]) -> impl Iterator<Item = usize> {
        let n = self.slots.len();
        let home = if n == 0 {
            0
        } else {
            (fnv1a(key) % n as u64) as usize
        };
        (0..WINDOW.min(n)).map(move |i| (home + i) % n)
    }

    pub fn lookup(&self, ip: IpAddr, now: u64) -> Option<Flagged> {
        let key = key(ip);
        self.window(&key)
            .map(|i| &self.slots[i])
            .find(|s| s.ip == key && self.live(s, now))
            .map(|s| Flagged {
                since: s.flagged_at,
                hits: s.hits,
            })
    }

    /// Records a bait touch by `ip`; returns what was known before (None: newly flagged).
    pub fn flag(&mut self, ip: IpAddr, now: u64) -> Option<Flagged> {
        if self.slots.is_empty() {
            return None;
        }
        let key = key(ip);
        let found = self
            .window(&key)
            .find(|&i| self.slots[i].ip == key && self.live(&self.slots[i], now));
        if let Some(i) = found {
            let slot = &mut self.slots[i];
            let before = Flagged {
                since: slot.flagged_at,
                hits: slot.hits,
            };
            slot.last_seen = now;
            slot.hits = slot.hits.saturating_add(1);
            return Some(before);
        }
        // A free or expired slot, else the one seen least recently.
        let victim = self
            .window(&key)
            .find(|&i| !self.live(&self.slots[i], now))
            .or_else(|| self.window(&key).min_by_key(|&i| self.slots[i].last_seen))
            .expect("a non-empty table has a window");
        self.slots[victim] = Slot {
            ip: key,
            flagged_at: now.max(1),
            last_seen: now,
            hits: 1,
            reserved: 0,
        };
        None
    }
}

fn key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Stable across processes and restarts (unlike std's randomly keyed hasher): every worker
/// must find an address in the same slot.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn flag_then_lookup_counts_hits() {
        let mut slots = vec![Slot::default(); 64];
        let mut table = FlaggedTable::new(&mut slots, 3600);
        assert_eq!(table.lookup(ip("192.0.2.1"), 100), None);
        assert_eq!(table.flag(ip("192.0.2.1"), 100), None);
        assert_eq!(
            table.flag(ip("192.0.2.1"), 150),
            Some(Flagged {
                since: 100,
                hits: 1
            })
        );
        assert_eq!(
            table.lookup(ip("192.0.2.1"), 200),
            Some(Flagged {
                since: 100,
                hits: 2
            })
        );
        assert_eq!(table.lookup(ip("192.0.2.2"), 200), None);
        // The same address written as IPv4-mapped IPv6 is the same client.
        assert!(table.lookup(ip("::ffff:192.0.2.1"), 200).is_some());
    }

    #[test]
    fn entries_expire_after_the_ttl_since_last_touch() {
        let mut slots = vec![Slot::default(); 8];
        let mut table = FlaggedTable::new(&mut slots, 60);
        table.flag(ip("2001:db8::1"), 1000);
        table.flag(ip("2001:db8::1"), 1050);
        assert!(table.lookup(ip("2001:db8::1"), 1109).is_some());
        assert!(table.lookup(ip("2001:db8::1"), 1110).is_none());
        assert_eq!(
            table.flag(ip("2001:db8::1"), 1200),
            None,
            "expired: flagged anew"
        );
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_seen() {
        let mut slots = vec![Slot::default(); 4];
        let mut table = FlaggedTable::new(&mut slots, 0);
        for (i, last) in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
            .iter()
            .enumerate()
        {
            table.flag(ip(last), 10 + i as u64);
        }
        table.flag(ip("10.0.0.1"), 100); // seen again: now the most recent
        table.flag(ip("10.0.0.5"), 101); // evicts 10.0.0.2, the least recently seen
        assert!(table.lookup(ip("10.0.0.2"), 102).is_none());
        for kept in ["10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.5"] {
            assert!(table.lookup(ip(kept), 102).is_some(), "{kept}");
        }
    }

    #[test]
    fn many_clients_in_a_small_table_never_fail() {
        let mut slots = vec![Slot::default(); 100];
        let mut table = FlaggedTable::new(&mut slots, 0);
        for i in 0..10_000u32 {
            table.flag(IpAddr::from(i.to_be_bytes()), u64::from(i) + 1);
        }
        // The most recent clients are remembered.
        assert!(table
            .lookup(IpAddr::from(9_999u32.to_be_bytes()), 20_000)
            .is_some());
        let live = slots.iter().filter(|s| s.flagged_at != 0).count();
        assert_eq!(live, 100);
    }

    #[test]
    fn an_empty_table_is_harmless() {
        let mut slots: Vec<Slot> = Vec::new();
        let mut table = FlaggedTable::new(&mut slots, 0);
        assert_eq!(table.flag(ip("192.0.2.1"), 1), None);
        assert_eq!(table.lookup(ip("192.0.2.1"), 1), None);
    }

    #[test]
    fn slot_layout_is_fixed() {
        assert_eq!(std::mem::size_of::<Slot>(), 40);
        assert_eq!(FlaggedTable::capacity_for(4000), 100);
    }
}
