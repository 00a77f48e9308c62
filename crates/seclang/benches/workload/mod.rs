//! The engine benchmark's workload, shared by `benches/crs.rs` (criterion) and
//! `examples/crs_profile.rs` (instruction counts): the full CRS v4.28.0 at PL1 in blocking
//! mode, a benign and an attack GET (5 headers, 4 args), and the benign GET's response
//! (5 headers, a 3.4 KB HTML page) with response body inspection on.

use std::path::Path;
use std::sync::Arc;

use honeytrap_seclang::{PooledTransaction, RuleSet, RuleSetBuilder, TxInput};

const HEADERS: [(&str, &str); 5] = [
    ("Host", "www.example.com"),
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"),
];

/// The response to the benign GET: these, its Content-Length, and the page.
const RESPONSE_HEADERS: [(&str, &str); 4] = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Server", "nginx"),
    ("Cache-Control", "no-cache"),
    ("Date", "Sat, 28 Nov 2026 23:00:00 GMT"),
];
const PAGE: &[u8] = include_bytes!("../page.html");

pub const BENIGN: &[u8] = b"/products/list.php?category=books&page=2&sort=price&q=rust+programming";
pub const ATTACK: &[u8] = b"/products/list.php?category=books&page=2&sort=price&q=1%27%20UNION%20SELECT%20password%20FROM%20users--";

/// The CRS with the benchmark's settings; `None` when ../shared/crs is not there.
#[allow(dead_code)]
pub fn load() -> Option<Arc<RuleSet>> {
    load_with("")
}

