//! The shipper thread: takes events off the queue, serializes each once, hands them to sinks.
//!
//! One thread per nginx worker, named `honeytrap-ship`. All sink I/O happens here, never on the
//! request path. A sink that panics is logged and disabled; the others keep going. The thread
//! never calls nginx: it logs through the callback it was given.
//!
//! Memory after a burst: a flood of events leaves batch buffers sized for it, and freed heap
//! pages that glibc keeps resident (where the request path built the events, and where this
//! thread serialized them: its own malloc arena, unless the embedder makes threads share one). Once a whole
//! tick passes without an event after a burst (of at least
//! [`ShipperSettings::release_after_events`] events since the last release), the thread drops its buffers and the sinks'
//! (`Sink::release_buffers`) and runs [`ShipperSettings::return_freed_memory`]. Never during a
//! burst: then the buffers are reused.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::queue::{EventQueue, QueueStats};
use crate::sink::{Record, Sink, SinkCounters, SinkCountersSnapshot, SinkResult};

/// How long [`ShipperHandle::shutdown`] waits beyond its deadline for the thread to end.
const JOIN_MARGIN: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// Where the shipper thread logs; the nginx side writes to a file or stderr (not nginx's log
/// functions, which are not safe off the worker's main thread).
pub type LogFn = Box<dyn Fn(Level, &str) + Send>;

pub struct ShipperSettings {
    pub queue: Arc<EventQueue>,
    pub sinks: Vec<Box<dyn Sink>>,
    pub log: LogFn,
    /// Most events taken off the queue and handed to sinks at once.
    pub batch_size: usize,
    /// How often sinks get a `tick`, and the longest an event waits in a quiet queue.
    pub tick_interval: Duration,
    /// How often the counters line is logged (only when something changed); zero: only at exit.
    pub stats_interval: Duration,
    /// A failing sink's errors are logged at most once per interval, with a count of the rest.
    pub error_log_interval: Duration,
    /// Run on the shipper thread once it is idle after a burst, after the buffers were dropped:
    /// the module hands freed heap pages back to the kernel there (`malloc_trim`).
    pub return_freed_memory: Option<Box<dyn FnMut() + Send>>,
    /// Fewest events shipped since the last release that make an idle tick release memory:
    /// a trickle of events (a sensor's usual traffic) leaves little to return, and each
    /// `malloc_trim` holds the allocator's lock that requests need.
    pub release_after_events: u64,
}

impl ShipperSettings {
    pub fn new(queue: Arc<EventQueue>, sinks: Vec<Box<dyn Sink>>, log: LogFn) -> ShipperSettings {
        ShipperSettings {
            queue,
            sinks,
            log,
            batch_size: 256,
            tick_interval: Duration::from_millis(200),
            stats_interval: Duration::from_secs(60),
            error_log_interval: Duration::from_secs(10),
            return_freed_memory: None,
            release_after_events: 64,
        }
    }
}

/// Counters of the whole pipeline at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipperStats {
    pub queue: QueueStats,
    /// Reopen requests carried out.
    pub reopens: u64,
    pub sinks: Vec<SinkStats>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    /// The sink panicked and gets nothing more.
    pub disabled: bool,
    /// Records not handed to the sink because it was disabled.
    pub skipped: u64,
    pub counters: SinkCountersSnapshot,
}

impl ShipperStats {
    /// `honeytrap: shipped file=12 elasticsearch=10; ... queued=22 dropped=0`, for the log.
    pub fn log_line(&self) -> String {
        let mut line = String::from("honeytrap:");
        type Column = (&'static str, fn(&SinkCountersSnapshot) -> u64);
        let columns: [Column; 5] = [
            ("shipped", |c| c.shipped),
            ("retried", |c| c.retried),
            ("spooled", |c| c.spooled),
            ("dead_lettered", |c| c.dead_lettered),
            ("failed_requests", |c| c.failed_requests),
        ];
        for (label, value) in columns {
            line.push(' ');
            line.push_str(label);
            for sink in &self.sinks {
                line.push_str(&format!(" {}={}", sink.name, value(&sink.counters)));
            }
            line.push(';');
        }
        for sink in self.sinks.iter().filter(|s| s.disabled) {
            line.push_str(&format!(
                " disabled {} skipped={};",
                sink.name, sink.skipped
            ));
        }
        line.push_str(&format!(
            " queued={} dropped={}",
            self.queue.queued, self.queue.dropped
        ));
        line
    }

    /// For the status endpoint.
    pub fn to_json(&self) -> String {
        let sinks: Vec<_> = self
            .sinks
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "disabled": s.disabled,
                    "skipped": s.skipped,
                    "shipped": s.counters.shipped,
                    "retried": s.counters.retried,
                    "spooled": s.counters.spooled,
                    "dead_lettered": s.counters.dead_lettered,
                    "failed_requests": s.counters.failed_requests,
                })
            })
            .collect();
        serde_json::json!({
            "queue": {
                "queued": self.queue.queued,
                "dropped": self.queue.dropped,
                "len": self.queue.len,
                "high_water": self.queue.high_water,
                "capacity": self.queue.capacity,
            },
            "reopens": self.reopens,
            "sinks": sinks,
        })
        .to_string()
    }
}

