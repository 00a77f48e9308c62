//! `honeytrap misp push` against the MISP contract fake (every request checked against
//! shared/misp/openapi.yaml): it builds what the module's sink builds from the same records,
//! a re-run adds nothing, and a MISP that is down loses nothing.

#[path = "support/events.rs"]
mod events;
#[path = "../../honeytrap-core/tests/support/fake_misp.rs"]
mod fake_misp;
#[path = "support/run.rs"]
mod run;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use fake_misp::{Behavior, FakeMisp, State};
use honeytrap_core::sink::misp::{MispSettings, MispSink};
use honeytrap_core::sink::{Record, Sink};
use run::honeytrap;

const KEY: &str = "Zq3xV8mN2bC5dF7gH9jK1lP4sT6wY0aE2rU4iO6p";

fn setup(n: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), format!("{KEY}\n")).unwrap();
    let path = dir.path().join("events.ndjson");
    let mut out = BufWriter::new(File::create(&path).unwrap());
    events::write_events(&mut out, n, 15, 5).unwrap();
    out.flush().unwrap();
    (dir, path)
}

fn push(fake: &FakeMisp, dir: &Path, extra: &[&str]) -> Output {
    let url = fake.url();
    let mut args = vec![
        "misp",
        "push",
        "events.ndjson",
        "--url",
        &url,
        "--key-file",
        "key",
        "--timeout",
        "5s",
    ];
    args.extend_from_slice(extra);
    honeytrap(&args, dir)
}

/// Events (uuid, info), attributes (event uuid, type, value) and the sighting count.
type Content = (
    BTreeSet<(String, String)>,
    BTreeSet<(String, String, String)>,
    usize,
);

/// What MISP holds, independent of ids and creation times.
fn content(s: &State) -> Content {
    let events = s
        .events
        .iter()
        .map(|e| (e.uuid.clone(), e.info.clone()))
        .collect();
    let attrs = s
        .attributes
        .iter()
        .map(|a| {
            let ev = s.events.iter().find(|e| e.id == a.event_id).unwrap();
            (ev.uuid.clone(), a.kind.clone(), a.value.clone())
        })
        .collect();
    (events, attrs, s.sightings.len())
}

#[test]
fn push_builds_what_the_module_sink_builds() {
    let (dir, path) = setup(1_200);
    let fake = FakeMisp::start(KEY);
    let o = push(&fake, dir.path(), &["--tags", "source:honeytrap-test"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}{err}");
    fake.assert_clean();
    assert!(out.contains("1200 records read, 0 already pushed"), "{out}");

    // The module's sink, fed the same records in process, against a second fake.
    let reference = FakeMisp::start(KEY);
    let url = reference.url();
    let kf = format!("key_file={}", dir.path().join("key").display());
    let settings = MispSettings::parse(&[
        url.as_str(),
        kf.as_str(),
        "tags=source:honeytrap-test",
        "timeout=5s",
    ])
    .unwrap();
    let mut sink = MispSink::new(settings).unwrap();
    let records: Vec<Record> = BufReader::new(File::open(&path).unwrap())
        .lines()
        .map(|l| {
            let json = l.unwrap();
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            Record {
                id: v["event"]["id"].as_str().unwrap().to_owned(),
                json,
            }
        })
        .collect();
    sink.send(&records).unwrap();
    sink.flush(Instant::now() + Duration::from_secs(60))
        .unwrap();

    let (ours, theirs) = (fake.state(), reference.state());
    assert_eq!(
        ours.events.len(),
        7,
        "one event per day of the week spanned"
    );
    assert_eq!(content(&ours), content(&theirs));
    let tags: BTreeSet<&String> = ours.events.iter().flat_map(|e| &e.tags).collect();
    let ref_tags: BTreeSet<&String> = theirs.events.iter().flat_map(|e| &e.tags).collect();
    assert_eq!(tags, ref_tags);
    assert!(tags.iter().any(|t| *t == "source:honeytrap-test"));
}

#[test]
fn rerun_adds_nothing_and_a_new_state_file_adds_no_event_or_attribute() {
    let (dir, _) = setup(400);
    let fake = FakeMisp::start(KEY);
    assert!(push(&fake, dir.path(), &[]).status.success());
    let before = content(&fake.state());
    let requests = fake.requests().len();
    assert!(before.1.len() > 10);

    let o = push(&fake, dir.path(), &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("400 records read, 400 already pushed"),
        "{out}"
    );
    assert_eq!(fake.requests().len(), requests, "a re-run sent requests");
    assert_eq!(content(&fake.state()), before);

    // Without the state file, MISP's UUIDs still keep events and attributes single.
    let o = push(&fake, dir.path(), &["--state", "other-state"]);
    assert!(o.status.success());
    let after = content(&fake.state());
    assert_eq!((&after.0, &after.1), (&before.0, &before.1));
    fake.assert_clean();
}

#[test]
fn misp_down_fails_with_advice_and_a_rerun_completes() {
    let (dir, _) = setup(1_200);
    let fake = FakeMisp::start(KEY);
    fake.set_behavior(Behavior::Down);
    let o = push(&fake, dir.path(), &["--batch", "500"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("re-run the same command"), "{err}");
    assert!(fake.state().events.is_empty());

    fake.set_behavior(Behavior::Ok);
    let o = push(&fake, dir.path(), &["--batch", "500"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("1200 records read, 0 already pushed"), "{out}");
    assert_eq!(fake.state().events.len(), 7);
    fake.assert_clean();
}

#[test]
fn refused_key_and_bad_flags_are_explained() {
    let (dir, _) = setup(20);
    let fake = FakeMisp::start("another-key-entirely-0123456789abcdefghij");
    let o = push(&fake, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("403") || err.to_lowercase().contains("key"),
        "{err}"
    );

    let o = push(&fake, dir.path(), &["--threat-level", "9"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("threat_level=9"), "{err}");

    std::fs::remove_file(dir.path().join("key")).unwrap();
    let o = push(&fake, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("key"));
}
