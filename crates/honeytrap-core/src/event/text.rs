//! Turning bytes from the wire into the strings an event holds.
//!
//! Attackers send whatever bytes they like, so nothing here assumes UTF-8 or sane sizes.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Appends `ip` as `Display` writes it. IPv4, the common case, skips `fmt` (whose
/// machinery costs over a thousand instructions an address, paid on every request).
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (at, octet) in v4.octets().into_iter().enumerate() {
                if at > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// `ip` as `Display` writes it (see [`push_ip`]).
pub fn ip_string(ip: IpAddr) -> String {
    let mut out = String::with_capacity(15);
    push_ip(&mut out, ip);
    out
}

/// `raw` as `String::from_utf8_lossy` makes it: checked first as the (nearly always valid)
/// UTF-8 it is, several times faster than the lossy conversion's chunk walk.
pub fn lossy(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// Converts `raw` to a `String` of at most `cap` bytes; `true` when something was cut.
///
/// Invalid UTF-8 becomes U+FFFD. Only the first `cap` input bytes are read, so a large body
/// costs no more than a small one, and a character split by the cut is dropped rather than
/// turned into U+FFFD (which would look like the attacker sent garbage).
pub fn lossy_capped(raw: &[u8], cap: usize) -> (String, bool) {
    let mut cut = raw.len() > cap;
    let prefix = if cut {
        drop_split_char(&raw[..cap])
    } else {
        raw
    };
    let mut text = lossy(prefix);
    // U+FFFD takes 3 bytes where the invalid input took 1: the output may still be too long.
    if text.len() > cap {
        let mut end = cap;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        cut = true;
    }
    (text, cut)
}

/// Drops an incomplete UTF-8 sequence at the very end of `bytes`, if there is one.
fn drop_split_char(bytes: &[u8]) -> &[u8] {
    // A sequence is at most 4 bytes: its lead byte is among the last 4.
    for back in 1..=bytes.len().min(4) {
        let at = bytes.len() - back;
        let b = bytes[at];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte: keep looking for the lead
        }
        let needed = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1, // ASCII or an invalid lead: nothing was split
        };
        return if back < needed { &bytes[..at] } else { bytes };
    }
    bytes
}

/// Splits a request target into (path, query) as ECS wants them: no `?`, no empty query.
///
/// Handles the absolute form (`GET http://host/path`) open-proxy scanners send.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let target = strip_scheme_and_authority(target);
    match target.split_once('?') {
        Some((path, query)) => (path, (!query.is_empty()).then_some(query)),
        None => (target, None),
    }
}

fn strip_scheme_and_authority(target: &str) -> &str {
    let Some(scheme_end) = target.find("://") else {
        return target;
    };
    let scheme = &target[..scheme_end];
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return target; // "/a?next=http://x" is an origin-form target with a URL in its query
    }
    let after = &target[scheme_end + 3..];
    match after.find(['/', '?']) {
        Some(i) => &after[i..],
        None => "",
    }
}

