//! NDJSON file sink: one record per line, appended.
//!
//! Every nginx worker process appends to the same file through its own descriptor, so lines
//! must not interleave. The file is opened with `O_APPEND`, which makes each `write()` find the
//! end of the file and write there as one step on local filesystems (the kernel holds the inode
//! lock for the whole write; `PIPE_BUF` only concerns pipes). So each batch is written with one
//! `write()` per 64 KiB of whole lines, and two workers' writes can only follow each other,
//! never mix. A short write (disk full, file size limit) may still leave a partial line: the
//! next write then starts with a newline so that only that one line is damaged. Over NFS none
//! of this holds; use a local disk.
//!
//! When writing fails, records stay in memory (bounded by bytes) and are retried on the next
//! tick; `nginx -s reopen` reopens the path, so rotation is: rename, reopen, compress the old.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Record, Sink, SinkCounters, SinkError, SinkResult};

/// Most bytes handed to one `write()`; a batch larger than this takes several, each of whole
/// lines (a longer line alone). Below glibc's smallest mmap threshold (128 KiB): a freed
/// mapped block would make glibc raise its mmap and trim thresholds for the whole worker, and
/// the shipper's arena would then keep megabytes of free pages after a burst.
const WRITE_CHUNK: usize = 64 << 10;

pub struct FileSink {
    path: PathBuf,
    file: File,
    /// Records a failed write left over, oldest first; retried on tick.
    pending: VecDeque<Record>,
    pending_bytes: usize,
    max_pending_bytes: usize,
    /// The last write stopped inside a line.
    torn: bool,
    buf: Vec<u8>,
    ends: Vec<usize>,
    counters: SinkCounters,
}

impl FileSink {
    /// Memory kept for records waiting for a retry, by default.
    pub const DEFAULT_MAX_PENDING_BYTES: usize = 16 << 20;

    /// Opens (creating with mode 0640, minus the umask) `path` for appending. The directory
    /// must exist: a missing one is a configuration mistake, not something to paper over.
    pub fn open(path: impl Into<PathBuf>) -> Result<FileSink, SinkError> {
        let path = path.into();
        let file = open_append(&path)?;
        Ok(FileSink::from_file(path, file))
    }

    /// Writes to an already open `file` (opened for appending) and reopens `path` on
    /// [`Sink::reopen`]. nginx opens log files in the master, before workers drop privileges,
    /// and hands them down; a worker could not always open the path itself.
    pub fn from_file(path: impl Into<PathBuf>, file: File) -> FileSink {
        FileSink {
            path: path.into(),
            file,
            pending: VecDeque::new(),
            pending_bytes: 0,
            max_pending_bytes: Self::DEFAULT_MAX_PENDING_BYTES,
            torn: false,
            buf: Vec::new(),
            ends: Vec::new(),
            counters: SinkCounters::default(),
        }
    }

