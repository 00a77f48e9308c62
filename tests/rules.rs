//! SecLang rules in nginx's phases: compiled at configuration time (once per distinct set),
//! blocking or detecting in phases 1 to 4, one audit event per transaction with every matched
//! rule, `$honeytrap_score`, and bad rules rejected by `nginx -t` with file, line and reason.

mod harness;

use std::fs;
use std::path::PathBuf;

use harness::{attribute, field, http, test_config, wait_for_events, Config, Nginx};

const RULES: &str = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRule ARGS "@rx <script" "id:1001,phase:1,deny,status:403,msg:'script tag in a parameter',tag:'attack-xss',severity:'CRITICAL'"
SecRule ARGS_POST:comment "@contains union select" "id:1002,phase:2,deny,status:403,msg:'SQL in a form',tag:'attack-sqli',severity:'CRITICAL'"
SecRule RESPONSE_STATUS "@streq 418" "id:1003,phase:3,deny,status:503,msg:'teapot hidden'"
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html
SecRule RESPONSE_BODY "@contains BEGIN PRIVATE KEY" "id:1005,phase:4,deny,status:502,msg:'key material in a response',severity:'CRITICAL'"
SecRule REQUEST_HEADERS:User-Agent "@contains nikto" "id:1004,phase:1,pass,log,t:lowercase,msg:'scanner user agent',tag:'scanner',severity:'NOTICE',setvar:tx.inbound_anomaly_score=+5"
"#;

fn rules_config(engine_line: &str) -> Config {
    Config::new(
        "honeytrap_events_file {prefix}/logs/events.ndjson;
         log_format scored '$request_uri $status score=$honeytrap_score';
         server { listen 127.0.0.1:{port0}; honeytrap on;
                  access_log {prefix}/logs/access.log scored;
                  honeytrap_rules_file {prefix}/conf/site.rules;
                  location / { return 200 \"ok\"; }
                  location /teapot { return 418; }
                  location /leak { default_type text/plain; return 200 \"-----BEGIN PRIVATE KEY-----\\nMIIE\"; }
                  location /static/ { root {prefix}/html; }
                  location /form { return 200 \"got $request_body\"; } }",
    )
    .file("conf/site.rules", format!("{RULES}\n{engine_line}\n"))
    .file("html/static/page.html", "<html><body>a plain page</body></html>\n")
}

#[test]
fn a_phase_4_deny_still_changes_the_status_because_headers_are_held() {
    let nginx = Nginx::start(rules_config(""));
    let p0 = nginx.port(0);
    let leak = http::get(p0, "/leak");
    assert_eq!(leak.status, 502, "{}", leak.text());
    assert!(
        !leak.text().contains("PRIVATE KEY"),
        "the body leaked: {}",
        leak.text()
    );
    let page = http::get(p0, "/static/page.html");
    assert_eq!(page.status, 200);
    assert_eq!(page.text(), "<html><body>a plain page</body></html>\n");
    assert_eq!(page.header("Content-Length"), Some("39"));
    let events = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 1);
    assert_eq!(field(&events[0], "rule.id"), "1005");
    assert_eq!(field(&events[0], "http.response.status_code"), 502);
}

fn send(port: u16, raw: &str) -> http::Response {
    http::request(port, raw.as_bytes()).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
}

fn post(port: u16, path: &str, body: &str) -> http::Response {
    send(port, &format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()))
}

#[test]
fn rules_block_in_phases_one_two_and_three_and_each_block_is_one_event() {
    let nginx = Nginx::start(rules_config(""));
    let p0 = nginx.port(0);
    assert_eq!(http::get(p0, "/?q=hello").text(), "ok");
    assert_eq!(http::get(p0, "/?q=%3Cscript%3Ealert(1)").status, 403);
    assert_eq!(
        post(p0, "/form", "comment=1 union select password").status,
        403
    );
    assert_eq!(post(p0, "/form", "comment=nice").text(), "got comment=nice");
    assert_eq!(http::get(p0, "/teapot").status, 503);

    wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 3);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let events = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 3);
    assert_eq!(events.len(), 3, "benign requests made events: {events:#?}");
    for (event, (rule, status)) in events
        .iter()
        .zip([("1001", 403), ("1002", 403), ("1003", 503)])
    {
        assert_eq!(field(event, "event.action"), "rule-matched", "{event:#}");
        assert_eq!(field(event, "rule.id"), rule, "{event:#}");
        assert_eq!(field(event, "honeytrap.rules")[0]["id"], rule);
        assert_eq!(field(event, "http.response.status_code"), status);
        assert_eq!(field(event, "event.type")[0], "denied", "{event:#}");
    }
    assert_eq!(
        field(&events[0], "honeytrap.rules")[0]["matched_data"],
        "<script>alert(1)"
    );
    assert_eq!(field(&events[0], "rule.category"), "attack-xss");
}

