//! Credentials submitted to a decoy: from `Authorization: Basic` or a login form body.
//!
//! Everything is kept as bytes; the event turns them into capped, lossy UTF-8
//! (`Event::set_credentials`). What was odd about the submission is said by [`Quirks`], so a
//! wrong guess at decoding never passes silently: a brute-force tool that sends garbage is
//! itself worth recording.

use std::borrow::Cow;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use super::urlencoded;

/// At most this many bytes of one credential are kept (events cap lower still).
pub const CAP: usize = 1024;

/// Login form fields, by the last `[...]` part of their name, lowercased, `j_` removed.
const USER_FIELDS: &[&str] = &[
    "user",
    "username",
    "user_name",
    "login",
    "log",
    "email",
    "mail",
    "uname",
    "usr",
    "userid",
    "user_id",
    "account",
    "usuario",
];
const PASSWORD_FIELDS: &[&str] = &[
    "pass",
    "password",
    "passwd",
    "pwd",
    "pw",
    "passphrase",
    "pass1",
    "senha",
    "contrasena",
];

/// Lenient as servers are: padding optional, stray low bits ignored.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    pub username: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    pub quirks: Quirks,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// The Basic value was not base64: `username` holds it undecoded.
    pub invalid_base64: bool,
    /// The decoded Basic value had no `:`: all of it is in `username`.
    pub no_colon: bool,
    /// A credential is not UTF-8; the event shows U+FFFD for the bad bytes.
    pub not_utf8: bool,
    /// Something was longer than [`CAP`] and cut.
    pub truncated: bool,
}

impl Quirks {
    /// Event tags for what was odd, e.g. `credentials:invalid-base64`.
    pub fn tags(&self) -> Vec<&'static str> {
        [
            (self.invalid_base64, "credentials:invalid-base64"),
            (self.no_colon, "credentials:no-colon"),
            (self.not_utf8, "credentials:not-utf8"),
            (self.truncated, "credentials:truncated"),
        ]
        .into_iter()
        .filter_map(|(on, tag)| on.then_some(tag))
        .collect()
    }
}

impl Captured {
    fn new(username: Option<&[u8]>, password: Option<&[u8]>, mut quirks: Quirks) -> Captured {
        let mut keep = |v: &[u8]| {
            quirks.truncated |= v.len() > CAP;
            let v = &v[..v.len().min(CAP)];
            // A character cut at the cap is not the client's fault.
            let complete = match std::str::from_utf8(v) {
                Ok(_) => true,
                Err(e) => e.error_len().is_none() && v.len() == CAP,
            };
            quirks.not_utf8 |= !complete;
            v.to_vec()
        };
        let username = username.map(&mut keep);
        let password = password.map(&mut keep);
        Captured {
            username,
            password,
            quirks,
        }
    }
}

/// Credentials from an `Authorization` header value; `None` for other schemes.
pub fn from_basic_auth(header: &[u8]) -> Option<Captured> {
    let header = header.trim_ascii();
    let scheme_end = header
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(header.len());
    if !header[..scheme_end].eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let encoded = header[scheme_end..].trim_ascii();
    // Decode no more than CAP-worth of text, so a megabyte header costs nothing.
    let max_text = (CAP * 2).div_ceil(3) * 4;
    let (encoded, cut) = if encoded.len() > max_text {
        (&encoded[..max_text], true)
    } else {
        (encoded, false)
    };
    let quirks = Quirks {
        truncated: cut,
        ..Quirks::default()
    };
    let Ok(decoded) = BASIC.decode(encoded) else {
        let quirks = Quirks {
            invalid_base64: true,
            ..quirks
        };
        return Some(Captured::new(Some(encoded), None, quirks));
    };
    Some(match decoded.iter().position(|&b| b == b':') {
        Some(colon) => Captured::new(Some(&decoded[..colon]), Some(&decoded[colon + 1..]), quirks),
        None => Captured::new(
            Some(&decoded),
            None,
            Quirks {
                no_colon: true,
                ..quirks
            },
        ),
    })
}

/// Credentials from a urlencoded login form body; `None` when it has no known field.
pub fn from_form(body: &[u8]) -> Option<Captured> {
    let mut username: Option<Cow<[u8]>> = None;
    let mut password: Option<Cow<[u8]>> = None;
    for (name, value) in urlencoded::pairs(body) {
        let name = urlencoded::decode(name);
        let key = field_key(&name);
        if username.is_none() && USER_FIELDS.iter().any(|f| f.as_bytes() == key) {
            username = Some(urlencoded::decode(value));
        } else if password.is_none() && PASSWORD_FIELDS.iter().any(|f| f.as_bytes() == key) {
            password = Some(urlencoded::decode(value));
        }
        if username.is_some() && password.is_some() {
            break;
        }
    }
    if username.is_none() && password.is_none() {
        return None;
    }
    Some(Captured::new(
        username.as_deref(),
        password.as_deref(),
        Quirks::default(),
    ))
}