    /// Bounds the memory held for retries; records beyond it are dead-lettered (counted, lost).
    pub fn with_max_pending_bytes(mut self, bytes: usize) -> FileSink {
        self.max_pending_bytes = bytes;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records waiting for a retry.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes `records` in chunks of whole lines; returns how many were written completely and
    /// the error that stopped it, if any.
    fn write_lines(&mut self, records: &[Record]) -> (usize, Option<io::Error>) {
        let mut done = 0;
        // The exact size, so that doubling never takes the buffer past the threshold.
        self.buf
            .reserve_exact(WRITE_CHUNK.saturating_sub(self.buf.len()));
        while done < records.len() {
            self.buf.clear();
            self.ends.clear();
            if self.torn {
                self.buf.push(b'\n');
            }
            let lead = self.buf.len();
            for record in &records[done..] {
                if !self.ends.is_empty() && self.buf.len() + record.json.len() + 1 > WRITE_CHUNK {
                    break;
                }
                self.buf.extend_from_slice(record.json.as_bytes());
                self.buf.push(b'\n');
                self.ends.push(self.buf.len());
            }
            let (written, error) = write_counting(&mut self.file, &self.buf);
            let (complete, torn) = after_write(lead, &self.ends, written);
            self.torn = torn.unwrap_or(self.torn);
            done += complete;
            if error.is_some() {
                return (done, error);
            }
        }
        // Don't keep a huge buffer around after one exceptional batch; the shipper's
        // `release_buffers` drops the rest once a burst is over.
        self.buf.shrink_to(WRITE_CHUNK);
        (done, None)
    }

    /// Keeps records for a retry while the bound allows; returns how many it had to drop.
    fn keep(&mut self, records: &[Record]) -> u64 {
        let mut dropped = 0;
        for record in records {
            // The oldest are kept: the first contact of an attacker is the most telling.
            if self.pending_bytes + record.json.len() > self.max_pending_bytes {
                dropped += 1;
            } else {
                self.pending_bytes += record.json.len();
                self.pending.push_back(record.clone());
            }
        }
        SinkCounters::add(&self.counters.dead_lettered, dropped);
        dropped
    }

    fn write_failed(&mut self, error: &io::Error, dropped: u64) -> SinkError {
        SinkCounters::add(&self.counters.failed_requests, 1);
        let mut message = format!(
            "file {}: write failed: {error}; {} records kept for retry",
            self.path.display(),
            self.pending.len()
        );
        if dropped > 0 {
            message.push_str(&format!(", {dropped} dropped (retry buffer full)"));
        }
        SinkError(message)
    }

    /// Writes what earlier failures left, oldest first.
    fn retry_pending(&mut self) -> SinkResult {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        let (written, error) = self.write_lines(pending.make_contiguous());
        let freed: usize = pending.drain(..written).map(|r| r.json.len()).sum();
        self.pending = pending;
        self.pending_bytes -= freed;
        SinkCounters::add(&self.counters.shipped, written as u64);
        SinkCounters::add(&self.counters.retried, written as u64);
        match error {
            Some(e) => Err(self.write_failed(&e, 0)),
            None => Ok(()),
        }
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        "file"
    }

    fn send(&mut self, batch: &[Record]) -> SinkResult {
        if !self.pending.is_empty() {
            // Keep order: new records wait behind the old ones for the next tick.
            let dropped = self.keep(batch);
            if dropped > 0 {
                let message = format!(
                    "file {}: retry buffer full, {dropped} records dropped",
                    self.path.display()
                );
                return Err(SinkError(message));
            }
            return Ok(());
        }
        let (written, error) = self.write_lines(batch);
        SinkCounters::add(&self.counters.shipped, written as u64);
        match error {
            None => Ok(()),
            Some(e) => {
                let dropped = self.keep(&batch[written..]);
                Err(self.write_failed(&e, dropped))
            }
        }
    }

    fn tick(&mut self, _now: Instant) -> SinkResult {
        self.retry_pending()
    }

    fn flush(&mut self, _deadline: Instant) -> SinkResult {
        // Writes are not buffered in user space: only leftovers of failed writes remain.
        let Err(why) = self.retry_pending() else {
            return Ok(());
        };
        let lost = self.pending.len();
        SinkCounters::add(&self.counters.dead_lettered, lost as u64);
        self.pending.clear();
        self.pending_bytes = 0;
        Err(SinkError(format!("{why}; at exit: {lost} records lost")))
    }

    fn reopen(&mut self) -> SinkResult {
        // On failure keep writing to the old descriptor: a rotated file still beats no file.
        self.file = open_append(&self.path)?;
        self.torn = false;
        Ok(())
    }

    fn release_buffers(&mut self) {
        self.buf = Vec::new();
        self.ends = Vec::new();
    }

    fn counters(&self) -> &SinkCounters {
        &self.counters
    }
}

fn open_append(path: &Path) -> Result<File, SinkError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if e.kind() == io::ErrorKind::NotFound && !dir.is_dir() {
                SinkError(format!(
                    "file {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                ))
            } else {
                SinkError(format!(
                    "file {}: cannot open for appending: {e}",
                    path.display()
                ))
            }
        })
}

/// Writes all of `buf` unless an error stops it; returns the bytes written and that error.
fn write_counting(file: &mut File, buf: &[u8]) -> (usize, Option<io::Error>) {
    let mut written = 0;
    while written < buf.len() {
        match file.write(&buf[written..]) {
            Ok(0) => return (written, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Some(e)),
        }
    }
    (written, None)
}

