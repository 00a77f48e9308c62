//! Ships events to an Elasticsearch data stream with the `_bulk` API.
//!
//! Runs on the shipper thread only, with blocking `ureq` calls bounded by a timeout.
//!
//! * Records are batched by count (`batch=`) and age (`flush=`), then sent as
//!   `{"create":{"_id":<event id>}}` + document pairs. `create` with the event id makes a replay
//!   harmless: a document Elasticsearch already has answers 409, which counts as delivered.
//! * Item results are read one by one: 2xx and 409 are delivered; 429 and 5xx are retried;
//!   any other error is dead-lettered with Elasticsearch's reason. A document retried alone
//!   arrives after the rest of its batch.
//! * A failed request (connection refused, timeout, 429, 5xx, 401/403, unreadable answer) starts
//!   an exponential backoff with jitter. Meanwhile batches go to the backlog (the on-disk
//!   [`Spool`] with `spool=`, else a bounded memory queue), which is replayed oldest-first before
//!   anything newer, so order is kept. What does not fit is dead-lettered with "spool full".
//! * A whole request answered 400 or 413 is split in halves until the offending document is
//!   alone, which is then dead-lettered; the others go through.
//! * The index template is installed when missing, before the first delivery; failing to install
//!   it never holds events back, it is retried on its own backoff.
//! * TLS is verified against the public (Mozilla) roots; `ca=` trusts the certificates of a PEM
//!   file instead, as for a cluster with its own CA.
//!
//! Counters: `shipped` documents acknowledged (409 included, each once); `spooled` records put
//! in the backlog; `retried` records sent again from the backlog; `dead_lettered`;
//! `failed_requests` HTTP exchanges that failed as a whole (template requests included).
//!
//! Each nginx worker runs its own sink with its own spool directory
//! ([`ElasticsearchSettings::for_worker`]).

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http;

use super::dead_letter::DeadLetter;
use super::spool::Spool;
use super::units::{parse_duration, parse_size};
use super::{Record, Sink, SinkCounters, SinkError, SinkResult};

/// The index template installed when missing; `index_patterns` is set to the data stream.
pub const INDEX_TEMPLATE: &str = include_str!("../../assets/elasticsearch-index-template.json");

pub const DEFAULT_INDEX: &str = "logs-honeytrap-default";
pub const DEFAULT_BATCH: usize = 500;
pub const DEFAULT_FLUSH: Duration = Duration::from_secs(1);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SPOOL_SIZE: u64 = 256 * 1024 * 1024;
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Longest a `send` or `tick` spends replaying the backlog; the rest waits for the next tick.
const REPLAY_BUDGET: Duration = Duration::from_secs(1);

/// Bulk answers list every item; with long error reasons 500 items stay far below this.
const RESPONSE_LIMIT: u64 = 64 * 1024 * 1024;

const PARAMETERS: &str = "index, api_key_file, user, password_file, ca, batch, flush, spool, \
                          spool_size, dead_letter, timeout, template, backoff, backoff_max";

/// `honeytrap_elasticsearch <url> [key=value ...]`, parsed; see [`ElasticsearchSettings::parse`].
#[derive(Clone, Debug)]
pub struct ElasticsearchSettings {
    /// Base URL (`http` or `https`, optional path prefix), without a trailing slash.
    pub url: String,
    /// Data stream written to; also the name of the index template.
    pub index: String,
    auth: Option<Auth>,
    /// PEM file whose certificates are trusted instead of the public (Mozilla) roots.
    pub ca: Option<PathBuf>,
    ca_certs: CaCerts,
    pub batch: usize,
    pub flush: Duration,
    /// Spool directory; `None` keeps the backlog in memory (lost on restart).
    pub spool: Option<PathBuf>,
    pub spool_size: u64,
    pub dead_letter: Option<PathBuf>,
    /// Bound on each request, connection included.
    pub timeout: Duration,
    /// First retry delay after a failure; doubles up to `backoff_max` (with jitter).
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// Install the index template when missing.
    pub template: bool,
}

#[derive(Clone)]
enum Auth {
    /// Value after `ApiKey `: base64 of `id:key`, as Elasticsearch hands it out "encoded".
    ApiKey(Secret),
    Basic {
        user: String,
        password: Secret,
    },
}

impl Auth {
    fn header(&self) -> String {
        match self {
            Auth::ApiKey(key) => format!("ApiKey {}", key.0),
            Auth::Basic { user, password } => {
                format!(
                    "Basic {}",
                    base64(format!("{user}:{}", password.0).as_bytes())
                )
            }
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::ApiKey(key) => f.debug_tuple("ApiKey").field(key).finish(),
            Auth::Basic { user, password } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", password)
                .finish(),
        }
    }
}

/// A credential: never printed, not even by `{:?}`.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Default)]
struct CaCerts(Vec<ureq::tls::Certificate<'static>>);

impl fmt::Debug for CaCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} certificate(s)", self.0.len())
    }
}

impl ElasticsearchSettings {
    /// Parses the directive's arguments:
    ///
    /// ```text
    /// honeytrap_elasticsearch <url> [index=<data stream>] [api_key_file=<path>]
    ///     [user=<name> password_file=<path>] [ca=<pem path>] [batch=<n>] [flush=<duration>]
    ///     [spool=<dir>] [spool_size=<size>] [dead_letter=<path>] [timeout=<duration>]
    ///     [template=on|off] [backoff=<duration>] [backoff_max=<duration>]
    /// ```
    ///
    /// Durations: `500ms`, `5s`, `2m`, `1h` (a bare number is seconds). Sizes: bytes with an
    /// optional `k`, `m` or `g` suffix. Key, password and CA files are read now, so that
    /// `nginx -t` reports them; secrets never appear in errors or `Debug` output. Relative
    /// paths are taken from the current directory; see [`Self::parse_relative_to`].
    pub fn parse(args: &[&str]) -> Result<Self, String> {
        Self::parse_relative_to(args, Path::new(""))
    }

