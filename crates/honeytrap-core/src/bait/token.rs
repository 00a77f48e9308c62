//! Attribution tokens: a signed note, carried by a bait value, of whom the bait was served to.
//!
//! A token names the client address it was served to, when, a random id, and the bait kind.
//! It is 60 characters of base64url (`A-Z a-z 0-9 - _`): safe unescaped in a URL, a cookie
//! value and an HTML attribute, and indistinguishable from the random session or CSRF values
//! sites already hand out. So the payload is not only signed but also encrypted: an attacker
//! who decodes it must not find their own address in it and learn it is a tracker.
//!
//! Format (version 1), 45 bytes before base64url:
//!
//! ```text
//! tag[16] || (payload[29] XOR HMAC(enc_key, tag)[..29])
//! payload = version<<4 | kind (1) || issued, unix seconds, BE (4) || IPv6 or v4-mapped (16) || id (8)
//! tag     = HMAC-SHA256(mac_key, payload)[..16]
//! ```
//!
//! The tag is a synthetic IV (the SIV construction): it authenticates the payload and seeds
//! the keystream, and the random id keeps it from repeating. 128 bits of tag make a forgery a
//! 2^-128 guess; it is compared in constant time.
//!
//! **Replay is the signal, not an error.** A valid token presented from another address than
//! it was served to is accepted: it links the two addresses (the attacker switched to a VPN,
//! or handed the value to a tool running elsewhere). The event records who received it
//! ([`Attribution::served_to_ip`]) beside the request's own source, which is who used it.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::kind::BaitKind;
use super::secret::Secret;
use crate::event::{Attribution, EventId};

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const PAYLOAD_LEN: usize = 1 + 4 + 16 + 8;
const RAW_LEN: usize = TAG_LEN + PAYLOAD_LEN;
/// The length of every token, in characters.
pub const TOKEN_LEN: usize = (RAW_LEN * 4).div_ceil(3);

/// Clocks of nginx workers agree, but an NTP step backwards must not make fresh tokens fail.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// What a valid token says about whom it was served to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Issued {
    pub kind: BaitKind,
    pub served_to: IpAddr,
    /// Whole seconds: the token stores no more.
    pub served_at: SystemTime,
    pub id: u64,
}

impl Issued {
    /// The token id as events print it: 16 lowercase hex digits.
    pub fn token_id(&self) -> String {
        format!("{:016x}", self.id)
    }

    /// The event's attribution for a token whose signature checked out.
    pub fn attribution(&self) -> Attribution {
        Attribution {
            served_to_ip: Some(self.served_to),
            served_at: Some(self.served_at),
            token_id: Some(self.token_id()),
            valid: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours at all: wrong length or alphabet, unknown version or kind.
    Malformed,
    /// Shaped like a token but the signature does not match: changed, or made up.
    Forged,
    /// Genuine but older than the configured maximum age.
    Expired(Issued),
    /// Genuine but issued later than now (beyond clock skew): the clock jumped back.
    NotYetValid(Issued),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::Malformed => "malformed token",
            TokenError::Forged => "forged token (bad signature)",
            TokenError::Expired(_) => "expired token",
            TokenError::NotYetValid(_) => "token issued in the future",
        })
    }
}

impl std::error::Error for TokenError {}

