//! The decoy cookie: a tempting flag (`role=guest`, `is_admin=0`, ...) signed with a token.
//!
//! Its value is `<visible>.<token>`, the shape of many signed-cookie libraries. Browsers send
//! it back as set; someone who edits the visible part to `admin` or `1`, or the token, is an
//! attacker, and the token (if still intact) says whom the cookie was first given to. Not
//! sending it is no event (cookies are cleared, blocked, or never set for API clients), and
//! neither is an old but unaltered one, nor one from a new address (phones change networks).

use std::net::IpAddr;
use std::time::SystemTime;

use super::choice::Choices;
use super::kind::BaitKind;
use super::secret::Secret;
use super::token::{Issued, TokenError, Tokens, TOKEN_LEN};

/// (name, harmless value): what a site that trusts the client would set.
const FLAGS: &[(&str, &str)] = &[
    ("role", "guest"),
    ("user_role", "user"),
    ("is_admin", "0"),
    ("admin", "false"),
    ("debug", "0"),
    ("access_level", "1"),
    ("acct_type", "basic"),
    ("user_type", "customer"),
    ("priv", "user"),
    ("dev_mode", "off"),
    ("staff", "0"),
    ("account_tier", "free"),
];

/// Values longer than this are altered by definition and kept only this far in the event.
pub const VALUE_CAP: usize = 256;

#[derive(Clone, Debug)]
pub struct DecoyCookie {
    name: Box<str>,
    visible: Box<str>,
    secure: bool,
}

/// How a request's cookie compares to what was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieCheck {
    /// Not sent: no event.
    Absent,
    /// Sent as set (maybe old, maybe from another address): no event.
    Untouched(Issued),
    /// Changed: an event.
    Altered(Alteration),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alteration {
    /// The value as sent, capped.
    pub value: Vec<u8>,
    /// The visible part was changed (the privilege-escalation attempt).
    pub visible_changed: bool,
    /// What is wrong with the token part, if anything.
    pub token_error: Option<TokenError>,
    /// Whom the cookie was set for, when its token is still genuine.
    pub issued: Option<Issued>,
}

