//! `honeytrap_misp <url> key_file=<path> [key=value ...]`: the MISP sink's configuration.
//!
//! Parsed once at configuration time, so that every mistake is reported by `nginx -t` with the
//! offending argument, and the API key file is read while nginx still runs as root.

use std::fmt;

use crate::sink::units::{parse_duration, parse_size};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::tags;

/// How records are grouped into MISP events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One MISP event per sensor per UTC day.
    Daily,
    /// One MISP event per sensor, source IP and UTC day.
    Attacker,
}

/// MISP's `threat_level_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreatLevel {
    High = 1,
    Medium = 2,
    Low = 3,
    Undefined = 4,
}

impl ThreatLevel {
    pub fn id(self) -> &'static str {
        match self {
            ThreatLevel::High => "1",
            ThreatLevel::Medium => "2",
            ThreatLevel::Low => "3",
            ThreatLevel::Undefined => "4",
        }
    }

    pub fn from_id(id: &str) -> Option<ThreatLevel> {
        match id.trim() {
            "1" => Some(ThreatLevel::High),
            "2" => Some(ThreatLevel::Medium),
            "3" => Some(ThreatLevel::Low),
            "4" => Some(ThreatLevel::Undefined),
            _ => None,
        }
    }

    /// Orders levels by gravity (MISP's ids run the other way, and 4 means "unknown").
    pub fn rank(self) -> u8 {
        match self {
            ThreatLevel::Undefined => 0,
            ThreatLevel::Low => 1,
            ThreatLevel::Medium => 2,
            ThreatLevel::High => 3,
        }
    }

    /// `threat_level=auto`, from the worst `event.severity` among the event's records. The
    /// scale is the events' (SecLang's and syslog's: 0 emergency … 7 debug, lower is worse):
    ///
    /// | severity                        | threat level |
    /// |---------------------------------|--------------|
    /// | 0-1 emergency, alert            | 1 High       |
    /// | 2-3 critical (baits, most CRS attack rules), error | 2 Medium |
    /// | 4-7 warning (decoys) … debug    | 3 Low        |
    /// | none                            | 4 Undefined  |
    ///
    /// A daily event nearly always holds some CRS "critical" probe; High is kept for what rules
    /// rate above that, or every day would be High and the level would say nothing.
    pub fn from_severity(worst: Option<u8>) -> ThreatLevel {
        match worst {
            None => ThreatLevel::Undefined,
            Some(0..=1) => ThreatLevel::High,
            Some(2..=3) => ThreatLevel::Medium,
            Some(_) => ThreatLevel::Low,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreatLevelSetting {
    Auto,
    Fixed(ThreatLevel),
}

/// The MISP API key. Never printed: `Debug` shows a placeholder, and error messages name the
/// key file, not its content.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// CA certificates from `ca=<pem>`, parsed at configuration time.
#[derive(Clone)]
pub struct CaCerts(pub(crate) Vec<ureq::tls::Certificate<'static>>);

impl fmt::Debug for CaCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaCerts({} certificates)", self.0.len())
    }
}

#[derive(Clone, Debug)]
pub struct MispSettings {
    /// Base URL of the MISP instance, without a trailing slash.
    pub url: String,
    pub key_file: PathBuf,
    pub key: ApiKey,
    pub mode: Mode,
    /// Event `distribution` (0 = this organisation only … 5 = inherit).
    pub distribution: u8,
    pub threat_level: ThreatLevelSetting,
    /// Event `analysis` (0 = initial, 1 = ongoing, 2 = complete).
    pub analysis: u8,
    /// Publish events that changed at each flush.
    pub publish: bool,
    /// Tags put on every event: exactly one `tlp:` tag, then the `tags=` extras.
    pub tags: Vec<String>,
    /// Least severe `event.severity` still sent (0 emergency … 7 debug); less severe records
    /// are counted and dropped. 7 sends everything.
    pub min_severity: u8,
    pub flush: Duration,
    pub spool: Option<PathBuf>,
    /// Bytes of records kept for retry, on disk (`spool=`) or in memory.
    pub spool_size: u64,
    /// Timeout of one HTTP request, connection included.
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub ca: Option<CaCerts>,
    /// First and longest delay between retries while MISP fails (doubling, with jitter).
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// Where records MISP can never take go, with the reason (counted either way).
    pub dead_letter: Option<PathBuf>,
    /// Records per delivery round.
    pub batch: usize,
}

pub const DEFAULT_FLUSH: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SPOOL_SIZE: u64 = 64 * 1024 * 1024;
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(5);
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);
pub const DEFAULT_BATCH: usize = 500;