    /// Like [`Self::parse`], with relative paths resolved against `prefix` (nginx's prefix).
    pub fn parse_relative_to(args: &[&str], prefix: &Path) -> Result<Self, String> {
        let (url, rest) = args
            .split_first()
            .ok_or("missing the Elasticsearch URL, e.g. https://es.example.org:9200")?;
        let mut s = ElasticsearchSettings::new(parse_url(url)?);
        let path = |value: &str| prefix.join(value);

        let mut seen = HashSet::new();
        let (mut api_key_file, mut user, mut password_file) = (None, None, None);
        for arg in rest {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| format!("\"{arg}\": expected key=value (one of: {PARAMETERS})"))?;
            if !seen.insert(key) {
                return Err(format!("\"{key}\" is given twice"));
            }
            if value.is_empty() {
                return Err(format!("\"{key}=\" needs a value"));
            }
            match key {
                "index" => s.index = parse_index(value)?,
                "api_key_file" => api_key_file = Some(path(value)),
                "user" => user = Some(value.to_owned()),
                "password_file" => password_file = Some(path(value)),
                "ca" => s.ca = Some(path(value)),
                "batch" => s.batch = parse_count(key, value, 1, 100_000)?,
                "flush" => s.flush = parse_duration(key, value)?,
                "spool" => s.spool = Some(path(value)),
                "spool_size" => s.spool_size = parse_size(key, value)?,
                "dead_letter" => s.dead_letter = Some(path(value)),
                "timeout" => s.timeout = parse_duration(key, value)?,
                "template" => s.template = parse_switch(key, value)?,
                "backoff" => s.backoff = parse_duration(key, value)?,
                "backoff_max" => s.backoff_max = parse_duration(key, value)?,
                "api_key" | "password" => {
                    return Err(format!(
                        "\"{key}=\" is not accepted: keep secrets out of nginx.conf and use \
                         {key}_file=<path>"
                    ))
                }
                _ => {
                    return Err(format!(
                        "unknown parameter \"{key}\" (expected one of: {PARAMETERS})"
                    ))
                }
            }
        }

        if s.timeout.is_zero() {
            return Err("\"timeout\" must be more than 0".into());
        }
        if s.backoff.is_zero() {
            return Err("\"backoff\" must be more than 0".into());
        }
        if s.backoff_max < s.backoff {
            return Err("\"backoff_max\" must not be less than \"backoff\"".into());
        }
        if s.spool_size == 0 {
            return Err("\"spool_size\" must be more than 0".into());
        }

        s.auth = match (api_key_file, user, password_file) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err("api_key_file= cannot be combined with user=/password_file=".into())
            }
            (Some(file), None, None) => Some(Auth::ApiKey(read_api_key(&file)?)),
            (None, Some(user), Some(file)) => {
                if user.contains(':') {
                    return Err("\"user\" must not contain ':'".into());
                }
                Some(Auth::Basic {
                    user,
                    password: read_password(&file)?,
                })
            }
            (None, Some(_), None) => return Err("user= needs password_file=<path>".into()),
            (None, None, Some(_)) => return Err("password_file= needs user=<name>".into()),
            (None, None, None) => None,
        };
        if let Some(ca) = &s.ca {
            s.ca_certs = read_ca(ca)?;
        }
        Ok(s)
    }

    /// Settings with the defaults, for `url` (already validated).
    fn new(url: String) -> Self {
        ElasticsearchSettings {
            url,
            index: DEFAULT_INDEX.to_owned(),
            auth: None,
            ca: None,
            ca_certs: CaCerts::default(),
            batch: DEFAULT_BATCH,
            flush: DEFAULT_FLUSH,
            spool: None,
            spool_size: DEFAULT_SPOOL_SIZE,
            dead_letter: None,
            timeout: DEFAULT_TIMEOUT,
            backoff: DEFAULT_BACKOFF,
            backoff_max: DEFAULT_BACKOFF_MAX,
            template: true,
        }
    }

    /// The settings one nginx worker uses: its own spool directory `<spool>/worker-<n>` (a spool
    /// has one owner). The dead-letter file is shared: its lines are written atomically.
    pub fn for_worker(&self, worker: usize) -> Self {
        let mut s = self.clone();
        s.spool = self
            .spool
            .as_ref()
            .map(|dir| dir.join(format!("worker-{worker}")));
        s
    }

    /// `"api_key"`, `"basic"` or `None`, for status output.
    pub fn auth_kind(&self) -> Option<&'static str> {
        self.auth.as_ref().map(|a| match a {
            Auth::ApiKey(_) => "api_key",
            Auth::Basic { .. } => "basic",
        })
    }
}

fn parse_url(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL \"{url}\": {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "invalid URL \"{url}\": the scheme must be http or https"
            ))
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("invalid URL \"{url}\": no host"))?;
    if authority.as_str().contains('@') {
        // Credentials in the URL would end up in logs and status output.
        return Err(
            "credentials in the URL are not accepted: use api_key_file= or user= with \
                    password_file="
                .into(),
        );
    }
    if authority.host().is_empty() {
        return Err(format!("invalid URL \"{url}\": no host"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!(
            "invalid URL \"{url}\": no query or fragment expected"
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Data stream names: lowercase, no path or wildcard characters, no leading `-_+.`.
fn parse_index(name: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("invalid index \"{name}\": {why}"));
    if name.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if name.chars().any(|c| c.is_uppercase()) {
        return bad("must be lowercase");
    }
    if let Some(c) = name
        .chars()
        .find(|c| "\\/*?\"<>|,#: ".contains(*c) || c.is_control())
    {
        return bad(&format!("must not contain {c:?}"));
    }
    if name.starts_with(['-', '_', '+', '.']) {
        return bad("must not start with '-', '_', '+' or '.'");
    }
    Ok(name.to_owned())
}

fn parse_count(key: &str, value: &str, min: usize, max: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid \"{key}\" value \"{value}\": expected a number from {min} to {max}"
        )),
    }
}

fn parse_switch(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!(
            "invalid \"{key}\" value \"{value}\": expected on or off"
        )),
    }
}

fn read_secret_file(path: &Path, what: &str) -> Result<String, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} \"{}\": {e}", path.display()))?;
    Ok(text)
}

/// Accepts the key as Elasticsearch returns it "encoded" (base64), or as `id:api_key`.
fn read_api_key(path: &Path) -> Result<Secret, String> {
    let text = read_secret_file(path, "api_key_file")?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!("api_key_file \"{}\" is empty", path.display()));
    }
    if key.contains(char::is_whitespace) || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "api_key_file \"{}\" must hold one key (encoded, or id:api_key) and nothing else",
            path.display()
        ));
    }
    Ok(Secret(if key.contains(':') {
        base64(key.as_bytes())
    } else {
        key.to_owned()
    }))
}

