//! Baits through real nginx: laid in static and proxied pages (Content-Length and chunked),
//! each way of touching them yields exactly one event with its attribution, untouched baits
//! yield none, and the shared zone flags the client for `$honeytrap_flagged`.

mod harness;

use std::time::Duration;

use harness::{attribute, field, http, wait_for_events, Config, Nginx};

const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  <title>Sign in</title>\n</head>\n<body>\n  <FORM action=\"/form\" method=\"post\">\n    <input type=\"text\" name=\"username\">\n    <input type=\"password\" name=\"password\">\n  </FORM>\n  <script>var s = '<form>';</script>\n  <form action=\"/search\"><input name=\"q\"></form>\n</body>\n</html>\n";

/// A site (static, proxied with Content-Length, proxied chunked) with every bait on.
fn site() -> Nginx {
    Nginx::start(
        Config::new(
            "honeytrap_events_file {prefix}/logs/events.ndjson;
             honeytrap_secret_file {prefix}/conf/honeytrap.secret;
             honeytrap_zone flagged:1m ttl=1h;
             honeytrap_decoy_paths /old-admin/;
             server { listen 127.0.0.1:{port1};
                      location /chunked/ { ssi on; alias {prefix}/html/; }
                      location / { root {prefix}/html; } }
             server { listen 127.0.0.1:{port0};
                      root {prefix}/html;
                      honeytrap on;
                      honeytrap_baits robots comment field cookie;
                      location /up/ { proxy_pass http://127.0.0.1:{port1}/; }
                      location /form { return 200 \"body=$request_body\"; }
                      location = /flagged { honeytrap off; return 200 \"$honeytrap_flagged\"; } }
             server { listen 127.0.0.1:{port2}; root {prefix}/empty;
                      honeytrap on; honeytrap_baits robots; }",
        )
        .file("html/login.html", LOGIN_PAGE)
        .file("html/style.css", "body { color: #222 }\n")
        .file("html/robots.txt", "User-agent: *\nDisallow: /cart/\n")
        .file(
            "html/backup/index.html",
            "<html><body>real backup page</body></html>",
        )
        .file("empty/index.html", "x"),
    )
}

fn send(port: u16, raw: &str) -> http::Response {
    http::request(port, raw.as_bytes()).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
}

fn get(port: u16, path: &str, headers: &str) -> http::Response {
    send(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"),
    )
}

fn events_path(nginx: &Nginx) -> std::path::PathBuf {
    nginx.prefix().join("logs/events.ndjson")
}

/// The events so far, after the shipper had time to write what requests produced.
fn events_now(nginx: &Nginx) -> Vec<serde_json::Value> {
    std::thread::sleep(Duration::from_millis(600));
    wait_for_events(&events_path(nginx), 0)
}

/// The page without what the baits inserted, and the inserted comment and fields.
struct Rewritten {
    original: String,
    comment: Option<String>,
    fields: Vec<(String, String)>,
}

fn strip_baits(page: &str) -> Rewritten {
    let mut original = page.to_owned();
    let mut comment = None;
    if let Some(start) = original.find("\n<!-- ") {
        let end = original[start..].find(" -->").expect("comment end") + start + 4;
        comment = Some(original[start..end].to_owned());
        original.replace_range(start..end, "");
    }
    let mut fields = Vec::new();
    while let Some(start) = original.find("<input type=\"hidden\" name=\"") {
        let end = original[start..].find('>').unwrap() + start + 1;
        let tag = original[start..end].to_owned();
        let name = attribute(&tag, "name").unwrap().to_owned();
        let value = attribute(&tag, "value").unwrap().to_owned();
        fields.push((name, value));
        original.replace_range(start..end, "");
    }
    Rewritten {
        original,
        comment,
        fields,
    }
}

#[test]
fn html_baits_are_laid_in_static_proxied_and_chunked_pages_and_nothing_else_changes() {
    let nginx = site();
    let p0 = nginx.port(0);
    for path in ["/login.html", "/up/login.html", "/up/chunked/login.html"] {
        let page = get(p0, path, "");
        assert_eq!(page.status, 200, "{path}");
        let text = page.text();
        let rewritten = strip_baits(&text);
        assert_eq!(
            rewritten.original, LOGIN_PAGE,
            "{path}: the page changed beyond the baits"
        );
        let comment = rewritten
            .comment
            .unwrap_or_else(|| panic!("{path}: no comment\n{text}"));
        assert!(
            text.find(&comment).unwrap() > text.find("</head>").unwrap(),
            "{path}"
        );
        // Two real forms (any case), none inside the script.
        assert_eq!(rewritten.fields.len(), 2, "{path}: {text}");
        assert!(
            page.header("Content-Length").is_none(),
            "{path}: stale Content-Length"
        );
        let cookie = page
            .header("Set-Cookie")
            .unwrap_or_else(|| panic!("{path}: no decoy cookie"));
        assert!(
            cookie.contains("; Path=/; HttpOnly; SameSite=Lax"),
            "{cookie}"
        );
    }
    let static_page = get(p0, "/login.html", "");
    let etag = static_page.header("ETag").expect("etag");
    assert!(etag.starts_with("W/"), "ETag not weakened: {etag}");

    // The worker keeps where a whole page takes its insertions; a page edited in place, even
    // to the same length, is rewritten as it now is.
    let file = nginx.prefix().join("html/login.html");
    for edited in [
        LOGIN_PAGE.replacen("<form action", "<xorm action", 1),
        LOGIN_PAGE.replacen("</head>", "</head><form>", 1),
    ] {
        std::fs::write(&file, &edited).unwrap();
        for _ in 0..2 {
            let text = get(p0, "/login.html", "").text();
            let rewritten = strip_baits(&text);
            assert_eq!(rewritten.original, edited);
            // Less the `<form>` inside the script, which is text.
            let forms = edited.matches("<form").count() + edited.matches("<FORM").count() - 1;
            assert_eq!(rewritten.fields.len(), forms, "{text}");
        }
    }
    std::fs::write(&file, LOGIN_PAGE).unwrap();

    // What the baits must not touch.
    let css = get(p0, "/style.css", "");
    assert_eq!(css.text(), "body { color: #222 }\n");
    assert_eq!(css.header("Content-Length"), Some("21"));
    assert!(css.header("Set-Cookie").is_none(), "cookie set on an asset");
    let head = send(
        p0,
        "HEAD /login.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        head.header("Content-Length"),
        Some(LOGIN_PAGE.len().to_string().as_str())
    );
    let range = get(p0, "/login.html", "Range: bytes=0-14\r\n");
    assert_eq!(
        (range.status, range.text().as_str()),
        (206, "<!DOCTYPE html>")
    );

    assert!(events_now(&nginx).is_empty(), "untouched baits made events");
}

#[test]
fn robots_txt_gets_decoy_lines_or_is_served_when_the_site_has_none() {
    let nginx = site();
    let robots = get(nginx.port(0), "/robots.txt", "");
    assert_eq!(robots.status, 200);
    let text = robots.text();
    assert!(
        text.starts_with("User-agent: *\nDisallow: /cart/\n"),
        "{text}"
    );
    let decoys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Disallow: "))
        .filter(|p| *p != "/cart/")
        .collect();
    assert!(decoys.len() >= 3, "few decoy lines: {text}");
    assert!(
        decoys.contains(&"/old-admin/"),
        "configured decoy path missing: {text}"
    );

    let served = get(nginx.port(2), "/robots.txt", "");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("Content-Type"), Some("text/plain"));
    let served_text = served.text();
    assert!(
        served_text.contains("User-agent: *") && served_text.contains("Disallow: /old-admin/"),
        "{served_text}"
    );
    assert_eq!(
        served.header("Content-Length"),
        Some(served_text.len().to_string().as_str())
    );
    assert!(
        events_now(&nginx).is_empty(),
        "reading robots.txt is not an event"
    );
}

#[test]
fn decoy_paths_ask_for_credentials_and_record_them_decoded() {
    let nginx = site();
    let p0 = nginx.port(0);
    let robots = get(p0, "/robots.txt", "").text();
    let from_robots = robots
        .lines()
        .filter_map(|l| l.strip_prefix("Disallow: "))
        .find(|p| *p != "/cart/" && *p != "/old-admin/")
        .expect("a generated decoy path")
        .to_owned();
    let page = get(p0, "/login.html", "").text();
    let comment = strip_baits(&page).comment.unwrap();
    let from_comment = comment
        .split_whitespace()
        .find(|w| w.starts_with('/'))
        .unwrap_or_else(|| panic!("no path in {comment}"))
        .trim_end_matches(['.', ',', ')', ';'])
        .to_owned();

    let challenge = get(p0, &from_robots, "User-Agent: sqlmap/1.8\r\n");
    assert_eq!(challenge.status, 401);
    assert!(challenge
        .header("WWW-Authenticate")
        .unwrap()
        .starts_with("Basic realm="));
    // admin:s3cret!
    let with_basic = get(
        p0,
        &from_comment,
        "Authorization: Basic YWRtaW46czNjcmV0IQ==\r\n",
    );
    assert_eq!(with_basic.status, 401);
    let form = "user=root&pass=toor";
    let posted = send(p0, &format!("POST /old-admin/login.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}", form.len()));
    assert_eq!(posted.status, 401);

    let events = wait_for_events(&events_path(&nginx), 3);
    assert_eq!(events_now(&nginx).len(), 3, "one event per decoy request");
    let by_path = |p: &str| {
        events
            .iter()
            .find(|e| field(e, "url.path") == p)
            .unwrap_or_else(|| panic!("{p}: {events:#?}"))
    };

    let robots_hit = by_path(&from_robots);
    assert_eq!(
        field(robots_hit, "honeytrap.bait.type"),
        "robots",
        "{robots_hit:#}"
    );
    assert_eq!(field(robots_hit, "http.response.status_code"), 401);
    assert_eq!(field(robots_hit, "user_agent.original"), "sqlmap/1.8");
    assert!(field(robots_hit, "honeytrap.credentials").is_null());

    let comment_hit = by_path(&from_comment);
    assert_eq!(
        field(comment_hit, "honeytrap.bait.type"),
        "comment",
        "{comment_hit:#}"
    );
    assert_eq!(
        field(comment_hit, "honeytrap.credentials.username"),
        "admin"
    );
    assert_eq!(
        field(comment_hit, "honeytrap.credentials.password"),
        "s3cret!"
    );
    let techniques = field(comment_hit, "threat.technique.id")
        .as_array()
        .unwrap();
    assert!(techniques.iter().any(|t| t == "T1110"), "{comment_hit:#}");

    let form_hit = by_path("/old-admin/login.php");
    assert_eq!(field(form_hit, "honeytrap.credentials.username"), "root");
    assert_eq!(field(form_hit, "honeytrap.credentials.password"), "toor");
    assert_eq!(field(form_hit, "http.request.body.content"), form);
}

#[test]
fn tripwires_fire_only_where_the_site_has_nothing() {
    let nginx = site();
    let p0 = nginx.port(0);
    assert_eq!(get(p0, "/.env", "").status, 404);
    assert_eq!(get(p0, "/.git/config", "").status, 404);
    // The site really has /backup/: not a bait there.
    let backup = strip_baits(&get(p0, "/backup/", "").text()).original;
    assert_eq!(backup, "<html><body>real backup page</body></html>");
    let events = wait_for_events(&events_path(&nginx), 2);
    assert_eq!(events_now(&nginx).len(), 2, "{events:#?}");
    for (event, path) in events.iter().zip(["/.env", "/.git/config"]) {
        assert_eq!(field(event, "url.path"), path);
        assert_eq!(field(event, "honeytrap.bait.type"), "tripwire", "{event:#}");
        assert_eq!(field(event, "http.response.status_code"), 404);
        let techniques = field(event, "threat.technique.id").as_array().unwrap();
        assert!(techniques.iter().any(|t| t == "T1595.003"), "{event:#}");
    }
}

fn decoy_cookie(nginx: &Nginx) -> (String, String) {
    let set = get(nginx.port(0), "/login.html", "")
        .header("Set-Cookie")
        .unwrap()
        .to_owned();
    let pair = set.split(';').next().unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    (name.to_owned(), value.to_owned())
}

#[test]
fn the_decoy_cookie_sent_back_altered_is_an_event_untouched_is_not() {
    let nginx = site();
    let p0 = nginx.port(0);
    let (name, value) = decoy_cookie(&nginx);
    let (visible, token) = value.split_once('.').expect("visible.token");

    let back = get(
        p0,
        "/login.html",
        &format!("Cookie: theme=dark; {name}={value}\r\n"),
    );
    assert!(
        back.header("Set-Cookie").is_none(),
        "cookie set again although sent back"
    );
    assert!(
        events_now(&nginx).is_empty(),
        "untouched cookie made an event"
    );

    // What an attacker tries: a higher level or role, never the value that was set (the
    // installation's secret picks it, and it may already be "1").
    let elevated = ["1", "9", "admin"]
        .into_iter()
        .find(|v| *v != visible)
        .unwrap();
    get(
        p0,
        "/style.css",
        &format!("Cookie: {name}={elevated}.{token}\r\n"),
    );
    get(p0, "/style.css", &format!("Cookie: {name}={visible}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"));
    let huge = "x".repeat(6000);
    assert_eq!(
        get(p0, "/style.css", &format!("Cookie: {name}={huge}\r\n")).status,
        200
    );

    let events = wait_for_events(&events_path(&nginx), 3);
    assert_eq!(events_now(&nginx).len(), 3);
    let altered = &events[0];
    assert_eq!(
        field(altered, "honeytrap.bait.type"),
        "cookie",
        "{altered:#}"
    );
    assert_eq!(
        field(altered, "honeytrap.attribution.served_to_ip"),
        "127.0.0.1",
        "{altered:#}"
    );
    assert_eq!(field(altered, "honeytrap.attribution.valid"), true);
    assert!(
        field(altered, "tags")
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "cookie:value-changed"),
        "{altered:#}"
    );
    let forged = &events[1];
    assert!(
        field(forged, "tags")
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("token:")),
        "{forged:#}"
    );
    assert_eq!(field(forged, "honeytrap.attribution.valid"), false);
}

#[test]
fn the_hidden_field_submitted_tampered_is_an_event_absent_or_untouched_is_not() {
    let nginx = site();
    let p0 = nginx.port(0);
    let fields = strip_baits(&get(p0, "/login.html", "").text()).fields;
    let (name, token) = fields[0].clone();
    let post = |body: &str| {
        send(p0, &format!("POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()))
    };
    let untouched = format!("username=alice&password=pw&{name}={token}");
    // The body is kept for the location after our check: `return` still sees it.
    assert_eq!(post(&untouched).text(), format!("body={untouched}"));
    assert_eq!(post("username=alice&password=pw").status, 200);
    assert!(
        events_now(&nginx).is_empty(),
        "untouched or absent field made an event"
    );

    let tampered = format!("username=admin'--&password=x&{name}=true");
    assert_eq!(post(&tampered).text(), format!("body={tampered}"));
    let events = wait_for_events(&events_path(&nginx), 1);
    assert_eq!(events.len(), 1);
    assert_eq!(
        field(&events[0], "honeytrap.bait.type"),
        "form-field",
        "{:#}",
        events[0]
    );
    assert_eq!(
        field(&events[0], "http.request.body.content"),
        tampered.as_str()
    );
}

#[test]
fn a_client_that_touched_a_bait_is_flagged_for_every_worker() {
    let nginx = Nginx::start(
        Config::new(
            "honeytrap_events_file {prefix}/logs/events.ndjson;
             honeytrap_zone flagged:1m;
             server { listen 127.0.0.1:{port0}; honeytrap on;
                      location = /flagged { return 200 \"$honeytrap_flagged\"; }
                      location / { return 404; } }",
        )
        .workers(2),
    );
    let p0 = nginx.port(0);
    assert_eq!(get(p0, "/flagged", "").text(), "0");
    get(p0, "/.env", "");
    // Whichever worker answers, the zone is shared.
    for _ in 0..6 {
        assert_eq!(get(p0, "/flagged", "").text(), "1");
    }
    get(p0, "/wp-login.php", "");
    let events = wait_for_events(&events_path(&nginx), 2);
    // Two workers ship independently: find the events by path, not by line order.
    let by_path = |p: &str| events.iter().find(|e| field(e, "url.path") == p).unwrap();
    assert_eq!(
        field(by_path("/.env"), "honeytrap.flagged"),
        false,
        "first touch: not flagged before"
    );
    assert_eq!(
        field(by_path("/wp-login.php"), "honeytrap.flagged"),
        true,
        "later events say so"
    );
}

#[test]
fn a_ten_megabyte_page_streams_through_with_every_form_baited() {
    let mut page = String::from("<html><head></head><body>");
    let mut forms = 0;
    while page.len() < 10 * 1024 * 1024 {
        page.push_str("<p>filler text with <b>tags</b> and 'quotes' &amp; entities</p>\n");
        if page.len() % 97 == 0 {
            page.push_str("<form method=\"post\"><input name=\"a\"></form>\n");
            forms += 1;
        }
    }
    page.push_str("<form><!-- unclosed");
    let nginx = Nginx::start(
        Config::new(
            "server { listen 127.0.0.1:{port0}; root {prefix}/html; honeytrap on;
                      honeytrap_baits comment field; }",
        )
        .file("html/big.html", page.clone()),
    );
    let response = get(nginx.port(0), "/big.html", "");
    assert_eq!(response.status, 200);
    let rewritten = strip_baits(&response.text());
    assert_eq!(rewritten.original.len(), page.len());
    assert!(rewritten.original == page, "the page was corrupted");
    assert_eq!(rewritten.fields.len(), forms + 1);
}

#[test]
fn bad_bait_directives_fail_nginx_t_with_file_line_and_reason() {
    let cases = [
        ("honeytrap_baits robots honey;", "unknown bait \"honey\""),
        ("honeytrap_baits robots off;", "cannot be combined"),
        ("honeytrap_zone flagged;", "expected name:size"),
        ("honeytrap_zone flagged:1k;", "too small"),
        ("honeytrap_zone flagged:1m ttl=forever;", "ttl"),
        ("honeytrap_decoy_paths admin/;", "must start with /"),
        ("honeytrap_tripwires .env;", "must start with /"),
    ];
    for (directive, reason) in cases {
        harness::assert_rejected(
            directive,
            "server { listen 127.0.0.1:{port0}; honeytrap on; }",
            reason,
            true,
        );
    }
}
