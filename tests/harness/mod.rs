//! Runs the vendored nginx with the freshly built module, for integration tests.
//!
//! Each [`Nginx`] gets its own temporary prefix and free loopback ports, so tests run in
//! parallel. Dropping it stops nginx (graceful quit, then kill) and fails the test if the
//! error log shows `[alert]`, `[emerg]`, a crash or a Rust panic that was not expected.
#![allow(dead_code)]

pub mod http;

use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

pub use http::Response;

/// Log lines that fail a test unless the test said it expects them.
const FATAL_MARKERS: &[&str] = &[
    "[alert]",
    "[emerg]",
    "exited on signal",
    "core dumped",
    "panicked at",
];

/// The nginx binary the `ngx` build produced (nginx-src, vendored).
pub fn nginx_binary() -> PathBuf {
    let path = Path::new(env!("HONEYTRAP_NGINX_BUILD_DIR")).join("nginx");
    assert!(
        path.is_file(),
        "vendored nginx binary missing at {}",
        path.display()
    );
    path
}

/// The module, built (or found up to date) once per test binary with the test hooks, in the
/// profile of this test run: cargo does not rebuild a cdylib for integration tests itself.
pub fn module_path() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>/deps");
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev",
                Some(other) => other,
            };
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "--lib",
                    "--features",
                    "test-hooks",
                    "--profile",
                    profile,
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building the module failed");
            let path = profile_dir.join("libngx_http_honeytrap_module.so");
            assert!(path.is_file(), "{} missing after the build", path.display());
            path
        })
        .clone()
}

/// A free loopback port. Another process may take it before nginx binds it; [`Nginx::start`]
/// retries with new ports when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Settings of one nginx instance.
pub struct Config {
    /// Text placed inside `http { }`; `{port0}`…`{port9}` and `{prefix}` are substituted.
    pub http: String,
    /// Text placed at the main level, after the harness's own lines.
    pub main: String,
    pub workers: u32,
    /// Substrings of fatal log lines this test provokes on purpose.
    pub expected_fatal: Vec<String>,
    /// Files to create under the prefix before start (path relative to prefix, content).
    pub files: Vec<(String, Vec<u8>)>,
}

impl Config {
    pub fn new(http: &str) -> Self {
        Config {
            http: http.to_owned(),
            main: String::new(),
            workers: 1,
            expected_fatal: vec![],
            files: vec![],
        }
    }

    pub fn workers(mut self, n: u32) -> Self {
        self.workers = n;
        self
    }

    pub fn main(mut self, text: &str) -> Self {
        self.main = text.to_owned();
        self
    }

    pub fn expect_fatal(mut self, substring: &str) -> Self {
        self.expected_fatal.push(substring.to_owned());
        self
    }

    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_owned(), content.into()));
        self
    }

    fn port_count(&self) -> usize {
        (0..10)
            .filter(|i| self.http.contains(&format!("{{port{i}}}")))
            .count()
    }
}

/// A running nginx master in the foreground (`daemon off`), child of the test.
pub struct Nginx {
    prefix: tempfile::TempDir,
    child: Option<Child>,
    ports: Vec<u16>,
    expected_fatal: Vec<String>,
    workers: u32,
}

impl Nginx {
    pub fn start(config: Config) -> Nginx {
        Self::start_with_first_ports(config, None)
    }