/// Issues and checks tokens for one installation. Built once; cheap to share.
#[derive(Clone)]
pub struct Tokens {
    // Keyed once: each use clones the keyed state instead of hashing the key again.
    mac: Hmac<Sha256>,
    enc: Hmac<Sha256>,
    max_age: Duration,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(secret: &Secret, max_age: Duration) -> Tokens {
        let keyed = |label| {
            Hmac::<Sha256>::new_from_slice(&secret.derive(label)).expect("HMAC takes any key")
        };
        Tokens {
            mac: keyed("token/mac/v1"),
            enc: keyed("token/enc/v1"),
            max_age,
        }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// A fresh token for a `kind` bait served to `client` at `now`.
    pub fn issue(&self, kind: BaitKind, client: IpAddr, now: SystemTime) -> String {
        // EventId's generator is fork-safe: workers never share a sequence.
        self.issue_with_id(kind, client, now, EventId::random().0 as u64)
    }

    fn issue_with_id(&self, kind: BaitKind, client: IpAddr, now: SystemTime, id: u64) -> String {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let ip = match client {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[0] = VERSION << 4 | kind.code();
        payload[1..5].copy_from_slice(&secs.to_be_bytes());
        payload[5..21].copy_from_slice(&ip.octets());
        payload[21..29].copy_from_slice(&id.to_be_bytes());

        let mut mac = self.mac.clone();
        mac.update(&payload);
        let full_tag = mac.finalize().into_bytes();
        let mut raw = [0u8; RAW_LEN];
        raw[..TAG_LEN].copy_from_slice(&full_tag[..TAG_LEN]);
        let stream = self.keystream(&raw[..TAG_LEN]);
        for (i, b) in payload.iter().enumerate() {
            raw[TAG_LEN + i] = b ^ stream[i];
        }
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a token and says whom it was served to.
    pub fn open(&self, token: &[u8], now: SystemTime) -> Result<Issued, TokenError> {
        // Checked before decoding so a huge value costs nothing.
        if token.len() != TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(TokenError::Malformed),
        }
        let (tag, sealed) = raw.split_at(TAG_LEN);
        let stream = self.keystream(tag);
        let mut payload = [0u8; PAYLOAD_LEN];
        for (i, b) in sealed.iter().enumerate() {
            payload[i] = b ^ stream[i];
        }
        let mut mac = self.mac.clone();
        mac.update(&payload);
        // Constant-time comparison of the truncated tag.
        if mac.verify_truncated_left(tag).is_err() {
            return Err(TokenError::Forged);
        }

        if payload[0] >> 4 != VERSION {
            return Err(TokenError::Malformed);
        }
        let kind = BaitKind::from_code(payload[0] & 0x0f).ok_or(TokenError::Malformed)?;
        let secs = u32::from_be_bytes(payload[1..5].try_into().expect("4 bytes"));
        let ip: [u8; 16] = payload[5..21].try_into().expect("16 bytes");
        let id = u64::from_be_bytes(payload[21..29].try_into().expect("8 bytes"));
        let issued = Issued {
            kind,
            served_to: Ipv6Addr::from(ip).to_canonical(),
            served_at: UNIX_EPOCH + Duration::from_secs(u64::from(secs)),
            id,
        };

        match now.duration_since(issued.served_at) {
            Ok(age) if age > self.max_age => Err(TokenError::Expired(issued)),
            Ok(_) => Ok(issued),
            Err(e) if e.duration() > CLOCK_SKEW => Err(TokenError::NotYetValid(issued)),
            Err(_) => Ok(issued),
        }
    }

    /// [`Tokens::open`], as the event's attribution.
    pub fn verify(&self, token: &[u8], now: SystemTime) -> Result<Attribution, TokenError> {
        self.open(token, now).map(|issued| issued.attribution())
    }

    fn keystream(&self, tag: &[u8]) -> [u8; 32] {
        let mut enc = self.enc.clone();
        enc.update(tag);
        enc.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn tokens() -> Tokens {
        Tokens::new(&Secret::from_material(&[42u8; 32]), DAY)
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_750_000_000;

    #[test]
    fn round_trip_names_the_client_time_and_kind() {
        let t = tokens();
        for ip in ["203.0.113.7", "2001:db8::5", "::ffff:198.51.100.1", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            let served = at(NOW) + Duration::from_millis(700);
            let token = t.issue_with_id(BaitKind::Cookie, ip, served, 0xfeed_beef_0000_0001);
            let issued = t.open(token.as_bytes(), at(NOW + 60)).unwrap();
            assert_eq!(issued.kind, BaitKind::Cookie);
            assert_eq!(issued.served_to, ip.to_canonical());
            assert_eq!(issued.served_at, at(NOW));
            let a = t.verify(token.as_bytes(), at(NOW + 60)).unwrap();
            assert_eq!(a.served_to_ip, Some(ip.to_canonical()));
            assert_eq!(a.token_id.as_deref(), Some("feedbeef00000001"));
            assert!(a.valid);
        }
    }

    #[test]
    fn tokens_look_like_opaque_session_values() {
        let t = tokens();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let a = t.issue(BaitKind::FormField, ip, at(NOW));
        let b = t.issue(BaitKind::FormField, ip, at(NOW));
        assert_ne!(a, b, "a random id makes every token unique");
        for token in [&a, &b] {
            assert_eq!(token.len(), TOKEN_LEN);
            assert_eq!(TOKEN_LEN, 60);
            assert!(token
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            let raw = URL_SAFE_NO_PAD.decode(token).unwrap();
            // The client's address must not show through the encoding.
            assert!(!raw.windows(4).any(|w| w == [203, 0, 113, 7]), "{token}");
        }
        let v6 = t.issue(BaitKind::FormField, "2001:db8::1".parse().unwrap(), at(NOW));
        assert_eq!(v6.len(), a.len(), "the family must not show in the length");
    }

    #[test]
    fn every_single_character_change_is_detected() {
        let t = tokens();
        let token = t.issue(BaitKind::FormField, "192.0.2.1".parse().unwrap(), at(NOW));
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut rng = fastrand::Rng::with_seed(3);
        for pos in 0..token.len() {
            for _ in 0..4 {
                let mut changed = token.clone().into_bytes();
                let mut c = changed[pos];
                while c == changed[pos] {
                    c = alphabet[rng.usize(..alphabet.len())];
                }
                changed[pos] = c;
                // 45 bytes are exactly 60 characters: no padding bits, every change decodes.
                assert_eq!(
                    t.open(&changed, at(NOW)),
                    Err(TokenError::Forged),
                    "at {pos}"
                );
            }
        }
    }

    #[test]
    fn a_token_from_another_installation_is_forged() {
        let other = Tokens::new(&Secret::from_material(&[43u8; 32]), DAY);
        let token = other.issue(BaitKind::Cookie, "192.0.2.1".parse().unwrap(), at(NOW));
        assert_eq!(
            tokens().open(token.as_bytes(), at(NOW)),
            Err(TokenError::Forged)
        );
        let random = URL_SAFE_NO_PAD.encode([0x5au8; RAW_LEN]);
        assert_eq!(
            tokens().open(random.as_bytes(), at(NOW)),
            Err(TokenError::Forged)
        );
    }

    #[test]
    fn wrong_shapes_are_malformed() {
        let t = tokens();
        let token = t.issue(BaitKind::Cookie, "192.0.2.1".parse().unwrap(), at(NOW));
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"false".to_vec(),
            token.as_bytes()[..TOKEN_LEN - 1].to_vec(),
            format!("{token}A").into_bytes(),
            token.replace(['A', 'a'], "+").into_bytes(),
            {
                let mut v = token.clone().into_bytes();
                v[10] = b'=';
                v
            },
            vec![0xff; TOKEN_LEN],
            vec![b'A'; 1 << 20],
        ];
        for case in cases {
            if case == token.as_bytes() {
                continue; // the replacements happened to change nothing
            }
            assert_eq!(
                t.open(&case, at(NOW)),
                Err(TokenError::Malformed),
                "{case:?}"
            );
        }
    }

    #[test]
    fn age_is_checked_against_the_configured_maximum() {
        let t = tokens();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let token = t.issue(BaitKind::FormField, ip, at(NOW));
        assert!(t.open(token.as_bytes(), at(NOW) + DAY).is_ok());
        match t.open(token.as_bytes(), at(NOW) + DAY + Duration::from_secs(1)) {
            Err(TokenError::Expired(issued)) => assert_eq!(issued.served_to, ip),
            other => panic!("{other:?}"),
        }
        // A short maximum age on the same secret applies to the same token.
        let strict = Tokens::new(&Secret::from_material(&[42u8; 32]), Duration::from_secs(10));
        assert!(matches!(
            strict.open(token.as_bytes(), at(NOW + 11)),
            Err(TokenError::Expired(_))
        ));
        // Slightly ahead of us is skew; far ahead is not.
        assert!(t.open(token.as_bytes(), at(NOW - 299)).is_ok());
        assert!(matches!(
            t.open(token.as_bytes(), at(NOW - 301)),
            Err(TokenError::NotYetValid(_))
        ));
    }

    #[test]
    fn the_kind_is_sealed_in_the_token() {
        let t = tokens();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for kind in BaitKind::ALL {
            let token = t.issue(kind, ip, at(NOW));
            assert_eq!(t.open(token.as_bytes(), at(NOW)).unwrap().kind, kind);
        }
    }
}