/// Requests from the handle to the thread.
#[derive(Default)]
struct Control {
    reopen: AtomicBool,
    reopens: AtomicU64,
    /// Set once by shutdown: drain, flush by this instant, exit.
    deadline: OnceLock<Instant>,
}

/// What the handle can read about a sink while the thread owns it. Sinks keep their counters
/// inside themselves; the thread copies them here after every call.
struct SinkStatus {
    name: String,
    counters: SinkCounters,
    disabled: AtomicBool,
    skipped: AtomicU64,
}

impl SinkStatus {
    fn publish(&self, snapshot: SinkCountersSnapshot) {
        let c = &self.counters;
        c.shipped.store(snapshot.shipped, Ordering::Relaxed);
        c.retried.store(snapshot.retried, Ordering::Relaxed);
        c.spooled.store(snapshot.spooled, Ordering::Relaxed);
        c.dead_lettered
            .store(snapshot.dead_lettered, Ordering::Relaxed);
        c.failed_requests
            .store(snapshot.failed_requests, Ordering::Relaxed);
    }

    fn stats(&self) -> SinkStats {
        SinkStats {
            name: self.name.clone(),
            disabled: self.disabled.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            counters: self.counters.snapshot(),
        }
    }
}

struct Slot {
    sink: Box<dyn Sink>,
    status: Arc<SinkStatus>,
    last_error_log: Option<Instant>,
    errors_not_logged: u64,
}

impl Slot {
    /// Runs one sink call; a panic disables the sink, an error is logged (throttled unless
    /// `always_log`).
    fn call(
        &mut self,
        op: &str,
        log: &LogFn,
        error_log_interval: Duration,
        always_log: bool,
        f: impl FnOnce(&mut dyn Sink) -> SinkResult,
    ) {
        match catch_unwind(AssertUnwindSafe(|| f(self.sink.as_mut()))) {
            Ok(result) => {
                self.status.publish(self.sink.counters().snapshot());
                if let Err(e) = result {
                    self.log_error(op, &e.to_string(), log, error_log_interval, always_log);
                }
            }
            Err(payload) => {
                self.status.disabled.store(true, Ordering::Relaxed);
                let entry = format!("sink {} {op}", self.status.name);
                log(
                    Level::Error,
                    &format!(
                        "{}; sink disabled",
                        crate::panic::log_line(&entry, &*payload)
                    ),
                );
            }
        }
    }

    fn log_error(&mut self, op: &str, error: &str, log: &LogFn, interval: Duration, always: bool) {
        let now = Instant::now();
        if !always
            && self
                .last_error_log
                .is_some_and(|last| now.duration_since(last) < interval)
        {
            self.errors_not_logged += 1;
            return;
        }
        let mut line = format!("honeytrap: sink {} {op} failed: {error}", self.status.name);
        if self.errors_not_logged > 0 {
            line.push_str(&format!(
                " ({} more errors since the last one logged)",
                self.errors_not_logged
            ));
        }
        self.last_error_log = Some(now);
        self.errors_not_logged = 0;
        log(Level::Error, &line);
    }

    fn disabled(&self) -> bool {
        self.status.disabled.load(Ordering::Relaxed)
    }
}

