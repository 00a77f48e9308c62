//! The hidden form field: its name, its markup, and the check of a submitted value.
//!
//! Browsers send a hidden field back exactly as served; a changed value means someone edited
//! the form or a tool fuzzed every parameter (sqlmap does). A missing field is not an event:
//! JavaScript clients build their own requests, and a form posted before the bait was on
//! never had it.
//!
//! The name must look like a framework's anti-forgery field without being one: a form that
//! also carries e.g. Express's `_csrf` would then post two values under one name, which some
//! parsers turn into an array and the site's own check would fail.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::choice::Choices;
use super::kind::BaitKind;
use super::secret::Secret;
use super::token::{Issued, TokenError, Tokens, TOKEN_LEN};

/// Plausible, and used by no framework we know of.
// No name contains "token", "csrf" or "xsrf": sqlmap (below --level 4) and other scanners skip
// such parameters as anti-CSRF values, and a field nobody tampers with catches nobody.
const NAMES: &[&str] = &[
    "form_nonce",
    "_form_nonce",
    "_form_stamp",
    "request_nonce",
    "_req_stamp",
    "form_sig",
    "_fsig",
    "post_nonce",
    "_submit_id",
    "form_guard",
    "_formkey",
    "__fnonce",
];

/// A submitted value longer than this is kept only this far in the event.
pub const VALUE_CAP: usize = 256;

#[derive(Clone, Debug)]
pub struct FormField {
    name: Box<str>,
}

/// What a submission did with the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldCheck {
    /// Not submitted: no event.
    Absent,
    /// Sent back as served: no event. `expired` tokens come from old tabs, not attackers.
    Untouched { issued: Issued, expired: bool },
    /// Changed: an event. `issued` is known when the value is a genuine token of another
    /// kind (a cookie's token moved into the form).
    Tampered {
        value: Vec<u8>,
        error: Option<TokenError>,
        issued: Option<Issued>,
    },
}

