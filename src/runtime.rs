//! The per-worker event pipeline: a queue the request path pushes to, and the shipper thread
//! that drains it into the sinks. Started in `init_process` of workers (never in the master,
//! cache processes or `nginx -t`), stopped in `exit_process`.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use honeytrap_core::event::{Event, IdSequence, Limits, Observer};
use honeytrap_core::queue::EventQueue;
use honeytrap_core::shipper::{Level, LogFn, Shipper, ShipperHandle, ShipperSettings};
use honeytrap_core::sink::audit_log::AuditLogSink;
use honeytrap_core::sink::elasticsearch::ElasticsearchSink;
use honeytrap_core::sink::file::FileSink;
use honeytrap_core::sink::misp::MispSink;
use honeytrap_core::sink::Sink;
use ngx::core::Status;
use ngx::ffi::{
    ngx_cycle_t, ngx_exiting, ngx_int_t, ngx_log_t, ngx_open_file_t, ngx_process, ngx_quit,
    ngx_terminate, ngx_uint_t, ngx_worker, NGX_LOG_ERR, NGX_LOG_NOTICE, NGX_PROCESS_SINGLE,
    NGX_PROCESS_WORKER,
};
use ngx::http::HttpModuleMainConf;
use ngx::ngx_log_error;

use crate::conf::MainConf;
use crate::{guard, Honeytrap};

/// How long a stopping worker waits for its shipper to hand everything to the sinks.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

pub(crate) struct Runtime {
    pub queue: Arc<EventQueue>,
    pub observer: Arc<Observer>,
    pub limits: Limits,
    /// The worker's event ids and transaction ids (SecLang's UNIQUE_ID), drawn after the fork.
    pub ids: IdSequence,
    shipper: Mutex<Option<ShipperHandle>>,
}

/// Set once per worker process; the request path reads it without locking.
static RUNTIME: OnceLock<Runtime> = OnceLock::new();

pub(crate) fn get() -> Option<&'static Runtime> {
    RUNTIME.get()
}

impl Runtime {
    /// Hands an event to the shipper; never waits (a full queue drops and counts it).
    pub fn push(&self, event: Event) {
        self.queue.try_push(event);
    }

    /// The pipeline's counters as JSON, for `honeytrap_status`.
    pub fn stats_json(&self) -> String {
        match self.shipper.lock() {
            Ok(guard) => match guard.as_ref() {
                Some(handle) => handle.stats_json(),
                None => "{\"error\":\"shipper stopped\"}".to_owned(),
            },
            Err(_) => "{\"error\":\"shipper state poisoned\"}".to_owned(),
        }
    }
}

pub(crate) extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: nginx passes the live cycle to init_process.
    let log = unsafe { (*cycle).log };
    guard::run(log, "init_process", guard::status_error, || {
        // SAFETY: plain reads of globals nginx sets before calling init_process.
        let (process, worker) = unsafe { (ngx_process, ngx_worker) };
        if process != NGX_PROCESS_WORKER as ngx_uint_t
            && process != NGX_PROCESS_SINGLE as ngx_uint_t
        {
            return Status::NGX_OK.into();
        }
        // SAFETY: as above.
        let Some(mcf) = Honeytrap::main_conf(unsafe { &*cycle }) else {
            return Status::NGX_OK.into();
        };
        if !mcf.used {
            return Status::NGX_OK.into();
        }
        // SAFETY: as above.
        let log_level = unsafe { (*log).log_level };
        crate::memory::use_one_malloc_arena();
        let runtime = start(mcf, worker, log, log_level);
        if RUNTIME.set(runtime).is_err() {
            ngx_log_error!(
                NGX_LOG_ERR,
                log,
                "honeytrap: pipeline already running in this process"
            );
        }
        Status::NGX_OK.into()
    })
}

