//! Writes a synthetic events file (NDJSON, the module's document shape) to stdout, for the
//! `events report` benchmark: `gen_events <count> [sources] [seed]`.

#[path = "../tests/support/events.rs"]
mod events;

use std::io::{BufWriter, Write};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let total = match args.next() {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: gen_events <count> [sources] [seed]");
            std::process::exit(2);
        }
    };
    let sources = args.next().and_then(Result::ok).unwrap_or(20_000);
    let seed = args.next().and_then(Result::ok).unwrap_or(1);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    if let Err(e) = events::write_events(&mut out, total, sources, seed).and_then(|()| out.flush())
    {
        eprintln!("gen_events: {e}");
        std::process::exit(1);
    }
}