/// The whole file is the password, less one trailing line break.
fn read_password(path: &Path) -> Result<Secret, String> {
    let text = read_secret_file(path, "password_file")?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(format!("password_file \"{}\" is empty", path.display()));
    }
    Ok(Secret(password.to_owned()))
}

fn read_ca(path: &Path) -> Result<CaCerts, String> {
    let pem = fs::read(path).map_err(|e| format!("cannot read ca \"{}\": {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("invalid PEM in ca \"{}\": {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "ca \"{}\" holds no PEM certificate",
            path.display()
        ));
    }
    Ok(CaCerts(certs))
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The template body for `index`: the asset with its pattern set to the data stream.
pub fn index_template(index: &str) -> String {
    let mut template: Value =
        serde_json::from_str(INDEX_TEMPLATE).expect("the bundled template is valid JSON");
    template["index_patterns"] = Value::from(vec![index.to_owned()]);
    template.to_string()
}

/// Where records wait while Elasticsearch is unreachable, oldest first.
enum Backlog {
    Disk(Spool),
    /// Without `spool=`: bounded by `spool_size`, lost if the worker dies.
    Memory {
        queue: VecDeque<Record>,
        bytes: u64,
        max_bytes: u64,
    },
}

impl Backlog {
    fn push(&mut self, records: &[Record]) -> io::Result<usize> {
        match self {
            Backlog::Disk(spool) => spool.push(records),
            Backlog::Memory {
                queue,
                bytes,
                max_bytes,
            } => {
                let mut n = 0;
                for r in records {
                    let size = (r.id.len() + r.json.len()) as u64;
                    if *bytes + size > *max_bytes {
                        break;
                    }
                    *bytes += size;
                    queue.push_back(r.clone());
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    fn peek(&mut self, max: usize) -> io::Result<Vec<Record>> {
        match self {
            Backlog::Disk(spool) => spool.peek(max),
            Backlog::Memory { queue, .. } => Ok(queue.iter().take(max).cloned().collect()),
        }
    }

    fn commit(&mut self, n: usize) -> io::Result<()> {
        match self {
            Backlog::Disk(spool) => spool.commit(n),
            Backlog::Memory { queue, bytes, .. } => {
                for r in queue.drain(..n.min(queue.len())) {
                    *bytes -= (r.id.len() + r.json.len()) as u64;
                }
                Ok(())
            }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Backlog::Disk(spool) => spool.len(),
            Backlog::Memory { queue, .. } => queue.len() as u64,
        }
    }
}

/// What Elasticsearch said about one document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    /// Stored now, or already there (409 on `create`).
    Delivered,
    /// Worth sending again later (429, 5xx).
    Retry(String),
    /// Will never be accepted as it is; the reason goes to the dead-letter file.
    Rejected(String),
}

#[derive(Debug)]
enum TemplateState {
    Disabled,
    Due {
        at: Option<Instant>,
        failures: u32,
    },
    Installed,
    /// Not allowed to (403): the operator installs it or sets `template=off`.
    Forbidden,
}

pub struct ElasticsearchSink {
    settings: ElasticsearchSettings,
    agent: ureq::Agent,
    auth_header: Option<Secret>,
    bulk_url: String,
    template_url: String,
    counters: Arc<SinkCounters>,
    /// Records waiting for the batch to fill or age.
    pending: Vec<Record>,
    pending_since: Option<Instant>,
    backlog: Backlog,
    dead: DeadLetter,
    /// Consecutive failed attempts, for the backoff.
    failures: u32,
    /// No delivery attempt before this.
    retry_at: Option<Instant>,
    template: TemplateState,
    /// Ids at the head of the backlog that Elasticsearch already acknowledged in a replay
    /// that had to stop early: they are not counted as shipped a second time.
    acked_ahead: HashSet<String>,
}

impl fmt::Debug for ElasticsearchSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchSink")
            .field("settings", &self.settings)
            .field("pending", &self.pending.len())
            .field("backlog", &self.backlog.len())
            .field("failures", &self.failures)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl ElasticsearchSink {
    /// Opens the spool (recovering what a previous worker left) and the dead-letter file. No
    /// network traffic happens before the first `send` or `tick`.
    pub fn new(settings: ElasticsearchSettings) -> io::Result<Self> {
        let backlog = match &settings.spool {
            Some(dir) => Backlog::Disk(Spool::open(dir, settings.spool_size)?),
            None => Backlog::Memory {
                queue: VecDeque::new(),
                bytes: 0,
                max_bytes: settings.spool_size,
            },
        };
        let dead = match &settings.dead_letter {
            Some(path) => DeadLetter::open(path)?,
            None => DeadLetter::discard(),
        };

        let mut tls = ureq::tls::TlsConfig::builder();
        if !settings.ca_certs.0.is_empty() {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&settings.ca_certs.0));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .tls_config(tls.build())
            // A redirect would need the credentials re-sent elsewhere: report it instead.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("ngx-honeytrap/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();

        Ok(ElasticsearchSink {
            bulk_url: format!("{}/{}/_bulk", settings.url, settings.index),
            template_url: format!("{}/_index_template/{}", settings.url, settings.index),
            auth_header: settings.auth.as_ref().map(|a| Secret(a.header())),
            template: if settings.template {
                TemplateState::Due {
                    at: None,
                    failures: 0,
                }
            } else {
                TemplateState::Disabled
            },
            settings,
            agent,
            counters: Arc::new(SinkCounters::default()),
            pending: Vec::new(),
            pending_since: None,
            backlog,
            dead,
            failures: 0,
            retry_at: None,
            acked_ahead: HashSet::new(),
        })
    }

    pub fn settings(&self) -> &ElasticsearchSettings {
        &self.settings
    }

    /// The counters, for a status endpoint that outlives a borrow of the sink.
    pub fn shared_counters(&self) -> Arc<SinkCounters> {
        Arc::clone(&self.counters)
    }

    /// Records waiting in the spool (or memory backlog) for Elasticsearch to come back.
    pub fn backlog_len(&self) -> u64 {
        self.backlog.len()
    }

    /// Records waiting for the current batch to fill or age.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn template_installed(&self) -> bool {
        matches!(self.template, TemplateState::Installed)
    }

    fn backing_off(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    fn record_failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(
            now + backoff_delay(
                self.settings.backoff,
                self.settings.backoff_max,
                self.failures,
            ),
        );
    }

    fn record_success(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// Time a request may take: the configured timeout, cut to what is left before `deadline`.
    fn time_left(&self, deadline: Option<Instant>) -> Option<Duration> {
        match deadline {
            None => Some(self.settings.timeout),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                (left >= Duration::from_millis(1)).then(|| left.min(self.settings.timeout))
            }
        }
    }

    /// One HTTP exchange; `Ok` is any status with its body, `Err` a transport failure.
    fn exchange<B: ureq::AsSendBody>(
        &self,
        request: http::request::Builder,
        body: B,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        let mut request = request;
        if let Some(auth) = &self.auth_header {
            request = request.header("Authorization", &auth.0);
        }
        let request = request
            .body(body)
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(timeout))
            .build();
        let mut response = self.agent.run(request).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(RESPONSE_LIMIT)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| format!("HTTP {status}, reading the answer failed: {e}"))?;
        Ok((status, text))
    }

    /// Sends one `_bulk` request and reads it item by item. `Err` means the whole request
    /// failed in a way worth retrying. A request rejected as a whole (400, 413) is split until
    /// the culprit is alone.
    fn bulk(&self, records: &[Record], deadline: Option<Instant>) -> Result<Vec<Item>, String> {
        let Some(timeout) = self.time_left(deadline) else {
            return Err("no time left before the deadline".into());
        };
        let request =
            http::Request::post(&self.bulk_url).header("Content-Type", "application/x-ndjson");
        let (status, text) = match self.exchange(request, bulk_body(records), timeout) {
            Ok(answer) => answer,
            Err(e) => {
                SinkCounters::add(&self.counters.failed_requests, 1);
                return Err(format!("bulk request to {} failed: {e}", self.settings.url));
            }
        };
        match status {
            200..=299 => parse_bulk_response(&text, records.len()).inspect_err(|_| {
                SinkCounters::add(&self.counters.failed_requests, 1);
            }),
            400 | 413 => {
                SinkCounters::add(&self.counters.failed_requests, 1);
                if records.len() == 1 {
                    return Ok(vec![Item::Rejected(format!(
                        "bulk request rejected: HTTP {status}: {}",
                        excerpt(&text)
                    ))]);
                }
                let (left, right) = records.split_at(records.len() / 2);
                let mut items = self.bulk(left, deadline)?;
                match self.bulk(right, deadline) {
                    Ok(more) => items.extend(more),
                    // The first half is settled; the rest waits for the retry.
                    Err(e) => items.extend(right.iter().map(|_| Item::Retry(e.clone()))),
                }
                Ok(items)
            }
            _ => {
                SinkCounters::add(&self.counters.failed_requests, 1);
                Err(format!(
                    "bulk request to {} answered HTTP {status}: {}",
                    self.settings.url,
                    excerpt(&text)
                ))
            }
        }
    }

    fn dead_letter(&mut self, reason: &str, records: &[Record], errors: &mut Vec<String>) {
        if let Err(e) = self.dead.write(reason, records, &self.counters) {
            errors.push(format!("dead-letter file: {e}"));
        }
        if self.dead.path().is_none() {
            let ids: Vec<&str> = records.iter().take(5).map(|r| r.id.as_str()).collect();
            errors.push(format!(
                "{} event(s) dropped ({reason}), e.g. {ids:?}; set dead_letter= to keep them",
                records.len()
            ));
        }
    }

    /// Queues records behind the backlog; dead-letters what does not fit.
    fn queue_in_backlog(&mut self, records: &[Record], errors: &mut Vec<String>) {
        match self.backlog.push(records) {
            Ok(n) => {
                SinkCounters::add(&self.counters.spooled, n as u64);
                if n < records.len() {
                    self.dead_letter("spool full", &records[n..], errors);
                }
            }
            Err(e) => {
                errors.push(format!("spool: {e}"));
                self.dead_letter(&format!("spool write failed: {e}"), records, errors);
            }
        }
    }

    /// Sends a batch that was never queued (the backlog is empty and nothing is failing).
    fn deliver_fresh(
        &mut self,
        batch: Vec<Record>,
        deadline: Option<Instant>,
        errors: &mut Vec<String>,
    ) {
        match self.bulk(&batch, deadline) {
            Err(e) => {
                errors.push(e);
                self.record_failure(Instant::now());
                self.queue_in_backlog(&batch, errors);
            }
            Ok(items) => {
                let mut retry = Vec::new();
                for (record, item) in batch.into_iter().zip(items) {
                    match item {
                        Item::Delivered => SinkCounters::add(&self.counters.shipped, 1),
                        Item::Rejected(reason) => {
                            self.dead_letter(&reason, std::slice::from_ref(&record), errors)
                        }
                        Item::Retry(_) => retry.push(record),
                    }
                }
                if retry.is_empty() {
                    self.record_success();
                } else {
                    self.record_failure(Instant::now());
                    self.queue_in_backlog(&retry, errors);
                }
            }
        }
    }

    /// Replays the backlog oldest-first while Elasticsearch accepts it, for at most
    /// [`REPLAY_BUDGET`] (or until `deadline`) so that other sinks get their turn.
    fn replay(&mut self, now: Instant, deadline: Option<Instant>, errors: &mut Vec<String>) {
        let stop = deadline.unwrap_or_else(|| Instant::now() + REPLAY_BUDGET);
        while self.backlog.len() > 0 && !self.backing_off(now.max(Instant::now())) {
            if Instant::now() >= stop || self.time_left(deadline).is_none() {
                return;
            }
            let head = match self.backlog.peek(self.settings.batch) {
                Ok(head) if !head.is_empty() => head,
                Ok(_) => return,
                Err(e) => {
                    errors.push(format!("spool read: {e}"));
                    return;
                }
            };
            SinkCounters::add(&self.counters.retried, head.len() as u64);
            let items = match self.bulk(&head, deadline) {
                Ok(items) => items,
                Err(e) => {
                    errors.push(e);
                    self.record_failure(Instant::now());
                    return;
                }
            };
            // Only a prefix can leave the spool: stop at the first document to retry.
            let done = items
                .iter()
                .position(|i| matches!(i, Item::Retry(_)))
                .unwrap_or(items.len());
            for (i, (record, item)) in head.iter().zip(&items).enumerate() {
                match item {
                    Item::Delivered => {
                        // Counted once, even when an early stop brings it round again.
                        let counted = if i < done {
                            self.acked_ahead.remove(&record.id)
                        } else {
                            !self.acked_ahead.insert(record.id.clone())
                        };
                        if !counted {
                            SinkCounters::add(&self.counters.shipped, 1);
                        }
                    }
                    Item::Rejected(reason) if i < done => {
                        self.acked_ahead.remove(&record.id);
                        self.dead_letter(reason, std::slice::from_ref(record), errors);
                    }
                    // Behind the stop: settled by the next replay.
                    _ => {}
                }
            }
            if let Err(e) = self.backlog.commit(done) {
                errors.push(format!("spool commit: {e}"));
                self.record_failure(Instant::now());
                return;
            }
            if done < head.len() {
                self.record_failure(Instant::now());
                return;
            }
            self.record_success();
        }
    }

    /// Sends (or queues) the pending records in batches; with `full_only`, only full batches
    /// (the rest keeps waiting for the flush interval).
    fn flush_pending(
        &mut self,
        now: Instant,
        deadline: Option<Instant>,
        full_only: bool,
        errors: &mut Vec<String>,
    ) {
        while !self.pending.is_empty() {
            if full_only && self.pending.len() < self.settings.batch {
                self.pending_since = Some(now);
                return;
            }
            let take = self.pending.len().min(self.settings.batch);
            let batch: Vec<Record> = self.pending.drain(..take).collect();
            if self.backlog.len() > 0
                || self.backing_off(now.max(Instant::now()))
                || self.time_left(deadline).is_none()
            {
                // Behind the backlog, to keep the order.
                self.queue_in_backlog(&batch, errors);
            } else {
                self.deliver_fresh(batch, deadline, errors);
            }
        }
        self.pending_since = None;
    }

    /// Installs the index template if it is due and missing.
    fn ensure_template(&mut self, now: Instant, errors: &mut Vec<String>) {
        let TemplateState::Due { at, failures } = self.template else {
            return;
        };
        // While the server is unreachable the bulk retries probe it; no need to wait twice.
        if at.is_some_and(|at| now < at) || self.backing_off(now) {
            return;
        }
        self.template = match self.install_template() {
            Ok(()) => TemplateState::Installed,
            Err((status, e)) => {
                SinkCounters::add(&self.counters.failed_requests, 1);
                if status.is_none() {
                    // Unreachable: the bulk requests would only fail (or time out) too.
                    self.record_failure(now);
                }
                if status == Some(403) {
                    errors.push(format!(
                        "index template {}: {e}; not retried: install it by hand or set template=off",
                        self.settings.index
                    ));
                    TemplateState::Forbidden
                } else {
                    errors.push(format!(
                        "index template {}: {e}; will retry",
                        self.settings.index
                    ));
                    let failures = failures.saturating_add(1);
                    let delay =
                        backoff_delay(self.settings.backoff, self.settings.backoff_max, failures);
                    TemplateState::Due {
                        at: Some(now + delay),
                        failures,
                    }
                }
            }
        };
    }

    fn install_template(&self) -> Result<(), (Option<u16>, String)> {
        let timeout = self.settings.timeout;
        let (status, text) = self
            .exchange(http::Request::get(&self.template_url), (), timeout)
            .map_err(|e| (None, e))?;
        match status {
            200 => return Ok(()),
            404 => {}
            _ => {
                return Err((
                    Some(status),
                    format!("GET answered HTTP {status}: {}", excerpt(&text)),
                ))
            }
        }
        let request =
            http::Request::put(&self.template_url).header("Content-Type", "application/json");
        let (status, text) = self
            .exchange(request, index_template(&self.settings.index), timeout)
            .map_err(|e| (None, e))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err((
                Some(status),
                format!("PUT answered HTTP {status}: {}", excerpt(&text)),
            ))
        }
    }

    fn result(errors: Vec<String>) -> SinkResult {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SinkError(format!("elasticsearch: {}", errors.join("; "))))
        }
    }
}