/// `user[Email]` → `email`, `j_password` → `password`, `Login` → `login`.
fn field_key(name: &[u8]) -> Vec<u8> {
    let mut key = name;
    if let Some(open) = key.iter().rposition(|&b| b == b'[') {
        let inner = &key[open + 1..];
        key = inner.strip_suffix(b"]").unwrap_or(inner);
    }
    let key = key.to_ascii_lowercase();
    match key.strip_prefix(b"j_") {
        Some(rest) => rest.to_vec(),
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(value: &str) -> Captured {
        from_basic_auth(value.as_bytes()).unwrap()
    }

    fn cred(c: &Captured) -> (Option<&[u8]>, Option<&[u8]>) {
        (c.username.as_deref(), c.password.as_deref())
    }

    #[test]
    fn basic_auth_decodes_user_and_password() {
        // "admin:hunter2" and "root:pa:ss" (only the first colon splits).
        let c = basic("Basic YWRtaW46aHVudGVyMg==");
        assert_eq!(cred(&c), (Some(&b"admin"[..]), Some(&b"hunter2"[..])));
        assert_eq!(c.quirks, Quirks::default());
        let c = basic("basic   cm9vdDpwYTpzcw");
        assert_eq!(cred(&c), (Some(&b"root"[..]), Some(&b"pa:ss"[..])));
        // ":" alone: empty user and password, still a submission.
        let c = basic("BASIC Og==");
        assert_eq!(cred(&c), (Some(&b""[..]), Some(&b""[..])));
        assert_eq!(from_basic_auth(b"Bearer abc.def"), None);
        assert_eq!(from_basic_auth(b"Basicx YWFh"), None);
    }

    #[test]
    fn odd_basic_values_are_kept_and_marked() {
        let c = basic("Basic not*base64!");
        assert_eq!(cred(&c), (Some(&b"not*base64!"[..]), None));
        assert!(c.quirks.invalid_base64);
        assert_eq!(c.quirks.tags(), ["credentials:invalid-base64"]);

        // "justauser"
        let c = basic("Basic anVzdGF1c2Vy");
        assert_eq!(cred(&c), (Some(&b"justauser"[..]), None));
        assert!(c.quirks.no_colon);

        // "r\xe9my:\xff" in Latin-1, as some clients send.
        let c = basic("Basic culteTr/");
        assert_eq!(cred(&c), (Some(&b"r\xe9my"[..]), Some(&b"\xff"[..])));
        assert!(c.quirks.not_utf8);

        let c = basic("Basic ");
        assert_eq!(cred(&c), (Some(&b""[..]), None));
        assert!(c.quirks.no_colon);
    }

    #[test]
    fn huge_values_are_cut_without_decoding_everything() {
        use base64::engine::general_purpose::STANDARD;
        let user = "u".repeat(10);
        let password = "p".repeat(1_000_000);
        let header = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        let c = basic(&header);
        assert_eq!(c.username.as_deref(), Some(user.as_bytes()));
        assert!(c.password.unwrap().len() <= CAP);
        assert!(c.quirks.truncated);
        // A multi-byte character cut by the cap is not a UTF-8 error of the client.
        let user = "é".repeat(CAP);
        let c = basic(&format!("Basic {}", STANDARD.encode(format!("{user}:x"))));
        assert!(c.quirks.truncated && !c.quirks.not_utf8);
    }

    #[test]
    fn form_bodies_give_the_usual_login_fields() {
        type Case<'a> = (&'a [u8], Option<&'a [u8]>, Option<&'a [u8]>);
        let cases: &[Case] = &[
            (
                b"username=admin&password=secret",
                Some(b"admin"),
                Some(b"secret"),
            ),
            (
                b"log=admin&pwd=p%40ss+1&wp-submit=Log+In",
                Some(b"admin"),
                Some(b"p@ss 1"),
            ),
            (b"j_username=tom&j_password=cat", Some(b"tom"), Some(b"cat")),
            (
                b"user%5Bemail%5D=a%40b.c&user%5Bpassword%5D=x",
                Some(b"a@b.c"),
                Some(b"x"),
            ),
            (b"session[password]=only", None, Some(b"only")),
            (b"Email=X&PASS=y&pass=second", Some(b"X"), Some(b"y")),
            (b"login=%ff%fe", Some(b"\xff\xfe"), None),
        ];
        for (body, user, password) in cases {
            let c = from_form(body).unwrap_or_else(|| panic!("{body:?}"));
            assert_eq!(cred(&c), (*user, *password), "{body:?}");
        }
        assert!(from_form(b"login=%ff%fe").unwrap().quirks.not_utf8);
        assert_eq!(from_form(b"q=search&page=2"), None);
        assert_eq!(from_form(b""), None);
        assert_eq!(from_form(b"\xff\xff=\x00"), None);
    }
}
