//! The MISP sink: aggregates honeypot events into a few MISP events per day instead of one
//! per log line, and pushes them through the MISP REST API.
//!
//! ```text
//! honeytrap_misp <url> key_file=<path> [mode=daily|attacker] [distribution=0-5]
//!     [threat_level=auto|1-4] [analysis=0-2] [publish=on|off] [tags=a,b,...]
//!     [min_severity=0-7|emerg..debug] [flush=<duration>] [spool=<dir>] [spool_size=<size>]
//!     [timeout=<duration>] [ca=<pem>] [backoff=<duration>] [backoff_max=<duration>]
//!     [dead_letter=<path>] [batch=<records>]
//! ```
//!
//! See [`settings`]; severities are the events' syslog scale (0 emergency … 7 debug).
//!
//! # Flow
//!
//! `send` filters (less severe than `min_severity`: counted and dropped; unusable:
//! dead-lettered) and
//! buffers records. Every `flush` interval (and when the buffer holds many batches, and on
//! `flush(deadline)`) the sink delivers them in batches of `batch` records, oldest first:
//!
//! 1. aggregate the batch ([`aggregate`]): events, de-duplicated attributes, tags;
//! 2. per event: find it (`GET /events/view/<uuid>`, the UUID is derived from sensor, day and
//!    IP) or create it (`POST /events/add`); raise its threat level or add tags
//!    (`PUT /events/edit/<id>`) when the batch calls for it;
//! 3. add the new attributes (`POST /attributes/add/<id>`), one sighting per repeated
//!    indicator (`POST /sightings/add`); with `publish=on`, publish each changed event once
//!    per flush (`POST /events/publish/<id>`).
//!
//! # Failures
//!
//! While MISP is unreachable, overloaded (5xx, 429) or refuses the key (401/403), the batch
//! and everything after it go to the spool (`spool=<dir>`, bounded by `spool_size`; without a
//! spool directory, to memory with the same bound, lost at exit) and are retried after a
//! backoff that doubles from `backoff` to `backoff_max`, with jitter. A batch leaves the spool
//! only once MISP accepted its attributes and sightings. Replays are idempotent for events
//! and attributes (MISP refuses a known UUID; the sink looks the event up by UUID first);
//! sightings are at-least-once: a crash between a sighting and the spool commit repeats it.
//!
//! What MISP refuses for its content (a validation error on one attribute) is counted and
//! skipped: retrying would block the queue forever.

pub mod aggregate;
pub mod client;
pub mod ids;
pub mod settings;
pub mod tags;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::Date;

use self::aggregate::{
    aggregate, plan_work, AggregateConfig, AttributeSpec, EventPlan, KnownEvent, Observation,
};
use self::client::{edit_body, event_body, Added, MispClient, MispError};
use self::ids::Uuid;
pub use self::settings::{MispSettings, Mode, ThreatLevel, ThreatLevelSetting};
use super::dead_letter::DeadLetter;
use super::spool::Spool;
use super::{Record, Sink, SinkCounters, SinkError, SinkResult};

/// Events whose attributes the sink remembers; beyond this the cache starts over (a miss only
/// costs one `GET /events/view`).
const KNOWN_EVENTS_MAX: usize = 10_000;
/// Buffered batches that trigger a delivery before the flush interval.
const EARLY_FLUSH_BATCHES: usize = 4;

/// What the MISP sink did, beyond the shared [`SinkCounters`]. Shared with the status endpoint.
#[derive(Debug, Default)]
pub struct MispStats {
    /// Records below `min_severity`, not sent.
    pub skipped: AtomicU64,
    pub events_created: AtomicU64,
    /// Events found in MISP by UUID (after a restart or cache eviction).
    pub events_found: AtomicU64,
    pub events_edited: AtomicU64,
    pub attributes_added: AtomicU64,
    /// Attributes MISP already had (a replay).
    pub attributes_existing: AtomicU64,
    /// Values sighted (one request per event and batch).
    pub sightings: AtomicU64,
    pub publishes: AtomicU64,
    /// Requests MISP refused for their content, skipped.
    pub rejected: AtomicU64,
    /// Requests refused for the API key.
    pub auth_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MispStatsSnapshot {
    pub skipped: u64,
    pub events_created: u64,
    pub events_found: u64,
    pub events_edited: u64,
    pub attributes_added: u64,
    pub attributes_existing: u64,
    pub sightings: u64,
    pub publishes: u64,
    pub rejected: u64,
    pub auth_failures: u64,
    pub last_error: Option<String>,
}

impl MispStats {
    pub fn snapshot(&self) -> MispStatsSnapshot {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MispStatsSnapshot {
            skipped: l(&self.skipped),
            events_created: l(&self.events_created),
            events_found: l(&self.events_found),
            events_edited: l(&self.events_edited),
            attributes_added: l(&self.attributes_added),
            attributes_existing: l(&self.attributes_existing),
            sightings: l(&self.sightings),
            publishes: l(&self.publishes),
            rejected: l(&self.rejected),
            auth_failures: l(&self.auth_failures),
            last_error: self.last_error(),
        }
    }

