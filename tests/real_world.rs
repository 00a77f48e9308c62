//! The baits against real clients, on a copy of the demo site (nginx-conf/site) with every
//! bait on, as nginx-conf/nginx.conf has it: a real browser raises nothing, real scanners
//! (dirb, gobuster, sqlmap) are caught. Each client is the Debian package (`scripts/deps`).

mod cdp;
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cdp::Browser;
use harness::{attribute, field, http, wait_for_events, Config, Nginx};
use serde_json::Value;

/// A fixed installation secret, so that bait names are the same on every run. Its form field
/// is `form_guard`: sqlmap below `--level 4` ignores parameters whose name contains `token`,
/// `csrf` or `xsrf`, as three of the module's twelve field names do (see the report in the
/// sqlmap test).
const SECRET: &str = "ngx-honeytrap real-world tests, installation secret 01\n";

/// The demo site's files, read from the repository, under `html/`.
fn site_files() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("nginx-conf/site");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The demo site with every bait on, as in nginx-conf/nginx.conf, and an access log that
/// shows what each request carried: the decoy cookie sent back, the form body, the flag.
fn demo() -> Nginx {
    let mut config = Config::new(
        "include {prefix}/conf/mime.types;
         default_type application/octet-stream;
         log_format real_world escape=json '{\"method\":\"$request_method\",\"uri\":\"$uri\",\"args\":\"$args\",\"status\":\"$status\",\"cookie\":\"$http_cookie\",\"set_cookie\":\"$sent_http_set_cookie\",\"body\":\"$request_body\",\"ua\":\"$http_user_agent\",\"flagged\":\"$honeytrap_flagged\"}';
         honeytrap_events_file {prefix}/logs/events.ndjson;
         honeytrap_secret_file {prefix}/conf/honeytrap.secret;
         honeytrap_zone honeytrap_flagged:1m ttl=24h;
         honeytrap on;
         server {
             listen 127.0.0.1:{port0};
             root {prefix}/html;
             index index.html;
             honeytrap_baits robots comment field cookie;
             access_log {prefix}/logs/access.ndjson real_world;
         }",
    )
    .file(
        "conf/mime.types",
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("nginx-conf/mime.types")).unwrap(),
    )
    .file("conf/honeytrap.secret", SECRET);
    for (name, content) in site_files() {
        config = config.file(&format!("html/{name}"), content);
    }
    Nginx::start(config)
}

fn base(nginx: &Nginx) -> String {
    format!("http://127.0.0.1:{}", nginx.port(0))
}

/// One access log line.
#[derive(Debug)]
struct Access {
    method: String,
    uri: String,
    args: String,
    status: u16,
    cookie: String,
    set_cookie: String,
    body: String,
    ua: String,
    flagged: String,
}

fn access_log(nginx: &Nginx) -> Vec<Access> {
    let text = fs::read_to_string(nginx.prefix().join("logs/access.ndjson")).unwrap_or_default();
    text.lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            Access {
                method: s("method"),
                uri: s("uri"),
                args: s("args"),
                status: s("status").parse().unwrap(),
                cookie: s("cookie"),
                set_cookie: s("set_cookie"),
                body: s("body"),
                ua: s("ua"),
                flagged: s("flagged"),
            }
        })
        .collect()
}

fn events_path(nginx: &Nginx) -> PathBuf {
    nginx.prefix().join("logs/events.ndjson")
}

/// The events so far, after the shipper had time to write what the requests produced.
fn events_now(nginx: &Nginx) -> Vec<Value> {
    thread::sleep(Duration::from_millis(800));
    wait_for_events(&events_path(nginx), 0)
}

/// A `name=value` pair of a form body or query string (the values here need no decoding).
fn form_value<'a>(form: &'a str, name: &str) -> Option<&'a str> {
    form.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

