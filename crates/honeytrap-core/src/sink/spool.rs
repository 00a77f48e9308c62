//! A bounded, crash-safe, ordered on-disk queue of [`Record`]s.
//!
//! Network sinks (Elasticsearch, MISP) put records here while their server is unreachable and
//! replay them oldest-first once it answers again.
//!
//! # Layout
//!
//! The spool directory holds numbered segment files `seg-<20 digits>.ndjson` and a `cursor`
//! file. Each segment is NDJSON, one record a line, the event embedded verbatim so that the
//! files stay readable with `jq`:
//!
//! ```text
//! {"id":"<event id>","crc":<crc32 of id, "\n", event>,"event":<the ECS document>}
//! ```
//!
//! New records are appended to the newest segment; a new segment is started once the current
//! one passes a size limit, so that delivered records can be freed by deleting whole files.
//! `cursor` names the first record not yet committed (segment number and byte offset); it is
//! replaced atomically (write a temporary file, fsync, rename).
//!
//! # Crash safety and fsync policy
//!
//! * `push` writes whole lines and calls `fdatasync` once per call, so a record is on disk when
//!   `push` returns. A crash inside `push` leaves at most one torn line at the end of the newest
//!   segment; `open` truncates it away. A line whose checksum does not match (e.g. garbage from
//!   a power loss) is skipped.
//! * `commit` fsyncs the new cursor before it deletes consumed segments. A crash before the
//!   cursor is durable replays already delivered records after a restart: delivery is
//!   at-least-once, and consumers make replays harmless (Elasticsearch `create` with the event
//!   id as `_id` answers 409 for a document it already has).
//!
//! # Concurrency
//!
//! A spool directory belongs to exactly one [`Spool`] in one process: every nginx worker gets
//! its own directory from the caller, so there is no cross-process locking. Two processes
//! opening the same directory would corrupt each other's queue.
//!
//! # Bounds
//!
//! `max_bytes` bounds the bytes of records not yet committed (lines as stored, newline
//! included). Disk use can exceed it by up to one segment of already-committed records, which
//! is freed when the cursor leaves that segment or the spool becomes empty.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Record;

const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".ndjson";
const CURSOR_FILE: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
const CURSOR_MAGIC: &str = "honeytrap-spool-cursor-v1";

/// A position in the spool: segment number and byte offset inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    seq: u64,
    offset: u64,
}

/// A record read ahead of the cursor, with what committing it means.
#[derive(Debug)]
struct Entry {
    record: Record,
    /// Position just past this record's line.
    end: Position,
    /// Bytes this record counts against `max_bytes`.
    size: u64,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_limit: u64,
    /// Segments on disk holding uncommitted records (or the empty/consumed newest one), oldest
    /// first, with their sizes.
    segments: VecDeque<(u64, u64)>,
    /// Append handle of the newest segment, opened lazily.
    writer: Option<File>,
    /// Number of the segment `push` appends to (may not exist yet).
    write_seq: u64,
    /// First uncommitted record, as persisted in `cursor`.
    cursor: Position,
    /// Records already read from disk but not committed; `peek` serves from here.
    ahead: VecDeque<Entry>,
    /// Where reading continues after `ahead`.
    read_pos: Position,
    reader: Option<SegmentReader>,
    len: u64,
    bytes: u64,
}

