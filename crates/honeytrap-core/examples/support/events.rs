//! Decoy events shaped like what the module records for scanner traffic, built through the
//! same `set_*`/`add_header` calls the request path uses (so caps and truncation marks apply).

use std::sync::Arc;

use std::time::{Duration, SystemTime};

use honeytrap_core::event::{
    AnomalyScore, Event, EventId, Kind, Limits, Observer, RuleMatch, RuleRef,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Mostly GETs of well-known probe paths with a browser-like header set; every fourth a
    /// login POST with a small form body.
    Typical,
    /// The largest event the caps allow in practice: a POST whose body is cut at the 8 KiB cap
    /// and 24 headers, two of them cut at the 1 KiB cap.
    Large,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Typical => "typical",
            Shape::Large => "large (capped body + headers)",
        }
    }

    pub fn parse(s: &str) -> Option<Shape> {
        match s {
            "typical" => Some(Shape::Typical),
            "large" => Some(Shape::Large),
            _ => None,
        }
    }

    pub fn arg(self) -> &'static str {
        match self {
            Shape::Typical => "typical",
            Shape::Large => "large",
        }
    }
}

const PATHS: &[&str] = &[
    "/.env",
    "/wp-admin/setup-config.php?step=1",
    "/admin/config.php?debug=1",
    "/phpmyadmin/index.php",
    "/.git/config",
    "/cgi-bin/luci/;stok=/locale?form=country&operation=write",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 zgrab/0.x",
    "python-requests/2.31.0",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
];