/// The state the shipper thread runs on; start it with [`Shipper::spawn`].
pub struct Shipper {
    queue: Arc<EventQueue>,
    slots: Vec<Slot>,
    log: LogFn,
    batch_size: usize,
    tick_interval: Duration,
    stats_interval: Duration,
    error_log_interval: Duration,
    control: Arc<Control>,
    records: Vec<Record>,
    last_logged: Option<ShipperStats>,
    return_freed_memory: Option<Box<dyn FnMut() + Send>>,
    release_after_events: u64,
    /// Events shipped since the last tick.
    shipped_this_tick: u64,
    /// Events shipped since buffers were last released: the burst in progress.
    shipped_in_burst: u64,
}

impl Shipper {
    /// Starts the `honeytrap-ship` thread. Fails only if the thread cannot be created.
    pub fn spawn(settings: ShipperSettings) -> io::Result<ShipperHandle> {
        let control = Arc::new(Control::default());
        let slots: Vec<Slot> = settings
            .sinks
            .into_iter()
            .map(|sink| {
                let status = SinkStatus {
                    name: sink.name().to_owned(),
                    counters: SinkCounters::default(),
                    disabled: AtomicBool::new(false),
                    skipped: AtomicU64::new(0),
                };
                status.publish(sink.counters().snapshot());
                Slot {
                    sink,
                    status: Arc::new(status),
                    last_error_log: None,
                    errors_not_logged: 0,
                }
            })
            .collect();
        let statuses = slots.iter().map(|slot| slot.status.clone()).collect();
        let batch_size = settings.batch_size.max(1);
        let mut shipper = Shipper {
            queue: settings.queue.clone(),
            slots,
            log: settings.log,
            batch_size,
            // Zero would make the thread spin.
            tick_interval: settings.tick_interval.max(Duration::from_millis(1)),
            stats_interval: settings.stats_interval,
            error_log_interval: settings.error_log_interval,
            control: control.clone(),
            records: Vec::new(),
            last_logged: None,
            return_freed_memory: settings.return_freed_memory,
            release_after_events: settings.release_after_events.max(1),
            shipped_this_tick: 0,
            shipped_in_burst: 0,
        };
        // Dropped when the thread ends, however it ends: shutdown waits for that, with a timeout.
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("honeytrap-ship".to_owned())
            .spawn(move || {
                let _done = done_tx;
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| shipper.run())) {
                    (shipper.log)(
                        Level::Error,
                        &crate::panic::log_line("shipper thread", &*payload),
                    );
                }
            })?;
        Ok(ShipperHandle {
            thread: Some(thread),
            done: done_rx,
            control,
            queue: settings.queue,
            sinks: statuses,
        })
    }

    fn run(&mut self) {
        if !self.queue.register_consumer() {
            (self.log)(
                Level::Warn,
                "honeytrap: event queue already has a shipper; this one only polls",
            );
        }
        let start = Instant::now();
        let mut next_tick = later(start, self.tick_interval);
        let mut next_stats = later(start, self.stats_interval);
        let deadline = loop {
            // Read before draining: once shutdown is seen, everything queued so far gets shipped.
            let stop = self.control.deadline.get().copied();
            if self.control.reopen.swap(false, Ordering::AcqRel) {
                self.each_sink("reopen", false, |sink| sink.reopen());
                self.control.reopens.fetch_add(1, Ordering::Release);
            }
            let shipped = self.ship_batch();
            let now = Instant::now();
            if now >= next_tick {
                self.each_sink("tick", false, |sink| sink.tick(now));
                if self.shipped_in_burst >= self.release_after_events && self.shipped_this_tick == 0
                {
                    self.release_memory();
                }
                self.shipped_this_tick = 0;
                next_tick = later(now, self.tick_interval);
            }
            if !self.stats_interval.is_zero() && now >= next_stats {
                self.log_stats(false);
                next_stats = later(now, self.stats_interval);
            }
            match stop {
                Some(deadline) if self.queue.is_empty() || now >= deadline => break deadline,
                Some(_) => {}
                None if shipped < self.batch_size => {
                    self.queue.wait(next_tick.saturating_duration_since(now))
                }
                None => {}
            }
        };
        let left = self.queue.len();
        if left > 0 {
            let line = format!("honeytrap: shutdown deadline passed with {left} events still queued; they are lost");
            (self.log)(Level::Warn, &line);
        }
        self.each_sink("flush", true, |sink| sink.flush(deadline));
        self.log_stats(true);
    }

    /// Ships up to one batch; returns how many events it took.
    fn ship_batch(&mut self) -> usize {
        // Each event is freed as soon as it is serialized.
        while self.records.len() < self.batch_size {
            match self.queue.pop() {
                Some(event) => self.records.push(event.to_record()),
                None => break,
            }
        }
        let taken = self.records.len();
        if taken == 0 {
            return 0;
        }
        self.shipped_this_tick += taken as u64;
        self.shipped_in_burst += taken as u64;
        let records = &self.records;
        for slot in &mut self.slots {
            if slot.disabled() {
                slot.status
                    .skipped
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                continue;
            }
            slot.call("send", &self.log, self.error_log_interval, false, |sink| {
                sink.send(records)
            });
        }
        // The serialized events are not kept until the next batch.
        self.records.clear();
        taken
    }

    /// After a burst: drops the buffers it left, ours and the sinks', then lets the embedder
    /// return freed pages to the kernel.
    fn release_memory(&mut self) {
        let start = Instant::now();
        self.records = Vec::new();
        self.each_sink("release_buffers", false, |sink| {
            sink.release_buffers();
            Ok(())
        });
        if let Some(return_freed_memory) = &mut self.return_freed_memory {
            return_freed_memory();
        }
        let line = format!(
            "honeytrap: idle after {} events; buffers released in {} µs",
            self.shipped_in_burst,
            start.elapsed().as_micros()
        );
        (self.log)(Level::Debug, &line);
        self.shipped_in_burst = 0;
    }

    fn each_sink(
        &mut self,
        op: &str,
        always_log: bool,
        mut f: impl FnMut(&mut dyn Sink) -> SinkResult,
    ) {
        for slot in self.slots.iter_mut().filter(|slot| !slot.disabled()) {
            slot.call(op, &self.log, self.error_log_interval, always_log, &mut f);
        }
    }

    fn stats(&self) -> ShipperStats {
        stats_of(
            &self.queue,
            &self.control,
            self.slots.iter().map(|slot| &*slot.status),
        )
    }

    /// Logs the counters line; periodic lines only when something changed since the last one.
    fn log_stats(&mut self, at_exit: bool) {
        let mut stats = self.stats();
        // A changing backlog alone is not news.
        stats.queue.len = 0;
        stats.queue.high_water = 0;
        if at_exit || self.last_logged.as_ref() != Some(&stats) {
            (self.log)(Level::Info, &stats.log_line());
            self.last_logged = Some(stats);
        }
    }
}