/// The host part of a `Host` header: without the port, IPv6 literals keep their brackets
/// (as ECS asks for `url.domain`).
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Every IPv4 octet value in every position, and IPv6 forms (compressed, mapped), as
    /// `Display` writes them: the engine reads REMOTE_ADDR from this text.
    #[test]
    fn lossy_text_is_the_standard_lossy_text() {
        let cases: [&[u8]; 7] = [
            b"",
            b"Mozilla/5.0 (X11; Linux x86_64)",
            "caf\u{e9} \u{2019}".as_bytes(),
            b"bad \xff byte",
            b"cut \xe2\x80",
            b"\xc3\x28 and \xf0\x9f\x98\x80",
            b"\xed\xa0\x80 surrogate, \xc0\xaf overlong",
        ];
        for raw in cases {
            assert_eq!(lossy(raw), String::from_utf8_lossy(raw), "{raw:?}");
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for n in 0..=255u8 {
            for ip in [
                Ipv4Addr::new(n, 0, 0, 0),
                Ipv4Addr::new(1, n, 2, 3),
                Ipv4Addr::new(10, 20, n, 255),
                Ipv4Addr::new(255, 99, 100, n),
            ] {
                assert_eq!(ip_string(ip.into()), ip.to_string());
            }
        }
        for ip in [
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::UNSPECIFIED,
            Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped(),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xff00, 0x42),
        ] {
            assert_eq!(ip_string(ip.into()), ip.to_string());
        }
        let mut out = "a=".to_owned();
        push_ip(&mut out, Ipv4Addr::new(127, 0, 0, 1).into());
        assert_eq!(out, "a=127.0.0.1", "appends");
    }

    #[test]
    fn short_input_is_kept_whole() {
        assert_eq!(lossy_capped(b"hello", 5), ("hello".to_owned(), false));
        assert_eq!(lossy_capped(b"", 0), (String::new(), false));
    }

    #[test]
    fn long_input_is_cut_at_the_cap() {
        let (text, cut) = lossy_capped(b"abcdefgh", 3);
        assert_eq!(text, "abc");
        assert!(cut);
    }

    #[test]
    fn cut_never_splits_a_character() {
        // "é" is 2 bytes, "€" 3, "𝄞" 4: try every cap over a mix of them.
        let s = "aé€𝄞z".repeat(3);
        for cap in 0..=s.len() {
            let (text, cut) = lossy_capped(s.as_bytes(), cap);
            assert!(text.len() <= cap, "cap {cap}: {} bytes", text.len());
            assert!(s.starts_with(&text), "cap {cap}: {text:?} is not a prefix");
            assert!(
                !text.contains('\u{FFFD}'),
                "cap {cap}: split char became U+FFFD"
            );
            assert_eq!(cut, cap < s.len(), "cap {cap}");
            // Dropping a split char loses at most 3 bytes.
            assert!(cap - text.len() <= 3, "cap {cap}: kept only {}", text.len());
        }
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let (text, cut) = lossy_capped(b"ab\xff\xfecd", 64);
        assert_eq!(text, "ab\u{FFFD}\u{FFFD}cd");
        assert!(!cut);
        // A lone continuation byte or an overlong lead is not a "split character".
        assert_eq!(lossy_capped(b"a\x80", 64).0, "a\u{FFFD}");
        // An invalid pair kept by the cut still becomes 6 bytes of U+FFFD: the cap trims them.
        assert_eq!(lossy_capped(b"a\xc0\xafb", 3), ("a".to_owned(), true));
    }

    #[test]
    fn replacement_growth_is_capped_too() {
        // 4 invalid bytes fit a 4-byte cap, but their replacements take 12 bytes.
        let (text, cut) = lossy_capped(b"\xff\xff\xff\xff", 4);
        assert_eq!(text, "\u{FFFD}");
        assert!(cut);
    }

    #[test]
    fn target_splits_into_path_and_query() {
        assert_eq!(split_target("/a/b?x=1&y=2"), ("/a/b", Some("x=1&y=2")));
        assert_eq!(split_target("/a/b"), ("/a/b", None));
        assert_eq!(split_target("/a?"), ("/a", None));
        assert_eq!(split_target("/?a?b"), ("/", Some("a?b")));
        assert_eq!(split_target("*"), ("*", None));
    }

    #[test]
    fn absolute_form_loses_scheme_and_authority() {
        assert_eq!(
            split_target("http://evil.example:8080/p?q=1"),
            ("/p", Some("q=1"))
        );
        assert_eq!(split_target("HTTPS://evil.example?q"), ("", Some("q")));
        assert_eq!(split_target("http://evil.example"), ("", None));
        // A URL inside the query is not an absolute-form target.
        assert_eq!(
            split_target("/r?next=http://x/y"),
            ("/r", Some("next=http://x/y"))
        );
    }

    #[test]
    fn host_loses_its_port() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[2001:db8::1]:443"), "[2001:db8::1]");
        assert_eq!(host_without_port("[2001:db8::1]"), "[2001:db8::1]");
        assert_eq!(host_without_port("a:b"), "a:b");
        assert_eq!(host_without_port("10.0.0.1:80"), "10.0.0.1");
    }
}
