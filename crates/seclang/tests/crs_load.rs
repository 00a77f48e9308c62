//! CRS v4.28.0 (from ../shared/crs) and Debian's CRS 3.3.4 load with zero errors.

mod common;

use std::path::Path;
use std::sync::Arc;

use honeytrap_seclang::{RuleSet, RuleSetBuilder, TxInput};

#[test]
fn crs_v4_loads_without_errors() {
    let Some(root) = common::crs_root() else {
        return;
    };
    let rs = common::load_crs4(&root, "");
    let n = rs.rule_count();
    println!("CRS v4.28.0: {n} rules, {} notices", rs.notices().len());
    for note in rs.notices() {
        println!("  notice: {note}");
    }
    assert!(n > 500, "only {n} rules loaded");
    assert!(rs.rule_ids().any(|id| id == 942100));
    // Every CRS v4 pattern runs on the built-in engine (a PCRE2 fallback is a notice), so
    // every one of them can have a literal prefilter.
    assert!(rs.notices().is_empty(), "{:?}", rs.notices());
}

#[test]
fn crs_v3_debian_loads_and_blocks_at_pl1() {
    let setup = Path::new("/etc/modsecurity/crs/crs-setup.conf");
    let rules = Path::new("/usr/share/modsecurity-crs/rules");
    if !setup.exists() || !rules.is_dir() {
        println!(
            "SKIPPED: Debian modsecurity-crs is not installed (apt-get install modsecurity-crs)"
        );
        return;
    }
    let mut b = RuleSetBuilder::default();
    b.add_text(
        "SecRuleEngine On\nSecRequestBodyAccess On\n",
        "prelude",
        Path::new("."),
    )
    .unwrap();
    b.add_file(setup).unwrap_or_else(|e| panic!("{e}"));
    b.add_text(
        "Include /usr/share/modsecurity-crs/rules/*.conf",
        "owasp-crs.load",
        Path::new("/"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rs = Arc::new(b.build().unwrap());
    println!(
        "CRS 3.3.4: {} rules, {} notices",
        rs.rule_count(),
        rs.notices().len()
    );
    for note in rs.notices() {
        println!("  notice: {note}");
    }
    let attacks: [&[u8]; 4] = [
        b"/?id=1%27%20OR%20%271%27%3D%271",
        b"/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        b"/?file=../../../../etc/passwd",
        b"/?cmd=%3Bcat%20%2Fetc%2Fpasswd",
    ];
    for uri in attacks {
        let mut tx = rs.transaction(TxInput {
            remote_addr: "192.0.2.1".into(),
            ..TxInput::default()
        });
        tx.set_request_line(b"GET", uri, b"HTTP/1.1");
        for (n, v) in [
            ("Host", "localhost"),
            ("User-Agent", "Mozilla/5.0"),
            ("Accept", "text/html"),
        ] {
            tx.add_request_header(n.as_bytes(), v.as_bytes());
        }
        let iv = tx
            .process_request_headers()
            .or_else(|| tx.process_request_body());
        let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
        let iv = iv.unwrap_or_else(|| {
            panic!(
                "{} not blocked; matched {ids:?}",
                String::from_utf8_lossy(uri)
            )
        });
        assert_eq!(iv.status, 403, "{ids:?}");
    }
    let mut tx = rs.transaction(TxInput::default());
    tx.set_request_line(b"GET", b"/index.html?page=2&sort=asc", b"HTTP/1.1");
    for (n, v) in [
        ("Host", "localhost"),
        ("User-Agent", "Mozilla/5.0"),
        ("Accept", "text/html"),
    ] {
        tx.add_request_header(n.as_bytes(), v.as_bytes());
    }
    assert!(tx.process_request_headers().is_none());
    assert!(
        tx.process_request_body().is_none(),
        "benign request blocked: {:?}",
        tx.matched_rules()
    );
}

#[test]
fn from_text_rejects_unknown_directive_in_included_file() {
    let dir = std::env::temp_dir().join(format!("seclang-inc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.conf"), "SecRule ARGS \"@rx x\" \"id:1\"\n").unwrap();
    std::fs::write(dir.join("b.conf"), "\nSecBogus On\n").unwrap();
    let e = RuleSet::from_files(&[dir.join("main.conf")]).unwrap_err();
    assert!(e.reason.contains("cannot read"));
    std::fs::write(dir.join("main.conf"), "Include *.conf\n").unwrap();
    // main.conf includes itself through the glob only if it matches; keep it out of the glob.
    std::fs::write(dir.join("main.load"), "Include ?.conf\n").unwrap();
    let e = RuleSet::from_files(&[dir.join("main.load")]).unwrap_err();
    assert!(e.origin.ends_with("b.conf") && e.line == 2, "{e}");
}