/// `t + d`, or a year on when a configured interval is too large to add.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(365 * 86_400))
}

fn stats_of<'a>(
    queue: &EventQueue,
    control: &Control,
    sinks: impl Iterator<Item = &'a SinkStatus>,
) -> ShipperStats {
    ShipperStats {
        queue: queue.stats(),
        reopens: control.reopens.load(Ordering::Acquire),
        sinks: sinks.map(SinkStatus::stats).collect(),
    }
}

/// Why [`ShipperHandle::shutdown`] could not report a clean exit.
#[derive(Debug)]
pub enum ShutdownError {
    /// The thread was still busy after the deadline and margin; it was left running.
    TimedOut(ShipperStats),
    /// The thread died of a panic the shipper could not catch.
    Panicked(String),
}

impl std::fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShutdownError::TimedOut(stats) => {
                write!(
                    f,
                    "shipper thread still busy after its shutdown deadline; {}",
                    stats.log_line()
                )
            }
            ShutdownError::Panicked(message) => write!(f, "shipper thread panicked: {message}"),
        }
    }
}

impl std::error::Error for ShutdownError {}

/// The worker's side of the shipper: control and counters. Dropping it without
/// [`shutdown`](ShipperHandle::shutdown) tells the thread to stop at once, without waiting.
pub struct ShipperHandle {
    thread: Option<JoinHandle<()>>,
    done: Receiver<()>,
    control: Arc<Control>,
    queue: Arc<EventQueue>,
    sinks: Vec<Arc<SinkStatus>>,
}

impl ShipperHandle {
    /// Asks every sink to reopen its files (`nginx -s reopen`); done on the next loop.
    pub fn request_reopen(&self) {
        self.control.reopen.store(true, Ordering::Release);
        self.wake();
    }

    pub fn stats(&self) -> ShipperStats {
        stats_of(&self.queue, &self.control, self.sinks.iter().map(|s| &**s))
    }

    /// [`stats`](ShipperHandle::stats) as JSON, for a status endpoint.
    pub fn stats_json(&self) -> String {
        self.stats().to_json()
    }