const KEYS: &str = "key_file, mode, distribution, threat_level, analysis, publish, tags, \
                    min_severity, flush, spool, spool_size, timeout, ca, backoff, backoff_max, dead_letter, batch";

impl MispSettings {
    /// Parses the directive's arguments (without the directive name): the URL first, then
    /// `key=value` pairs in any order.
    pub fn parse(args: &[&str]) -> Result<Self, String> {
        Self::parse_relative_to(args, Path::new(""))
    }

    /// As [`Self::parse`], with relative paths (key file, spool, CA, dead letter) taken from
    /// `prefix` (nginx's prefix directory) rather than the current directory.
    pub fn parse_relative_to(args: &[&str], prefix: &Path) -> Result<Self, String> {
        let path = |value: &str| prefix.join(value);
        let (url, rest) = args.split_first().ok_or(
            "honeytrap_misp: missing the MISP URL (honeytrap_misp <url> key_file=<path> ...)",
        )?;
        let url = parse_url(url)?;

        let mut seen: Vec<&str> = Vec::new();
        let mut key_file = None;
        let mut mode = Mode::Daily;
        let mut distribution = 0u8;
        let mut threat_level = ThreatLevelSetting::Auto;
        let mut analysis = 0u8;
        let mut publish = false;
        let mut extra_tags: Vec<String> = Vec::new();
        let mut min_severity = 7u8;
        let mut flush = DEFAULT_FLUSH;
        let mut spool = None;
        let mut spool_size = DEFAULT_SPOOL_SIZE;
        let mut timeout = DEFAULT_TIMEOUT;
        let mut ca_file = None;
        let mut backoff = DEFAULT_BACKOFF;
        let mut backoff_max = DEFAULT_BACKOFF_MAX;
        let mut dead_letter = None;
        let mut batch = DEFAULT_BATCH;

        for (i, arg) in rest.iter().enumerate() {
            // Not echoed: a stray argument may well be the key pasted in the wrong place.
            let (name, value) = arg.split_once('=').ok_or_else(|| {
                format!(
                    "honeytrap_misp: argument {} is not key=value (known keys: {KEYS})",
                    i + 2
                )
            })?;
            if seen.contains(&name) {
                return Err(format!("honeytrap_misp: \"{name}\" given twice"));
            }
            seen.push(name);
            let bad = |why: &str| format!("honeytrap_misp: {name}={value}: {why}");
            match name {
                "key_file" => {
                    if value.is_empty() {
                        return Err(bad("empty path"));
                    }
                    key_file = Some(path(value));
                }
                "mode" => {
                    mode = match value {
                        "daily" => Mode::Daily,
                        "attacker" => Mode::Attacker,
                        _ => return Err(bad("expected daily or attacker")),
                    }
                }
                "distribution" => distribution = parse_small(value, 5).map_err(|e| bad(&e))?,
                "threat_level" => {
                    threat_level = match value {
                        "auto" => ThreatLevelSetting::Auto,
                        _ => ThreatLevel::from_id(value)
                            .map(ThreatLevelSetting::Fixed)
                            .ok_or_else(|| bad("expected auto or 1 (high) to 4 (undefined)"))?,
                    }
                }
                "analysis" => analysis = parse_small(value, 2).map_err(|e| bad(&e))?,
                "publish" => {
                    publish = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(bad("expected on or off")),
                    }
                }
                "tags" => extra_tags = parse_tags(value).map_err(|e| bad(&e))?,
                "min_severity" => {
                    min_severity = parse_severity(value).ok_or_else(|| {
                        bad("expected 0-7 or emerg, alert, crit, error, warning, notice, info, debug")
                    })?;
                }
                "flush" => flush = positive_duration(name, value).map_err(|e| bad(&e))?,
                "spool" => {
                    if value.is_empty() {
                        return Err(bad("empty path"));
                    }
                    spool = Some(path(value));
                }
                "spool_size" => {
                    spool_size = parse_size(name, value).map_err(|e| bad(&e))?;
                    if spool_size < 4096 {
                        return Err(bad("too small (at least 4k)"));
                    }
                }
                "timeout" => timeout = positive_duration(name, value).map_err(|e| bad(&e))?,
                "ca" => ca_file = Some(path(value)),
                "backoff" => backoff = positive_duration(name, value).map_err(|e| bad(&e))?,
                "backoff_max" => {
                    backoff_max = positive_duration(name, value).map_err(|e| bad(&e))?
                }
                "dead_letter" => {
                    if value.is_empty() {
                        return Err(bad("empty path"));
                    }
                    dead_letter = Some(path(value));
                }
                "key" | "api_key" => {
                    // Refused before anything echoes the value.
                    return Err(format!(
                        "honeytrap_misp: \"{name}=\" is not accepted: keep the API key out of nginx.conf and use key_file=<path>"
                    ));
                }
                "batch" => {
                    batch = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=100_000).contains(n))
                        .ok_or_else(|| bad("expected a count from 1 to 100000"))?;
                }
                _ => {
                    return Err(format!(
                        "honeytrap_misp: unknown key \"{name}\" (known keys: {KEYS})"
                    ))
                }
            }
        }

        let key_file = key_file.ok_or(
            "honeytrap_misp: key_file=<path> is required (a file holding the MISP API key)",
        )?;
        let key = read_key(&key_file)?;
        if backoff_max < backoff {
            return Err(format!(
                "honeytrap_misp: backoff_max ({backoff_max:?}) is shorter than backoff ({backoff:?})"
            ));
        }
        let ca = match &ca_file {
            Some(path) => Some(read_ca(path)?),
            None => None,
        };
        if ca.is_some() && !url.starts_with("https://") {
            return Err("honeytrap_misp: ca= only makes sense with an https:// URL".into());
        }

        Ok(MispSettings {
            url,
            key_file,
            key,
            mode,
            distribution,
            threat_level,
            analysis,
            publish,
            tags: event_tags(extra_tags)?,
            min_severity,
            flush,
            spool,
            spool_size,
            timeout,
            ca_file,
            ca,
            backoff,
            backoff_max,
            dead_letter,
            batch,
        })
    }
}