impl Sink for ElasticsearchSink {
    fn name(&self) -> &str {
        "elasticsearch"
    }

    fn send(&mut self, batch: &[Record]) -> SinkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if self.pending.is_empty() {
            self.pending_since = Some(now);
        }
        self.pending.extend_from_slice(batch);
        let mut errors = Vec::new();
        if self.pending.len() >= self.settings.batch {
            self.ensure_template(now, &mut errors);
            self.replay(now, None, &mut errors);
            self.flush_pending(now, None, true, &mut errors);
        }
        Self::result(errors)
    }

    fn tick(&mut self, now: Instant) -> SinkResult {
        let mut errors = Vec::new();
        self.ensure_template(now, &mut errors);
        self.replay(now, None, &mut errors);
        if self
            .pending_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.settings.flush)
        {
            self.flush_pending(now, None, false, &mut errors);
        }
        Self::result(errors)
    }

    fn flush(&mut self, deadline: Instant) -> SinkResult {
        let mut errors = Vec::new();
        let now = Instant::now();
        // Shutdown cannot wait for the backoff timer: one more try with what time is left.
        self.retry_at = None;
        self.replay(now, Some(deadline), &mut errors);
        self.flush_pending(now, Some(deadline), false, &mut errors);
        if let Backlog::Memory { .. } = self.backlog {
            let left = self.backlog.peek(usize::MAX).unwrap_or_default();
            if !left.is_empty() {
                let _ = self.backlog.commit(left.len());
                self.dead_letter(
                    "not delivered before shutdown and no spool= configured",
                    &left,
                    &mut errors,
                );
            }
        }
        Self::result(errors)
    }

    fn reopen(&mut self) -> SinkResult {
        self.dead
            .reopen()
            .map_err(|e| SinkError(format!("elasticsearch: dead-letter file: {e}")))
    }

    fn counters(&self) -> &SinkCounters {
        &self.counters
    }
}