    /// The latest failure, for the status endpoint (never contains the key).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|g| g.clone()).unwrap_or(None)
    }

    fn set_error(&self, msg: String) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(msg);
        }
    }
}

fn bump(counter: &AtomicU64, n: u64) {
    SinkCounters::add(counter, n);
}

/// Records waiting for a retry: the spool directory, or memory without one.
enum Backlog {
    Disk(Spool),
    Memory {
        records: VecDeque<Record>,
        bytes: u64,
        max: u64,
    },
}

fn record_size(r: &Record) -> u64 {
    (r.id.len() + r.json.len()) as u64
}

impl Backlog {
    fn push(&mut self, batch: &[Record]) -> io::Result<usize> {
        match self {
            Backlog::Disk(spool) => spool.push(batch),
            Backlog::Memory {
                records,
                bytes,
                max,
            } => {
                let mut n = 0;
                for r in batch {
                    if *bytes + record_size(r) > *max {
                        break;
                    }
                    *bytes += record_size(r);
                    records.push_back(r.clone());
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    fn peek(&mut self, max: usize) -> io::Result<Vec<Record>> {
        match self {
            Backlog::Disk(spool) => spool.peek(max),
            Backlog::Memory { records, .. } => Ok(records.iter().take(max).cloned().collect()),
        }
    }

    fn commit(&mut self, n: usize) -> io::Result<()> {
        match self {
            Backlog::Disk(spool) => spool.commit(n),
            Backlog::Memory { records, bytes, .. } => {
                for r in records.drain(..n.min(records.len())) {
                    *bytes -= record_size(&r);
                }
                Ok(())
            }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Backlog::Disk(spool) => spool.len(),
            Backlog::Memory { records, .. } => records.len() as u64,
        }
    }
}

/// What an interrupted attempt at a batch already did, so that retrying the same batch
/// neither re-sends it nor mistakes its own attributes for repeats.
struct Progress {
    /// Length, first and last record id of the batch.
    batch: (usize, String, String),
    added: HashSet<Uuid>,
    sighted: HashSet<Uuid>,
}

fn fingerprint(records: &[Record]) -> (usize, String, String) {
    let first = records.first().map(|r| r.id.clone()).unwrap_or_default();
    let last = records.last().map(|r| r.id.clone()).unwrap_or_default();
    (records.len(), first, last)
}

pub struct MispSink {
    settings: MispSettings,
    cfg: AggregateConfig,
    client: MispClient,
    counters: Arc<SinkCounters>,
    stats: Arc<MispStats>,
    dead: DeadLetter,
    /// Accepted records not yet attempted, oldest first.
    fresh: Vec<Record>,
    backlog: Backlog,
    /// What MISP holds, by event UUID, with the event's day for eviction.
    known: HashMap<Uuid, (Date, KnownEvent)>,
    progress: Option<Progress>,
    /// MISP ids of events changed since their last publication (`publish=on`).
    to_publish: Vec<String>,
    next_flush: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl fmt::Debug for MispSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MispSink")
            .field("settings", &self.settings)
            .field("fresh", &self.fresh.len())
            .field("backlog", &self.backlog.len())
            .field("known_events", &self.known.len())
            .field("retry_at", &self.retry_at)
            .finish_non_exhaustive()
    }
}

impl MispSink {
    /// Opens the spool (recovering what a previous run left there) and prepares the client.
    /// No request is made before the first delivery.
    pub fn new(settings: MispSettings) -> Result<MispSink, String> {
        let backlog = match &settings.spool {
            Some(dir) => Backlog::Disk(Spool::open(dir, settings.spool_size).map_err(|e| {
                format!("honeytrap_misp: cannot open spool {}: {e}", dir.display())
            })?),
            None => Backlog::Memory {
                records: VecDeque::new(),
                bytes: 0,
                max: settings.spool_size,
            },
        };
        let dead = match &settings.dead_letter {
            Some(path) => DeadLetter::open(path).map_err(|e| {
                format!(
                    "honeytrap_misp: cannot open dead_letter {}: {e}",
                    path.display()
                )
            })?,
            None => DeadLetter::discard(),
        };
        Ok(MispSink {
            cfg: AggregateConfig::from(&settings),
            client: MispClient::new(&settings),
            counters: Arc::new(SinkCounters::default()),
            stats: Arc::new(MispStats::default()),
            dead,
            fresh: Vec::new(),
            backlog,
            known: HashMap::new(),
            progress: None,
            to_publish: Vec::new(),
            next_flush: None,
            failures: 0,
            retry_at: None,
            settings,
        })
    }

    pub fn settings(&self) -> &MispSettings {
        &self.settings
    }

    pub fn stats(&self) -> Arc<MispStats> {
        Arc::clone(&self.stats)
    }

    /// Shared counters, for a status endpoint on another thread.
    pub fn shared_counters(&self) -> Arc<SinkCounters> {
        Arc::clone(&self.counters)
    }

    /// Records accepted and not yet delivered: buffered plus spooled.
    pub fn pending(&self) -> u64 {
        self.fresh.len() as u64 + self.backlog.len()
    }

    /// Records waiting in the spool (or the in-memory backlog).
    pub fn spooled(&self) -> u64 {
        self.backlog.len()
    }

    /// When the next attempt after a failure is due, if MISP is failing.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    fn in_backoff(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| now < t)
    }

    fn note_error(&self, msg: String) {
        self.stats.set_error(msg);
    }

    /// Gives up on `records` (counted, and written to `dead_letter=` when set); returns the
    /// message for the shipper's log.
    fn dead_letter(&mut self, reason: &str, records: &[Record]) -> String {
        let example = records.first().map(|r| r.id.as_str()).unwrap_or("");
        let mut msg = format!(
            "misp: {} records dead-lettered ({reason}), e.g. {example}",
            records.len()
        );
        if let Err(e) = self.dead.write(reason, records, &self.counters) {
            msg.push_str(&format!(" (dead_letter file: {e})"));
        } else if self.dead.path().is_none() {
            msg.push_str("; set dead_letter= to keep them");
        }
        self.note_error(msg.clone());
        msg
    }

    /// Moves the buffered records to the backlog; what does not fit is dead-lettered.
    fn spool_fresh(&mut self) -> SinkResult {
        if self.fresh.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.fresh);
        let stored = match self.backlog.push(&records) {
            Ok(n) => n,
            Err(e) => {
                return Err(SinkError(
                    self.dead_letter(&format!("spool write failed: {e}"), &records),
                ))
            }
        };
        bump(&self.counters.spooled, stored as u64);
        if stored < records.len() {
            let reason = format!("spool full (spool_size={})", self.settings.spool_size);
            return Err(SinkError(self.dead_letter(&reason, &records[stored..])));
        }
        Ok(())
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let min = self.settings.backoff;
        let max = self.settings.backoff_max;
        let doubled = min.saturating_mul(1u32 << self.failures.saturating_sub(1).min(20));
        let base = doubled.min(max);
        // Jitter in [base/2, base]: sensors restarted together do not retry together.
        let half = base / 2;
        let jitter = Duration::from_nanos(fastrand::u64(
            0..=half.as_nanos().min(u128::from(u64::MAX)) as u64,
        ));
        self.retry_at = Some(now + half + jitter);
    }

    /// Delivers backlog then buffered records, batch by batch, until done, a failure, or
    /// `deadline`.
    fn pump(&mut self, now: Instant, deadline: Option<Instant>) -> SinkResult {
        if self.in_backoff(now) {
            return self.spool_fresh();
        }
        let batch = self.settings.batch;
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            let records = match self.backlog.peek(batch) {
                Ok(r) => r,
                Err(e) => {
                    // Not every tick: a disk error rarely clears in milliseconds.
                    self.schedule_retry(now);
                    let msg = format!("misp: cannot read spool: {e}");
                    self.note_error(msg.clone());
                    return Err(SinkError(msg));
                }
            };
            if records.is_empty() {
                break;
            }
            bump(&self.counters.retried, records.len() as u64);
            match self.deliver(&records, deadline) {
                Ok(delivered) => {
                    if let Err(e) = self.backlog.commit(records.len()) {
                        // Delivered but still spooled: replayed later, harmlessly (UUIDs).
                        self.schedule_retry(now);
                        let msg = format!("misp: cannot commit spool: {e}");
                        self.note_error(msg.clone());
                        return Err(SinkError(msg));
                    }
                    bump(&self.counters.shipped, delivered);
                }
                Err(e) => return self.failed(e, now),
            }
        }
        while !self.fresh.is_empty() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            let n = batch.min(self.fresh.len());
            let records: Vec<Record> = self.fresh[..n].to_vec();
            match self.deliver(&records, deadline) {
                Ok(delivered) => {
                    self.fresh.drain(..n);
                    bump(&self.counters.shipped, delivered);
                }
                Err(e) => return self.failed(e, now),
            }
        }
        self.failures = 0;
        self.retry_at = None;
        self.publish_changed(deadline);
        Ok(())
    }

    /// Publishes each changed event once per flush, not once per batch: publishing starts
    /// MISP's sync and notification jobs. A failure keeps the event for the next flush.
    fn publish_changed(&mut self, deadline: Option<Instant>) {
        while let Some(id) = self.to_publish.first().cloned() {
            match self.client.publish(&id, deadline) {
                Ok(()) => bump(&self.stats.publishes, 1),
                Err(e) => {
                    bump(&self.counters.failed_requests, 1);
                    self.note_error(format!("misp: publish of event {id}: {e}"));
                    if e.keeps_records() {
                        return;
                    }
                    bump(&self.stats.rejected, 1);
                }
            }
            self.to_publish.remove(0);
        }
    }

    fn failed(&mut self, e: MispError, now: Instant) -> SinkResult {
        if matches!(e, MispError::Auth { .. }) {
            bump(&self.stats.auth_failures, 1);
        }
        self.schedule_retry(now);
        let held = self.fresh.len() as u64 + self.backlog.len();
        let msg = format!("misp: {e}; {held} records kept for retry");
        self.note_error(msg.clone());
        let spooled = self.spool_fresh();
        spooled.and(Err(SinkError(msg)))
    }

    /// Sends one batch. Returns how many records it delivered (the rest were skipped or
    /// dead-lettered); an error means the whole batch must be kept.
    fn deliver(&mut self, records: &[Record], deadline: Option<Instant>) -> Result<u64, MispError> {
        let agg = aggregate(&self.cfg, records);
        let fp = fingerprint(records);
        if self.progress.as_ref().map(|p| &p.batch) != Some(&fp) {
            self.progress = Some(Progress {
                batch: fp,
                added: HashSet::new(),
                sighted: HashSet::new(),
            });
        }
        let mut delivered = 0u64;
        for plan in &agg.events {
            match self.deliver_event(plan, deadline) {
                Ok(()) => delivered += plan.records,
                Err(e) if e.keeps_records() => return Err(e),
                Err(e) => {
                    // MISP will never take this event: do not block the queue behind it.
                    let refused: Vec<Record> = plan
                        .record_indices
                        .iter()
                        .map(|&i| records[i].clone())
                        .collect();
                    self.dead_letter(&format!("MISP refused event {}: {e}", plan.info), &refused);
                }
            }
        }
        // Only reached when the batch needs no retry (from a spool written under other settings).
        bump(&self.stats.skipped, agg.skipped);
        for (i, why) in &agg.invalid {
            self.dead_letter(why, std::slice::from_ref(&records[*i]));
        }
        self.progress = None;
        Ok(delivered)
    }

    /// Finds the event in MISP by UUID, or creates it.
    fn ensure_event(
        &mut self,
        plan: &EventPlan,
        deadline: Option<Instant>,
    ) -> Result<(), MispError> {
        if self.known.contains_key(&plan.uuid) {
            return Ok(());
        }
        let known = match self
            .client
            .view_event(&plan.uuid, deadline)
            .inspect_err(|e| self.count_failure(e))?
        {
            Some(found) => {
                bump(&self.stats.events_found, 1);
                found
            }
            None => match self
                .client
                .add_event(&event_body(plan, &self.settings), deadline)
            {
                Ok(mut created) => {
                    bump(&self.stats.events_created, 1);
                    // Sent with all the plan's tags; do not edit them in again if MISP's
                    // answer omits them.
                    created.tags.extend(plan.tags.iter().cloned());
                    created.threat_level = plan.threat_level(self.settings.threat_level);
                    created
                }
                Err(refused @ MispError::Rejected { .. }) => {
                    // Perhaps created in between (the UUID is taken): then use it.
                    self.count_failure(&refused);
                    self.client
                        .view_event(&plan.uuid, deadline)
                        .inspect_err(|e| self.count_failure(e))?
                        .ok_or(refused)?
                }
                Err(e) => {
                    self.count_failure(&e);
                    return Err(e);
                }
            },
        };
        self.remember_event(plan, known);
        Ok(())
    }

    fn remember_event(&mut self, plan: &EventPlan, known: KnownEvent) {
        let date = plan.key.date;
        if self.known.len() >= KNOWN_EVENTS_MAX {
            self.known.clear();
        }
        // Older days are rarely written again; if they are, a look-up brings them back.
        if let Some(cutoff) = date.previous_day().and_then(|d| d.previous_day()) {
            self.known.retain(|_, (d, _)| *d >= cutoff);
        }
        self.known.insert(plan.uuid, (date, known));
    }

    fn count_failure(&self, e: &MispError) {
        bump(&self.counters.failed_requests, 1);
        if matches!(e, MispError::Rejected { .. }) {
            bump(&self.stats.rejected, 1);
        }
    }

    fn deliver_event(
        &mut self,
        plan: &EventPlan,
        deadline: Option<Instant>,
    ) -> Result<(), MispError> {
        self.ensure_event(plan, deadline)?;
        let setting = self.settings.threat_level;
        let publish = self.settings.publish;
        let progress = self.progress.as_mut().expect("deliver sets progress");
        let (_, known) = self
            .known
            .get_mut(&plan.uuid)
            .expect("ensure_event remembers the event");
        let work = plan_work(plan, known, &progress.added, setting);
        let event_id = known.id.clone();
        let mut changed = false;

        if work.threat_level.is_some() || !work.new_tags.is_empty() {
            let body = edit_body(work.threat_level, &work.new_tags);
            match self.client.edit_event(&event_id, &body, deadline) {
                Ok(()) => bump(&self.stats.events_edited, 1),
                Err(e) if e.keeps_records() => {
                    bump(&self.counters.failed_requests, 1);
                    return Err(e);
                }
                Err(e) => {
                    bump(&self.counters.failed_requests, 1);
                    bump(&self.stats.rejected, 1);
                    self.stats.set_error(format!("misp: {e}"));
                }
            }
            // Remembered even when refused, so that a refusal is not retried every batch.
            if let Some(level) = work.threat_level {
                known.threat_level = level;
            }
            known.tags.extend(work.new_tags.iter().cloned());
            changed = true;
        }

        let mut sighted: Vec<&AttributeSpec> = work.sightings.clone();
        let mut sighting_time = work.sighting_time;
        for spec in &work.add {
            match self.client.add_attribute(&event_id, spec, deadline) {
                Ok(Added::Created) => {
                    bump(&self.stats.attributes_added, 1);
                    known.remember(spec);
                    progress.added.insert(spec.uuid);
                    changed = true;
                }
                Ok(Added::AlreadyThere) => {
                    // It was in MISP before this batch: this occurrence is a repeat.
                    bump(&self.stats.attributes_existing, 1);
                    known.remember(spec);
                    if !sighted.iter().any(|a| a.uuid == spec.uuid) {
                        sighted.push(spec);
                        let last = plan
                            .attributes
                            .iter()
                            .find(|a| a.spec.uuid == spec.uuid)
                            .map_or(0, |a| a.last_seen);
                        sighting_time = sighting_time.max(last);
                    }
                }
                Err(e) if e.keeps_records() => {
                    bump(&self.counters.failed_requests, 1);
                    return Err(e);
                }
                Err(MispError::Rejected { status: 404, .. }) => {
                    // The event was deleted in MISP behind our back: forget it, and retry
                    // the batch later, which looks it up (or re-creates it) by UUID.
                    bump(&self.counters.failed_requests, 1);
                    self.known.remove(&plan.uuid);
                    return Err(MispError::Unavailable {
                        status: 404,
                        message: format!("event {event_id} ({}) is gone from MISP", plan.info),
                    });
                }
                Err(e) => {
                    bump(&self.counters.failed_requests, 1);
                    bump(&self.stats.rejected, 1);
                    // Neither retried nor sighted from now on.
                    known.refused.insert(spec.uuid);
                    self.stats.set_error(format!(
                        "misp: attribute {} {:?} skipped: {e}",
                        spec.kind, spec.value
                    ));
                }
            }
        }
        let sightings: Vec<&str> = sighted
            .iter()
            .filter(|a| !known.refused.contains(&a.uuid))
            .map(|a| a.value.as_str())
            .collect();

        if !sightings.is_empty() && !progress.sighted.contains(&plan.uuid) {
            match self
                .client
                .add_sightings(&event_id, &sightings, sighting_time, deadline)
            {
                Ok(()) => bump(&self.stats.sightings, sightings.len() as u64),
                Err(e) if e.keeps_records() => {
                    bump(&self.counters.failed_requests, 1);
                    return Err(e);
                }
                Err(e) => {
                    // Best effort: a 404 means none of the values is in the event any more
                    // (deleted behind our back?). Forget the event so that the next batch looks
                    // it up again, but do not hold the queue for a sighting.
                    bump(&self.counters.failed_requests, 1);
                    bump(&self.stats.rejected, 1);
                    self.stats
                        .set_error(format!("misp: sightings skipped: {e}"));
                    if matches!(e, MispError::Rejected { status: 404, .. }) {
                        self.known.remove(&plan.uuid);
                    }
                }
            }
            progress.sighted.insert(plan.uuid);
        }

        if publish && changed && !self.to_publish.contains(&event_id) {
            self.to_publish.push(event_id);
        }
        Ok(())
    }
}