impl Spool {
    /// Opens (creating if missing) the spool in `dir` and recovers what a previous process left
    /// there; a torn last line is cut off.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        // Segments small enough to be freed soon after delivery, large enough to keep the
        // number of files low.
        let segment_limit = (max_bytes / 8).clamp(64 * 1024, 16 * 1024 * 1024);
        Self::open_with_segment_limit(dir, max_bytes, segment_limit)
    }

    fn open_with_segment_limit(
        dir: &Path,
        max_bytes: u64,
        segment_limit: u64,
    ) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let _ = fs::remove_file(dir.join(CURSOR_TMP));

        let mut seqs = list_segments(dir)?;
        seqs.sort_unstable();

        let first = seqs.first().copied().unwrap_or(0);
        let mut cursor = read_cursor(dir).unwrap_or(Position {
            seq: first,
            offset: 0,
        });
        if !seqs.contains(&cursor.seq) {
            // The cursor's segment is gone (it was emptied): continue at the next one left.
            if let Some(&next) = seqs.iter().find(|&&s| s > cursor.seq) {
                cursor = Position {
                    seq: next,
                    offset: 0,
                };
            }
        }

        // Segments before the cursor were consumed; a crash kept them from being deleted.
        for &seq in seqs.iter().filter(|&&s| s < cursor.seq) {
            fs::remove_file(segment_path(dir, seq))?;
        }
        seqs.retain(|&s| s >= cursor.seq);

        let mut segments = VecDeque::with_capacity(seqs.len());
        let (mut len, mut bytes) = (0u64, 0u64);
        let last = seqs.last().copied();
        for &seq in &seqs {
            let path = segment_path(dir, seq);
            let start = if seq == cursor.seq { cursor.offset } else { 0 };
            let scan = scan_segment(&path, start)?;
            if Some(seq) == last && scan.clean_end < scan.file_len {
                // Torn last line: cut it off so later appends start on a fresh line.
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(scan.clean_end)?;
            }
            if seq == cursor.seq && cursor.offset > scan.clean_end {
                cursor.offset = scan.clean_end;
            }
            len += scan.records;
            bytes += scan.bytes;
            segments.push_back((seq, scan.clean_end));
        }

        let write_seq = last.unwrap_or(cursor.seq);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_limit,
            segments,
            writer: None,
            write_seq,
            cursor,
            ahead: VecDeque::new(),
            read_pos: cursor,
            reader: None,
            len,
            bytes,
        })
    }

    /// Appends records in order; returns how many fit under `max_bytes` (always a prefix of
    /// `records`: the caller dead-letters the rest). On an I/O error nothing of this call is
    /// kept.
    pub fn push(&mut self, records: &[Record]) -> io::Result<usize> {
        let mut lines = Vec::new();
        let mut added = 0u64;
        for record in records {
            let line = encode_line(record);
            if self.bytes + added + line.len() as u64 > self.max_bytes {
                break;
            }
            added += line.len() as u64;
            lines.push(line);
        }
        if lines.is_empty() {
            return Ok(0);
        }

        let before_segments = self.segments.clone();
        let before_write_seq = self.write_seq;
        match self.append_lines(&lines) {
            Ok(()) => {
                self.len += lines.len() as u64;
                self.bytes += added;
                Ok(lines.len())
            }
            Err(e) => {
                self.roll_back(&before_segments, before_write_seq);
                Err(e)
            }
        }
    }

    fn append_lines(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        for line in lines {
            let used = self.current_write_len() + buf.len() as u64;
            if used > 0 && used + line.len() as u64 > self.segment_limit {
                self.write_to_segment(&buf)?;
                buf.clear();
                self.start_new_segment()?;
            }
            buf.extend_from_slice(line);
        }
        self.write_to_segment(&buf)
    }

    fn current_write_len(&self) -> u64 {
        match self.segments.back() {
            Some(&(seq, size)) if seq == self.write_seq => size,
            _ => 0,
        }
    }

    /// Writes `buf` to the write segment and makes it durable.
    fn write_to_segment(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            let path = segment_path(&self.dir, self.write_seq);
            let created = !path.exists();
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            if created {
                sync_dir(&self.dir)?;
                self.segments.push_back((self.write_seq, 0));
            }
            self.writer = Some(file);
        }
        let writer = self.writer.as_mut().expect("opened above");
        writer.write_all(buf)?;
        writer.sync_data()?;
        if let Some(last) = self.segments.back_mut() {
            last.1 += buf.len() as u64;
        }
        Ok(())
    }

    fn start_new_segment(&mut self) -> io::Result<()> {
        self.writer = None;
        self.write_seq += 1;
        Ok(())
    }

    /// Undoes a failed `push`: truncates the segment it started in, deletes the ones it created.
    fn roll_back(&mut self, before: &VecDeque<(u64, u64)>, before_write_seq: u64) {
        self.writer = None;
        for &(seq, _) in self
            .segments
            .iter()
            .filter(|(s, _)| !before.iter().any(|(b, _)| b == s))
        {
            let _ = fs::remove_file(segment_path(&self.dir, seq));
        }
        if let Some(&(seq, size)) = before.back() {
            if let Ok(f) = OpenOptions::new()
                .write(true)
                .open(segment_path(&self.dir, seq))
            {
                let _ = f.set_len(size);
            }
        }
        self.segments = before.clone();
        self.write_seq = before_write_seq;
        // The reader may have buffered bytes that no longer exist.
        self.reader = None;
    }

    /// Up to `max` of the oldest records, without removing them.
    pub fn peek(&mut self, max: usize) -> io::Result<Vec<Record>> {
        self.read_ahead(max)?;
        Ok(self
            .ahead
            .iter()
            .take(max)
            .map(|e| e.record.clone())
            .collect())
    }

    /// Drops the `n` oldest records (after they were delivered) and persists that.
    pub fn commit(&mut self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        if n as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "spool commit of {n} records, but only {} are queued",
                    self.len
                ),
            ));
        }
        self.read_ahead(n)?;
        if self.ahead.len() < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spool segments end before the recorded length",
            ));
        }
        let mut cursor = self.cursor;
        let mut freed = 0u64;
        for entry in self.ahead.drain(..n) {
            cursor = entry.end;
            freed += entry.size;
        }
        self.len -= n as u64;
        self.bytes -= freed;

        let mut consumed = Vec::new();
        if self.len == 0 {
            // Empty: point at a fresh segment so that every file can go.
            cursor = Position {
                seq: self.write_seq + 1,
                offset: 0,
            };
            consumed.extend(self.segments.drain(..).map(|(seq, _)| seq));
            self.writer = None;
            self.reader = None;
            self.write_seq = cursor.seq;
            self.read_pos = cursor;
        } else {
            // Drop segments behind the cursor; step over one it has read to the end (never the
            // write segment).
            while let Some(&(seq, size)) = self.segments.front() {
                if seq < cursor.seq {
                    self.segments.pop_front();
                    consumed.push(seq);
                } else if seq == cursor.seq && cursor.offset >= size && seq != self.write_seq {
                    self.segments.pop_front();
                    consumed.push(seq);
                    let next = self.segments.front().map_or(seq + 1, |s| s.0);
                    cursor = Position {
                        seq: next,
                        offset: 0,
                    };
                } else {
                    break;
                }
            }
        }
        // The cursor must be durable before the files it skips disappear.
        write_cursor(&self.dir, cursor)?;
        self.cursor = cursor;
        for seq in consumed {
            if self.reader.as_ref().is_some_and(|r| r.seq == seq) {
                self.reader = None;
            }
            fs::remove_file(segment_path(&self.dir, seq))?;
        }
        Ok(())
    }

    /// Number of records queued.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of queued records, as counted against `max_bytes`.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Fills `ahead` with up to `want` records (fewer if the spool holds fewer).
    fn read_ahead(&mut self, want: usize) -> io::Result<()> {
        let mut line = Vec::new();
        while self.ahead.len() < want && (self.ahead.len() as u64) < self.len {
            let pos = self.read_pos;
            let size = self
                .segments
                .iter()
                .find(|(s, _)| *s == pos.seq)
                .map(|&(_, size)| size);
            if size.is_none_or(|size| pos.offset >= size) {
                // End of this segment: go on with the next one, if any.
                match self.segments.iter().find(|(s, _)| *s > pos.seq) {
                    Some(&(next, _)) => {
                        self.read_pos = Position {
                            seq: next,
                            offset: 0,
                        };
                        continue;
                    }
                    None => break,
                }
            }
            let size = size.unwrap_or(0);
            let reader = self.reader_at(pos)?;
            line.clear();
            // Never read past the recorded size: bytes beyond it belong to a push in progress
            // or rolled back.
            let n = (&mut reader.file)
                .take(size - pos.offset)
                .read_until(b'\n', &mut line)? as u64;
            reader.offset += n;
            if n == 0 {
                // Shorter on disk than recorded (should not happen): treat it as ended.
                self.read_pos.offset = size;
                continue;
            }
            self.read_pos.offset += n;
            if line.last() != Some(&b'\n') {
                continue;
            }
            if let Some(record) = decode_line(&line[..line.len() - 1]) {
                self.ahead.push_back(Entry {
                    record,
                    end: self.read_pos,
                    size: n,
                });
            }
        }
        Ok(())
    }

    /// The segment reader positioned at `pos`, reusing the open one when it is already there.
    fn reader_at(&mut self, pos: Position) -> io::Result<&mut SegmentReader> {
        let reuse = matches!(&self.reader, Some(r) if r.seq == pos.seq && r.offset == pos.offset);
        if !reuse {
            let mut file = File::open(segment_path(&self.dir, pos.seq))?;
            file.seek(SeekFrom::Start(pos.offset))?;
            self.reader = Some(SegmentReader {
                seq: pos.seq,
                offset: pos.offset,
                file: BufReader::with_capacity(64 * 1024, file),
            });
        }
        Ok(self.reader.as_mut().expect("set above"))
    }
}

