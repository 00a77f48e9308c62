//! `honeytrap events report` on events files the tests generate with the core crate's own
//! serializer: the tables agree with counts made independently here, and the `--html` page
//! renders its charts in headless Chromium (screenshot decoded and inspected).

#[path = "support/events.rs"]
mod events;
#[path = "support/run.rs"]
mod run;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use honeytrap_core::event::{Kind, Observer};
use run::honeytrap;

fn generate(path: &Path, n: u64, sources: u64, seed: u64) {
    let mut out = BufWriter::new(File::create(path).unwrap());
    events::write_events(&mut out, n, sources, seed).unwrap();
    out.flush().unwrap();
}

/// What the report must say, counted from the generator's events directly.
struct Expected {
    by_kind: [u64; 3],
    top_source: (String, u64),
    reuse_pairs: usize,
    baits: usize,
}

fn expected(n: u64, sources: u64, seed: u64) -> Expected {
    let observer = Arc::new(Observer::new("sensor-1"));
    let mut rng = events::Rng::new(seed);
    let mut by_kind = [0u64; 3];
    let mut per_source: HashMap<String, u64> = HashMap::new();
    let mut pairs = HashSet::new();
    let mut baits = HashSet::new();
    for i in 0..n {
        let e = events::event(&mut rng, &observer, i, n, sources);
        by_kind[match e.kind {
            Kind::Decoy => 0,
            Kind::Bait => 1,
            Kind::Rules => 2,
        }] += 1;
        let ip = e.source.unwrap().ip().to_string();
        *per_source.entry(ip.clone()).or_default() += 1;
        if let Some(b) = &e.bait {
            baits.insert(b.name.clone());
            let served = e
                .attribution
                .as_ref()
                .unwrap()
                .served_to_ip
                .unwrap()
                .to_string();
            if served != ip {
                pairs.insert((served, ip.clone(), b.kind.clone(), b.name.clone()));
            }
        }
    }
    let top_source = per_source
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .unwrap();
    Expected {
        by_kind,
        top_source,
        reuse_pairs: pairs.len(),
        baits: baits.len(),
    }
}

#[test]
fn report_tables_agree_with_independent_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (n, sources, seed) = (5_000, 300, 7);
    generate(&dir.path().join("a.ndjson"), n, sources, seed);
    let o = honeytrap(&["events", "report", "a.ndjson", "--top", "3"], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let want = expected(n, sources, seed);
    assert!(
        out.starts_with(&format!(
            "honeytrap events report: {n} event(s) from 1 file(s)\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("time span: 2024-05-01T00:00:00Z .. 2024-05-07T"),
        "{out}"
    );
    for (kind, count) in ["decoy", "bait", "rules"].iter().zip(want.by_kind) {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} row in {out}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(count.to_string().as_str()),
            "{row}"
        );
    }
    let first_source = out
        .lines()
        .skip_while(|l| !l.starts_with("top sources"))
        .nth(2)
        .unwrap();
    let cells: Vec<&str> = first_source.split_whitespace().collect();
    assert_eq!(cells[0], want.top_source.0, "{out}");
    assert_eq!(cells[1], want.top_source.1.to_string(), "{out}");
    assert!(
        out.contains(&format!("baits touched ({})", want.baits)),
        "{out}"
    );
    assert!(
        out.contains(&format!("used from another ({} pairs)", want.reuse_pairs)),
        "{out}"
    );
    assert!(want.reuse_pairs > 0);
    assert!(out.contains("T1595"), "{out}");
    assert!(out.contains("top rules (4 distinct)"), "{out}");
}