    /// Ships what is queued, flushes every sink by `deadline` from now and ends the thread.
    /// Returns by `deadline` plus a quarter second even if a sink hangs.
    pub fn shutdown(mut self, deadline: Duration) -> Result<ShipperStats, ShutdownError> {
        let now = Instant::now();
        let give_up = later(later(now, deadline), JOIN_MARGIN);
        let _ = self.control.deadline.set(later(now, deadline));
        self.wake();
        let thread = self.thread.take().expect("the thread is only taken here");
        match self
            .done
            .recv_timeout(give_up.saturating_duration_since(Instant::now()))
        {
            Err(RecvTimeoutError::Timeout) => return Err(ShutdownError::TimedOut(self.stats())),
            // Disconnected: the thread dropped its end, it is exiting.
            Err(RecvTimeoutError::Disconnected) | Ok(()) => {}
        }
        match thread.join() {
            Ok(()) => Ok(self.stats()),
            Err(payload) => Err(ShutdownError::Panicked(
                crate::panic::panic_message(&*payload).into_owned(),
            )),
        }
    }

    fn wake(&self) {
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

impl Drop for ShipperHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.control.deadline.set(Instant::now());
            self.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Kind, Observer};
    use std::sync::Mutex;

    /// What a test sink saw, readable from the test thread.
    #[derive(Default)]
    struct Probe {
        ids: Mutex<Vec<String>>,
        ticks: AtomicU64,
        reopens: AtomicU64,
        releases: AtomicU64,
        flush_deadline: Mutex<Option<Instant>>,
    }

    enum Behaviour {
        Fine,
        PanicOnSend,
        FailTicks,
        SlowSend(Duration),
        HangInFlush(Receiver<()>),
    }

    struct TestSink {
        name: &'static str,
        probe: Arc<Probe>,
        behaviour: Behaviour,
        counters: SinkCounters,
    }

    impl TestSink {
        fn boxed(name: &'static str, behaviour: Behaviour) -> (Box<dyn Sink>, Arc<Probe>) {
            let probe = Arc::new(Probe::default());
            let sink = TestSink {
                name,
                probe: probe.clone(),
                behaviour,
                counters: SinkCounters::default(),
            };
            (Box::new(sink), probe)
        }
    }

    impl Sink for TestSink {
        fn name(&self) -> &str {
            self.name
        }
        fn send(&mut self, batch: &[Record]) -> SinkResult {
            match &self.behaviour {
                Behaviour::PanicOnSend => panic!("sink exploded"),
                Behaviour::SlowSend(d) => std::thread::sleep(*d),
                _ => {}
            }
            self.probe
                .ids
                .lock()
                .unwrap()
                .extend(batch.iter().map(|r| r.id.clone()));
            SinkCounters::add(&self.counters.shipped, batch.len() as u64);
            Ok(())
        }
        fn tick(&mut self, _now: Instant) -> SinkResult {
            self.probe.ticks.fetch_add(1, Ordering::Relaxed);
            match self.behaviour {
                Behaviour::FailTicks => {
                    SinkCounters::add(&self.counters.failed_requests, 1);
                    Err(crate::sink::SinkError("backend down".into()))
                }
                _ => Ok(()),
            }
        }
        fn flush(&mut self, deadline: Instant) -> SinkResult {
            *self.probe.flush_deadline.lock().unwrap() = Some(deadline);
            if let Behaviour::HangInFlush(release) = &self.behaviour {
                let _ = release.recv();
            }
            Ok(())
        }
        fn reopen(&mut self) -> SinkResult {
            self.probe.reopens.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn release_buffers(&mut self) {
            self.probe.releases.fetch_add(1, Ordering::Relaxed);
        }
        fn counters(&self) -> &SinkCounters {
            &self.counters
        }
    }

    type Lines = Arc<Mutex<Vec<(Level, String)>>>;

    fn capture() -> (LogFn, Lines) {
        let lines: Lines = Arc::default();
        let sink = lines.clone();
        (
            Box::new(move |level, line: &str| sink.lock().unwrap().push((level, line.to_owned()))),
            lines,
        )
    }

    fn event() -> Event {
        Event::new(Kind::Decoy, Arc::new(Observer::new("t")))
    }