impl FormField {
    /// The field of this installation; `name` overrides the drawn name.
    pub fn new(secret: &Secret, name: Option<&str>) -> Result<FormField, String> {
        let name = match name {
            Some(n) => {
                if n.is_empty()
                    || n.len() > 64
                    || !n
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
                {
                    return Err(format!(
                        "invalid form field name \"{n}\": use 1 to 64 of A-Z a-z 0-9 _ - ."
                    ));
                }
                n
            }
            None => Choices::new(secret, "form-field/v1").pick(NAMES),
        };
        Ok(FormField { name: name.into() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The markup inserted after a form's start tag, with a fresh token for `client`.
    pub fn markup(&self, tokens: &Tokens, client: IpAddr, now: SystemTime) -> Arc<[u8]> {
        let token = tokens.issue(BaitKind::FormField, client, now);
        // Name and token are from safe alphabets: no escaping needed.
        format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{token}\">",
            self.name
        )
        .into_bytes()
        .into()
    }

    /// Checks the submitted (decoded) value, if the field was submitted at all.
    pub fn check(&self, tokens: &Tokens, value: Option<&[u8]>, now: SystemTime) -> FieldCheck {
        let Some(value) = value else {
            return FieldCheck::Absent;
        };
        let tampered = |error, issued| FieldCheck::Tampered {
            value: value[..value.len().min(VALUE_CAP)].to_vec(),
            error,
            issued,
        };
        match tokens.open(value, now) {
            Ok(issued) if issued.kind == BaitKind::FormField => FieldCheck::Untouched {
                issued,
                expired: false,
            },
            Err(TokenError::Expired(issued)) | Err(TokenError::NotYetValid(issued))
                if issued.kind == BaitKind::FormField =>
            {
                FieldCheck::Untouched {
                    issued,
                    expired: true,
                }
            }
            Ok(issued)
            | Err(TokenError::Expired(issued))
            | Err(TokenError::NotYetValid(issued)) => tampered(None, Some(issued)),
            Err(TokenError::Malformed) if value.len() > TOKEN_LEN => {
                tampered(Some(TokenError::Malformed), embedded(tokens, value, now))
            }
            Err(e) => tampered(Some(e), None),
        }
    }
}

/// A genuine token at the start or the end of a longer value: scanners append (or prepend)
/// their payload to the value they found, and the token still names who was served it.
fn embedded(tokens: &Tokens, value: &[u8], now: SystemTime) -> Option<Issued> {
    let ends = [&value[..TOKEN_LEN], &value[value.len() - TOKEN_LEN..]];
    ends.into_iter().find_map(|t| match tokens.open(t, now) {
        Ok(issued) | Err(TokenError::Expired(issued)) | Err(TokenError::NotYetValid(issued)) => {
            Some(issued)
        }
        Err(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_name_looks_like_an_anti_csrf_token_to_scanners() {
        for name in NAMES {
            let lower = name.to_ascii_lowercase();
            for skipped in ["token", "csrf", "xsrf"] {
                assert!(
                    !lower.contains(skipped),
                    "{name}: scanners skip names with {skipped}"
                );
            }
        }
    }
    use crate::bait::urlencoded;
    use std::time::{Duration, UNIX_EPOCH};

    fn setup() -> (FormField, Tokens) {
        let secret = Secret::from_material(&[8; 32]);
        (
            FormField::new(&secret, None).unwrap(),
            Tokens::new(&secret, Duration::from_secs(3600)),
        )
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }

    /// The value a browser would post back from the served markup.
    fn served_value(markup: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(markup).unwrap();
        let start = text.find("value=\"").unwrap() + 7;
        text.as_bytes()[start..text.len() - 2].to_vec()
    }

    #[test]
    fn a_value_posted_back_as_served_is_untouched() {
        let (field, tokens) = setup();
        let ip: IpAddr = "198.51.100.4".parse().unwrap();
        let markup = field.markup(&tokens, ip, now());
        let value = served_value(&markup);
        // Through a urlencoded body, as a browser submits it.
        let body = [
            b"q=1&".as_slice(),
            field.name().as_bytes(),
            b"=",
            &value,
            b"&x=2",
        ]
        .concat();
        let submitted = urlencoded::find(&body, field.name()).unwrap();
        match field.check(&tokens, Some(&submitted), now()) {
            FieldCheck::Untouched { issued, expired } => {
                assert_eq!(issued.served_to, ip);
                assert!(!expired);
            }
            other => panic!("{other:?}"),
        }
        // An old tab, long after: still not an event.
        let later = now() + Duration::from_secs(86_400);
        assert!(matches!(
            field.check(&tokens, Some(&value), later),
            FieldCheck::Untouched { expired: true, .. }
        ));
    }

    #[test]
    fn absent_is_no_event_and_changes_are_tampering() {
        let (field, tokens) = setup();
        let ip: IpAddr = "198.51.100.4".parse().unwrap();
        let value = served_value(&field.markup(&tokens, ip, now()));
        assert_eq!(field.check(&tokens, None, now()), FieldCheck::Absent);

        let mut flipped = value.clone();
        flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
        let huge = vec![b'A'; 100_000];
        for (changed, error) in [
            (flipped, TokenError::Forged),
            (b"".to_vec(), TokenError::Malformed),
            (b"false".to_vec(), TokenError::Malformed),
            (huge, TokenError::Malformed),
        ] {
            match field.check(&tokens, Some(&changed), now()) {
                FieldCheck::Tampered {
                    value,
                    error: e,
                    issued,
                } => {
                    assert_eq!(e, Some(error));
                    assert_eq!(issued, None);
                    assert_eq!(value, changed[..changed.len().min(VALUE_CAP)]);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_payload_added_before_or_after_the_token_still_attributes() {
        let (field, tokens) = setup();
        let ip: IpAddr = "198.51.100.23".parse().unwrap();
        let token = served_value(&field.markup(&tokens, ip, now()));
        let payload = b"' AND 1=1-- -".to_vec();
        let appended = [token.clone(), payload.clone()].concat();
        let prepended = [payload.clone(), token.clone()].concat();
        let mut forged = token.clone();
        forged[7] = if forged[7] == b'A' { b'B' } else { b'A' };
        for (sent, attributed) in [
            (appended, true),
            (prepended, true),
            ([forged, payload.clone()].concat(), false),
            ([b"x".to_vec(), token.clone(), payload].concat(), false),
        ] {
            match field.check(&tokens, Some(&sent), now()) {
                FieldCheck::Tampered {
                    value,
                    error,
                    issued,
                } => {
                    assert_eq!(value, sent);
                    assert_eq!(error, Some(TokenError::Malformed));
                    assert_eq!(issued.map(|i| i.served_to), attributed.then_some(ip));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_genuine_token_of_another_bait_is_tampering_that_still_attributes() {
        let (field, tokens) = setup();
        let ip: IpAddr = "2001:db8::7".parse().unwrap();
        let cookie_token = tokens.issue(BaitKind::Cookie, ip, now());
        match field.check(&tokens, Some(cookie_token.as_bytes()), now()) {
            FieldCheck::Tampered {
                error: None,
                issued: Some(issued),
                ..
            } => assert_eq!(issued.served_to, ip),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_vary_per_installation_and_can_be_set() {
        let names: std::collections::HashSet<String> = (0..40u8)
            .map(|s| {
                FormField::new(&Secret::from_material(&[s; 32]), None)
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect();
        assert!(names.len() >= 6, "{names:?}");
        let secret = Secret::from_material(&[1; 32]);
        assert_eq!(
            FormField::new(&secret, Some("my_nonce")).unwrap().name(),
            "my_nonce"
        );
        for bad in ["", "a b", "x\"y", "<x>", &"n".repeat(65)] {
            assert!(FormField::new(&secret, Some(bad)).is_err(), "{bad}");
        }
    }
}