#[test]
fn report_reads_several_files_and_stdin_and_skips_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("a.ndjson"), 100, 10, 1);
    generate(&dir.path().join("b.ndjson"), 50, 10, 2);
    let mut b = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("b.ndjson"))
        .unwrap();
    b.write_all(b"{truncated\n\n").unwrap();
    drop(b);
    let mut child = Command::new(env!("CARGO_BIN_EXE_honeytrap"))
        .args(["events", "report", "a.ndjson", "b.ndjson", "-"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    events::write_events(&mut stdin, 25, 10, 3).unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("175 event(s) from 3 file(s), 1 unreadable line(s) skipped"),
        "{out}"
    );
    assert!(out.contains("skipped: file 2 line 51:"), "{out}");
    // Not a terminal: no progress bar in the captured stderr.
    assert!(!String::from_utf8_lossy(&o.stderr).contains('\r'));

    let o = honeytrap(&["events", "report", "missing.ndjson"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot open missing.ndjson"));
}

/// Runs Chromium with a hard time limit; `None` when it is not installed.
fn screenshot(html: &Path, png: &Path, profile: &Path) -> Option<()> {
    let chromium = ["chromium", "/usr/bin/chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })?;
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1000,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            return Some(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took more than 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn close(p: &[u8], c: (u8, u8, u8)) -> bool {
    p[0].abs_diff(c.0) <= 16 && p[1].abs_diff(c.1) <= 16 && p[2].abs_diff(c.2) <= 16
}

#[test]
fn report_html_renders_its_charts_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("a.ndjson"), 3_000, 200, 11);
    let o = honeytrap(
        &["events", "report", "a.ndjson", "--html", "out.html"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html_path = dir.path().join("out.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    // Self-contained: no script, nothing loaded from elsewhere.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src="));
    assert!(!html.contains("href="));
    assert!(html.contains("<svg id=\"timeline\""));

    let png_path = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    if screenshot(&html_path, &png_path, &profile).is_none() {
        println!("SKIPPED: chromium is not installed (apt-get install -y chromium)");
        return;
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(File::open(&png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    assert_eq!((w, h), (1000, 2000));
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG color type {other:?}"),
    };
    let px = |x: usize, y: usize| &buf[(y * w + x) * channels..(y * w + x) * channels + 3];
    // The timeline sits between the summary cards and the kinds chart: count its bar colors
    // there, per kind, and the distinct columns holding any bar.
    let colors = [(0xd9, 0x48, 0x0f), (0xf5, 0x9f, 0x00), (0x1c, 0x7e, 0xd6)];
    let mut counts = [0usize; 3];
    let mut columns = HashSet::new();
    for y in 150..520 {
        for x in 0..w {
            for (i, c) in colors.iter().enumerate() {
                if close(px(x, y), *c) {
                    counts[i] += 1;
                    columns.insert(x);
                }
            }
        }
    }
    assert!(
        counts.iter().all(|&c| c > 1_000),
        "timeline colors missing in the screenshot: {counts:?}"
    );
    assert!(
        columns.len() > 300,
        "bars cover only {} columns",
        columns.len()
    );
    // The page below (bar charts) is drawn too: rule purple and technique red appear.
    let mut purple = 0;
    let mut red = 0;
    for y in 520..h {
        for x in 0..w {
            purple += usize::from(close(px(x, y), (0x70, 0x48, 0xe8)));
            red += usize::from(close(px(x, y), (0xc2, 0x25, 0x5c)));
        }
    }
    assert!(
        purple > 1_000 && red > 1_000,
        "bar charts missing: {purple} {red}"
    );
}

#[test]
fn report_draws_a_progress_bar_on_a_terminal_only() {
    // util-linux `script` gives the command a pseudo-terminal and logs what it drew.
    if Command::new("script").arg("--version").output().is_err() {
        println!("SKIPPED: `script` (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("a.ndjson"), 2_000, 20, 3);
    let cmd = format!(
        "{} events report a.ndjson >/dev/null",
        env!("CARGO_BIN_EXE_honeytrap")
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "tty.log"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(dir.path().join("tty.log")).unwrap();
    assert!(log.contains("%") && log.contains(" lines "), "{log:?}");
    let o = honeytrap(
        &["events", "report", "--no-progress", "a.ndjson"],
        dir.path(),
    );
    assert!(o.stderr.is_empty());
}
