//! The lean Elasticsearch stand-in (`support::lean_es`) as a standalone process, for
//! `bench/pipeline`: nginx ships to it while a benchmark switches its mode.
//!
//! ```text
//! fake_es_server --listen 127.0.0.1:9200 --control 127.0.0.1:9201
//! curl -X POST http://127.0.0.1:9201/mode/down    # ok | down | hang | slow | slow=<ms>
//! curl http://127.0.0.1:9201/stats                # {"mode":"down","docs":...}
//! ```
//!
//! The control port is separate so that it keeps answering while the ES port is down.
//! Prints `ready` on stdout once both ports listen; runs until killed.

mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use support::lean_es::{read_request, write_response, LeanEs, Mode};

fn main() {
    let mut listen = "127.0.0.1:9200".to_owned();
    let mut control = "127.0.0.1:9201".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--listen", Some(v)) => listen = v,
            ("--control", Some(v)) => control = v,
            _ => {
                eprintln!("usage: fake_es_server [--listen ADDR] [--control ADDR]");
                std::process::exit(2);
            }
        }
    }
    let es = Arc::new(LeanEs::start(&listen).unwrap_or_else(|e| fail(&listen, e)));
    let control = TcpListener::bind(&control).unwrap_or_else(|e| fail(&control, e));
    println!("ready");
    let _ = std::io::stdout().flush();
    // One control request at a time: mode switches must not interleave.
    for stream in control.incoming().flatten() {
        answer(&es, stream);
    }
}

fn fail(addr: &str, e: std::io::Error) -> ! {
    eprintln!("fake_es_server: cannot listen on {addr}: {e}");
    std::process::exit(1);
}

fn answer(es: &LeanEs, mut stream: TcpStream) {
    let mut buf = Vec::new();
    let Ok(Some(request)) = read_request(&mut stream, &mut buf) else {
        return;
    };
    let (status, body) = match (request.method.as_str(), request.path.as_str()) {
        ("POST", path) if path.starts_with("/mode/") => match Mode::parse(&path[6..]) {
            Some(mode) => match es.set_mode(mode) {
                Ok(()) => (200, stats(es)),
                Err(e) => (500, format!("{{\"error\":\"{e}\"}}")),
            },
            None => (400, "{\"error\":\"unknown mode\"}".to_owned()),
        },
        ("GET", "/stats") => (200, stats(es)),
        _ => (404, "{\"error\":\"not found\"}".to_owned()),
    };
    let _ = write_response(&mut stream, status, &body);
}

fn stats(es: &LeanEs) -> String {
    let c = es.counts();
    format!(
        "{{\"mode\":\"{}\",\"docs\":{},\"bulk_requests\":{},\"bad_requests\":{},\"body_bytes\":{}}}",
        es.mode().label(),
        c.docs,
        c.bulk_requests,
        c.bad_requests,
        c.body_bytes
    )
}