/// [`load`], then the SecLang `extra` (e.g. `SecRuleRemoveById`).
pub fn load_with(extra: &str) -> Option<Arc<RuleSet>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs/v4.28.0");
    if !root.is_dir() {
        eprintln!("SKIPPED: CRS v4.28.0 not found at {}", root.display());
        return None;
    }
    let mut b = RuleSetBuilder::default();
    // Blocking mode at the default paranoia level 1 (crs-setup.conf.example defaults).
    b.add_text(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecResponseBodyAccess On\n",
        "bench",
        Path::new("."),
    )
    .unwrap();
    b.add_file(&root.join("crs-setup.conf.example")).unwrap();
    let mut rules: Vec<_> = std::fs::read_dir(root.join("rules"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    rules.sort();
    for r in rules {
        b.add_file(&r).unwrap();
    }
    if !extra.is_empty() {
        b.add_text(extra, "extra", Path::new(".")).unwrap();
    }
    Some(Arc::new(b.build().unwrap()))
}

fn request(rs: &Arc<RuleSet>, uri: &[u8]) -> PooledTransaction {
    // As the module starts them.
    let mut tx = rs.pooled_transaction(TxInput {
        remote_addr: "192.0.2.10".into(),
        remote_port: 51000,
        server_addr: "192.0.2.1".into(),
        server_port: 80,
        server_name: "www.example.com".into(),
        unique_id: "bench".into(),
    });
    tx.set_request_line(b"GET", uri, b"HTTP/1.1");
    for (n, v) in HEADERS {
        tx.add_request_header(n.as_bytes(), v.as_bytes());
    }
    tx
}

/// A GET of `uri` through phases 1-2; whether it was blocked.
pub fn one(rs: &Arc<RuleSet>, uri: &[u8]) -> bool {
    let mut tx = request(rs, uri);
    tx.process_request_headers().is_some() || tx.process_request_body().is_some()
}

/// [`one`], then the log phase and the logging rules an audit record holds, copied out as
/// the module copies them into its event (each text once), as it does for every
/// transaction; whether it was blocked. Profiled (`crs_profile`), not timed by the
/// criterion bench.
#[allow(dead_code)]
pub fn one_logged(rs: &Arc<RuleSet>, uri: &[u8]) -> bool {
    let mut tx = request(rs, uri);
    let blocked = tx.process_request_headers().is_some() || tx.process_request_body().is_some();
    tx.process_logging();
    // As the module makes text of bytes.
    let text = honeytrap_seclang::lossy_string;
    let mut record = Vec::with_capacity(tx.logged().count());
    for m in tx.logged() {
        let data = if m.logdata.is_empty() {
            m.matched_var
        } else {
            m.logdata
        };
        record.push((
            m.id,
            text(m.msg),
            Arc::clone(m.tags),
            text(m.matched_var_name),
            text(data),
        ));
    }
    // The event names its most severe rule by id, as text.
    let named = record.first().map(|r| r.0.to_string());
    std::hint::black_box((record, named, tx.anomaly_scores()));
    blocked
}

/// A GET of `uri`, then its response through phases 3 and 4; whether it was blocked.
pub fn with_response(rs: &Arc<RuleSet>, uri: &[u8]) -> bool {
    let mut tx = request(rs, uri);
    if tx.process_request_headers().is_some() || tx.process_request_body().is_some() {
        return true;
    }
    tx.set_response_status(200, b"HTTP/1.1");
    for (n, v) in RESPONSE_HEADERS {
        tx.add_response_header(n.as_bytes(), v.as_bytes());
    }
    tx.add_response_header(b"Content-Length", PAGE.len().to_string().as_bytes());
    if tx.process_response_headers().is_some() {
        return true;
    }
    tx.append_response_body(PAGE);
    tx.process_response_body().is_some()
}

/// What browsers send, for a check that a change does not only suit [`BENIGN`]'s one
/// request: six browsers' headers (with and without Chromium's client hints, referers and
/// three kinds of session cookies) over twenty paths of a shop's site, 120 GETs. Profiled
/// (`crs_profile browsers`), not timed by the criterion bench.
#[allow(dead_code)]
pub fn browser_requests() -> Vec<(String, Vec<(&'static str, String)>)> {
    const AGENTS: [&str; 6] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    ];
    const ACCEPTS: [&str; 6] = [
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        "*/*",
        "application/json, text/plain, */*",
        "text/css,*/*;q=0.1",
    ];
    const PATHS: [&str; 20] = [
        "/",
        "/index.html",
        "/blog/2024/05/hello-world",
        "/static/js/app.3f9a1c.min.js",
        "/api/v1/users/42/orders?page=3&per_page=20&sort=-created_at",
        "/search?q=winter+jackets+for+men&category=clothing&price_max=150&lang=de",
        "/products/view.php?id=1234&ref=homepage&utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale",
        "/images/logo@2x.png",
        "/account/settings",
        "/cart?add=sku-88213&qty=2",
        "/docs/getting-started/installation",
        "/wp-content/themes/twentytwentyfour/style.css?ver=6.5.2",
        "/news/world/europe-elections-results-2024",
        "/login?next=%2Faccount%2Forders",
        "/catalog/list?filter[color]=red&filter[size]=m&page=2",
        "/video/watch?v=dQw4w9WgXcQ&t=42s",
        "/about-us",
        "/contact?subject=Question%20about%20my%20order%20%2312345",
        "/shop/category/garden-tools?sort=price_asc",
        "/feed.xml",
    ];
    const COOKIES: [&str; 5] = [
        "",
        "_ga=GA1.2.1234567890.1716200000; _gid=GA1.2.987654321.1716200000; cookie_consent=accepted",
        "sessionid=8f3b2a1c9d7e6f5a4b3c2d1e0f9a8b7c; csrftoken=Xy7Qw3Er9Ty1Ui5Op2As6Df8Gh4Jk0Lz",
        "PHPSESSID=k1j2h3g4f5d6s7a8; lang=en_US; theme=dark",
        "JSESSIONID=ABCDEF0123456789ABCDEF0123456789; remember_me=true",
    ];
    const LANGUAGES: [&str; 4] = [
        "en-US,en;q=0.9",
        "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7",
        "fr-FR,fr;q=0.9",
        "en-GB,en;q=0.5",
    ];
    const CLIENT_HINTS: [(&str, &str); 6] = [
        (
            "sec-ch-ua",
            r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#,
        ),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", r#""Windows""#),
        ("Sec-Fetch-Site", "same-origin"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Upgrade-Insecure-Requests", "1"),
    ];
    let mut requests = Vec::new();
    for (i, path) in PATHS.iter().enumerate() {
        for (j, agent) in AGENTS.iter().enumerate() {
            let mut headers = vec![
                ("Host", "shop.example".to_string()),
                ("User-Agent", agent.to_string()),
                ("Accept", ACCEPTS[(i + j) % ACCEPTS.len()].to_string()),
                (
                    "Accept-Language",
                    LANGUAGES[(i * 3 + j) % LANGUAGES.len()].to_string(),
                ),
                ("Accept-Encoding", "gzip, deflate, br, zstd".to_string()),
            ];
            if (i + j) % 3 != 0 {
                let from = PATHS[(i + 1) % PATHS.len()];
                headers.push(("Referer", format!("https://shop.example{from}")));
            }
            let cookie = COOKIES[(i + 2 * j) % COOKIES.len()];
            if !cookie.is_empty() {
                headers.push(("Cookie", cookie.to_string()));
            }
            if j % 2 == 0 {
                headers.extend(CLIENT_HINTS.iter().map(|(n, v)| (*n, v.to_string())));
            }
            requests.push((path.to_string(), headers));
        }
    }
    requests
}

/// Each of `requests` through phases 1-2, as the module starts them; how many were blocked.
#[allow(dead_code)]
pub fn browse(rs: &Arc<RuleSet>, requests: &[(String, Vec<(&'static str, String)>)]) -> usize {
    let mut blocked = 0;
    for (path, headers) in requests {
        let mut tx = rs.pooled_transaction(TxInput {
            remote_addr: "192.0.2.10".into(),
            remote_port: 51000,
            server_addr: "192.0.2.1".into(),
            server_port: 443,
            server_name: "shop.example".into(),
            unique_id: "bench".into(),
        });
        tx.set_request_line(b"GET", path.as_bytes(), b"HTTP/1.1");
        for (name, value) in headers {
            tx.add_request_header(name.as_bytes(), value.as_bytes());
        }
        if tx.process_request_headers().is_some() || tx.process_request_body().is_some() {
            blocked += 1;
        }
    }
    blocked
}