impl DecoyCookie {
    /// The cookie of this installation; `name` overrides the drawn name; `secure` adds the
    /// `Secure` attribute (only for sites served over HTTPS alone).
    pub fn new(secret: &Secret, name: Option<&str>, secure: bool) -> Result<DecoyCookie, String> {
        let (drawn, visible) = *Choices::new(secret, "cookie/v1").pick(FLAGS);
        let name = match name {
            Some(n) if is_token(n) => n,
            Some(n) => {
                return Err(format!(
                    "invalid cookie name \"{n}\": use 1 to 64 of A-Z a-z 0-9 _ - ."
                ))
            }
            None => drawn,
        };
        Ok(DecoyCookie {
            name: name.into(),
            visible: visible.into(),
            secure,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` header value for a new cookie served to `client`. No `Max-Age`: a
    /// session cookie, like the session flags it imitates.
    pub fn set_cookie(&self, tokens: &Tokens, client: IpAddr, now: SystemTime) -> String {
        let token = tokens.issue(BaitKind::Cookie, client, now);
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={}.{token}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.name, self.visible
        )
    }

    /// Checks every `Cookie` header of a request. Any altered copy of our cookie makes the
    /// request altered: an attacker may send the original beside the edited one.
    pub fn check<'h>(
        &self,
        tokens: &Tokens,
        cookie_headers: impl IntoIterator<Item = &'h [u8]>,
        now: SystemTime,
    ) -> CookieCheck {
        let mut result = CookieCheck::Absent;
        for header in cookie_headers {
            for value in values_named(header, self.name.as_bytes()) {
                match self.check_value(tokens, value, now) {
                    altered @ CookieCheck::Altered(_) => return altered,
                    untouched => result = untouched,
                }
            }
        }
        result
    }

    /// Checks one value of our cookie.
    pub fn check_value(&self, tokens: &Tokens, value: &[u8], now: SystemTime) -> CookieCheck {
        let altered = |visible_changed, token_error, issued| {
            CookieCheck::Altered(Alteration {
                value: value[..value.len().min(VALUE_CAP)].to_vec(),
                visible_changed,
                token_error,
                issued,
            })
        };
        if value.len() > self.visible.len() + 1 + TOKEN_LEN + 64 {
            return altered(true, Some(TokenError::Malformed), None);
        }
        // Split at the last dot: the token has none, an edited visible part may.
        let Some(dot) = value.iter().rposition(|&b| b == b'.') else {
            return altered(true, Some(TokenError::Malformed), None);
        };
        let (visible, token) = (&value[..dot], &value[dot + 1..]);
        let visible_changed = visible != self.visible.as_bytes();
        let (token_error, issued) = match tokens.open(token, now) {
            Ok(i) | Err(TokenError::Expired(i)) | Err(TokenError::NotYetValid(i))
                if i.kind == BaitKind::Cookie =>
            {
                (None, Some(i))
            }
            // A genuine token of another bait moved here: altered, but it still attributes.
            Ok(i) | Err(TokenError::Expired(i)) | Err(TokenError::NotYetValid(i)) => {
                (Some(TokenError::Forged), Some(i))
            }
            Err(e) => (Some(e), None),
        };
        match (visible_changed, token_error, issued) {
            (false, None, Some(issued)) => CookieCheck::Untouched(issued),
            (visible_changed, token_error, issued) => altered(visible_changed, token_error, issued),
        }
    }
}

/// Cookie names are RFC 6265 tokens; we allow the safe subset.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// The values of the cookies called `name` in one `Cookie` header (quotes removed).
fn values_named<'h>(header: &'h [u8], name: &'h [u8]) -> impl Iterator<Item = &'h [u8]> {
    header.split(|&b| b == b';').filter_map(move |pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        if pair[..eq].trim_ascii() != name {
            return None;
        }
        let value = pair[eq + 1..].trim_ascii();
        Some(
            value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn setup() -> (DecoyCookie, Tokens) {
        let secret = Secret::from_material(&[9; 32]);
        (
            DecoyCookie::new(&secret, None, false).unwrap(),
            Tokens::new(&secret, Duration::from_secs(3600)),
        )
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }

    /// What a browser sends back: `name=value` from the Set-Cookie line.
    fn sent_back(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn set_cookie_has_the_agreed_attributes() {
        let (cookie, tokens) = setup();
        let line = cookie.set_cookie(&tokens, "192.0.2.9".parse().unwrap(), now());
        let mut parts = line.split("; ");
        let pair = parts.next().unwrap();
        assert!(pair.starts_with(&format!("{}=", cookie.name())));
        assert_eq!(
            parts.collect::<Vec<_>>(),
            ["Path=/", "HttpOnly", "SameSite=Lax"]
        );
        let secure = DecoyCookie::new(&Secret::from_material(&[9; 32]), None, true).unwrap();
        assert!(secure
            .set_cookie(&tokens, "192.0.2.9".parse().unwrap(), now())
            .ends_with("; SameSite=Lax; Secure"));
        // Only cookie-octets (RFC 6265): no quoting needed anywhere.
        assert!(pair
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\",;\\".contains(&b)));
    }

    #[test]
    fn a_cookie_sent_back_as_set_is_untouched_even_from_elsewhere_and_later() {
        let (cookie, tokens) = setup();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let pair = sent_back(&cookie.set_cookie(&tokens, ip, now()));
        let header = format!("session=abc; {pair}; theme=dark");
        let later = now() + Duration::from_secs(30 * 86_400);
        match cookie.check(&tokens, [header.as_bytes()], later) {
            CookieCheck::Untouched(issued) => assert_eq!(issued.served_to, ip),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            cookie.check(&tokens, [b"session=abc".as_slice()], now()),
            CookieCheck::Absent
        );
        assert_eq!(
            cookie.check(&tokens, std::iter::empty(), now()),
            CookieCheck::Absent
        );
    }

    #[test]
    fn edits_to_either_part_are_caught_and_the_token_still_attributes() {
        let (cookie, tokens) = setup();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let pair = sent_back(&cookie.set_cookie(&tokens, ip, now()));
        let (name, value) = pair.split_once('=').unwrap();
        let (visible, token) = value.rsplit_once('.').unwrap();

        // Privilege escalation: the visible flag changed, the token intact.
        let escalated = format!("{name}=admin.{token}");
        match cookie.check(&tokens, [escalated.as_bytes()], now()) {
            CookieCheck::Altered(a) => {
                assert!(a.visible_changed);
                assert_eq!(a.token_error, None);
                assert_eq!(a.issued.map(|i| i.served_to), Some(ip));
                assert_eq!(a.value, format!("admin.{token}").as_bytes());
            }
            other => panic!("{other:?}"),
        }
        // The token changed, the flag kept.
        let mut t = token.as_bytes().to_vec();
        t[0] = if t[0] == b'x' { b'y' } else { b'x' };
        let forged = format!("{name}={visible}.{}", String::from_utf8(t).unwrap());
        match cookie.check(&tokens, [forged.as_bytes()], now()) {
            CookieCheck::Altered(a) => {
                assert!(!a.visible_changed);
                assert_eq!(a.token_error, Some(TokenError::Forged));
                assert_eq!(a.issued, None);
            }
            other => panic!("{other:?}"),
        }
        // Shapes that are not ours at all.
        for bad in [
            format!("{name}=admin"),
            format!("{name}="),
            format!("{name}={visible}."),
            format!("{name}=\"{visible}.{token}x\""),
            format!("{name}={}", "A".repeat(1 << 20)),
        ] {
            match cookie.check(&tokens, [bad.as_bytes()], now()) {
                CookieCheck::Altered(a) => {
                    assert!(a.token_error.is_some(), "{bad:.80}");
                    assert!(a.value.len() <= VALUE_CAP);
                }
                other => panic!("{bad:.80}: {other:?}"),
            }
        }
        // One altered copy beside the genuine one, in another header.
        let original = pair.clone();
        assert!(matches!(
            cookie.check(&tokens, [original.as_bytes(), escalated.as_bytes()], now()),
            CookieCheck::Altered(_)
        ));
    }

    #[test]
    fn quoted_values_and_spacing_are_read_like_browsers_send_them() {
        let (cookie, tokens) = setup();
        let pair = sent_back(&cookie.set_cookie(&tokens, "192.0.2.9".parse().unwrap(), now()));
        let (name, value) = pair.split_once('=').unwrap();
        for header in [
            format!("{name}=\"{value}\""),
            format!("  {name} = {value} ;x=1"),
            format!("a=1;{name}={value}"),
        ] {
            assert!(
                matches!(
                    cookie.check(&tokens, [header.as_bytes()], now()),
                    CookieCheck::Untouched(_)
                ),
                "{header}"
            );
        }
        // A cookie whose name merely contains ours is not ours.
        let other = format!("x{name}=admin; {name}x=1");
        assert_eq!(
            cookie.check(&tokens, [other.as_bytes()], now()),
            CookieCheck::Absent
        );
    }

    #[test]
    fn names_vary_per_installation_and_bad_overrides_are_refused() {
        let names: std::collections::HashSet<String> = (0..40u8)
            .map(|s| {
                DecoyCookie::new(&Secret::from_material(&[s; 32]), None, false)
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect();
        assert!(names.len() >= 6, "{names:?}");
        let secret = Secret::from_material(&[1; 32]);
        assert!(DecoyCookie::new(&secret, Some("a;b"), false).is_err());
        assert!(DecoyCookie::new(&secret, Some(""), false).is_err());
        assert_eq!(
            DecoyCookie::new(&secret, Some("pref"), false)
                .unwrap()
                .name(),
            "pref"
        );
    }
}