#[test]
fn a_real_browser_browsing_the_demo_and_signing_in_raises_nothing() {
    let nginx = demo();
    let base = base(&nginx);
    let mut browser = Browser::launch();
    let user_agent = browser.user_agent();

    browser.navigate(&format!("{base}/"));
    assert_eq!(browser.eval_string("document.title"), "Northwind Supplies");
    // Every link of the navigation bar, clicked from whichever page the browser is on.
    let links: Vec<String> = serde_json::from_value(
        browser.eval("Array.from(document.querySelectorAll('nav a'), a => a.getAttribute('href'))"),
    )
    .unwrap();
    assert!(links.len() >= 4, "{links:?}");
    for href in &links {
        browser.navigate_by(&format!(
            "document.querySelector('nav a[href=\"{href}\"]').click()"
        ));
        assert_eq!(&browser.eval_string("location.pathname"), href);
        assert!(
            browser.eval_string("document.title").contains("Northwind"),
            "{href}"
        );
    }
    browser.reload();

    // Sign in, as a person would: the form as the browser parsed it, bait field included.
    browser.navigate_by("document.querySelector('nav a[href=\"/login.html\"]').click()");
    let hidden: Vec<(String, String)> = serde_json::from_value(browser.eval(
        "Array.from(document.querySelectorAll('form input[type=hidden]'), i => [i.name, i.value])",
    ))
    .unwrap();
    assert_eq!(
        hidden.len(),
        1,
        "the login form has no bait field: {hidden:?}"
    );
    let (field_name, login_token) = hidden[0].clone();
    browser.navigate_by(
        "document.querySelector('input[name=username]').value = 'alice';
         document.querySelector('input[name=password]').value = 'correct horse';
         document.querySelector('form button[type=submit]').click()",
    );

    // Search the catalogue (a GET form: the bait field goes into the query string).
    browser.navigate(&format!("{base}/products.html"));
    browser.navigate_by(
        "document.querySelector('input[name=q]').value = 'washer';
         document.querySelector('form button[type=submit]').click()",
    );
    assert!(browser
        .eval_string("location.search")
        .contains(&format!("{field_name}=")));
    // The rest of the site, typed into the address bar.
    for (name, _) in site_files() {
        browser.navigate(&format!("{base}/{name}"));
    }
    drop(browser);

    assert!(
        events_now(&nginx).is_empty(),
        "a browser raised bait events:\n{}",
        fs::read_to_string(events_path(&nginx)).unwrap()
    );

    // The browser really did all of it.
    let log = access_log(&nginx);
    assert!(
        log.iter().all(|a| a.ua == user_agent),
        "requests from something else than the browser: {log:#?}"
    );
    let served: BTreeSet<&str> = log
        .iter()
        .filter(|a| a.method == "GET" && a.status == 200)
        .map(|a| a.uri.as_str())
        .collect();
    for (name, _) in site_files() {
        assert!(
            served.contains(format!("/{name}").as_str()),
            "/{name} never served: {log:#?}"
        );
    }
    // It kept the decoy cookie: set once, on the first page, and sent back unchanged ever after.
    let set: Vec<&Access> = log.iter().filter(|a| !a.set_cookie.is_empty()).collect();
    assert_eq!(set.len(), 1, "decoy cookie set more than once: {log:#?}");
    assert!(
        std::ptr::eq(set[0], &log[0]),
        "not set on the first page: {log:#?}"
    );
    let cookie = set[0].set_cookie.split(';').next().unwrap();
    for access in &log[1..] {
        assert!(
            access.cookie.split("; ").any(|c| c == cookie),
            "{} {} without the decoy cookie {cookie}: {access:?}",
            access.method,
            access.uri
        );
    }
    // It submitted the login form with the bait field as served (nginx answers 405 to a
    // POST for a static file; the module read the body before that).
    let posts: Vec<&Access> = log.iter().filter(|a| a.method == "POST").collect();
    assert_eq!(posts.len(), 1, "{log:#?}");
    assert_eq!(
        (posts[0].uri.as_str(), posts[0].status),
        ("/login.html", 405)
    );
    assert_eq!(form_value(&posts[0].body, "username"), Some("alice"));
    assert_eq!(
        form_value(&posts[0].body, &field_name),
        Some(login_token.as_str())
    );
    let search = log
        .iter()
        .find(|a| form_value(&a.args, "q") == Some("washer"))
        .unwrap_or_else(|| panic!("no search: {log:#?}"));
    assert!(
        form_value(&search.args, &field_name).is_some(),
        "{search:?}"
    );
    assert!(log.iter().all(|a| a.flagged == "0"), "{log:#?}");

    // The same client touching a bait is an event, and was not flagged before: the sensor
    // did watch all along.
    assert_eq!(http::get(nginx.port(0), "/.env").status, 404);
    let events = wait_for_events(&events_path(&nginx), 1);
    assert_eq!(events.len(), 1);
    assert_eq!(field(&events[0], "honeytrap.bait.type"), "tripwire");
    assert_eq!(field(&events[0], "honeytrap.flagged"), false);
}