/// After writing `written` bytes of a buffer whose lines end at `ends` (after a `lead` of 0 or
/// 1 byte): how many lines are complete, and whether the file now ends inside a line (`None`
/// when nothing was written, so that is unchanged).
fn after_write(lead: usize, ends: &[usize], written: usize) -> (usize, Option<bool>) {
    let complete = ends.partition_point(|&end| end <= written);
    if written == 0 {
        return (complete, None);
    }
    let at_line_end = written == lead || (complete > 0 && ends[complete - 1] == written);
    (complete, Some(!at_line_end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::os::unix::fs::PermissionsExt;

    fn record(id: &str, body: &str) -> Record {
        Record {
            id: id.to_owned(),
            json: serde_json::json!({ "id": id, "body": body }).to_string(),
        }
    }

    fn records(prefix: &str, n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| record(&format!("{prefix}{i}"), "x"))
            .collect()
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn json_lines(recs: &[Record]) -> Vec<String> {
        recs.iter().map(|r| r.json.clone()).collect()
    }

    #[test]
    fn released_buffers_are_rebuilt_by_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let mut sink = FileSink::open(&path).unwrap();
        let first = records("a", 100);
        sink.send(&first).unwrap();
        assert!(sink.buf.capacity() > 0);
        sink.release_buffers();
        assert_eq!((sink.buf.capacity(), sink.ends.capacity()), (0, 0));
        let second = records("b", 3);
        sink.send(&second).unwrap();
        assert_eq!(lines(&path), json_lines(&[first, second].concat()));
    }

    #[test]
    fn from_file_writes_to_the_given_descriptor_and_reopens_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let inherited = dir.path().join("inherited.ndjson");
        let path = dir.path().join("events.ndjson");
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&inherited)
            .unwrap();
        let mut sink = FileSink::from_file(&path, file);
        sink.send(&records("a", 2)).unwrap();
        assert_eq!(lines(&inherited), json_lines(&records("a", 2)));
        assert!(!path.exists(), "the path is only opened on reopen");
        sink.reopen().unwrap();
        sink.send(&records("b", 1)).unwrap();
        assert_eq!(lines(&path), json_lines(&records("b", 1)));
        assert_eq!(lines(&inherited).len(), 2);
    }

    #[test]
    fn appends_one_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::fs::write(&path, "earlier line\n").unwrap();
        let mut sink = FileSink::open(&path).unwrap();
        let (a, b) = (records("a", 3), records("b", 2));
        sink.send(&a).unwrap();
        sink.send(&b).unwrap();
        sink.send(&[]).unwrap();
        let mut expected = vec!["earlier line".to_owned()];
        expected.extend(json_lines(&a));
        expected.extend(json_lines(&b));
        assert_eq!(lines(&path), expected);
        assert!(std::fs::read(&path).unwrap().ends_with(b"\n"));
        assert_eq!(sink.counters().snapshot().shipped, 5);
    }

    #[test]
    fn new_file_is_not_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        FileSink::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "mode {mode:o} grants more than 0640");
        assert_eq!(
            mode & 0o600,
            0o600,
            "mode {mode:o}: owner cannot read and write"
        );
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("events.ndjson");
        let err = FileSink::open(&path).err().expect("open must fail");
        assert!(
            err.0.contains("no-such-dir") && err.0.contains("does not exist"),
            "{err}"
        );
        assert!(
            !dir.path().join("no-such-dir").exists(),
            "the directory must not be created"
        );
    }

    #[test]
    fn failed_writes_are_kept_and_retried_in_order() {
        if !Path::new("/dev/full").exists() {
            eprintln!("SKIPPED: /dev/full is missing, cannot make writes fail");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut sink = FileSink::open(&path).unwrap();
        let (a, b) = (records("a", 3), records("b", 2));

        let err = sink.send(&a).unwrap_err();
        assert!(err.0.contains("3 records kept"), "{err}");
        // While records wait, new ones queue behind them without a write attempt.
        sink.send(&b).unwrap();
        assert!(sink.tick(Instant::now()).is_err());
        assert_eq!(sink.pending(), 5);
        let c = sink.counters().snapshot();
        assert_eq!(
            (c.shipped, c.failed_requests, c.retried, c.dead_lettered),
            (0, 2, 0, 0)
        );

        // The disk "comes back": the path is now a regular file.
        std::fs::remove_file(&path).unwrap();
        sink.reopen().unwrap();
        sink.tick(Instant::now()).unwrap();
        assert_eq!(sink.pending(), 0);
        assert_eq!(lines(&path), [json_lines(&a), json_lines(&b)].concat());
        let c = sink.counters().snapshot();
        assert_eq!(
            (c.shipped, c.failed_requests, c.retried, c.dead_lettered),
            (5, 2, 5, 0)
        );
    }

    #[test]
    fn retry_buffer_is_bounded_and_losses_are_counted() {
        if !Path::new("/dev/full").exists() {
            eprintln!("SKIPPED: /dev/full is missing, cannot make writes fail");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let batch = records("r", 10);
        let per_record = batch[0].json.len();
        let mut sink = FileSink::open(&path)
            .unwrap()
            .with_max_pending_bytes(per_record * 4);
        let err = sink.send(&batch).unwrap_err();
        assert!(
            err.0.contains("4 records kept") && err.0.contains("6 dropped"),
            "{err}"
        );
        let err = sink.send(&batch[..1]).unwrap_err();
        assert!(err.0.contains("1 records dropped"), "{err}");
        assert_eq!(sink.counters().snapshot().dead_lettered, 7);
        // At exit, what still cannot be written is reported and counted.
        let err = sink.flush(Instant::now()).unwrap_err();
        assert!(err.0.contains("4 records lost"), "{err}");
        assert_eq!(sink.pending(), 0);
        let c = sink.counters().snapshot();
        assert_eq!((c.shipped, c.dead_lettered, c.failed_requests), (0, 11, 2));
    }

    #[test]
    fn reopen_follows_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let rotated = dir.path().join("events.ndjson.1");
        let mut sink = FileSink::open(&path).unwrap();
        let (a, b) = (records("a", 2), records("b", 3));
        sink.send(&a).unwrap();
        std::fs::rename(&path, &rotated).unwrap();
        sink.reopen().unwrap();
        sink.send(&b).unwrap();
        assert_eq!(lines(&rotated), json_lines(&a));
        assert_eq!(lines(&path), json_lines(&b));
    }

    #[test]
    fn failed_reopen_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("logs");
        std::fs::create_dir(&sub).unwrap();
        let mut sink = FileSink::open(sub.join("events.ndjson")).unwrap();
        let moved = dir.path().join("logs.old");
        std::fs::rename(&sub, &moved).unwrap();
        let err = sink.reopen().unwrap_err();
        assert!(err.0.contains("does not exist"), "{err}");
        let batch = records("a", 2);
        sink.send(&batch).unwrap();
        assert_eq!(lines(&moved.join("events.ndjson")), json_lines(&batch));
    }

    #[test]
    fn concurrent_appenders_never_interleave_lines() {
        // Four sinks on one path stand for four nginx workers, each with its own descriptor.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut sink = FileSink::open(&path).unwrap();
                    for b in 0..40 {
                        // Sizes from a few bytes to 70 KB, so some batches take several writes.
                        let batch: Vec<Record> = (0..20)
                            .map(|i| {
                                let size = if (b + i) % 7 == 0 {
                                    70_000
                                } else {
                                    (b * 31 + i * 17) % 900
                                };
                                record(&format!("w{w}-b{b}-{i}"), &"y".repeat(size))
                            })
                            .collect();
                        sink.send(&batch).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let mut ids = HashSet::new();
        for line in lines(&path) {
            let doc: serde_json::Value =
                serde_json::from_str(&line).expect("every line is one whole record");
            assert!(
                ids.insert(doc["id"].as_str().unwrap().to_owned()),
                "duplicate {line:.40}"
            );
        }
        assert_eq!(ids.len(), 4 * 40 * 20);
    }

    #[test]
    fn line_accounting_after_a_short_write() {
        // Lines end at 10, 20, 30; a lead newline repairs an earlier partial line.
        assert_eq!(after_write(0, &[10, 20, 30], 0), (0, None));
        assert_eq!(after_write(0, &[10, 20, 30], 30), (3, Some(false)));
        assert_eq!(after_write(0, &[10, 20, 30], 20), (2, Some(false)));
        assert_eq!(after_write(0, &[10, 20, 30], 25), (2, Some(true)));
        assert_eq!(after_write(0, &[10, 20, 30], 5), (0, Some(true)));
        assert_eq!(after_write(1, &[11, 21], 1), (0, Some(false)));
        assert_eq!(after_write(1, &[11, 21], 12), (1, Some(true)));
    }
}