#[test]
fn detection_only_changes_no_traffic_but_records_and_scores() {
    let nginx = Nginx::start(rules_config("SecRuleEngine DetectionOnly"));
    let p0 = nginx.port(0);
    assert_eq!(http::get(p0, "/?q=%3Cscript%3E").text(), "ok");
    let scanned = send(p0, "GET /?id=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.00 (Nikto/2.1.6)\r\nConnection: close\r\n\r\n");
    assert_eq!(scanned.text(), "ok");
    let events = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 2);
    assert_eq!(field(&events[0], "rule.id"), "1001");
    assert_eq!(
        field(&events[0], "event.type")[0],
        "info",
        "not denied: {:#}",
        events[0]
    );
    assert_eq!(field(&events[1], "rule.id"), "1004");
    assert_eq!(field(&events[1], "honeytrap.anomaly_score.inbound"), 5);
    let access = fs::read_to_string(nginx.prefix().join("logs/access.log")).unwrap();
    assert!(access.contains("/?id=1 200 score=5"), "{access}");
    assert!(access.contains("/?q=%3Cscript%3E 200 score=0"), "{access}");
}

#[test]
fn a_rule_set_named_by_many_locations_is_compiled_once() {
    let nginx = Nginx::start(
        Config::new(
            "honeytrap on;
             honeytrap_rules_file {prefix}/conf/site.rules;
             server { listen 127.0.0.1:{port0};
                      location /a { return 200; } location /b { return 200; }
                      location /c { honeytrap_rules 'SecRule ARGS \"@streq x\" \"id:2001,phase:1,deny,status:409\"'; return 200; } }
             server { listen 127.0.0.1:{port1}; location / { return 200; } }",
        )
        .file("conf/site.rules", RULES),
    );
    assert_eq!(http::get(nginx.port(0), "/c?v=x").status, 409);
    assert_eq!(http::get(nginx.port(0), "/a?v=x").status, 200);
    assert_eq!(http::get(nginx.port(1), "/?q=%3Cscript%3E").status, 403);
    let log = nginx.error_log();
    // The file alone, the inline rule alone (both checked where written), and the /c set.
    assert_eq!(log.matches("honeytrap rules: compiled").count(), 3, "{log}");
}

#[test]
fn bad_rules_fail_nginx_t_with_their_file_line_and_reason() {
    let config = Config::new(
        "server { listen 127.0.0.1:{port0}; honeytrap on;
                  honeytrap_rules_file {prefix}/conf/bad.rules; }",
    )
    .file(
        "conf/bad.rules",
        "SecRuleEngine On\n\nSecRule ARGS \"@rx a\" \"id:1,phase:1,pass\"\nSecNoSuchDirective on\n",
    );
    let (output, prefix) = test_config(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let rules_file = prefix.path().join("conf/bad.rules");
    assert!(
        stderr.contains(&format!("{}:4", rules_file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("SecNoSuchDirective"), "{stderr}");
    let conf = fs::read_to_string(prefix.path().join("conf/nginx.conf")).unwrap();
    let line = conf
        .lines()
        .position(|l| l.contains("honeytrap_rules_file"))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("nginx.conf:{line}")), "{stderr}");

    let inline = Config::new(
        "server { listen 127.0.0.1:{port0}; honeytrap on;
                  honeytrap_rules 'SecRule ARGS \"@nosuchop x\" \"id:3,phase:1,pass\"'; }",
    );
    let (output, _prefix) = test_config(&inline);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("nosuchop"),
        "{stderr}"
    );
}

fn crs_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/crs/v4.28.0");
    dir.is_dir().then_some(dir)
}