/// Runs a scanner to completion, killed (with what it started) at `limit`; returns its
/// standard output and error.
fn run_bounded(command: &mut Command, limit: Duration) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("output");
    let out = fs::File::create(&out_path).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {:?} ({e}): install it with scripts/deps",
                command.get_program()
            )
        });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group created for this child.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            panic!("{command:?} still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let output = String::from_utf8_lossy(&fs::read(&out_path).unwrap()).into_owned();
    assert!(status.success(), "{command:?}: {status}\n{output}");
    output
}

/// A small wordlist of what directory scanners try first: entries the module's default
/// tripwires cover, ordinary names the demo does not have, and files it does have.
const WORDLIST_TRIPWIRES: &[&str] = &[
    ".env",
    ".git/HEAD",
    ".htpasswd",
    "admin",
    "backup",
    "phpmyadmin",
    "wp-admin",
    "wp-login.php",
    "server-status",
    "cgi-bin/",
];
const WORDLIST_OTHERS: &[&str] = &[
    "about", "images", "css", "js", "login", "search", "contact", "cart",
];
const WORDLIST_EXISTING: &[&str] = &["index.html", "robots.txt", "style.css", "products.html"];

fn wordlist(dir: &Path) -> PathBuf {
    let path = dir.join("wordlist.txt");
    let words: Vec<&str> = [WORDLIST_TRIPWIRES, WORDLIST_OTHERS, WORDLIST_EXISTING].concat();
    fs::write(&path, words.join("\n") + "\n").unwrap();
    path
}

/// A directory scanner's run against the demo: exactly one tripwire event per wordlist entry
/// the default tripwires cover (all answered 404 by the site), none for anything else, the
/// first one from a client not flagged yet, every later one from a flagged client.
fn assert_directory_scan(nginx: &Nginx, user_agent: &str) {
    let log = access_log(nginx);
    for word in WORDLIST_TRIPWIRES {
        let uri = format!("/{word}");
        assert!(
            log.iter().any(|a| a.uri == uri && a.status == 404),
            "{uri} not requested: {log:#?}"
        );
    }
    let events = wait_for_events(&events_path(nginx), WORDLIST_TRIPWIRES.len());
    let events_again = events_now(nginx);
    assert_eq!(events_again.len(), events.len(), "late events");
    let by_path: BTreeMap<&str, &Value> = events
        .iter()
        .map(|e| (field(e, "url.path").as_str().unwrap(), e))
        .collect();
    let expected: BTreeSet<String> = WORDLIST_TRIPWIRES.iter().map(|w| format!("/{w}")).collect();
    assert_eq!(
        by_path
            .keys()
            .map(|p| p.to_string())
            .collect::<BTreeSet<_>>(),
        expected,
        "one event per tripwire, none else"
    );
    assert_eq!(
        events.len(),
        expected.len(),
        "duplicate events: {events:#?}"
    );
    for event in &events {
        assert_eq!(field(event, "honeytrap.bait.type"), "tripwire", "{event:#}");
        assert_eq!(field(event, "http.response.status_code"), 404, "{event:#}");
        assert_eq!(field(event, "user_agent.original"), user_agent, "{event:#}");
        let techniques = field(event, "threat.technique.id").as_array().unwrap();
        assert!(techniques.iter().any(|t| t == "T1595.003"), "{event:#}");
    }
    let not_flagged = events
        .iter()
        .filter(|e| field(e, "honeytrap.flagged") == false)
        .count();
    assert_eq!(
        not_flagged, 1,
        "only the first event's client was unflagged: {events:#?}"
    );
}

#[test]
fn dirb_trips_one_tripwire_per_matching_wordlist_entry() {
    let nginx = demo();
    let work = tempfile::tempdir().unwrap();
    let words = wordlist(work.path());
    let output = run_bounded(
        Command::new("dirb")
            .arg(format!("{}/", base(&nginx)))
            .arg(&words)
            .args(["-S", "-r", "-w"]),
        Duration::from_secs(60),
    );
    // dirb finds what the site really has, and nothing the sensor answered.
    assert!(output.contains("/robots.txt (CODE:200"), "{output}");
    assert!(!output.contains("CODE:401"), "{output}");
    // dirb passes for Internet Explorer 6.
    assert_directory_scan(&nginx, "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)");
}

#[test]
fn gobuster_trips_one_tripwire_per_matching_wordlist_entry() {
    let nginx = demo();
    let work = tempfile::tempdir().unwrap();
    let words = wordlist(work.path());
    let output = run_bounded(
        Command::new("gobuster")
            .args([
                "dir",
                "--no-color",
                "-q",
                "-t",
                "4",
                "--timeout",
                "5s",
                "-u",
            ])
            .arg(format!("{}/", base(&nginx)))
            .arg("-w")
            .arg(&words),
        Duration::from_secs(60),
    );
    assert!(output.contains("/robots.txt"), "{output}");
    let user_agent = access_log(&nginx)
        .iter()
        .find(|a| a.uri == "/.env")
        .map(|a| a.ua.clone())
        .unwrap();
    assert!(user_agent.starts_with("gobuster/"), "{user_agent}");
    assert_directory_scan(&nginx, &user_agent);
}