    fn push(queue: &EventQueue, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let e = event();
                let id = e.id.to_string();
                assert!(queue.try_push(e));
                id
            })
            .collect()
    }

    /// Polls `done` for up to 5 s; the shipper works asynchronously.
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < until, "timed out waiting for: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn every_record_reaches_every_sink_in_order() {
        let queue = Arc::new(EventQueue::new(256));
        let (a, probe_a) = TestSink::boxed("a", Behaviour::Fine);
        let (b, probe_b) = TestSink::boxed("b", Behaviour::Fine);
        let (log, _) = capture();
        let mut settings = ShipperSettings::new(queue.clone(), vec![a, b], log);
        settings.batch_size = 7;
        let handle = Shipper::spawn(settings).unwrap();
        let ids = push(&queue, 50);
        let before = Instant::now();
        let stats = handle.shutdown(Duration::from_secs(2)).unwrap();
        assert_eq!(*probe_a.ids.lock().unwrap(), ids);
        assert_eq!(*probe_b.ids.lock().unwrap(), ids);
        assert_eq!(stats.queue.queued, 50);
        assert_eq!(stats.queue.dropped, 0);
        assert_eq!(
            stats
                .sinks
                .iter()
                .map(|s| s.counters.shipped)
                .collect::<Vec<_>>(),
            [50, 50]
        );
        let deadline = probe_a
            .flush_deadline
            .lock()
            .unwrap()
            .expect("flush was called");
        assert!(
            deadline > before
                && deadline <= before + Duration::from_secs(2) + Duration::from_millis(100)
        );
    }

    /// A shipper whose sink and embedder hook count memory releases: (handle, sink probe,
    /// embedder's count).
    fn counting_releases(
        queue: &Arc<EventQueue>,
        tick: Duration,
        release_after_events: u64,
    ) -> (ShipperHandle, Arc<Probe>, Arc<AtomicU64>) {
        let (sink, probe) = TestSink::boxed("a", Behaviour::Fine);
        let (log, _) = capture();
        let mut settings = ShipperSettings::new(queue.clone(), vec![sink], log);
        settings.tick_interval = tick;
        settings.release_after_events = release_after_events;
        let returned = Arc::new(AtomicU64::new(0));
        let count = returned.clone();
        settings.return_freed_memory = Some(Box::new(move || {
            count.fetch_add(1, Ordering::Relaxed);
        }));
        (Shipper::spawn(settings).unwrap(), probe, returned)
    }

    #[test]
    fn memory_is_released_once_after_each_burst() {
        let queue = Arc::new(EventQueue::new(64));
        let (handle, probe, returned) = counting_releases(&queue, Duration::from_millis(10), 1);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            returned.load(Ordering::Relaxed),
            0,
            "released before any burst"
        );
        push(&queue, 20);
        eventually("first release", || returned.load(Ordering::Relaxed) == 1);
        assert_eq!(probe.ids.lock().unwrap().len(), 20);
        std::thread::sleep(Duration::from_millis(60)); // idle ticks
        assert_eq!(
            returned.load(Ordering::Relaxed),
            1,
            "released again while idle"
        );
        push(&queue, 5);
        eventually("second release", || returned.load(Ordering::Relaxed) == 2);
        assert_eq!(probe.releases.load(Ordering::Relaxed), 2);
        handle.shutdown(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn a_trickle_of_events_releases_memory_only_once_enough_have_passed() {
        let queue = Arc::new(EventQueue::new(64));
        let (handle, probe, returned) = counting_releases(&queue, Duration::from_millis(10), 8);
        push(&queue, 5);
        eventually("5 shipped", || probe.ids.lock().unwrap().len() == 5);
        std::thread::sleep(Duration::from_millis(60)); // idle ticks
        assert_eq!(returned.load(Ordering::Relaxed), 0, "released after 5 of 8");
        push(&queue, 3);
        eventually("release after 8", || returned.load(Ordering::Relaxed) == 1);
        handle.shutdown(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn memory_is_not_released_while_events_keep_coming() {
        let queue = Arc::new(EventQueue::new(64));
        let (handle, probe, returned) = counting_releases(&queue, Duration::from_millis(100), 1);
        let until = Instant::now() + Duration::from_millis(600);
        let mut pushed = 0;
        while Instant::now() < until {
            push(&queue, 1);
            pushed += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(returned.load(Ordering::Relaxed), 0, "released mid-burst");
        eventually("release after the burst", || {
            returned.load(Ordering::Relaxed) == 1
        });
        assert_eq!(probe.ids.lock().unwrap().len(), pushed);
        handle.shutdown(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn sinks_tick_without_events() {
        let queue = Arc::new(EventQueue::new(8));
        let (sink, probe) = TestSink::boxed("a", Behaviour::Fine);
        let (log, _) = capture();
        let mut settings = ShipperSettings::new(queue, vec![sink], log);
        settings.tick_interval = Duration::from_millis(10);
        let handle = Shipper::spawn(settings).unwrap();
        eventually("three ticks", || probe.ticks.load(Ordering::Relaxed) >= 3);
        handle.shutdown(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn a_panicking_sink_is_disabled_and_the_others_go_on() {
        let queue = Arc::new(EventQueue::new(64));
        let first = push(&queue, 10); // queued before spawn: one batch
        let (boom, _) = TestSink::boxed("boom", Behaviour::PanicOnSend);
        let (fine, probe) = TestSink::boxed("fine", Behaviour::Fine);
        let (log, lines) = capture();
        let handle =
            Shipper::spawn(ShipperSettings::new(queue.clone(), vec![boom, fine], log)).unwrap();
        eventually("first batch shipped", || {
            probe.ids.lock().unwrap().len() == 10
        });
        let second = push(&queue, 5);
        let stats = handle.shutdown(Duration::from_secs(1)).unwrap();
        assert_eq!(*probe.ids.lock().unwrap(), [first, second].concat());
        assert!(stats.sinks[0].disabled);
        assert_eq!(stats.sinks[0].skipped, 5);
        assert!(!stats.sinks[1].disabled);
        let lines = lines.lock().unwrap();
        let panics: Vec<_> = lines
            .iter()
            .filter(|(_, l)| l.contains("panic in sink boom send"))
            .collect();
        assert_eq!(panics.len(), 1, "{lines:?}");
        assert_eq!(panics[0].0, Level::Error);
        assert!(panics[0].1.contains("sink exploded") && panics[0].1.contains("disabled"));
    }

    #[test]
    fn reopen_reaches_every_sink() {
        let queue = Arc::new(EventQueue::new(8));
        let (a, probe_a) = TestSink::boxed("a", Behaviour::Fine);
        let (b, probe_b) = TestSink::boxed("b", Behaviour::Fine);
        let (log, _) = capture();
        let mut settings = ShipperSettings::new(queue, vec![a, b], log);
        settings.tick_interval = Duration::from_secs(30); // the request must wake the thread
        let handle = Shipper::spawn(settings).unwrap();
        handle.request_reopen();
        eventually("reopen done", || handle.stats().reopens == 1);
        assert_eq!(probe_a.reopens.load(Ordering::Relaxed), 1);
        assert_eq!(probe_b.reopens.load(Ordering::Relaxed), 1);
        handle.shutdown(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn repeated_sink_errors_are_logged_once_per_interval() {
        let queue = Arc::new(EventQueue::new(8));
        let (sink, probe) = TestSink::boxed("flaky", Behaviour::FailTicks);
        let (log, lines) = capture();
        let mut settings = ShipperSettings::new(queue, vec![sink], log);
        settings.tick_interval = Duration::from_millis(2);
        settings.error_log_interval = Duration::from_secs(3600);
        let handle = Shipper::spawn(settings).unwrap();
        eventually("ten failed ticks", || {
            probe.ticks.load(Ordering::Relaxed) >= 10
        });
        let stats = handle.shutdown(Duration::from_secs(1)).unwrap();
        assert!(stats.sinks[0].counters.failed_requests >= 10);
        let lines = lines.lock().unwrap();
        let errors: Vec<_> = lines
            .iter()
            .filter(|(level, _)| *level == Level::Error)
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains("sink flaky tick failed: backend down"));
    }

    #[test]
    fn shutdown_gives_up_on_a_hanging_sink() {
        let queue = Arc::new(EventQueue::new(8));
        let (release_tx, release_rx) = mpsc::channel();
        let (sink, probe) = TestSink::boxed("stuck", Behaviour::HangInFlush(release_rx));
        let (log, _) = capture();
        let handle = Shipper::spawn(ShipperSettings::new(queue, vec![sink], log)).unwrap();
        let start = Instant::now();
        let result = handle.shutdown(Duration::from_millis(100));
        let took = start.elapsed();
        assert!(
            matches!(result, Err(ShutdownError::TimedOut(_))),
            "{result:?}"
        );
        assert!(
            took >= Duration::from_millis(100)
                && took < Duration::from_millis(100) + JOIN_MARGIN * 3,
            "{took:?}"
        );
        assert!(probe.flush_deadline.lock().unwrap().is_some());
        release_tx.send(()).unwrap();
    }

    #[test]
    fn draining_stops_at_the_deadline() {
        let queue = Arc::new(EventQueue::new(64));
        push(&queue, 40);
        let (sink, probe) = TestSink::boxed("slow", Behaviour::SlowSend(Duration::from_millis(20)));
        let (log, lines) = capture();
        let mut settings = ShipperSettings::new(queue.clone(), vec![sink], log);
        settings.batch_size = 1;
        let handle = Shipper::spawn(settings).unwrap();
        let stats = handle.shutdown(Duration::from_millis(150)).unwrap();
        let shipped = probe.ids.lock().unwrap().len();
        assert!(shipped < 40, "all 40 shipped at 20 ms each within 150 ms?");
        assert_eq!(stats.sinks[0].counters.shipped, shipped as u64);
        let left = 40 - shipped;
        assert_eq!(queue.len(), left);
        let lines = lines.lock().unwrap();
        assert!(
            lines
                .iter()
                .any(|(_, l)| l.contains(&format!("with {left} events still queued"))),
            "{lines:?}"
        );
    }

    #[test]
    fn counters_are_logged_when_they_change_and_at_exit() {
        let queue = Arc::new(EventQueue::new(8));
        let (sink, probe) = TestSink::boxed("file", Behaviour::Fine);
        let (log, lines) = capture();
        let mut settings = ShipperSettings::new(queue.clone(), vec![sink], log);
        settings.tick_interval = Duration::from_millis(5);
        settings.stats_interval = Duration::from_millis(10);
        let handle = Shipper::spawn(settings).unwrap();
        push(&queue, 3);
        eventually("events shipped", || probe.ids.lock().unwrap().len() == 3);
        let stats_lines = || -> Vec<String> {
            let lines = lines.lock().unwrap();
            lines
                .iter()
                .filter(|(_, l)| l.starts_with("honeytrap: shipped"))
                .map(|(_, l)| l.clone())
                .collect()
        };
        eventually("a counters line with 3 shipped", || {
            stats_lines().iter().any(|l| l.contains("file=3"))
        });
        let before = stats_lines().len();
        std::thread::sleep(Duration::from_millis(100)); // ten intervals with nothing new
        assert_eq!(
            stats_lines().len(),
            before,
            "unchanged counters were logged again"
        );
        handle.shutdown(Duration::from_secs(1)).unwrap();
        let all = stats_lines();
        assert_eq!(all.len(), before + 1, "no line at exit");
        assert_eq!(
            all.last().unwrap(),
            "honeytrap: shipped file=3; retried file=0; spooled file=0; dead_lettered file=0; \
             failed_requests file=0; queued=3 dropped=0"
        );
    }

    #[test]
    fn stats_json_reports_queue_and_sinks() {
        let queue = Arc::new(EventQueue::new(2));
        push(&queue, 2);
        assert!(!queue.try_push(event()));
        let (sink, _) = TestSink::boxed("file", Behaviour::Fine);
        let (log, _) = capture();
        let handle = Shipper::spawn(ShipperSettings::new(queue, vec![sink], log)).unwrap();
        eventually("shipped", || handle.stats().sinks[0].counters.shipped == 2);
        let json: serde_json::Value = serde_json::from_str(&handle.stats_json()).unwrap();
        assert_eq!(json["queue"]["queued"], 2);
        assert_eq!(json["queue"]["dropped"], 1);
        assert_eq!(json["queue"]["capacity"], 2);
        assert_eq!(json["queue"]["high_water"], 2);
        assert_eq!(json["sinks"][0]["name"], "file");
        assert_eq!(json["sinks"][0]["shipped"], 2);
        assert_eq!(json["sinks"][0]["disabled"], false);
        handle.shutdown(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn dropping_the_handle_stops_the_thread() {
        let queue = Arc::new(EventQueue::new(8));
        let (sink, probe) = TestSink::boxed("a", Behaviour::Fine);
        let (log, _) = capture();
        let handle = Shipper::spawn(ShipperSettings::new(queue, vec![sink], log)).unwrap();
        drop(handle);
        eventually("flush on the way out", || {
            probe.flush_deadline.lock().unwrap().is_some()
        });
    }
}