impl Sink for MispSink {
    fn name(&self) -> &str {
        "misp"
    }

    fn send(&mut self, batch: &[Record]) -> SinkResult {
        let mut result = Ok(());
        for record in batch {
            let parsed = Observation::parse(record).and_then(|obs| {
                aggregate::EventKey::of(self.settings.mode, &obs)?;
                Ok(obs)
            });
            match parsed {
                Ok(obs) if obs.below(self.settings.min_severity) => bump(&self.stats.skipped, 1),
                Ok(_) => self.fresh.push(record.clone()),
                Err(why) => {
                    let msg = self.dead_letter(
                        &format!("not usable for MISP: {why}"),
                        std::slice::from_ref(record),
                    );
                    result = Err(SinkError(msg));
                }
            }
        }
        let now = Instant::now();
        if self.next_flush.is_none() {
            self.next_flush = Some(now + self.settings.flush);
        }
        if self.fresh.len() >= self.settings.batch * EARLY_FLUSH_BATCHES {
            result = result.and(self.pump(now, None));
        }
        result
    }

    fn tick(&mut self, now: Instant) -> SinkResult {
        let flush_due = self.next_flush.is_some_and(|t| now >= t);
        let retry_due = self.retry_at.is_some_and(|t| now >= t)
            || (self.retry_at.is_none() && self.backlog.len() > 0);
        if flush_due {
            self.next_flush = Some(now + self.settings.flush);
        }
        if flush_due || retry_due {
            return self.pump(now, None);
        }
        Ok(())
    }