#[derive(Debug)]
struct SegmentReader {
    seq: u64,
    /// Offset of the next byte `file` yields.
    offset: u64,
    file: BufReader<File>,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{seq:020}{SEGMENT_SUFFIX}"))
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name
            .strip_prefix(SEGMENT_PREFIX)
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
        {
            if let Ok(seq) = num.parse::<u64>() {
                seqs.push(seq);
            }
        }
    }
    Ok(seqs)
}

/// The persisted cursor, or `None` when it is missing or damaged (then everything left on disk
/// is replayed).
fn read_cursor(dir: &Path) -> Option<Position> {
    let text = fs::read_to_string(dir.join(CURSOR_FILE)).ok()?;
    let mut parts = text.trim_end().split(' ');
    if parts.next()? != CURSOR_MAGIC {
        return None;
    }
    let seq: u64 = parts.next()?.parse().ok()?;
    let offset: u64 = parts.next()?.parse().ok()?;
    let crc: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || crc != crc32(format!("{seq} {offset}").as_bytes()) {
        return None;
    }
    Some(Position { seq, offset })
}

fn write_cursor(dir: &Path, pos: Position) -> io::Result<()> {
    let body = format!("{} {}", pos.seq, pos.offset);
    let text = format!("{CURSOR_MAGIC} {body} {}\n", crc32(body.as_bytes()));
    let tmp = dir.join(CURSOR_TMP);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
    }
    fs::rename(&tmp, dir.join(CURSOR_FILE))?;
    sync_dir(dir)
}