/// Exponential backoff with "equal jitter": half fixed, half random, so that workers that failed
/// together do not retry together.
fn backoff_delay(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(max);
    let half = exp / 2;
    half + Duration::from_nanos(fastrand::u64(0..=half.as_nanos() as u64))
}

/// `{"create":{"_id":...}}` + document per record, each line ending in a newline.
fn bulk_body(records: &[Record]) -> Vec<u8> {
    let mut body = Vec::with_capacity(records.iter().map(|r| r.json.len() + r.id.len() + 24).sum());
    for r in records {
        body.extend_from_slice(b"{\"create\":{\"_id\":");
        body.extend_from_slice(
            serde_json::to_string(&r.id)
                .expect("a string always serializes")
                .as_bytes(),
        );
        body.extend_from_slice(b"}}\n");
        // A raw line break would end the document early; in JSON it is only whitespace.
        if r.json.contains(['\n', '\r']) {
            body.extend_from_slice(r.json.replace(['\n', '\r'], " ").as_bytes());
        } else {
            body.extend_from_slice(r.json.as_bytes());
        }
        body.push(b'\n');
    }
    body
}

/// Reads a 2xx bulk answer into one [`Item`] per document, in order.
fn parse_bulk_response(text: &str, expected: usize) -> Result<Vec<Item>, String> {
    let answer: Value = serde_json::from_str(text)
        .map_err(|e| format!("unreadable bulk answer ({e}): {}", excerpt(text)))?;
    let items = answer["items"]
        .as_array()
        .ok_or_else(|| format!("bulk answer without items: {}", excerpt(text)))?;
    if items.len() != expected {
        return Err(format!(
            "bulk answer has {} items for {expected} documents",
            items.len()
        ));
    }
    if answer["errors"] == Value::Bool(false) {
        return Ok(vec![Item::Delivered; expected]);
    }
    Ok(items.iter().map(parse_item).collect())
}

