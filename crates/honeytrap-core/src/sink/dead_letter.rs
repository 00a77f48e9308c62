//! Where a sink puts records it gives up on, with the reason, so that nothing vanishes silently.
//!
//! One NDJSON line per record: `{"reason":"...","id":"...","event":<the original document>}`.
//! The file is opened in append mode and each call writes its lines with a single `write`, so
//! several nginx workers can share one dead-letter file without interleaving lines.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Record, SinkCounters};

#[derive(Debug)]
pub struct DeadLetter {
    path: Option<PathBuf>,
    file: Option<File>,
}

impl DeadLetter {
    /// Appends to `path`, creating it (and missing parent directories) now so that a bad path
    /// is reported at start-up rather than at the first failure.
    pub fn open(path: &Path) -> io::Result<DeadLetter> {
        let file = open_append(path)?;
        Ok(DeadLetter {
            path: Some(path.to_path_buf()),
            file: Some(file),
        })
    }

    /// No file configured: records are only counted (and the sink reports the failure).
    pub fn discard() -> DeadLetter {
        DeadLetter {
            path: None,
            file: None,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Dead-letters `records` for `reason` and counts them in `dead_lettered`. They count even
    /// when the file cannot be written: they have left the pipeline either way.
    pub fn write(
        &mut self,
        reason: &str,
        records: &[Record],
        counters: &SinkCounters,
    ) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        SinkCounters::add(&counters.dead_lettered, records.len() as u64);
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.json.len() + 64).sum());
        for record in records {
            append_line(&mut buf, reason, record);
        }
        file.write_all(&buf)
    }

    /// Reopens the file after log rotation (`nginx -s reopen`).
    pub fn reopen(&mut self) -> io::Result<()> {
        if let Some(path) = &self.path {
            self.file = Some(open_append(path)?);
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    // Events carry attacker input and captured credentials: not world-readable.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

fn append_line(buf: &mut Vec<u8>, reason: &str, record: &Record) {
    buf.extend_from_slice(b"{\"reason\":");
    buf.extend_from_slice(json_string(reason).as_bytes());
    buf.extend_from_slice(b",\"id\":");
    buf.extend_from_slice(json_string(&record.id).as_bytes());
    buf.extend_from_slice(b",\"event\":");
    if serde_json::from_str::<serde::de::IgnoredAny>(&record.json).is_ok() {
        // Valid JSON may still hold raw line breaks as whitespace; they would split the line.
        if record.json.contains(['\n', '\r']) {
            buf.extend_from_slice(record.json.replace(['\n', '\r'], " ").as_bytes());
        } else {
            buf.extend_from_slice(record.json.as_bytes());
        }
    } else {
        // Not JSON (perhaps why it was rejected): keep it, as a string.
        buf.extend_from_slice(json_string(&record.json).as_bytes());
    }
    buf.extend_from_slice(b"}\n");
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn lines(path: &Path) -> Vec<Value> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn writes_reason_id_and_the_event_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dead.ndjson");
        let counters = SinkCounters::default();
        let mut dl = DeadLetter::open(&path).unwrap();
        let records = [
            Record {
                id: "a".into(),
                json: r#"{"@timestamp":"x","n":1}"#.into(),
            },
            Record {
                id: "b\"q".into(),
                json: "{\"n\":\n2}".into(),
            },
        ];
        dl.write("mapper_parsing_exception: bad", &records, &counters)
            .unwrap();
        dl.write("spool full", &records[..1], &counters).unwrap();

        let got = lines(&path);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            json!({"reason": "mapper_parsing_exception: bad", "id": "a", "event": {"@timestamp": "x", "n": 1}})
        );
        assert_eq!(got[1]["id"], "b\"q");
        assert_eq!(got[1]["event"]["n"], 2);
        assert_eq!(got[2]["reason"], "spool full");
        assert_eq!(counters.snapshot().dead_lettered, 3);
    }

    #[test]
    fn invalid_json_is_kept_as_a_string() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        let counters = SinkCounters::default();
        let mut dl = DeadLetter::open(&path).unwrap();
        dl.write(
            "r",
            &[Record {
                id: "x".into(),
                json: "{broken\n".into(),
            }],
            &counters,
        )
        .unwrap();
        assert_eq!(lines(&path)[0]["event"], "{broken\n");
    }

    #[test]
    fn discard_only_counts() {
        let counters = SinkCounters::default();
        let mut dl = DeadLetter::discard();
        dl.write(
            "r",
            &[Record {
                id: "x".into(),
                json: "{}".into(),
            }],
            &counters,
        )
        .unwrap();
        assert_eq!(counters.snapshot().dead_lettered, 1);
        assert_eq!(dl.path(), None);
        dl.reopen().unwrap();
    }

    #[test]
    fn reopen_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        let counters = SinkCounters::default();
        let mut dl = DeadLetter::open(&path).unwrap();
        dl.write(
            "one",
            &[Record {
                id: "1".into(),
                json: "{}".into(),
            }],
            &counters,
        )
        .unwrap();
        fs::rename(&path, dir.path().join("dead.ndjson.1")).unwrap();
        dl.reopen().unwrap();
        dl.write(
            "two",
            &[Record {
                id: "2".into(),
                json: "{}".into(),
            }],
            &counters,
        )
        .unwrap();
        assert_eq!(lines(&path).len(), 1);
        assert_eq!(lines(&dir.path().join("dead.ndjson.1"))[0]["reason"], "one");
    }

    #[test]
    fn file_is_not_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        DeadLetter::open(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o007, 0);
    }
}