#[test]
fn sqlmap_against_the_login_form_tampers_the_hidden_field_and_each_tampering_is_an_event() {
    let nginx = demo();
    // The form as an operator copies it from the page into sqlmap's --data.
    let page = http::get(nginx.port(0), "/login.html").text();
    let input = &page[page
        .find("<input type=\"hidden\"")
        .unwrap_or_else(|| panic!("no bait field: {page}"))..];
    let field_name = attribute(input, "name").unwrap();
    let token = attribute(input, "value").unwrap();
    // sqlmap skips names like these below --level 4 (CSRF_TOKEN_PARAMETER_INFIXES): the
    // pinned secret must give a name it tests, or this test would prove nothing.
    assert!(
        !["csrf", "xsrf", "token"]
            .iter()
            .any(|w| field_name.to_ascii_lowercase().contains(w)),
        "{field_name}"
    );
    let work = tempfile::tempdir().unwrap();
    let output = run_bounded(
        Command::new("sqlmap")
            .arg("-u")
            .arg(format!("{}/login.html", base(&nginx)))
            .arg("--data")
            .arg(format!(
                "username=alice&password=secret&{field_name}={token}"
            ))
            .args([
                "--batch",
                "--level=1",
                "--risk=1",
                "--smart",
                "--timeout=5",
                "--retries=0",
                "--flush-session",
            ])
            .arg(format!("--output-dir={}", work.path().display()))
            // sqlmap keeps history and a cache under the home directory.
            .env("HOME", work.path()),
        Duration::from_secs(90),
    );
    assert!(
        output.contains(&format!("parameter '{field_name}'")),
        "sqlmap did not test the field:\n{output}"
    );

    // What sqlmap posted: the bait field as served, or changed.
    let log = access_log(&nginx);
    let posts: Vec<&Access> = log
        .iter()
        .filter(|a| a.method == "POST" && a.ua.starts_with("sqlmap/"))
        .collect();
    let (untouched, tampered): (Vec<&Access>, Vec<&Access>) = posts
        .iter()
        .partition(|a| form_value(&a.body, field_name) == Some(token));
    assert!(
        untouched.len() >= 2 && tampered.len() >= 2,
        "{posts:#?}\n{output}"
    );

    let events = wait_for_events(&events_path(&nginx), tampered.len());
    assert_eq!(
        events_now(&nginx).len(),
        tampered.len(),
        "one event per tampered submission, none for the others:\n{events:#?}\n{log:#?}"
    );
    let tampered_bodies: BTreeSet<&str> = tampered.iter().map(|a| a.body.as_str()).collect();
    let event_bodies: BTreeSet<&str> = events
        .iter()
        .map(|e| field(e, "http.request.body.content").as_str().unwrap())
        .collect();
    assert_eq!(event_bodies, tampered_bodies);
    for event in &events {
        assert_eq!(
            field(event, "honeytrap.bait.type"),
            "form-field",
            "{event:#}"
        );
        assert_eq!(field(event, "http.request.method"), "POST");
        assert_eq!(field(event, "url.path"), "/login.html");
        assert!(field(event, "user_agent.original")
            .as_str()
            .unwrap()
            .starts_with("sqlmap/"));
        let techniques = field(event, "threat.technique.id").as_array().unwrap();
        assert!(techniques.iter().any(|t| t == "T1190"), "{event:#}");
    }
    // sqlmap adds its payloads to the value it found: the token inside still attributes.
    let around_token = |e: &&serde_json::Value| {
        let sent = form_value(
            field(e, "http.request.body.content").as_str().unwrap(),
            field_name,
        )
        .unwrap_or_default();
        sent.len() > token.len() && (sent.starts_with(token) || sent.ends_with(token))
    };
    let embedded: Vec<_> = events.iter().filter(around_token).collect();
    assert!(
        !embedded.is_empty(),
        "no payload next to the token: {events:#?}"
    );
    for event in embedded {
        assert_eq!(
            field(event, "honeytrap.attribution.valid"),
            true,
            "{event:#}"
        );
        assert_eq!(
            field(event, "honeytrap.attribution.served_to_ip"),
            "127.0.0.1"
        );
    }
}
