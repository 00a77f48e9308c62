//! Events files for tests and the benchmark, written by the core crate's own serializer so
//! that they have exactly the module's shape. Deterministic for a seed: sources follow a
//! skewed distribution (a few loud scanners, a long tail), a share of bait uses come from
//! another address than the one the bait was served to.

#![allow(dead_code)]

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use honeytrap_core::event::{Attribution, Bait, Event, Kind, MitreRef, Observer, RuleMatch};

/// 2024-05-01T00:00:00Z.
pub const START: u64 = 1_714_521_600;
/// The span events are spread over.
pub const SPAN_SECS: u64 = 7 * 86_400;

pub const RULES: [(&str, &str, &str, &str); 4] = [
    (
        "942100",
        "SQL Injection Attack Detected via libinjection",
        "T1190",
        "Exploit Public-Facing Application",
    ),
    (
        "930120",
        "OS File Access Attempt",
        "T1083",
        "File and Directory Discovery",
    ),
    (
        "932160",
        "Remote Command Execution: Unix Shell Code Found",
        "T1059",
        "Command and Scripting Interpreter",
    ),
    (
        "913100",
        "Found User-Agent associated with security scanner",
        "T1595",
        "Active Scanning",
    ),
];

pub const BAITS: [(&str, &str); 3] = [
    ("credential", "wp-admin"),
    ("api-key", "aws-key-in-comment"),
    ("url", "robots-backup"),
];

/// xorshift64*: enough randomness for fixtures, and no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Source `i` of `sources`: 10.x addresses are never used (documentation ranges only).
pub fn source_ip(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        198,
        18 + (i >> 16) as u8 % 2,
        (i >> 8) as u8,
        i as u8,
    ))
}

/// One event, `n`-th of a stream.
pub fn event(rng: &mut Rng, observer: &Arc<Observer>, n: u64, total: u64, sources: u64) -> Event {
    // Skewed: squaring a uniform draw favours low indices (the loud scanners).
    let u = rng.below(1 << 20) as f64 / f64::from(1u32 << 20);
    let src = ((u * u) * sources as f64) as u64;
    let kind = match rng.below(100) {
        0..=49 => Kind::Rules,
        50..=84 => Kind::Decoy,
        _ => Kind::Bait,
    };
    let mut e = Event::new(kind, Arc::clone(observer));
    let offset = n * SPAN_SECS / total.max(1);
    e.timestamp = UNIX_EPOCH + Duration::from_secs(START + offset);
    e.source = Some(SocketAddr::new(
        source_ip(src),
        40_000 + (n % 20_000) as u16,
    ));
    e.method = Some("GET".into());
    e.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) fixture".into());
    match kind {
        Kind::Rules => {
            let (id, msg, tid, tname) = RULES[rng.below(RULES.len() as u64) as usize];
            e.set_url(format!("/search?q=1%27%20OR%20{n}").as_bytes());
            e.add_rule(RuleMatch {
                id: id.parse().expect("a rule id is a number"),
                msg: Some(msg.into()),
                tags: ["attack-sqli".to_owned()].into(),
                severity: Some(2),
                matched_var: Some("ARGS:q".into()),
                matched_data: Some("1' OR".into()),
            });
            e.techniques.push(MitreRef::new(tid, tname));
        }
        Kind::Decoy => {
            e.set_url(b"/wp-login.php");
            e.techniques.push(MitreRef::new("T1595", "Active Scanning"));
        }
        Kind::Bait => {
            let (bkind, name) = BAITS[rng.below(BAITS.len() as u64) as usize];
            e.set_url(b"/admin/login");
            e.bait = Some(Bait {
                kind: bkind.into(),
                name: name.into(),
                token: Some(format!("tok{}", n % 97)),
            });
            // 30 % of bait uses come from an address other than the one it was served to.
            let served = if rng.below(10) < 3 {
                source_ip((src + 1 + rng.below(50)) % sources.max(2))
            } else {
                source_ip(src)
            };
            e.attribution = Some(Attribution {
                served_to_ip: Some(served),
                served_at: Some(e.timestamp - Duration::from_secs(3600)),
                token_id: Some(format!("tok{}", n % 97)),
                valid: true,
            });
            e.techniques.push(MitreRef::new("T1078", "Valid Accounts"));
        }
    }
    e
}

/// Writes `total` events as NDJSON.
pub fn write_events(out: &mut impl Write, total: u64, sources: u64, seed: u64) -> io::Result<()> {
    let observer = Arc::new(Observer::new("sensor-1"));
    let mut rng = Rng::new(seed);
    for n in 0..total {
        let e = event(&mut rng, &observer, n, total, sources);
        out.write_all(e.to_record().json.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Seconds since the epoch of a `SystemTime`, for assertions.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