pub fn decoy_event(observer: &Arc<Observer>, n: u64, shape: Shape) -> Event {
    let limits = Limits::default();
    let mut e = Event::new(Kind::Decoy, observer.clone());
    let octet = (n % 251) as u8;
    e.source = Some(([198, 51, 100, octet], 32_768 + (n % 28_000) as u16).into());
    e.destination = Some(([10, 0, 0, 5], 8000).into());
    e.http_version = Some("1.1".to_owned());
    e.transaction_id = Some(format!("{:032x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15));
    let ua = USER_AGENTS[(n as usize) % USER_AGENTS.len()];
    let post = shape == Shape::Large || n % 4 == 3;
    let host = "shop.example.com";

    if post {
        e.set_method(b"POST");
        e.set_url(b"/wp-login.php");
        e.status_code = Some(404);
    } else {
        e.set_method(b"GET");
        e.set_url(PATHS[(n as usize) % PATHS.len()].as_bytes());
        e.status_code = Some(404);
    }
    e.set_host(host.as_bytes(), &limits);
    e.set_user_agent(ua.as_bytes(), &limits);

    let mut headers: Vec<(&str, String)> = vec![
        ("Host", host.to_owned()),
        ("User-Agent", ua.to_owned()),
        (
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".to_owned(),
        ),
        ("Accept-Encoding", "gzip, deflate, br".to_owned()),
        ("Accept-Language", "en-US,en;q=0.9".to_owned()),
        ("Connection", "keep-alive".to_owned()),
        ("Upgrade-Insecure-Requests", "1".to_owned()),
        ("X-Forwarded-For", format!("203.0.113.{octet}")),
    ];
    let body: Vec<u8> = match shape {
        Shape::Typical if post => {
            format!("log=admin&pwd=Spring2024%21{n}&wp-submit=Log+In&redirect_to=%2Fwp-admin%2F&testcookie=1")
                .into_bytes()
        }
        Shape::Typical => Vec::new(),
        Shape::Large => {
            headers.push(("Cookie", format!("session={}", "A".repeat(2048))));
            headers.push(("Referer", format!("https://shop.example.com/{}", "x".repeat(1500))));
            for i in 0..14 {
                headers.push(("X-Probe", format!("value-{i}-{}", "z".repeat(40))));
            }
            // Twice the cap: the event keeps 8 KiB and marks the field as cut.
            b"data=".iter().copied().chain((0..16 * 1024).map(|i| b'a' + (i % 26) as u8)).collect()
        }
    };
    if !body.is_empty() {
        headers.push((
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        ));
        headers.push(("Content-Length", body.len().to_string()));
    }
    for (name, value) in &headers {
        e.add_header(name.as_bytes(), value.as_bytes(), &limits);
    }
    if !body.is_empty() {
        e.set_body(&body, &limits);
    }
    e
}

const CRS_SQLI_TAGS: &[&str] = &[
    "application-multi",
    "language-multi",
    "platform-multi",
    "attack-sqli",
    "paranoia-level/1",
    "OWASP_CRS",
    "OWASP_CRS/ATTACK-SQLI",
    "capec/1000/152/248/66",
];

/// What bench/crs's attack GET logs with CRS at PL1 (as the module wrote it there): a blocked
/// SQL injection in the query, four detection rules, the anomaly-score rule that blocked it and
/// CRS's reporting rule, a browser's headers.
pub fn crs_attack_event(observer: &Arc<Observer>, n: u64) -> Event {
    let limits = Limits::default();
    let mut e = Event::new(Kind::Rules, observer.clone());
    // Fixed id and time, so that the same `n` gives the same document in every build.
    e.id = EventId(u128::from(n) * 0x2545_f491_4f6c_dd1d);
    e.timestamp = SystemTime::UNIX_EPOCH + Duration::from_micros(1_780_000_000_000_000 + n * 1_317);
    e.denied = true;
    e.source = Some(([127, 0, 0, 1], 40_000 + (n % 20_000) as u16).into());
    e.destination = Some(([127, 0, 0, 1], 34_947).into());
    e.http_version = Some("1.1".to_owned());
    e.status_code = Some(403);
    e.set_method(b"GET");
    e.set_url(
        b"/products.html?category=books&page=2&sort=price&q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
    );
    let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";
    e.set_host(b"shop.example", &limits);
    e.set_user_agent(ua.as_bytes(), &limits);
    for (name, value) in [
        ("Host", "shop.example"),
        ("User-Agent", ua),
        (
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("Accept-Encoding", "gzip, deflate"),
    ] {
        e.add_header(name.as_bytes(), value.as_bytes(), &limits);
    }
    let sqli_tags: Arc<[String]> = CRS_SQLI_TAGS.iter().map(|t| (*t).to_owned()).collect();
    let payload = "1' UNION SELECT password FROM users--";
    for (id, msg, matched) in [
        (
            942100,
            "SQL Injection Attack Detected via libinjection",
            "sUEnk",
        ),
        (
            942190,
            "Detects MSSQL code execution and information gathering attempts",
            "' UNION SELECT p",
        ),
        (
            942270,
            "Looking for basic sql injection. Common attack string for mysql, oracle and others",
            "UNION SELECT password FROM",
        ),
        (
            942360,
            "Detects concatenated basic SQL injection and SQLLFI attempts",
            "1' UNION SELECT",
        ),
    ] {
        e.add_rule(RuleMatch {
            id,
            msg: Some(msg.to_owned()),
            tags: sqli_tags.clone(),
            severity: Some(2),
            matched_var: Some("ARGS:q".to_owned()),
            matched_data: Some(format!(
                "Matched Data: {matched} found within ARGS:q: {payload}"
            )),
        });
    }
    for (id, msg, tag) in [
        (949110, "Inbound Anomaly Score Exceeded (Total Score: 20)", "anomaly-evaluation"),
        (
            980170,
            "Anomaly Scores: (Inbound Scores: blocking=20, detection=20, per_pl=20-0-0-0, threshold=5) - (Outbound Scores: blocking=0, detection=0, per_pl=0-0-0-0, threshold=4) - (SQLI=20, XSS=0, RFI=0, LFI=0, RCE=0, PHPI=0, HTTP=0, SESS=0, COMBINED_SCORE=20)",
            "reporting",
        ),
    ] {
        e.add_rule(RuleMatch {
            id,
            msg: Some(msg.to_owned()),
            tags: [tag, "OWASP_CRS"].map(str::to_owned).into(),
            severity: None,
            matched_var: Some("TX:blocking_inbound_anomaly_score".to_owned()),
            matched_data: Some("20".to_owned()),
        });
    }
    e.rule = Some(RuleRef {
        id: Some("942100".to_owned()),
        name: Some("SQL Injection Attack Detected via libinjection".to_owned()),
        category: Some("attack-sqli".to_owned()),
    });
    e.anomaly_score = Some(AnomalyScore {
        inbound: 20,
        outbound: 0,
    });
    e
}
