//! `honeytrap misp push`: events files through the module's own MISP sink (same settings
//! parser, aggregation, UUIDs and client), batch by batch, for sensors that cannot reach MISP.
//!
//! Idempotence has two layers. MISP events and attributes carry UUIDs derived from their
//! content, so the sink finds them again instead of duplicating them. Sightings cannot be
//! recognised that way (a repeat of a known value is a new sighting by design), so the ids of
//! the records that MISP accepted are appended to a state file, and a re-run skips them.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use honeytrap_core::sink::misp::{MispSettings, MispSink};
use honeytrap_core::sink::{Record, Sink};

use crate::{Failure, MispArgs, MispMode, Outcome};

/// How long one batch may take, all requests included, before the run gives up.
const BATCH_DEADLINE: Duration = Duration::from_secs(600);
const STATE_HEADER: &str = "# honeytrap misp push: ids of records MISP accepted, for ";

/// The record id: `event.id`, or a digest of the line for documents without one.
fn record_id(line: &str) -> String {
    let id = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["event"]["id"].as_str().map(str::to_owned));
    id.unwrap_or_else(|| {
        // FNV-1a: stable across runs and platforms, which std's hasher does not promise.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in line.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("line-{h:016x}")
    })
}

/// The pushed-ids ledger of one MISP instance.
struct State {
    path: PathBuf,
    done: HashSet<String>,
    out: File,
}

impl State {
    fn open(path: &Path, url: &str) -> Result<State, Failure> {
        let header = format!("{STATE_HEADER}{url}");
        let mut done = HashSet::new();
        let mut fresh = true;
        match File::open(path) {
            Ok(f) => {
                for (n, line) in BufReader::new(f).lines().enumerate() {
                    let line = line.map_err(|e| {
                        Failure::fatal(format!("cannot read state {}: {e}", path.display()))
                    })?;
                    if n == 0 {
                        fresh = false;
                        if line != header {
                            return Err(Failure::fatal(format!(
                                "state file {} belongs to another MISP ({}); give this one its own with --state",
                                path.display(),
                                line.strip_prefix(STATE_HEADER).unwrap_or(&line)
                            )));
                        }
                    } else if !line.is_empty() {
                        done.insert(line);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Failure::fatal(format!(
                    "cannot read state {}: {e}",
                    path.display()
                )))
            }
        }
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                Failure::fatal(format!(
                    "cannot write state {}: {e} (choose a writable place with --state)",
                    path.display()
                ))
            })?;
        if fresh {
            writeln!(out, "{header}")
                .map_err(|e| Failure::fatal(format!("cannot write state: {e}")))?;
        }
        Ok(State {
            path: path.to_owned(),
            done,
            out,
        })
    }

    fn commit(&mut self, records: &[Record]) -> Result<(), Failure> {
        let mut text = String::new();
        for r in records {
            text.push_str(&r.id);
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.sync_data())
            .map_err(|e| Failure::fatal(format!("cannot write state {}: {e}", self.path.display())))
    }
}

fn settings(args: &MispArgs) -> Result<MispSettings, Failure> {
    let mut kv: Vec<String> = vec![
        args.url.clone(),
        format!("key_file={}", args.key_file.display()),
        format!(
            "mode={}",
            match args.mode {
                MispMode::Daily => "daily",
                MispMode::Attacker => "attacker",
            }
        ),
        format!("distribution={}", args.distribution),
        format!("threat_level={}", args.threat_level),
        format!("publish={}", if args.publish { "on" } else { "off" }),
        format!("min_severity={}", args.min_severity),
        format!("timeout={}", args.timeout),
        format!("batch={}", args.batch),
    ];
    if let Some(t) = &args.tags {
        kv.push(format!("tags={t}"));
    }
    if let Some(ca) = &args.ca {
        kv.push(format!("ca={}", ca.display()));
    }
    let refs: Vec<&str> = kv.iter().map(String::as_str).collect();
    MispSettings::parse(&refs).map_err(|e| {
        // The module's messages name its directive; say it in this tool's words.
        Failure::fatal(
            e.replace("honeytrap_misp: ", "")
                .replace("key_file=<path>", "--key-file <path>"),
        )
    })
}

