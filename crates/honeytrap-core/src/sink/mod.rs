//! Where events go once the shipper thread has taken them off the queue.
//!
//! The shipper serializes each event once into a [`Record`] and hands batches of records to
//! every configured [`Sink`]. Sinks run only on the shipper thread: they may block on I/O (with
//! timeouts), never on the request path. A sink must not lose a record it accepted: it
//! delivers it, spools it to disk for a later retry, or dead-letters it with the reason.

pub mod audit_log;
pub mod dead_letter;
pub mod elasticsearch;
pub mod file;
pub mod misp;
pub mod spool;
pub mod units;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One event, serialized once by the shipper and shared by all sinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Unique event id (`event.id` in the document); Elasticsearch uses it as `_id` so that a
    /// replayed `create` cannot duplicate, MISP sinks to recognise what they already pushed.
    pub id: String,
    /// The ECS document as one line of JSON, without the trailing newline.
    pub json: String,
}

/// What a sink did with a batch or a tick; details go to its counters.
pub type SinkResult = Result<(), SinkError>;

/// A failure the shipper logs; the sink has already spooled or dead-lettered what it could.
#[derive(Debug)]
pub struct SinkError(pub String);

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SinkError {}

pub trait Sink: Send {
    /// Short name for logs and the status endpoint, e.g. `file`, `elasticsearch`, `misp`.
    fn name(&self) -> &str;

    /// Takes responsibility for `batch`: deliver, spool or dead-letter every record.
    fn send(&mut self, batch: &[Record]) -> SinkResult;

    /// Called regularly by the shipper even without new records: flush time-based batches,
    /// retry spooled records whose backoff has expired.
    fn tick(&mut self, now: Instant) -> SinkResult;

    /// Worker exit: deliver what can be delivered before `deadline`, spool the rest.
    fn flush(&mut self, deadline: Instant) -> SinkResult;

    /// `nginx -s reopen`: reopen files (log rotation).
    fn reopen(&mut self) -> SinkResult {
        Ok(())
    }

    /// The shipper has gone idle after a burst: drop buffers sized for it. Records a sink
    /// still owes (pending, backlog) are kept; only reusable working space goes.
    fn release_buffers(&mut self) {}

    /// Live counters, shared with the status endpoint.
    fn counters(&self) -> &SinkCounters;
}

/// Per-sink counters; atomics so the status endpoint can read them from another thread.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub shipped: AtomicU64,
    pub retried: AtomicU64,
    pub spooled: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub failed_requests: AtomicU64,
}

impl SinkCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> SinkCountersSnapshot {
        SinkCountersSnapshot {
            shipped: self.shipped.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            spooled: self.spooled.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            failed_requests: self.failed_requests.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCountersSnapshot {
    pub shipped: u64,
    pub retried: u64,
    pub spooled: u64,
    pub dead_lettered: u64,
    pub failed_requests: u64,
}
