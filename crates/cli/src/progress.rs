//! A one-line progress bar on stderr, drawn only when stderr is a terminal (never into logs
//! or pipes), at most ten times a second so that drawing costs nothing next to the work.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const WIDTH: usize = 30;
const EVERY: Duration = Duration::from_millis(100);

pub struct Progress {
    total: u64,
    done: u64,
    enabled: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// `total` bytes are expected (0 when unknown, e.g. standard input).
    pub fn new(total: u64, wanted: bool) -> Progress {
        Progress {
            total,
            done: 0,
            enabled: wanted && std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
        }
    }

    /// Records `bytes` more and redraws if it is time; `lines` is shown as a count.
    pub fn advance(&mut self, bytes: u64, lines: u64) {
        self.done += bytes;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < EVERY) {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.started).as_secs_f64().max(0.001);
        let rate = self.done as f64 / secs / 1e6;
        let line = if self.total > 0 {
            let frac = (self.done as f64 / self.total as f64).min(1.0);
            let filled = (frac * WIDTH as f64) as usize;
            format!(
                "\r[{}{}] {:5.1}% {lines} lines {rate:.0} MB/s ",
                "#".repeat(filled),
                "-".repeat(WIDTH - filled),
                frac * 100.0
            )
        } else {
            format!("\r{lines} lines {rate:.0} MB/s ")
        };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }

    /// Clears the bar so the report starts on a clean line.
    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(WIDTH + 40));
            let _ = err.flush();
        }
    }
}