fn parse_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("honeytrap_misp: \"{url}\" is not an http:// or https:// URL"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(format!(
            "honeytrap_misp: \"{url}\" has no host (or has credentials in it; use key_file=)"
        ));
    }
    if url.contains(['?', '#', ' ']) {
        return Err(format!(
            "honeytrap_misp: \"{url}\": the base URL takes no query, fragment or spaces"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// A syslog severity, by number or name (SecLang spells them the same way).
pub fn parse_severity(value: &str) -> Option<u8> {
    let n = match value.to_ascii_lowercase().as_str() {
        "emerg" | "emergency" => 0,
        "alert" => 1,
        "crit" | "critical" => 2,
        "err" | "error" => 3,
        "warn" | "warning" => 4,
        "notice" => 5,
        "info" => 6,
        "debug" => 7,
        other => other.parse::<u8>().ok()?,
    };
    (n <= 7).then_some(n)
}

fn parse_small(value: &str, max: u8) -> Result<u8, String> {
    value
        .parse::<u8>()
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(|| format!("expected a number from 0 to {max}"))
}

/// Flush, timeout and backoff intervals: zero would spin.
fn positive_duration(name: &str, value: &str) -> Result<Duration, String> {
    let d = parse_duration(name, value)?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn parse_tags(value: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for tag in value.split(',') {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err("empty tag in the list".into());
        }
        // MISP's tag name column holds 255 characters.
        if tag.len() > 255 || tag.chars().any(char::is_control) {
            return Err(format!(
                "tag \"{}\" is too long or has control characters",
                tag.escape_debug()
            ));
        }
        if let Some(level) = tag.strip_prefix("tlp:") {
            if !tags::TLP_LEVELS.contains(&level) {
                return Err(format!(
                    "\"{tag}\" is not a TLP level (tlp:{})",
                    tags::TLP_LEVELS.join(", tlp:")
                ));
            }
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    Ok(out)
}

/// TLP is exclusive in its taxonomy: at most one level; without one, the default.
fn event_tags(extra: Vec<String>) -> Result<Vec<String>, String> {
    let tlp: Vec<&String> = extra.iter().filter(|t| t.starts_with("tlp:")).collect();
    if tlp.len() > 1 {
        return Err(format!(
            "honeytrap_misp: tags= has more than one TLP level ({}); TLP tags are exclusive",
            tlp.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut tags = Vec::with_capacity(extra.len() + 1);
    if tlp.is_empty() {
        tags.push(tags::DEFAULT_TLP.to_string());
    }
    tags.extend(extra);
    Ok(tags)
}

fn read_key(path: &Path) -> Result<ApiKey, String> {
    // Only the path goes into messages: the content may be (part of) a key.
    let raw = fs::read(path).map_err(|e| {
        format!(
            "honeytrap_misp: cannot read key_file {}: {e}",
            path.display()
        )
    })?;
    let text = String::from_utf8(raw).map_err(|_| {
        format!(
            "honeytrap_misp: key_file {} is not UTF-8 text",
            path.display()
        )
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!(
            "honeytrap_misp: key_file {} is empty",
            path.display()
        ));
    }
    // It goes into an HTTP header as is.
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "honeytrap_misp: key_file {} must hold the key alone on one line (printable ASCII, no spaces)",
            path.display()
        ));
    }
    Ok(ApiKey(key.to_string()))
}

fn read_ca(path: &Path) -> Result<CaCerts, String> {
    let pem = fs::read(path).map_err(|e| {
        format!(
            "honeytrap_misp: cannot read ca file {}: {e}",
            path.display()
        )
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("honeytrap_misp: ca file {}: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "honeytrap_misp: ca file {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(CaCerts(certs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const KEY: &str = "Zq3xkTtF0aM9s8v7u6w5y4z3A2B1C0D9E8F7G6H5";

    fn key_file(dir: &tempfile::TempDir, content: &str) -> String {
        let path = dir.path().join("misp.key");
        let mut f = fs::File::create(&path).unwrap();
        f.write_all(content.as_bytes()).unwrap();
        path.display().to_string()
    }

    fn parse(dir: &tempfile::TempDir, extra: &[&str]) -> Result<MispSettings, String> {
        let kf = format!("key_file={}", key_file(dir, &format!("  {KEY}\n")));
        let mut args = vec!["https://misp.example.org/", kf.as_str()];
        args.extend_from_slice(extra);
        MispSettings::parse(&args)
    }

    #[test]
    fn defaults() {
        let dir = tempfile::tempdir().unwrap();
        let s = parse(&dir, &[]).unwrap();
        assert_eq!(s.url, "https://misp.example.org");
        assert_eq!(s.key.expose(), KEY, "trimmed");
        assert_eq!(s.mode, Mode::Daily);
        assert_eq!(s.distribution, 0);
        assert_eq!(s.threat_level, ThreatLevelSetting::Auto);
        assert_eq!(s.analysis, 0);
        assert!(!s.publish);
        assert_eq!(s.tags, vec!["tlp:green".to_string()]);
        assert_eq!(s.min_severity, 7, "everything");
        assert_eq!(s.flush, Duration::from_secs(30));
        assert_eq!(s.spool, None);
        assert_eq!(s.spool_size, 64 << 20);
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert!(s.ca.is_none());
    }

    #[test]
    fn every_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = parse(
            &dir,
            &[
                "mode=attacker",
                "distribution=3",
                "threat_level=2",
                "analysis=2",
                "publish=on",
                "tags=tlp:clear,honeytrap:lab, ops",
                "min_severity=warning",
                "flush=5m",
                "spool=/var/spool/honeytrap/misp",
                "dead_letter=/var/log/honeytrap/misp-dead.ndjson",
                "spool_size=512k",
                "timeout=1500ms",
                "backoff=100ms",
                "backoff_max=2s",
                "batch=50",
            ],
        )
        .unwrap();
        assert_eq!(s.mode, Mode::Attacker);
        assert_eq!(s.distribution, 3);
        assert_eq!(
            s.threat_level,
            ThreatLevelSetting::Fixed(ThreatLevel::Medium)
        );
        assert_eq!(s.analysis, 2);
        assert!(s.publish);
        assert_eq!(
            s.tags,
            vec!["tlp:clear", "honeytrap:lab", "ops"],
            "the given TLP replaces the default"
        );
        assert_eq!(s.min_severity, 4);
        assert_eq!(s.flush, Duration::from_secs(300));
        assert_eq!(
            s.spool.as_deref(),
            Some(Path::new("/var/spool/honeytrap/misp"))
        );
        assert_eq!(s.spool_size, 512 * 1024);
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.backoff, Duration::from_millis(100));
        assert_eq!(s.backoff_max, Duration::from_secs(2));
        assert_eq!(s.batch, 50);
        assert_eq!(
            s.dead_letter.as_deref(),
            Some(Path::new("/var/log/honeytrap/misp-dead.ndjson"))
        );
    }

    #[test]
    fn relative_paths_are_taken_from_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        key_file(&dir, KEY);
        let s = MispSettings::parse_relative_to(
            &[
                "http://misp",
                "key_file=misp.key",
                "spool=spool/misp",
                "dead_letter=/abs/dead",
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.key_file, dir.path().join("misp.key"));
        assert_eq!(s.spool, Some(dir.path().join("spool/misp")));
        assert_eq!(
            s.dead_letter.as_deref(),
            Some(Path::new("/abs/dead")),
            "absolute stays"
        );
    }

    #[test]
    fn clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&[&str], &str)] = &[
            (&["mode=hourly"], "mode=hourly: expected daily or attacker"),
            (
                &["distribution=6"],
                "distribution=6: expected a number from 0 to 5",
            ),
            (
                &["threat_level=0"],
                "expected auto or 1 (high) to 4 (undefined)",
            ),
            (
                &["threat_level=high"],
                "threat_level=high: expected auto or 1",
            ),
            (&["analysis=3"], "analysis=3"),
            (&["publish=yes"], "expected on or off"),
            (&["tags=tlp:purple"], "\"tlp:purple\" is not a TLP level"),
            (&["tags=tlp:red,tlp:green"], "more than one TLP level"),
            (&["tags=a,,b"], "empty tag"),
            (&["min_severity=-1"], "expected 0-7 or emerg"),
            (&["min_severity=8"], "expected 0-7 or emerg"),
            (&["min_severity=loud"], "expected 0-7 or emerg"),
            (&["flush=0s"], "longer than zero"),
            (&["flush=10 minutes"], "expected a duration like"),
            (&["flush=soon"], "expected a duration"),
            (&["spool_size=12q"], "expected a size"),
            (&["spool_size=1k"], "too small"),
            (&["timeout=3d"], "invalid \"timeout\" value \"3d\""),
            (
                &["backoff=10s", "backoff_max=1s"],
                "backoff_max (1s) is shorter than backoff (10s)",
            ),
            (&["colour=blue"], "unknown key \"colour\""),
            (&["mode=daily", "mode=attacker"], "\"mode\" given twice"),
            (&["publish"], "argument 3 is not key=value"),
            (&["key=s3cret"], "use key_file=<path>"),
            (&["batch=0"], "expected a count"),
        ];
        for (args, want) in cases {
            let err = parse(&dir, args).unwrap_err();
            assert!(
                err.contains(want),
                "{args:?}: {err:?} should contain {want:?}"
            );
            assert!(err.starts_with("honeytrap_misp: "), "{err}");
        }
    }

    #[test]
    fn misplaced_keys_are_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        for args in [
            &["key=S3CRET-VALUE"][..],
            &["S3CRET-VALUE"],
            &["api_key=S3CRET-VALUE"],
        ] {
            let err = parse(&dir, args).unwrap_err();
            assert!(!err.contains("S3CRET"), "{err}");
        }
    }

    #[test]
    fn url_and_key_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(MispSettings::parse(&[])
            .unwrap_err()
            .contains("missing the MISP URL"));
        let kf = format!("key_file={}", key_file(&dir, KEY));
        for url in [
            "misp.example.org",
            "ftp://misp",
            "https://",
            "https://user:pw@misp",
            "https://misp/?a=b",
        ] {
            let err = MispSettings::parse(&[url, &kf]).unwrap_err();
            assert!(err.contains(url) || err.contains("no host"), "{url}: {err}");
        }
        assert!(MispSettings::parse(&["http://misp:8080/base/"])
            .unwrap_err()
            .contains("key_file=<path> is required"));

        let missing = dir.path().join("nope.key");
        let err = MispSettings::parse(&["http://misp", &format!("key_file={}", missing.display())])
            .unwrap_err();
        assert!(
            err.contains("cannot read key_file") && err.contains("nope.key"),
            "{err}"
        );

        let empty = format!("key_file={}", key_file(&dir, " \n\t\n"));
        assert!(MispSettings::parse(&["http://misp", &empty])
            .unwrap_err()
            .contains("is empty"));

        let two_lines = format!(
            "key_file={}",
            key_file(&dir, "secret-part-one\nsecret-part-two\n")
        );
        let err = MispSettings::parse(&["http://misp", &two_lines]).unwrap_err();
        assert!(err.contains("alone on one line"), "{err}");
        assert!(
            !err.contains("secret-part"),
            "the key content never shows: {err}"
        );
    }

    #[test]
    fn key_is_never_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let s = parse(&dir, &["tags=tlp:amber"]).unwrap();
        let debug = format!("{s:?} {:?} {s:#?}", s.key);
        assert!(!debug.contains(KEY), "{debug}");
        assert!(!debug.contains(&KEY[..12]), "not even a prefix");
        assert!(debug.contains("<redacted>"));
        assert!(
            debug.contains("misp.key"),
            "the key file's path is fine to show"
        );
    }

    #[test]
    fn ca_file_is_parsed_at_configuration_time() {
        let dir = tempfile::tempdir().unwrap();
        let kf = format!("key_file={}", key_file(&dir, KEY));
        let not_pem = dir.path().join("ca.txt");
        fs::write(&not_pem, "hello").unwrap();
        let err = MispSettings::parse(&["https://misp", &kf, &format!("ca={}", not_pem.display())])
            .unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        let err =
            MispSettings::parse(&["https://misp", &kf, "ca=/nonexistent/ca.pem"]).unwrap_err();
        assert!(err.contains("cannot read ca file"), "{err}");
    }

    #[test]
    fn threat_level_mapping() {
        assert_eq!(ThreatLevel::from_severity(None), ThreatLevel::Undefined);
        assert_eq!(ThreatLevel::from_severity(Some(0)), ThreatLevel::High);
        assert_eq!(ThreatLevel::from_severity(Some(1)), ThreatLevel::High);
        assert_eq!(
            ThreatLevel::from_severity(Some(2)),
            ThreatLevel::Medium,
            "bait, CRS critical"
        );
        assert_eq!(ThreatLevel::from_severity(Some(3)), ThreatLevel::Medium);
        assert_eq!(
            ThreatLevel::from_severity(Some(4)),
            ThreatLevel::Low,
            "decoy"
        );
        assert_eq!(ThreatLevel::from_severity(Some(7)), ThreatLevel::Low);
        assert_eq!(parse_severity("CRIT"), Some(2));
        assert_eq!(parse_severity("6"), Some(6));
        assert_eq!(parse_severity("8"), None);
        assert!(ThreatLevel::High.rank() > ThreatLevel::Medium.rank());
        assert!(ThreatLevel::Low.rank() > ThreatLevel::Undefined.rank());
        for level in [
            ThreatLevel::High,
            ThreatLevel::Medium,
            ThreatLevel::Low,
            ThreatLevel::Undefined,
        ] {
            assert_eq!(ThreatLevel::from_id(level.id()), Some(level));
        }
    }
}