/// Makes file creations, renames and deletions in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

struct Scan {
    records: u64,
    bytes: u64,
    /// Offset just past the last complete line.
    clean_end: u64,
    file_len: u64,
}

/// Counts the valid records of a segment from `start` on and finds where its complete lines end.
fn scan_segment(path: &Path, start: u64) -> io::Result<Scan> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let start = start.min(file_len);
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut scan = Scan {
        records: 0,
        bytes: 0,
        clean_end: start,
        file_len,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        scan.clean_end += n;
        if decode_line(&line[..line.len() - 1]).is_some() {
            scan.records += 1;
            scan.bytes += n;
        }
    }
    Ok(scan)
}

fn encode_line(record: &Record) -> Vec<u8> {
    // A raw line break would split the record; in JSON it can only be whitespace.
    let json: std::borrow::Cow<'_, str> = if record.json.contains(['\n', '\r']) {
        record.json.replace(['\n', '\r'], " ").into()
    } else {
        record.json.as_str().into()
    };
    let id = serde_json::to_string(&record.id).expect("a string always serializes");
    let crc = record_crc(&record.id, &json);
    let mut line = Vec::with_capacity(json.len() + id.len() + 40);
    line.extend_from_slice(b"{\"id\":");
    line.extend_from_slice(id.as_bytes());
    line.extend_from_slice(format!(",\"crc\":{crc},\"event\":").as_bytes());
    line.extend_from_slice(json.as_bytes());
    line.extend_from_slice(b"}\n");
    line
}