#[test]
fn the_core_rule_set_blocks_attacks_through_nginx_and_lets_benign_requests_pass() {
    let Some(crs) = crs_dir() else {
        eprintln!("SKIPPED: ../shared/crs is absent");
        return;
    };
    let wrapper = format!(
        "Include {crs}/crs-setup.conf.example\nSecRuleEngine On\nSecRequestBodyAccess On\nInclude {crs}/rules/*.conf\n",
        crs = crs.display()
    );
    let nginx = Nginx::start(
        Config::new(
            "honeytrap_events_file {prefix}/logs/events.ndjson;
             server { listen 127.0.0.1:{port0}; honeytrap on;
                      honeytrap_rules_file {prefix}/conf/crs.conf;
                      location / { return 200 \"ok\"; } }",
        )
        .file("conf/crs.conf", wrapper.clone()),
    );
    let p0 = nginx.port(0);
    let benign = send(p0, "GET /products?page=2&sort=price HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html\r\nAccept-Language: en\r\nConnection: close\r\n\r\n");
    assert_eq!(benign.text(), "ok");
    let attacks = [
        "/?id=1%27%20OR%201%3D1--",
        "/?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
        "/?file=../../../../etc/passwd",
        "/?cmd=;cat%20/etc/passwd",
        // Bytes that are not UTF-8 in what the rules log.
        "/?q=%ff1%27%20UNION%20SELECT%20password%20FROM%20users--",
    ];
    for attack in attacks {
        let response = send(p0, &format!("GET {attack} HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: {CRS_TEST_AGENT}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"));
        assert_eq!(response.status, 403, "{attack} not blocked");
    }
    let events = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), attacks.len());
    let rule_set = crs_rule_set(&wrapper);
    for (event, attack) in events.iter().zip(attacks) {
        let (rules, named) = rules_the_engine_logs(&rule_set, attack);
        assert_eq!(field(event, "honeytrap.rules"), &rules, "{attack}");
        assert_eq!(field(event, "rule"), &named, "{attack}");
    }
    for event in &events {
        assert!(
            field(event, "honeytrap.rules").as_array().unwrap().len() >= 2,
            "{event:#}"
        );
        assert!(
            field(event, "honeytrap.anomaly_score.inbound")
                .as_u64()
                .unwrap()
                >= 5,
            "{event:#}"
        );
    }
    assert!(
        events.iter().any(|e| field(e, "honeytrap.rules")
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "942100")),
        "{events:#?}"
    );
}

