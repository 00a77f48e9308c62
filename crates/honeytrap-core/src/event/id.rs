//! Event ids: 128 random bits, unique across threads and nginx worker processes; or, from an
//! [`IdSequence`] (an nginx worker's), 64 random bits then a counter.
//!
//! Elasticsearch uses the id as `_id` with `create`, so two events sharing an id would make
//! the second one vanish silently. fastrand's thread-local generator is copied by `fork()`:
//! if the master process ever drew from it, every worker would produce the same sequence.
//! So each thread's generator remembers the pid it was seeded in and reseeds after a fork.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The `event.id` of an event; printed as 32 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub u128);

impl EventId {
    /// A fresh random id.
    pub fn random() -> EventId {
        thread_local! {
            static GENERATOR: RefCell<Generator> = RefCell::new(Generator::new(std::process::id()));
        }
        let pid = std::process::id();
        EventId(GENERATOR.with(|g| g.borrow_mut().next(pid)))
    }

    /// The 32 hex digits, without `fmt`'s padding machinery: every shipped event prints its id.
    pub fn hex(self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (at, digit) in out.iter_mut().enumerate() {
            *digit = DIGITS[((self.0 >> (124 - 4 * at)) & 0xf) as usize];
        }
        out
    }

    /// The 32 hex digits as a `String`, without `fmt`.
    pub fn hex_string(self) -> String {
        self.hex().into_iter().map(char::from).collect()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

/// Ids without a system call each: a random 64-bit prefix drawn once (in the process that
/// uses it: make one after `fork()`), then a counter. [`EventId::random`] asks the kernel
/// for the pid on every call to notice a fork; a worker that names every request (SecLang's
/// UNIQUE_ID) uses this instead.
#[derive(Debug)]
pub struct IdSequence {
    prefix: u64,
    next: AtomicU64,
}

impl IdSequence {
    pub fn new() -> IdSequence {
        IdSequence {
            prefix: EventId::random().0 as u64,
            next: AtomicU64::new(0),
        }
    }

    pub fn next_id(&self) -> EventId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        EventId(u128::from(self.prefix) << 64 | u128::from(n))
    }
}

impl Default for IdSequence {
    fn default() -> IdSequence {
        IdSequence::new()
    }
}

#[derive(Clone)]
struct Generator {
    pid: u32,
    rng: fastrand::Rng,
}

impl Generator {
    fn new(pid: u32) -> Generator {
        Generator {
            pid,
            rng: fastrand::Rng::with_seed(seed(pid)),
        }
    }

    fn next(&mut self, pid: u32) -> u128 {
        if pid != self.pid {
            *self = Generator::new(pid);
        }
        self.rng.u128(..)
    }
}

/// Distinct pids give distinct seeds even when the rest is identical (a copied parent state,
/// the same clock reading): the pid owns the high 32 bits, the sub-second clock the low 30.
fn seed(pid: u32) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    fastrand::u64(..) ^ (u64::from(pid) << 32) ^ u64::from(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_sequence_counts_under_its_own_prefix() {
        let (a, b) = (IdSequence::new(), IdSequence::new());
        let ids: Vec<EventId> = (0..1000).map(|_| a.next_id()).collect();
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);
        assert!(ids.iter().all(|id| id.0 >> 64 == ids[0].0 >> 64));
        assert_eq!(ids[999].0 - ids[0].0, 999, "a counter");
        assert_ne!(
            a.next_id().0 >> 64,
            b.next_id().0 >> 64,
            "each sequence its prefix"
        );
    }

    #[test]
    fn hex_string_is_the_printed_id() {
        for _ in 0..100 {
            let id = EventId::random();
            assert_eq!(id.hex_string(), id.to_string());
        }
        assert_eq!(EventId(0xab).hex_string(), format!("{:032x}", 0xab));
    }

    #[test]
    fn printed_as_32_lowercase_hex_digits() {
        for n in [
            0,
            1,
            0xabc,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            assert_eq!(EventId(n).to_string(), format!("{n:032x}"));
        }
    }

    #[test]
    fn ids_are_32_hex_digits() {
        for _ in 0..100 {
            let text = EventId::random().to_string();
            assert_eq!(text.len(), 32, "{text}");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{text}"
            );
        }
        assert_eq!(EventId(0xab).to_string(), format!("{}ab", "0".repeat(30)));
    }

    #[test]
    fn ids_are_unique_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..5000).map(|_| EventId::random()).collect::<Vec<_>>())
            })
            .collect();
        let mut seen = HashSet::new();
        for handle in handles {
            for id in handle.join().unwrap() {
                assert!(seen.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(seen.len(), 20_000);
    }

    #[test]
    fn a_forked_copy_reseeds_instead_of_repeating_the_parent() {
        // What fork() does to the thread-local generator: the child starts from a copy.
        let mut parent = Generator::new(100);
        let mut child = parent.clone();
        let from_parent: Vec<u128> = (0..8).map(|_| parent.next(100)).collect();
        let from_child: Vec<u128> = (0..8).map(|_| child.next(101)).collect();
        assert_eq!(child.pid, 101);
        for id in &from_child {
            assert!(
                !from_parent.contains(id),
                "child repeated the parent's id {id:x}"
            );
        }
        // Without a pid change the copy would have repeated the parent exactly.
        let mut same_pid_copy = Generator {
            pid: 100,
            rng: fastrand::Rng::with_seed(7),
        };
        let mut other = same_pid_copy.clone();
        assert_eq!(same_pid_copy.next(100), other.next(100));
    }
}