    /// As [`Nginx::start`], but the first attempt listens on `first` (for the harness's own
    /// test of the retry); later attempts take free ports.
    pub fn start_with_first_ports(config: Config, mut first: Option<Vec<u16>>) -> Nginx {
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let ports: Vec<u16> = first
                .take()
                .unwrap_or_else(|| (0..config.port_count()).map(|_| free_port()).collect());
            let prefix = new_prefix(&config);
            write_conf(prefix.path(), &config, &ports);
            let child = spawn_master(prefix.path());
            let mut nginx = Nginx {
                prefix,
                child: Some(child),
                ports,
                expected_fatal: config.expected_fatal.clone(),
                workers: config.workers,
            };
            match nginx.wait_ready() {
                Ok(()) => return nginx,
                Err(log) if log.contains("Address already in use") => {
                    // nginx retries the bind itself, then gives up ("still could not bind()");
                    // this attempt is abandoned, so neither its log nor its exit fails the test.
                    nginx.expected_fatal.push(String::new());
                    last_log = log;
                    continue;
                }
                Err(log) => {
                    nginx.expected_fatal.push(String::new()); // already failing; skip drop check
                    panic!("nginx did not start:\n{log}");
                }
            }
        }
        panic!("nginx could not bind free ports after 5 attempts:\n{last_log}");
    }

    pub fn prefix(&self) -> &Path {
        self.prefix.path()
    }

    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    pub fn get(&self, path: &str) -> Response {
        http::get(self.ports[0], path)
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.prefix().join("logs/error.log")).unwrap_or_default()
    }

    pub fn master_pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Pids of the worker processes alive now (children of the master not exiting).
    pub fn worker_pids(&self) -> Vec<u32> {
        children_of(self.master_pid())
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain kill(2) on our own child process.
        let rc = unsafe { libc::kill(self.master_pid() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
    }

    /// `nginx -s reload`, then waits until the new generation of workers is serving and only
    /// it is left: as many workers as configured, all started after the reload.
    pub fn reload(&self) {
        let before = self.worker_pids();
        let log_len = self.error_log().len();
        self.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.error_log();
            let reconfigured = log[log_len.min(log.len())..].contains("start worker process");
            let workers = self.worker_pids();
            if reconfigured
                && workers.len() == self.workers as usize
                && workers.iter().all(|pid| !before.contains(pid))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "reload did not settle: workers {workers:?}\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                self.child = None;
                return Err(format!("nginx exited with {status}\n{}", self.logs()));
            }
            // Ports are probed only once the workers run: before that a port may still belong
            // to whoever took it, and probing a listener nobody accepts on fills its backlog.
            let started = self.worker_pids().len() == self.workers as usize;
            if started
                && self
                    .ports
                    .iter()
                    .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("nginx not ready after 20 s\n{}", self.logs()));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn logs(&self) -> String {
        let stderr = fs::read_to_string(self.prefix().join("logs/stderr.log")).unwrap_or_default();
        format!("--- error.log\n{}--- stderr\n{stderr}", self.error_log())
    }

    /// Graceful quit; returns the master's exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("nginx running");
        // SAFETY: kill(2) on our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nginx did not quit within 15 s\n{}", self.logs());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Fatal lines of the logs that the test did not declare as expected.
    pub fn unexpected_fatal_lines(&self) -> Vec<String> {
        self.logs()
            .lines()
            .filter(|line| FATAL_MARKERS.iter().any(|m| line.contains(m)))
            .filter(|line| {
                !self
                    .expected_fatal
                    .iter()
                    .any(|e| line.contains(e.as_str()))
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let status = self.child.is_some().then(|| self.stop());
        if thread::panicking() || self.expected_fatal.iter().any(String::is_empty) {
            return;
        }
        if let Some(status) = status {
            assert!(
                status.success(),
                "nginx master exited with {status}\n{}",
                self.logs()
            );
        }
        let fatal = self.unexpected_fatal_lines();
        assert!(
            fatal.is_empty(),
            "unexpected fatal lines in nginx logs:\n{}",
            fatal.join("\n")
        );
    }
}

/// Runs `nginx -t` on a configuration; the prefix is kept alive in the result.
pub fn test_config(config: &Config) -> (Output, tempfile::TempDir) {
    let ports: Vec<u16> = (0..config.port_count()).map(|_| free_port()).collect();
    let prefix = new_prefix(config);
    write_conf(prefix.path(), config, &ports);
    let output = Command::new(nginx_binary())
        .arg("-t")
        .arg("-p")
        .arg(prefix.path())
        .arg("-c")
        .arg(prefix.path().join("conf/nginx.conf"))
        .output()
        .expect("run nginx -t");
    (output, prefix)
}

fn new_prefix(config: &Config) -> tempfile::TempDir {
    let prefix = tempfile::Builder::new()
        .prefix("honeytrap-nginx-")
        .tempdir()
        .expect("temp prefix");
    // Workers drop root privileges (user nobody); they must read what the test serves.
    fs::set_permissions(prefix.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for dir in ["conf", "logs", "html"] {
        fs::create_dir(prefix.path().join(dir)).unwrap();
    }
    for (path, content) in &config.files {
        let path = prefix.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    prefix
}

fn write_conf(prefix: &Path, config: &Config, ports: &[u16]) {
    let mut http = config.http.replace("{prefix}", prefix.to_str().unwrap());
    for (i, port) in ports.iter().enumerate() {
        http = http.replace(&format!("{{port{i}}}"), &port.to_string());
    }
    let conf = format!(
        "load_module {module};\n\
         daemon off;\n\
         master_process on;\n\
         worker_processes {workers};\n\
         pid logs/nginx.pid;\n\
         error_log logs/error.log notice;\n\
         {main}\n\
         events {{ worker_connections 512; }}\n\
         http {{\n\
         access_log off;\n\
         {http}\n\
         }}\n",
        module = module_path().display(),
        workers = config.workers,
        main = config.main,
    );
    fs::write(prefix.join("conf/nginx.conf"), conf).unwrap();
}

fn spawn_master(prefix: &Path) -> Child {
    let stderr = fs::File::create(prefix.join("logs/stderr.log")).unwrap();
    Command::new(nginx_binary())
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(prefix.join("conf/nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn nginx")
}

/// Processes whose parent is `pid`, read from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // The command name may contain spaces; fields after the last ')' are fixed.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[1] == pid.to_string()
        })
        .collect()
}

/// Number of threads of a process (for leak checks across reloads).
pub fn thread_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Number of open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The NDJSON lines of `path`, parsed, once at least `n` are there (or panics after 30 s: a
/// loaded CI machine can be slow, a missing event still fails).
pub fn wait_for_events(path: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} of {n} events:\n{text}",
            path.display(),
            text.lines().count()
        );
        thread::sleep(Duration::from_millis(25));
    }
}

/// Reads a dotted field (`"http.response.status_code"`) of an event.
/// The value of attribute `name` in an HTML tag written with double quotes.
pub fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    tag[start..].split('"').next()
}

pub fn field<'a>(event: &'a serde_json::Value, dotted: &str) -> &'a serde_json::Value {
    dotted.split('.').fold(event, |v, key| &v[key])
}

/// Asserts that `nginx -t` rejects `directive` (written at the `http` level, before
/// `server_block`) with an `[emerg]` containing `reason`, naming the directive's line unless
/// nginx reports the failure elsewhere (`with_line` false, e.g. a file it cannot open).
pub fn assert_rejected(directive: &str, server_block: &str, reason: &str, with_line: bool) {
    let config = Config::new(&format!("{directive}\n{server_block}"));
    let (output, prefix) = test_config(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{directive} accepted");
    assert!(
        stderr.contains("[emerg]") && stderr.contains(reason),
        "{directive}:\n{stderr}"
    );
    if with_line {
        let conf = fs::read_to_string(prefix.path().join("conf/nginx.conf")).unwrap();
        let line = conf.lines().position(|l| l.contains(directive)).unwrap() + 1;
        assert!(
            stderr.contains(&format!("nginx.conf:{line}")),
            "{directive}:\n{stderr}"
        );
    }
}