#[test]
fn our_rules_in_rules_dir_load_and_name_scanners() {
    let rules_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let nginx = Nginx::start(Config::new(&format!(
        "honeytrap_events_file {{prefix}}/logs/events.ndjson;
         server {{ listen 127.0.0.1:{{port0}}; honeytrap on;
                   honeytrap_rules_file {}/*.conf;
                   location / {{ return 200 \"ok\"; }} }}",
        rules_dir.display()
    )));
    let tool = send(nginx.port(0), "GET /?id=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: sqlmap/1.8.4#stable (https://sqlmap.org)\r\nConnection: close\r\n\r\n");
    assert_eq!(tool.text(), "ok", "scanner rules never block");
    let browser = send(nginx.port(0), "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0\r\nConnection: close\r\n\r\n");
    assert_eq!(browser.text(), "ok");
    let events = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 1);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let events_after = wait_for_events(&nginx.prefix().join("logs/events.ndjson"), 1);
    assert_eq!(
        events_after.len(),
        1,
        "the browser made an event: {events_after:#?}"
    );
    assert_eq!(field(&events[0], "rule.id"), "4800100");
    let matched = field(&events[0], "honeytrap.rules")[0]["matched_data"]
        .as_str()
        .unwrap();
    assert!(matched.starts_with("sqlmap/"), "{matched}");
}

const CRS_TEST_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64)";

/// The rule set nginx compiles from `text`, compiled here.
fn crs_rule_set(text: &str) -> std::sync::Arc<honeytrap_seclang::RuleSet> {
    let mut builder = honeytrap_seclang::RuleSet::builder();
    builder
        .add_text(text, "test", std::path::Path::new("/"))
        .unwrap();
    std::sync::Arc::new(builder.build().unwrap())
}

/// What an event's `honeytrap.rules` and `rule` must be for a GET of `target` (sent with the
/// CRS test's headers and blocked), from the engine's own record of every match
/// ([`honeytrap_seclang::Transaction::matched_rules`]), as ModSecurity logs them: logging
/// rules with an id, their expanded `logdata` as the data, else the matched value; the rule
/// named is the most severe, the first of equals.
fn rules_the_engine_logs(
    rule_set: &std::sync::Arc<honeytrap_seclang::RuleSet>,
    target: &str,
) -> (serde_json::Value, serde_json::Value) {
    use serde_json::{json, Map, Value};
    let mut tx = rule_set.transaction(honeytrap_seclang::TxInput::default());
    tx.set_request_line(b"GET", target.as_bytes(), b"HTTP/1.1");
    for (name, value) in [
        ("Host", "shop.example"),
        ("User-Agent", CRS_TEST_AGENT),
        ("Accept", "text/html"),
        ("Connection", "close"),
    ] {
        tx.add_request_header(name.as_bytes(), value.as_bytes());
    }
    if tx.process_request_headers().is_none() {
        tx.process_request_body();
    }
    tx.process_logging();
    let logged: Vec<_> = tx
        .matched_rules()
        .iter()
        .filter(|m| m.log && m.id != 0)
        .collect();
    let rules = logged
        .iter()
        .map(|m| {
            let mut r = Map::new();
            r.insert("id".into(), json!(m.id.to_string()));
            if !m.msg.is_empty() {
                r.insert("msg".into(), json!(m.msg));
            }
            if !m.tags.is_empty() {
                r.insert("tags".into(), json!(m.tags[..]));
            }
            if let Some(severity) = m.severity {
                r.insert("severity".into(), json!(severity));
            }
            if !m.matched_var_name.is_empty() {
                r.insert("matched_var".into(), json!(m.matched_var_name));
            }
            let data = if m.logdata.is_empty() {
                String::from_utf8_lossy(&m.matched_var).into_owned()
            } else {
                m.logdata.clone()
            };
            if !data.is_empty() {
                r.insert("matched_data".into(), json!(data));
            }
            Value::Object(r)
        })
        .collect();
    let worst = logged
        .iter()
        .enumerate()
        .min_by_key(|(at, m)| (m.severity.unwrap_or(u8::MAX), *at))
        .map(|(_, m)| m)
        .expect("a blocked request matched a logging rule");
    let mut named = Map::new();
    named.insert("id".into(), json!(worst.id.to_string()));
    if !worst.msg.is_empty() {
        named.insert("name".into(), json!(worst.msg));
    }
    if let Some(category) = worst.tags.iter().find(|t| t.starts_with("attack-")) {
        named.insert("category".into(), json!(category));
    }
    (Value::Array(rules), Value::Object(named))
}

/// The rule ids of the rules events among `events`, in order.
fn rule_ids(events: &[serde_json::Value]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter(|e| field(e, "event.action") == "rule-matched")
        .map(|e| {
            field(e, "honeytrap.rules")
                .as_array()
                .unwrap_or_else(|| panic!("{e:#}"))
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn bait_touches_reach_the_rules_as_tx_variables() {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/honeytrap-baits.conf");
    let page = "<html><head><title>x</title></head><body><form action=\"/form\" method=\"post\"><input name=\"user\"></form></body></html>";
    let nginx = Nginx::start(
        Config::new(&format!(
            "honeytrap_events_file {{prefix}}/logs/events.ndjson;
             honeytrap_secret_file {{prefix}}/conf/honeytrap.secret;
             honeytrap_zone flagged:1m ttl=1h;
             server {{ listen 127.0.0.1:{{port0}}; root {{prefix}}/html; honeytrap on;
                      honeytrap_baits field cookie;
                      honeytrap_rules 'SecRuleEngine On';
                      honeytrap_rules_file {};
                      location /form {{ return 200 \"ok\"; }} }}",
            shipped.display()
        ))
        .file("html/login.html", page),
    );
    let p0 = nginx.port(0);
    let events_file = nginx.prefix().join("logs/events.ndjson");

    // Untouched baits: the rules see nothing.
    let first = http::get(p0, "/login.html");
    let cookie = first
        .header("Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let markup = first.text();
    let input = &markup[markup.find("<input type=\"hidden\"").unwrap()..];
    let name = attribute(input, "name").unwrap().to_owned();
    let token = attribute(input, "value").unwrap().to_owned();
    let cookie_header = format!("Cookie: {cookie}\r\n");
    assert_eq!(
        send(
            p0,
            &format!(
                "GET /login.html HTTP/1.1\r\nHost: x\r\n{cookie_header}Connection: close\r\n\r\n"
            )
        )
        .status,
        200
    );
    assert_eq!(
        post(p0, "/form", &format!("user=alice&{name}={token}")).text(),
        "ok"
    );
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(
        wait_for_events(&events_file, 0).is_empty(),
        "untouched baits made events"
    );

    // The field tampered: a bait event, and rule 4800113 in phase 2. The client is flagged now.
    assert_eq!(
        post(p0, "/form", &format!("user=alice&{name}=1")).text(),
        "ok"
    );
    let events = wait_for_events(&events_file, 2);
    assert_eq!(rule_ids(&events), [["4800113"]], "{events:#?}");
    assert!(events
        .iter()
        .any(|e| field(e, "honeytrap.bait.type") == "form-field"));

    // Flagged, then the cookie altered, then a tripwire: each request's rules event says so.
    http::get(p0, "/login.html");
    let (cookie_name, cookie_value) = cookie.split_once('=').unwrap();
    let (visible, cookie_token) = cookie_value.split_once('.').unwrap();
    let elevated = ["1", "9", "admin"]
        .into_iter()
        .find(|v| *v != visible)
        .unwrap();
    send(p0, &format!("GET /login.html HTTP/1.1\r\nHost: x\r\nCookie: {cookie_name}={elevated}.{cookie_token}\r\nConnection: close\r\n\r\n"));
    assert_eq!(http::get(p0, "/.env").status, 404);
    let events = wait_for_events(&events_file, 2 + 1 + 2 + 2);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let events_then = wait_for_events(&events_file, 0);
    assert_eq!(events_then.len(), events.len(), "{events_then:#?}");
    assert_eq!(
        rule_ids(&events),
        [
            vec!["4800113"],
            vec!["4800110"],
            vec!["4800110", "4800111"],
            vec!["4800110", "4800112"],
        ],
        "{events:#?}"
    );
    let tripwire = events
        .iter()
        .rfind(|e| field(e, "event.action") == "rule-matched")
        .unwrap();
    assert_eq!(
        field(tripwire, "honeytrap.rules")[1]["matched_data"],
        "/.env",
        "{tripwire:#}"
    );
}

#[test]
fn a_body_nginx_spooled_to_a_temporary_file_is_inspected_whole() {
    let nginx = Nginx::start(Config::new(
        "honeytrap_events_file {prefix}/logs/events.ndjson;
         server { listen 127.0.0.1:{port0}; honeytrap on;
                  client_body_buffer_size 1k;
                  client_max_body_size 1m;
                  honeytrap_rules 'SecRuleEngine On
                      SecRequestBodyAccess On
                      SecRequestBodyLimit 65536
                      SecRequestBodyLimitAction Reject
                      SecRule ARGS_POST:comment \"@contains union select\" \"id:1101,phase:2,deny,status:403\"';
                  location /form { return 200 \"ok\"; } }",
    ));
    let p0 = nginx.port(0);
    let padding = "a".repeat(30_000);
    // The match is at the end, far past the 1 KB nginx keeps in memory.
    let attack = format!("pad={padding}&comment=1 union select password");
    assert_eq!(post(p0, "/form", &attack).status, 403);
    assert_eq!(
        post(p0, "/form", &format!("pad={padding}&comment=nice")).text(),
        "ok"
    );
    // Past SecRequestBodyLimit: rejected, as the rules say.
    let huge = format!("pad={}&comment=nice", "a".repeat(70_000));
    assert_eq!(post(p0, "/form", &huge).status, 413);
    let log = std::fs::read_to_string(nginx.prefix().join("logs/error.log")).unwrap();
    assert!(
        log.matches("buffered to a temporary file").count() >= 3,
        "nginx kept the bodies in memory, the test proves nothing:\n{log}"
    );
}
