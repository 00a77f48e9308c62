//! The hand-off from the request path to the shipper thread.
//!
//! A request must never wait for the shipper, so the queue is bounded and lock-free
//! ([`ArrayQueue`]): when it is full the event is dropped and counted, and the request goes on.
//!
//! Waking the shipper: it polls, parking with a timeout of a fraction of a second between
//! empty polls, so a quiet sensor ships within that delay and the push path does nothing extra.
//! Only once the queue holds [`WAKE_AT_MOST`] events (or is a quarter full, if smaller) does a
//! push also call [`Thread::unpark`] (an atomic swap, plus a futex wake if the shipper sleeps;
//! no lock), so bursts are shipped before they overflow without paying a system call on every
//! request.
//!
//! Memory: slots hold boxed events, so an idle queue costs a pointer per slot, not a whole
//! event; and the shipper is woken long before the queue is full, so a worker's memory under
//! a flood of events grows by what the shipper cannot keep up with, not by a tick's worth.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use crate::event::Event;

/// Waiting events that wake the shipper: at a few thousand events a second, a wake every few
/// milliseconds (where waiting for a quarter of the default 4096 held over a thousand events,
/// megabytes, in every worker).
pub const WAKE_AT_MOST: usize = 64;

/// Bounded multi-producer queue of events; share it with `Arc`.
pub struct EventQueue {
    events: ArrayQueue<Box<Event>>,
    queued: AtomicU64,
    dropped: AtomicU64,
    high_water: AtomicUsize,
    wake_at: usize,
    consumer: OnceLock<Thread>,
}

/// The queue's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Events accepted since start.
    pub queued: u64,
    /// Events refused because the queue was full.
    pub dropped: u64,
    /// Events waiting now.
    pub len: usize,
    /// Most events ever waiting at once: how far the shipper fell behind.
    pub high_water: usize,
    pub capacity: usize,
}

impl EventQueue {
    /// A queue holding up to `capacity` events (at least 1).
    pub fn new(capacity: usize) -> EventQueue {
        let capacity = capacity.max(1);
        EventQueue {
            events: ArrayQueue::new(capacity),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            high_water: AtomicUsize::new(0),
            wake_at: (capacity / 4).clamp(1, WAKE_AT_MOST),
            consumer: OnceLock::new(),
        }
    }

    /// Queues `event`, or drops and counts it when the queue is full. Never blocks.
    pub fn try_push(&self, event: Event) -> bool {
        if self.events.push(Box::new(event)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        let len = self.events.len();
        self.high_water.fetch_max(len, Ordering::Relaxed);
        if len >= self.wake_at {
            if let Some(consumer) = self.consumer.get() {
                consumer.unpark();
            }
        }
        true
    }

    pub fn pop(&self) -> Option<Event> {
        self.events.pop().map(|event| *event)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.events.capacity()
    }

    pub fn stats(&self) -> QueueStats {
        QueueStats {
            queued: self.queued.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            len: self.events.len(),
            high_water: self.high_water.load(Ordering::Relaxed),
            capacity: self.events.capacity(),
        }
    }

    /// Registers the calling thread as the one consumer that pushes may wake. A queue has one
    /// consumer for its lifetime: `false` if another thread registered first (it still works,
    /// by polling only).
    pub fn register_consumer(&self) -> bool {
        let me = std::thread::current();
        let registered = self.consumer.get_or_init(|| me.clone());
        registered.id() == me.id()
    }

    /// Sleeps the consumer until a push wakes it or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        if self.events.len() < self.wake_at {
            std::thread::park_timeout(timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Kind, Observer};
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Instant;

    fn event() -> Event {
        Event::new(Kind::Decoy, Arc::new(Observer::new("q")))
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let q = EventQueue::new(8);
        let accepted = (0..20).filter(|_| q.try_push(event())).count();
        assert_eq!(accepted, 8);
        assert_eq!(
            q.stats(),
            QueueStats {
                queued: 8,
                dropped: 12,
                len: 8,
                high_water: 8,
                capacity: 8
            }
        );
        // Space frees up as the consumer takes events.
        assert!(q.pop().is_some());
        assert!(q.try_push(event()));
        assert_eq!(q.stats().dropped, 12);
        assert_eq!(q.stats().queued, 9);
    }

    #[test]
    fn concurrent_producers_count_exactly() {
        let q = Arc::new(EventQueue::new(64));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || (0..500).filter(|_| q.try_push(event())).count() as u64)
            })
            .collect();
        let accepted: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let stats = q.stats();
        assert_eq!(accepted, 64, "nobody pops, so exactly the capacity fits");
        assert_eq!(stats.queued, accepted);
        assert_eq!(stats.dropped, 2000 - accepted);
    }

    #[test]
    fn events_come_out_in_order() {
        let q = EventQueue::new(16);
        let ids: Vec<_> = (0..10)
            .map(|_| {
                let e = event();
                let id = e.id;
                assert!(q.try_push(e));
                id
            })
            .collect();
        let out: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(out.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
        assert!(q.is_empty());
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 10);
    }

    #[test]
    fn a_few_dozen_events_wake_the_consumer_of_a_big_queue() {
        let q = Arc::new(EventQueue::new(4096));
        let (registered, is_registered) = std::sync::mpsc::channel();
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || {
                assert!(q.register_consumer());
                registered.send(()).unwrap();
                let start = Instant::now();
                while q.len() < WAKE_AT_MOST {
                    q.wait(Duration::from_secs(30));
                }
                start.elapsed()
            })
        };
        is_registered.recv().unwrap();
        for _ in 0..WAKE_AT_MOST {
            assert!(q.try_push(event()));
        }
        // Not woken, it would sleep its whole 30 s timeout.
        assert!(consumer.join().unwrap() < Duration::from_secs(10));
    }

    #[test]
    fn high_water_keeps_the_longest_backlog() {
        let q = EventQueue::new(16);
        for _ in 0..5 {
            q.try_push(event());
        }
        while q.pop().is_some() {}
        for _ in 0..3 {
            q.try_push(event());
        }
        let stats = q.stats();
        assert_eq!((stats.len, stats.high_water), (3, 5));
    }

    #[test]
    fn zero_capacity_becomes_one() {
        let q = EventQueue::new(0);
        assert_eq!(q.capacity(), 1);
        assert!(q.try_push(event()));
        assert!(!q.try_push(event()));
    }

    #[test]
    fn a_filling_queue_wakes_the_consumer_early() {
        let q = Arc::new(EventQueue::new(8)); // wakes at 2 waiting events
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || {
                assert!(q.register_consumer());
                ready_tx.send(()).unwrap();
                let start = Instant::now();
                while q.len() < 2 {
                    q.wait(Duration::from_secs(10));
                }
                start.elapsed()
            })
        };
        ready_rx.recv().unwrap();
        assert!(!q.register_consumer(), "a second consumer is refused");
        std::thread::sleep(Duration::from_millis(20));
        q.try_push(event());
        q.try_push(event());
        let waited = consumer.join().unwrap();
        assert!(
            waited < Duration::from_secs(5),
            "consumer slept {waited:?}: the push did not wake it"
        );
    }
}