pub fn run(args: &MispArgs) -> Outcome {
    let settings = settings(args)?;
    let state_path = args.state.clone().unwrap_or_else(|| {
        let mut p = args.files[0].clone().into_os_string();
        p.push(".misp-pushed");
        PathBuf::from(p)
    });
    let mut state = State::open(&state_path, &settings.url)?;
    let batch = settings.batch;
    let mut sink = MispSink::new(settings).map_err(Failure::fatal)?;
    let stats = sink.stats();
    let counters = sink.shared_counters();
    let (mut read, mut skipped, mut pushed) = (0u64, 0u64, 0u64);
    let mut pending: Vec<Record> = Vec::with_capacity(batch);

    let mut deliver = |pending: &mut Vec<Record>, state: &mut State| -> Result<(), Failure> {
        if pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = sink.send(pending) {
            // Records MISP could never take (no timestamp, no source): said, not fatal.
            eprintln!("warning: {e}");
        }
        sink.flush(Instant::now() + BATCH_DEADLINE).map_err(|e| {
            Failure::fatal(format!(
                "{e}\n{pushed} records pushed before this; re-run the same command to push the rest (pushed records are skipped)"
            ))
        })?;
        pushed += pending.len() as u64;
        state.commit(pending)?;
        pending.clear();
        Ok(())
    };

    for path in &args.files {
        let f = File::open(path)
            .map_err(|e| Failure::fatal(format!("cannot open {}: {e}", path.display())))?;
        for line in BufReader::with_capacity(1 << 20, f).lines() {
            let line =
                line.map_err(|e| Failure::fatal(format!("reading {}: {e}", path.display())))?;
            if line.trim().is_empty() {
                continue;
            }
            read += 1;
            let id = record_id(&line);
            if !state.done.insert(id.clone()) {
                skipped += 1;
                continue;
            }
            pending.push(Record { id, json: line });
            if pending.len() >= batch {
                deliver(&mut pending, &mut state)?;
            }
        }
    }
    deliver(&mut pending, &mut state)?;
    let st = stats.snapshot();
    println!(
        "{read} records read, {skipped} already pushed (state {}), {pushed} sent",
        state_path.display()
    );
    println!(
        "MISP events: {} created, {} found; attributes: {} added, {} already there; {} sightings; {} published",
        st.events_created,
        st.events_found,
        st.attributes_added,
        st.attributes_existing,
        st.sightings,
        st.publishes
    );
    if st.skipped > 0 {
        println!("{} records below --min-severity not sent", st.skipped);
    }
    let unusable = counters.snapshot().dead_lettered;
    if unusable > 0 {
        println!("{unusable} records not usable for MISP (see the warnings above) were skipped");
    }
    if st.rejected > 0 {
        println!(
            "MISP refused {} request(s) for their content{}",
            st.rejected,
            st.last_error
                .map(|e| format!("; last: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_id_prefers_event_id_and_is_stable_otherwise() {
        assert_eq!(record_id(r#"{"event":{"id":"abc"}}"#), "abc");
        let a = record_id(r#"{"x":1}"#);
        assert_eq!(a, record_id(r#"{"x":1}"#));
        assert_ne!(a, record_id(r#"{"x":2}"#));
    }

    #[test]
    fn state_refuses_another_instance() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut s = State::open(&p, "http://a").unwrap();
        s.commit(&[Record {
            id: "r1".into(),
            json: String::new(),
        }])
        .unwrap();
        drop(s);
        assert!(State::open(&p, "http://a").unwrap().done.contains("r1"));
        let e = State::open(&p, "http://b").err().unwrap();
        assert!(e.message.contains("another MISP"), "{}", e.message);
    }
}