    fn flush(&mut self, deadline: Instant) -> SinkResult {
        let now = Instant::now();
        let mut result = if now < deadline {
            self.pump(now, Some(deadline))
        } else {
            Ok(())
        };
        // Out of time or MISP failing: keep the rest for the next run.
        result = result.and(self.spool_fresh());
        if let Backlog::Memory { records, bytes, .. } = &mut self.backlog {
            if !records.is_empty() {
                let left: Vec<Record> = records.drain(..).collect();
                *bytes = 0;
                let msg =
                    self.dead_letter("not delivered before exit and no spool= configured", &left);
                result = result.and(Err(SinkError(msg)));
            }
        }
        result
    }

    fn reopen(&mut self) -> SinkResult {
        self.dead
            .reopen()
            .map_err(|e| SinkError(format!("misp: cannot reopen dead_letter: {e}")))
    }

    fn counters(&self) -> &SinkCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &[&str]) -> (tempfile::TempDir, MispSettings) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k3y-never-shown").unwrap();
        let kf = format!("key_file={}", key.display());
        let mut args = vec!["http://127.0.0.1:9", kf.as_str()];
        args.extend_from_slice(extra);
        let s = MispSettings::parse(&args).unwrap();
        (dir, s)
    }

    fn rec(i: usize, severity: u32) -> Record {
        Record {
            id: format!("r{i}"),
            json: serde_json::json!({
                "@timestamp": "2026-05-01T10:00:00Z",
                "event": {"id": format!("r{i}"), "action": "decoy-hit", "severity": severity},
                "source": {"ip": "198.51.100.1"},
                "observer": {"name": "s"},
            })
            .to_string(),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let (_d, s) = settings(&["backoff=100ms", "backoff_max=1s"]);
        let mut sink = MispSink::new(s).unwrap();
        let now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..8 {
            sink.schedule_retry(now);
            delays.push(sink.retry_at.unwrap() - now);
        }
        assert!(
            delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100),
            "{delays:?}"
        );
        assert!(
            delays[1] >= Duration::from_millis(100) && delays[1] <= Duration::from_millis(200),
            "{delays:?}"
        );
        for d in &delays[4..] {
            assert!(
                *d >= Duration::from_millis(500) && *d <= Duration::from_secs(1),
                "{delays:?}"
            );
        }
    }

    #[test]
    fn send_filters_and_buffers_without_network() {
        let (_d, s) = settings(&["min_severity=warning"]);
        let mut sink = MispSink::new(s).unwrap();
        let batch = vec![
            rec(1, 5),
            rec(2, 4),
            Record {
                id: "bad".into(),
                json: "nope".into(),
            },
        ];
        let err = sink.send(&batch).unwrap_err();
        assert!(err.0.contains("bad"), "{err}");
        assert_eq!(sink.pending(), 1);
        assert_eq!(sink.stats().snapshot().skipped, 1);
        assert_eq!(sink.counters().snapshot().dead_lettered, 1);
        assert_eq!(sink.name(), "misp");
    }

    #[test]
    fn unreachable_misp_keeps_records_in_memory_until_exit() {
        let (_d, s) = settings(&["timeout=500ms", "backoff=1h", "backoff_max=1h"]);
        let mut sink = MispSink::new(s).unwrap();
        sink.send(&[rec(1, 4), rec(2, 4)]).unwrap();
        let err = sink
            .tick(Instant::now() + Duration::from_secs(31))
            .unwrap_err();
        assert!(err.0.contains("unreachable"), "{err}");
        assert!(err.0.contains("2 records kept"), "{err}");
        assert_eq!(sink.spooled(), 2);
        assert_eq!(sink.counters().snapshot().spooled, 2);
        assert!(sink.retry_at().is_some());
        // In backoff: no new attempt, new records join the backlog at the next flush.
        sink.send(&[rec(3, 4)]).unwrap();
        sink.tick(Instant::now() + Duration::from_secs(62)).unwrap();
        assert_eq!(sink.spooled(), 3);
        let err = sink
            .flush(Instant::now() + Duration::from_millis(10))
            .unwrap_err();
        assert!(err.0.contains("no spool= configured"), "{err}");
        assert_eq!(sink.counters().snapshot().dead_lettered, 3);
        let debug = format!("{sink:?}");
        assert!(!debug.contains("k3y-never-shown"), "{debug}");
        assert!(!sink
            .stats()
            .last_error()
            .unwrap()
            .contains("k3y-never-shown"));
    }

    #[test]
    fn memory_backlog_is_bounded() {
        let mut b = Backlog::Memory {
            records: VecDeque::new(),
            bytes: 0,
            max: 100,
        };
        let r = Record {
            id: "i".into(),
            json: "x".repeat(39),
        };
        assert_eq!(b.push(&[r.clone(), r.clone(), r.clone()]).unwrap(), 2);
        assert_eq!(b.len(), 2);
        assert_eq!(b.peek(10).unwrap().len(), 2);
        b.commit(1).unwrap();
        assert_eq!(b.push(std::slice::from_ref(&r)).unwrap(), 1);
        b.commit(5).unwrap();
        assert_eq!(b.len(), 0);
    }
}