fn parse_item(item: &Value) -> Item {
    // Keyed by the action: {"create": {...}}.
    let Some(result) = item.as_object().and_then(|o| o.values().next()) else {
        return Item::Retry("bulk item without a result".into());
    };
    let Some(status) = result["status"].as_u64() else {
        return Item::Retry("bulk item without a status".into());
    };
    match status {
        200..=299 | 409 => Item::Delivered,
        429 | 500..=599 => Item::Retry(item_reason(status, result)),
        _ => Item::Rejected(item_reason(status, result)),
    }
}

/// `400 mapper_parsing_exception: failed to parse field [source.ip] ...`
fn item_reason(status: u64, result: &Value) -> String {
    let error = &result["error"];
    let kind = error["type"].as_str().unwrap_or("error");
    let mut reason = format!("{status} {kind}");
    if let Some(text) = error["reason"].as_str() {
        reason.push_str(": ");
        reason.push_str(text);
    }
    if let Some(cause) = error["caused_by"]["reason"].as_str() {
        reason.push_str(" (");
        reason.push_str(cause);
        reason.push(')');
    }
    reason
}

/// The start of an answer body, for error messages.
fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    let text = text.trim();
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn parse(args: &[&str]) -> Result<ElasticsearchSettings, String> {
        ElasticsearchSettings::parse(args)
    }

    fn secret_file(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[test]
    fn defaults() {
        let s = parse(&["https://es.example.org:9200/"]).unwrap();
        assert_eq!(s.url, "https://es.example.org:9200");
        assert_eq!(s.index, "logs-honeytrap-default");
        assert_eq!(s.batch, 500);
        assert_eq!(s.flush, Duration::from_secs(1));
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.backoff, Duration::from_millis(500));
        assert_eq!(s.backoff_max, Duration::from_secs(30));
        assert_eq!(s.spool, None);
        assert_eq!(s.spool_size, 256 << 20);
        assert_eq!(s.dead_letter, None);
        assert!(s.template);
        assert_eq!(s.auth_kind(), None);
    }

    #[test]
    fn every_parameter() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret_file(
            dir.path(),
            "key",
            "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==\n",
        );
        let args = [
            "http://127.0.0.1:9200/prefix",
            "index=logs-honeytrap-prod",
            &format!("api_key_file={key}"),
            "batch=100",
            "flush=250ms",
            "spool=/var/spool/honeytrap",
            "spool_size=64m",
            "dead_letter=/var/log/honeytrap/dead.ndjson",
            "timeout=3s",
            "template=off",
            "backoff=10ms",
            "backoff_max=1m",
        ];
        let s = parse(&args).unwrap();
        assert_eq!(s.url, "http://127.0.0.1:9200/prefix");
        assert_eq!(s.index, "logs-honeytrap-prod");
        assert_eq!(s.auth_kind(), Some("api_key"));
        assert_eq!(s.batch, 100);
        assert_eq!(s.flush, Duration::from_millis(250));
        assert_eq!(s.spool.as_deref(), Some(Path::new("/var/spool/honeytrap")));
        assert_eq!(s.spool_size, 64 << 20);
        assert_eq!(
            s.dead_letter.as_deref(),
            Some(Path::new("/var/log/honeytrap/dead.ndjson"))
        );
        assert_eq!(s.timeout, Duration::from_secs(3));
        assert!(!s.template);
        assert_eq!(s.backoff, Duration::from_millis(10));
        assert_eq!(s.backoff_max, Duration::from_secs(60));
    }

    #[test]
    fn api_key_as_id_and_key_is_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret_file(
            dir.path(),
            "key",
            "VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw\n",
        );
        let s = parse(&["https://es", &format!("api_key_file={key}")]).unwrap();
        assert_eq!(
            s.auth.unwrap().header(),
            "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
        );
    }

    #[test]
    fn basic_auth_reads_the_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let pw = secret_file(dir.path(), "pw", "s3cr et\r\n");
        let s = parse(&["https://es", "user=elastic", &format!("password_file={pw}")]).unwrap();
        assert_eq!(s.auth_kind(), Some("basic"));
        assert_eq!(
            s.auth.unwrap().header(),
            format!("Basic {}", base64(b"elastic:s3cr et"))
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret_file(dir.path(), "key", "TOPSECRETKEY");
        let s = parse(&["https://es", &format!("api_key_file={key}")]).unwrap();
        let debug = format!("{s:?} {:#?}", s);
        assert!(!debug.contains("TOPSECRETKEY"), "{debug}");
        assert!(debug.contains("<redacted>"));

        let pw = secret_file(dir.path(), "pw", "hunter2-password");
        let s = parse(&["https://es", "user=elastic", &format!("password_file={pw}")]).unwrap();
        let sink = ElasticsearchSink::new(s.clone()).unwrap();
        let debug = format!("{s:?} {sink:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            !debug.contains(&base64(b"elastic:hunter2-password")),
            "{debug}"
        );
        assert!(debug.contains("elastic"));
    }

    #[test]
    fn relative_paths_follow_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        secret_file(dir.path(), "key", "abc");
        let s = ElasticsearchSettings::parse_relative_to(
            &[
                "https://es",
                "api_key_file=key",
                "spool=spool",
                "dead_letter=/abs/dead",
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.spool, Some(dir.path().join("spool")));
        assert_eq!(s.dead_letter.as_deref(), Some(Path::new("/abs/dead")));
    }

    #[test]
    fn for_worker_gives_each_worker_its_spool() {
        let s = parse(&["https://es", "spool=/s", "dead_letter=/d"]).unwrap();
        let w = s.for_worker(3);
        assert_eq!(w.spool.as_deref(), Some(Path::new("/s/worker-3")));
        assert_eq!(w.dead_letter.as_deref(), Some(Path::new("/d")));
        assert_eq!(parse(&["https://es"]).unwrap().for_worker(1).spool, None);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let key = format!("api_key_file={}", secret_file(dir.path(), "key", "abc"));
        let empty = format!("api_key_file={}", secret_file(dir.path(), "empty", "\n"));
        let pw = format!("password_file={}", secret_file(dir.path(), "pw", "x"));
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing the Elasticsearch URL"),
            (&["ftp://es"], "scheme must be http or https"),
            (&["es.example.org:9200"], "scheme must be http or https"),
            (&["https://"], "invalid URL"),
            (&["https://user:pw@es"], "credentials in the URL"),
            (&["https://es/?x=1"], "no query"),
            (&["https://es", "batch"], "expected key=value"),
            (
                &["https://es", "colour=blue"],
                "unknown parameter \"colour\"",
            ),
            (&["https://es", "batch=0"], "\"batch\""),
            (&["https://es", "batch=ten"], "\"batch\""),
            (&["https://es", "batch=1", "batch=2"], "given twice"),
            (&["https://es", "flush=5x"], "\"flush\" value \"5x\""),
            (&["https://es", "flush="], "needs a value"),
            (
                &["https://es", "timeout=0"],
                "\"timeout\" must be more than 0",
            ),
            (&["https://es", "spool_size=12q"], "\"spool_size\""),
            (&["https://es", "spool_size=99999999999g"], "\"spool_size\""),
            (&["https://es", "index=Logs"], "lowercase"),
            (&["https://es", "index=a/b"], "must not contain"),
            (&["https://es", "index=_x"], "must not start"),
            (&["https://es", "template=yes"], "on or off"),
            (
                &["https://es", "backoff=2s", "backoff_max=1s"],
                "backoff_max",
            ),
            (
                &["https://es", "password=x"],
                "keep secrets out of nginx.conf",
            ),
            (
                &["https://es", "api_key_file=/nonexistent/key"],
                "cannot read api_key_file",
            ),
            (&["https://es", &empty], "is empty"),
            (&["https://es", "user=u"], "user= needs password_file="),
            (&["https://es", &pw], "password_file= needs user="),
            (&["https://es", "user=a:b", &pw], "must not contain ':'"),
            (&["https://es", &key, "user=u", &pw], "cannot be combined"),
            (&["https://es", "ca=/nonexistent.pem"], "cannot read ca"),
            (
                &["https://es", &key.replace("api_key_file", "ca")],
                "no PEM certificate",
            ),
        ];
        for (args, expected) in cases {
            let err = parse(args).unwrap_err();
            assert!(
                err.contains(expected),
                "{args:?}: {err:?} should mention {expected:?}"
            );
            assert!(!err.contains("abc"), "a secret leaked into {err:?}");
        }
    }

    #[test]
    fn ca_file_is_loaded() {
        // Any well-formed PEM certificate block is accepted at parse time; validation is the
        // TLS handshake's business.
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
        let ca = secret_file(dir.path(), "ca.pem", pem);
        let s = parse(&["https://es", &format!("ca={ca}")]).unwrap();
        assert_eq!(s.ca_certs.0.len(), 1);
        assert!(format!("{s:?}").contains("1 certificate(s)"));
        ElasticsearchSink::new(s).unwrap();
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn bulk_body_pairs_action_and_document_lines() {
        let records = [
            Record {
                id: "a".into(),
                json: r#"{"@timestamp":"t","x":1}"#.into(),
            },
            Record {
                id: "b\"".into(),
                json: "{\"@timestamp\":\"t\",\n\"y\":2}".into(),
            },
        ];
        let body = String::from_utf8(bulk_body(&records)).unwrap();
        assert!(body.ends_with('\n'));
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], json!({"create": {"_id": "a"}}));
        assert_eq!(lines[1]["x"], 1);
        assert_eq!(lines[2], json!({"create": {"_id": "b\""}}));
        assert_eq!(lines[3]["y"], 2);
    }

    #[test]
    fn bulk_answers_are_read_item_by_item() {
        let answer = json!({
            "errors": true,
            "items": [
                {"create": {"_id": "1", "status": 201}},
                {"create": {"_id": "2", "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
                {"create": {"_id": "3", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
                {"create": {"_id": "4", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [source.ip]", "caused_by": {"type": "illegal_argument_exception", "reason": "'x' is not an IP string literal."}}}},
                {"create": {"_id": "5", "status": 503, "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}}},
                {"create": {"_id": "6", "status": 404, "error": {"type": "index_not_found_exception", "reason": "no such index"}}},
            ]
        });
        let items = parse_bulk_response(&answer.to_string(), 6).unwrap();
        assert_eq!(items[0], Item::Delivered);
        assert_eq!(items[1], Item::Delivered);
        assert!(
            matches!(&items[2], Item::Retry(r) if r.starts_with("429 es_rejected_execution_exception"))
        );
        assert_eq!(
            items[3],
            Item::Rejected(
                "400 mapper_parsing_exception: failed to parse field [source.ip] ('x' is not an IP string literal.)".into()
            )
        );
        assert!(matches!(&items[4], Item::Retry(r) if r.starts_with("503")));
        assert!(
            matches!(&items[5], Item::Rejected(r) if r.starts_with("404 index_not_found_exception"))
        );

        let ok = json!({"errors": false, "items": [{"create": {"status": 201}}, {"create": {"status": 201}}]});
        assert_eq!(
            parse_bulk_response(&ok.to_string(), 2).unwrap(),
            vec![Item::Delivered; 2]
        );
        assert!(parse_bulk_response(&ok.to_string(), 3)
            .unwrap_err()
            .contains("2 items for 3"));
        assert!(parse_bulk_response("<html>", 1).is_err());
        assert!(parse_bulk_response("{}", 1).is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        for failures in 1..40 {
            let exp = (base * 2u32.pow((failures - 1).min(20))).min(max);
            for _ in 0..20 {
                let d = backoff_delay(base, max, failures);
                assert!(d >= exp / 2 && d <= exp, "{failures}: {d:?}");
            }
        }
        let spread: HashSet<Duration> = (0..20).map(|_| backoff_delay(base, max, 5)).collect();
        assert!(spread.len() > 1, "jittered");
    }

    #[test]
    fn excerpt_cuts_on_a_char_boundary() {
        let long = "é".repeat(400);
        let e = excerpt(&long);
        assert!(e.ends_with("...") && e.len() <= 303);
        assert_eq!(excerpt(" short "), "short");
    }

    #[test]
    fn template_targets_the_data_stream() {
        let t: Value = serde_json::from_str(&index_template("logs-honeytrap-prod")).unwrap();
        assert_eq!(t["index_patterns"], json!(["logs-honeytrap-prod"]));
        assert_eq!(t["data_stream"], json!({}));
        assert!(
            t["priority"].as_u64().unwrap() > 100,
            "must win over the built-in logs-*-* template"
        );
        assert_eq!(
            t["template"]["mappings"]["properties"]["@timestamp"]["type"],
            "date"
        );
    }

    /// Flattens `properties` into `a.b.c -> mapping`.
    fn mapped_fields(properties: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
        for (name, mapping) in properties.as_object().unwrap() {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match mapping.get("properties") {
                Some(children) => mapped_fields(children, &path, out),
                None => {
                    out.insert(path, mapping.clone());
                }
            }
        }
    }

    /// Every field the template maps outside `honeytrap.*` is an ECS field, with ECS's type
    /// (and multi-fields); `honeytrap.*` stays clear of ECS names.
    #[test]
    fn template_mappings_agree_with_ecs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ecs/ecs_flat.yml");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (shared/ must sit beside the repository)",
                path.display()
            )
        });
        let ecs: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(&text).unwrap();

        let template: Value = serde_json::from_str(INDEX_TEMPLATE).unwrap();
        let mut fields = BTreeMap::new();
        mapped_fields(
            &template["template"]["mappings"]["properties"],
            "",
            &mut fields,
        );
        assert!(fields.len() > 40);
        for (name, mapping) in &fields {
            if name.starts_with("honeytrap.") {
                assert!(!ecs.contains_key(name));
                continue;
            }
            let spec = ecs
                .get(name)
                .unwrap_or_else(|| panic!("{name} is not an ECS field"));
            assert_eq!(
                mapping["type"].as_str(),
                spec["type"].as_str(),
                "type of {name}"
            );
            if let Some(limit) = spec["ignore_above"].as_u64() {
                assert_eq!(
                    mapping["ignore_above"].as_u64(),
                    Some(limit),
                    "ignore_above of {name}"
                );
            }
            let multi: Vec<(String, String)> = spec["multi_fields"]
                .as_sequence()
                .map(|m| {
                    m.iter()
                        .map(|f| {
                            (
                                f["name"].as_str().unwrap().to_owned(),
                                f["type"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (sub, ty) in multi {
                assert_eq!(
                    mapping["fields"][&sub]["type"].as_str(),
                    Some(ty.as_str()),
                    "{name}.{sub}"
                );
            }
        }
    }

    /// A document shaped like the ones the event module writes maps without dynamic guesses:
    /// every leaf is covered by an explicit mapping (or lies under a `flattened` field).
    #[test]
    fn template_covers_an_emitted_document() {
        let doc = json!({
            "@timestamp": "2024-05-23T08:05:34.853Z",
            "ecs": {"version": "9.4.0"},
            "event": {"kind": "alert", "category": ["intrusion_detection", "web"], "type": ["denied"],
                      "action": "bait-touched", "severity": 2, "id": "x", "dataset": "honeytrap.events",
                      "module": "honeytrap"},
            "source": {"ip": "203.0.113.7", "port": 51234},
            "destination": {"ip": "2001:db8::1", "port": 443},
            "url": {"original": "/a?b", "path": "/a", "query": "b", "domain": "shop.example"},
            "http": {"request": {"method": "POST", "body": {"content": "x", "bytes": 1}},
                     "version": "1.1", "response": {"status_code": 403}},
            "user_agent": {"original": "sqlmap/1"},
            "rule": {"id": "942100", "name": "n", "category": "c"},
            "threat": {"framework": "MITRE ATT&CK",
                       "technique": {"id": ["T1190"], "name": ["Exploit"]},
                       "tactic": {"id": ["TA0001"], "name": ["Initial Access"]}},
            "observer": {"name": "s", "type": "honeypot", "vendor": "v", "product": "ngx-honeytrap", "version": "0.1.0"},
            "transaction": {"id": "t"},
            "related": {"ip": ["203.0.113.7"]},
            "tags": ["honeytrap"],
            "honeytrap": {
                "kind": "bait", "flagged": true, "truncated": ["url.domain"],
                "bait": {"type": "credential", "name": "wp-admin", "token": "tok"},
                "attribution": {"served_to_ip": "198.51.100.9", "served_at": "2023-11-14T22:13:20.123Z", "token_id": "t-42", "valid": true},
                "anomaly_score": {"inbound": 10, "outbound": 0},
                "rules": [{"id": "942100", "msg": "m", "tags": ["a"], "severity": 2, "matched_var": "ARGS:user", "matched_data": "d"}],
                "credentials": {"username": "root", "password": "hunter2"},
                "request": {"headers": {"host": "shop.example", "x-anything": "v"}}
            }
        });
        let template: Value = serde_json::from_str(INDEX_TEMPLATE).unwrap();
        let mut fields = BTreeMap::new();
        mapped_fields(
            &template["template"]["mappings"]["properties"],
            "",
            &mut fields,
        );

        fn leaves(v: &Value, path: &str, out: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    for (k, child) in map {
                        let p = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        leaves(child, &p, out);
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| leaves(i, path, out)),
                _ => out.push(path.to_owned()),
            }
        }
        let mut paths = Vec::new();
        leaves(&doc, "", &mut paths);
        for path in paths {
            let covered = fields.contains_key(&path)
                || fields
                    .iter()
                    .any(|(f, m)| m["type"] == "flattened" && path.starts_with(&format!("{f}.")));
            assert!(covered, "{path} has no mapping in the template");
        }
    }
}