/// Parses a line written by [`encode_line`] (without its newline); `None` if it is damaged.
fn decode_line(line: &[u8]) -> Option<Record> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("{\"id\":")?;
    let id_len = json_string_len(rest)?;
    let id: String = serde_json::from_str(&rest[..id_len]).ok()?;
    let rest = rest[id_len..].strip_prefix(",\"crc\":")?;
    let digits = rest.find(',')?;
    let crc: u32 = rest[..digits].parse().ok()?;
    let json = rest[digits..]
        .strip_prefix(",\"event\":")?
        .strip_suffix('}')?;
    (crc == record_crc(&id, json)).then(|| Record {
        id,
        json: json.to_owned(),
    })
}

/// Length in bytes of the JSON string literal at the start of `s`, quotes included.
fn json_string_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn record_crc(id: &str, json: &str) -> u32 {
    let mut crc = Crc32::new();
    crc.update(id.as_bytes());
    crc.update(b"\n");
    crc.update(json.as_bytes());
    crc.finish()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(data);
    crc.finish()
}

/// CRC-32 (IEEE), enough to tell a damaged line from a good one without another dependency.
struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = CRC_TABLE[((self.0 ^ b as u32) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }

    fn finish(&self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: usize) -> Record {
        Record {
            id: format!("id-{i}"),
            json: format!(
                r#"{{"@timestamp":"2025-01-01T00:00:00Z","event":{{"id":"id-{i}"}},"n":{i}}}"#
            ),
        }
    }

    fn recs(range: std::ops::Range<usize>) -> Vec<Record> {
        range.map(rec).collect()
    }

    fn ids(records: &[Record]) -> Vec<String> {
        records.iter().map(|r| r.id.clone()).collect()
    }

    fn segment_files(dir: &Path) -> Vec<u64> {
        let mut s = list_segments(dir).unwrap();
        s.sort_unstable();
        s
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn line_round_trips_and_is_json() {
        let r = Record {
            id: "a\"b\\c\u{e9}".into(),
            json: r#"{"x":"q\"uote","y":[1,2]}"#.into(),
        };
        let line = encode_line(&r);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["id"], "a\"b\\c\u{e9}");
        assert_eq!(v["event"]["y"][1], 2);
        assert_eq!(decode_line(&line[..line.len() - 1]), Some(r));
    }

    #[test]
    fn damaged_line_is_rejected() {
        let line = encode_line(&rec(1));
        let mut bad = line[..line.len() - 1].to_vec();
        let at = bad.len() - 5;
        bad[at] ^= 0x01;
        assert_eq!(decode_line(&bad), None);
        assert_eq!(decode_line(b""), None);
        assert_eq!(decode_line(&[0u8; 40]), None);
        assert_eq!(decode_line(&line[..20]), None);
    }

    #[test]
    fn raw_line_breaks_in_the_event_become_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let r = Record {
            id: "x".into(),
            json: "{\"a\":\n1,\r\n\"b\":2}".into(),
        };
        assert_eq!(spool.push(&[r, rec(2)]).unwrap(), 2);
        let got = spool.peek(10).unwrap();
        assert_eq!(got[0].json, "{\"a\": 1,  \"b\":2}");
        assert_eq!(got[1], rec(2));
    }

    #[test]
    fn keeps_order_across_push_peek_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.push(&recs(0..5)).unwrap(), 5);
        assert_eq!(spool.push(&recs(5..8)).unwrap(), 3);
        assert_eq!(spool.len(), 8);
        assert_eq!(spool.peek(3).unwrap(), recs(0..3));
        // peek does not remove
        assert_eq!(spool.peek(100).unwrap(), recs(0..8));
        spool.commit(2).unwrap();
        assert_eq!(spool.len(), 6);
        assert_eq!(spool.peek(2).unwrap(), recs(2..4));
        // interleave a push with a read-ahead that already reached the end
        assert_eq!(spool.push(&recs(8..10)).unwrap(), 2);
        assert_eq!(spool.peek(100).unwrap(), recs(2..10));
        spool.commit(8).unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.bytes(), 0);
        assert_eq!(spool.peek(10).unwrap(), vec![]);
    }

    #[test]
    fn bytes_counts_stored_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.push(&recs(0..3)).unwrap();
        let expected: u64 = recs(0..3).iter().map(|r| encode_line(r).len() as u64).sum();
        assert_eq!(spool.bytes(), expected);
        spool.commit(1).unwrap();
        assert_eq!(spool.bytes(), expected - encode_line(&rec(0)).len() as u64);
    }

    #[test]
    fn push_stops_at_max_bytes_and_commit_frees_room() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode_line(&rec(0)).len() as u64;
        let mut spool = Spool::open(dir.path(), one * 3 + one / 2).unwrap();
        assert_eq!(spool.push(&recs(0..5)).unwrap(), 3);
        assert_eq!(spool.push(&recs(3..5)).unwrap(), 0);
        assert_eq!(spool.len(), 3);
        spool.commit(2).unwrap();
        assert_eq!(spool.push(&recs(3..6)).unwrap(), 2);
        assert_eq!(
            ids(&spool.peek(10).unwrap()),
            ids(&[rec(2), rec(3), rec(4)])
        );
    }

    #[test]
    fn a_record_larger_than_the_spool_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 50).unwrap();
        assert_eq!(spool.push(&recs(0..1)).unwrap(), 0);
        assert!(spool.is_empty());
    }

    #[test]
    fn reopen_recovers_uncommitted_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.push(&recs(0..10)).unwrap();
            spool.peek(4).unwrap();
        }
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 10);
        assert_eq!(spool.peek(100).unwrap(), recs(0..10));
    }

    #[test]
    fn commit_is_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let bytes;
        {
            let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.push(&recs(0..10)).unwrap();
            spool.commit(4).unwrap();
            bytes = spool.bytes();
        }
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 6);
        assert_eq!(spool.bytes(), bytes);
        assert_eq!(spool.peek(100).unwrap(), recs(4..10));
        spool.commit(6).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.is_empty());
    }

    #[test]
    fn torn_last_line_is_ignored_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.push(&recs(0..3)).unwrap();
        }
        // A crash in the middle of writing the fourth line.
        let seg = segment_path(dir.path(), segment_files(dir.path())[0]);
        let line = encode_line(&rec(3));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&line[..line.len() / 2]).unwrap();
        drop(f);

        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 3);
        assert_eq!(spool.peek(10).unwrap(), recs(0..3));
        // New records start on a fresh line.
        spool.push(&recs(4..6)).unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            ids(&spool.peek(10).unwrap()),
            ids(&[rec(0), rec(1), rec(2), rec(4), rec(5)])
        );
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.push(&recs(0..2)).unwrap();
        }
        let seg = segment_path(dir.path(), segment_files(dir.path())[0]);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"\0\0\0\0 not a record\n").unwrap();
        let mut bad = encode_line(&rec(2));
        bad[12] ^= 0x20; // flips a character inside: checksum no longer matches
        f.write_all(&bad).unwrap();
        f.write_all(&encode_line(&rec(3))).unwrap();
        drop(f);

        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 3);
        assert_eq!(
            ids(&spool.peek(10).unwrap()),
            ids(&[rec(0), rec(1), rec(3)])
        );
        spool.commit(3).unwrap();
        assert!(spool.is_empty());
    }

    #[test]
    fn segments_roll_and_are_deleted_when_consumed() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode_line(&rec(0)).len() as u64;
        // About three records a segment.
        let mut spool = Spool::open_with_segment_limit(dir.path(), 1 << 20, one * 3 + 5).unwrap();
        spool.push(&recs(0..4)).unwrap();
        spool.push(&recs(4..10)).unwrap();
        assert!(
            segment_files(dir.path()).len() >= 3,
            "{:?}",
            segment_files(dir.path())
        );
        assert_eq!(spool.peek(100).unwrap(), recs(0..10));

        spool.commit(7).unwrap();
        let left = segment_files(dir.path());
        assert!(left.len() <= 2, "consumed segments deleted: {left:?}");
        assert_eq!(spool.peek(100).unwrap(), recs(7..10));
        drop(spool);

        let mut spool = Spool::open_with_segment_limit(dir.path(), 1 << 20, one * 3 + 5).unwrap();
        assert_eq!(spool.peek(100).unwrap(), recs(7..10));
        spool.push(&recs(10..12)).unwrap();
        spool.commit(5).unwrap();
        assert!(segment_files(dir.path()).is_empty());
        spool.push(&recs(12..13)).unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.peek(100).unwrap(), recs(12..13));
    }

    #[test]
    fn leftover_consumed_segment_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode_line(&rec(0)).len() as u64;
        let limit = one * 2 + 5;
        let mut spool = Spool::open_with_segment_limit(dir.path(), 1 << 20, limit).unwrap();
        spool.push(&recs(0..6)).unwrap();
        let first = segment_files(dir.path())[0];
        let saved = fs::read(segment_path(dir.path(), first)).unwrap();
        spool.commit(3).unwrap();
        drop(spool);
        // A crash after the cursor was written, before the old segment was deleted.
        fs::write(segment_path(dir.path(), first), saved).unwrap();

        let mut spool = Spool::open_with_segment_limit(dir.path(), 1 << 20, limit).unwrap();
        assert_eq!(spool.peek(100).unwrap(), recs(3..6));
        assert!(!segment_files(dir.path()).contains(&first));
    }

    #[test]
    fn damaged_cursor_replays_everything_left() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.push(&recs(0..4)).unwrap();
            spool.commit(2).unwrap();
        }
        fs::write(
            dir.path().join(CURSOR_FILE),
            "honeytrap-spool-cursor-v1 0 99 12345\n",
        )
        .unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        // At-least-once: the delivered two come back rather than anything being lost.
        assert_eq!(spool.peek(100).unwrap(), recs(0..4));
    }

    #[test]
    fn commit_more_than_queued_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.push(&recs(0..2)).unwrap();
        let err = spool.commit(3).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(spool.len(), 2);
        spool.commit(0).unwrap();
        assert_eq!(spool.peek(5).unwrap(), recs(0..2));
    }

    #[test]
    fn creates_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/worker-0");
        let mut spool = Spool::open(&nested, 1 << 20).unwrap();
        spool.push(&recs(0..1)).unwrap();
        assert!(nested.is_dir());
    }

    #[test]
    fn many_small_pushes_and_commits_stay_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode_line(&rec(0)).len() as u64;
        let mut spool = Spool::open_with_segment_limit(dir.path(), 1 << 20, one * 4).unwrap();
        let mut next_in = 0;
        let mut next_out = 0;
        for round in 0..60 {
            let n = round % 5 + 1;
            assert_eq!(spool.push(&recs(next_in..next_in + n)).unwrap(), n);
            next_in += n;
            if round % 7 == 3 {
                drop(spool);
                spool = Spool::open_with_segment_limit(dir.path(), 1 << 20, one * 4).unwrap();
            }
            let take = (round % 4).min(spool.len() as usize);
            let got = spool.peek(take).unwrap();
            assert_eq!(got, recs(next_out..next_out + take));
            spool.commit(take).unwrap();
            next_out += take;
            assert_eq!(spool.len() as usize, next_in - next_out);
        }
        assert_eq!(spool.peek(1000).unwrap(), recs(next_out..next_in));
    }
}