fn start(mcf: &MainConf, worker: usize, log: *mut ngx_log_t, log_level: ngx_uint_t) -> Runtime {
    let queue = Arc::new(EventQueue::new(mcf.queue_size()));
    let observer = Arc::new(Observer::new(mcf.sensor.clone().unwrap_or_else(hostname)));
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();

    if let (Some(path), Some(file)) = (mcf.events_path(), events_file(mcf.events_open_file)) {
        sinks.push(Box::new(FileSink::from_file(path, file)));
    }
    let audit_log = (mcf.audit_log_path(), events_file(mcf.audit_log_open_file));
    if let (Some(path), Some(file)) = audit_log {
        sinks.push(Box::new(AuditLogSink::from_file(path, file)));
    }
    if let Some(settings) = &mcf.elasticsearch {
        let mut settings = settings.clone();
        if settings.spool.is_none() {
            settings.spool = mcf.spool_dir().map(|dir| dir.join("elasticsearch"));
        }
        match ElasticsearchSink::new(settings.for_worker(worker)) {
            Ok(sink) => sinks.push(Box::new(sink)),
            Err(e) => {
                ngx_log_error!(
                    NGX_LOG_ERR,
                    log,
                    "honeytrap: elasticsearch sink disabled: {e}"
                );
            }
        }
    }

    if let Some(settings) = &mcf.misp {
        let mut settings = settings.clone();
        if settings.spool.is_none() {
            settings.spool = mcf.spool_dir().map(|dir| dir.join("misp"));
        }
        settings.spool = settings
            .spool
            .map(|dir| dir.join(format!("worker-{worker}")));
        match MispSink::new(settings) {
            Ok(sink) => sinks.push(Box::new(sink)),
            Err(e) => {
                ngx_log_error!(NGX_LOG_ERR, log, "honeytrap: misp sink disabled: {e}");
            }
        }
    }

    let mut settings = ShipperSettings::new(queue.clone(), sinks, error_log_writer(log_level));
    settings.stats_interval = Duration::from_secs(60);
    settings.return_freed_memory = Some(Box::new(crate::memory::release_freed));
    let shipper = match with_signals_blocked(|| Shipper::spawn(settings)) {
        Ok(handle) => Some(handle),
        Err(e) => {
            ngx_log_error!(
                NGX_LOG_ERR,
                log,
                "honeytrap: cannot start the shipper thread: {e}"
            );
            None
        }
    };
    if shipper.is_some() {
        ngx_log_error!(
            NGX_LOG_NOTICE,
            log,
            "honeytrap: worker {worker} ships events"
        );
    }
    Runtime {
        queue,
        observer,
        limits: Limits::default(),
        ids: IdSequence::new(),
        shipper: Mutex::new(shipper),
    }
}

pub(crate) extern "C" fn exit_process(cycle: *mut ngx_cycle_t) {
    // SAFETY: nginx passes the live cycle to exit_process.
    let log = unsafe { (*cycle).log };
    guard::run(
        log,
        "exit_process",
        || (),
        || {
            let Some(runtime) = RUNTIME.get() else { return };
            let handle = runtime.shipper.lock().ok().and_then(|mut slot| slot.take());
            if let Some(handle) = handle {
                if let Err(e) = handle.shutdown(SHUTDOWN_DEADLINE) {
                    ngx_log_error!(
                        NGX_LOG_ERR,
                        log,
                        "honeytrap: shipper did not stop cleanly: {e}"
                    );
                }
            }
        },
    )
}

/// nginx's `flush` hook of the events file: called right before nginx reopens its files.
/// In a worker the master has already created the new file for the worker's user.
/// nginx also calls it when a stopping process flushes its files (`ngx_flush_files`): then
/// there is nothing to reopen.
pub(crate) unsafe extern "C" fn events_file_reopened(
    _file: *mut ngx_open_file_t,
    _log: *mut ngx_log_t,
) {
    // SAFETY: plain reads of flags the worker's main thread (this one) sets from signals.
    if unsafe { ngx_exiting != 0 || ngx_terminate != 0 || ngx_quit != 0 } {
        return;
    }
    let Some(runtime) = RUNTIME.get() else { return };
    if let Ok(guard) = runtime.shipper.lock() {
        if let Some(handle) = guard.as_ref() {
            handle.request_reopen();
        }
    }
}

/// Our own descriptor for the events file nginx opened in the master (a worker may lack the
/// rights to open the path itself).
fn events_file(open_file: *mut ngx_open_file_t) -> Option<File> {
    // SAFETY: null or the cycle's live open-file entry.
    let fd = unsafe { open_file.as_ref()? }.fd;
    // SAFETY: dup(2) of a descriptor this process holds.
    let copy = unsafe { libc::dup(fd) };
    // SAFETY: `copy` is a fresh descriptor nobody else owns.
    (copy >= 0).then(|| unsafe { File::from_raw_fd(copy) })
}

/// The shipper thread logs by writing nginx-formatted lines to stderr, which nginx points at
/// the error log in workers; nginx's own log functions are not for other threads.
fn error_log_writer(log_level: ngx_uint_t) -> LogFn {
    Box::new(move |level, message| {
        let (name, number) = match level {
            Level::Error => ("error", 4),
            Level::Warn => ("warn", 5),
            Level::Info => ("notice", 6),
            Level::Debug => ("debug", 8),
        };
        if number > log_level {
            return;
        }
        let line = format!(
            "{} [{name}] {}#{}: {message}\n",
            local_time(),
            std::process::id(),
            // SAFETY: gettid(2) has no preconditions.
            unsafe { libc::gettid() },
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    })
}

/// `2026/11/28 21:00:00`, local time, as nginx writes it.
fn local_time() -> String {
    // SAFETY: time(2) and localtime_r(3) with valid pointers; `tm` is plain data.
    let tm = unsafe {
        let now = libc::time(core::ptr::null_mut());
        let mut tm: libc::tm = core::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc == 0 && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "ngx-honeytrap".to_owned()
    }
}

/// Runs `f` with all signals blocked, so the thread it starts inherits a full mask and
/// nginx's signals keep going to the worker's main thread.
fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigfillset/pthread_sigmask on local, initialised sets.
    let old = unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    let result = f();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    result
}
