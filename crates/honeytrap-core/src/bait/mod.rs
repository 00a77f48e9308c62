//! Baits: values laid into real traffic that only an attacker would touch.
//!
//! [`Baits`] is built once per configuration from the installation [`Secret`] and the
//! [`Settings`]; the nginx layer calls it per request. Data flow:
//!
//! - serving: [`Baits::robots_txt`] / [`Baits::robots_suffix`] (decoy `Disallow:` lines),
//!   [`Baits::html_rewriter`] (developer comment, hidden form field), [`Baits::set_cookie`];
//!   every served value carries a [`token`] naming the client it was served to.
//! - checking: [`Baits::classify`] (decoy paths and tripwires), [`Baits::check_cookie`],
//!   [`Baits::check_field`], and [`credentials`] sent to a decoy.
//! - reporting: a [`Finding`] fills the event's bait, attribution and ATT&CK fields.
//!
//! No nginx types, no `unsafe`, no I/O but the secret file.

mod choice;
pub mod comment;
pub mod cookie;
pub mod credentials;
pub mod form_field;
pub mod html;
pub mod kind;
pub mod mitre;
pub mod paths;
pub mod robots;
pub mod secret;
pub mod selection;
pub mod token;
pub mod urlencoded;

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::event::{Attribution, Bait, Event, Kind, Limits, MitreRef};

pub use cookie::{Alteration, CookieCheck, DecoyCookie};
pub use credentials::Captured;
pub use form_field::{FieldCheck, FormField};
pub use html::{HtmlRewriter, Piece, PlanCache, Report, Span};
pub use kind::BaitKind;
pub use mitre::Touch;
pub use paths::{DecoyHit, DecoyPaths, Flavor, Lure, PathError, DEFAULT_TRIPWIRES};
pub use robots::{RobotsBait, RobotsScanner};
pub use secret::{Origin, Secret, SecretError};
pub use selection::Selection;
pub use token::{Issued, TokenError, Tokens};

/// What the configuration asks for (`honeytrap_baits` and friends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub robots: bool,
    pub comment: bool,
    pub field: bool,
    pub cookie: bool,
    /// How many decoy paths to draw from the secret for robots.txt.
    pub generated_paths: usize,
    /// The operator's own decoy paths (listed in robots.txt before the drawn ones).
    pub decoy_paths: Vec<String>,
    /// Scanner tripwires; [`DEFAULT_TRIPWIRES`] unless configured.
    pub tripwires: Vec<String>,
    /// Tokens older than this are reported as expired.
    pub token_max_age: Duration,
    pub field_name: Option<String>,
    pub cookie_name: Option<String>,
    /// Add `Secure` to the decoy cookie (sites served over HTTPS only).
    pub cookie_secure: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            robots: true,
            comment: true,
            field: true,
            cookie: true,
            generated_paths: 6,
            decoy_paths: Vec::new(),
            tripwires: DEFAULT_TRIPWIRES.iter().map(|&t| t.to_owned()).collect(),
            token_max_age: Duration::from_secs(30 * 86_400),
            field_name: None,
            cookie_name: None,
            cookie_secure: false,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum BaitsError {
    Path(PathError),
    Name(String),
}

impl fmt::Display for BaitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaitsError::Path(e) => e.fmt(f),
            BaitsError::Name(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for BaitsError {}

/// All baits of one configuration. Immutable once built: share it between requests.
#[derive(Debug)]
pub struct Baits {
    robots_on: bool,
    comment_on: bool,
    field_on: bool,
    cookie_on: bool,
    tokens: Tokens,
    paths: DecoyPaths,
    robots: RobotsBait,
    comment: Arc<[u8]>,
    field: FormField,
    cookie: DecoyCookie,
}

impl Baits {
    pub fn new(secret: &Secret, settings: &Settings) -> Result<Baits, BaitsError> {
        let paths = DecoyPaths::new(
            secret,
            settings.generated_paths,
            &settings.decoy_paths,
            &settings.tripwires,
        )
        .map_err(BaitsError::Path)?;
        let robots = RobotsBait::new(paths.robots());
        let (comment_path, flavor) = paths.comment_path();
        let comment: Arc<[u8]> = comment::developer_comment(secret, comment_path, flavor)
            .into_bytes()
            .into();
        let field =
            FormField::new(secret, settings.field_name.as_deref()).map_err(BaitsError::Name)?;
        let cookie = DecoyCookie::new(
            secret,
            settings.cookie_name.as_deref(),
            settings.cookie_secure,
        )
        .map_err(BaitsError::Name)?;
        Ok(Baits {
            robots_on: settings.robots,
            comment_on: settings.comment,
            field_on: settings.field,
            cookie_on: settings.cookie,
            tokens: Tokens::new(secret, settings.token_max_age),
            paths,
            robots,
            comment,
            field,
            cookie,
        })
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn paths(&self) -> &DecoyPaths {
        &self.paths
    }

    /// Whether a request path is a decoy or a tripwire (see [`DecoyPaths::classify`]).
    pub fn classify(&self, path: &[u8]) -> Option<DecoyHit<'_>> {
        self.paths.classify(path)
    }

    /// The whole robots.txt to serve where the site has none; `None` with the bait off.
    pub fn robots_txt(&self) -> Option<&[u8]> {
        self.robots_on.then(|| self.robots.full())
    }

    /// A scanner to feed the site's own robots.txt through; `None` with the bait off.
    pub fn robots_scanner(&self) -> Option<RobotsScanner> {
        self.robots_on.then(RobotsScanner::default)
    }

    /// The bytes to send after the site's robots.txt.
    pub fn robots_suffix(&self, scan: &RobotsScanner) -> Vec<u8> {
        self.robots.suffix(scan)
    }

    /// A rewriter for one HTML response to `client`; `None` when neither the comment nor
    /// the field is on, so the nginx layer can skip the body entirely.
    pub fn html_rewriter(&self, client: IpAddr, now: SystemTime) -> Option<HtmlRewriter> {
        self.html_rewriter_for(Selection::ALL, client, now)
    }

    /// A rewriter laying only the HTML baits `selection` asks for (a location may narrow what
    /// the installation enables).
    pub fn html_rewriter_for(
        &self,
        selection: Selection,
        client: IpAddr,
        now: SystemTime,
    ) -> Option<HtmlRewriter> {
        self.html_rewriter_with(selection, |field, tokens| field.markup(tokens, client, now))
    }

    /// As [`Baits::html_rewriter_for`], with the field's markup from `field_markup` (called
    /// only when the field is laid), so a caller may reuse a recent token for the same client.
    pub fn html_rewriter_with(
        &self,
        selection: Selection,
        field_markup: impl FnOnce(&FormField, &Tokens) -> Arc<[u8]>,
    ) -> Option<HtmlRewriter> {
        let comment = (self.comment_on && selection.comment).then(|| self.comment.clone());
        let field =
            (self.field_on && selection.field).then(|| field_markup(&self.field, &self.tokens));
        (comment.is_some() || field.is_some()).then(|| HtmlRewriter::new(comment, field))
    }

    /// The developer comment the rewriter inserts.
    pub fn comment(&self) -> &[u8] {
        &self.comment
    }

    pub fn field_name(&self) -> &str {
        self.field.name()
    }

    pub fn cookie_name(&self) -> &str {
        self.cookie.name()
    }

    /// A `Set-Cookie` value for a response to a request that did not send the cookie back.
    pub fn set_cookie(&self, client: IpAddr, now: SystemTime) -> Option<String> {
        self.cookie_on
            .then(|| self.cookie.set_cookie(&self.tokens, client, now))
    }

    /// Compares the request's `Cookie` headers to the cookie we set. With the bait off,
    /// always [`CookieCheck::Absent`].
    pub fn check_cookie<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h [u8]>,
        now: SystemTime,
    ) -> CookieCheck {
        if !self.cookie_on {
            return CookieCheck::Absent;
        }
        self.cookie.check(&self.tokens, cookie_headers, now)
    }

    /// The hidden field's value in a urlencoded body or query string, decoded.
    pub fn field_in_form<'b>(&self, body: &'b [u8]) -> Option<Cow<'b, [u8]>> {
        urlencoded::find(body, self.field.name())
    }

    /// Checks a submitted hidden field value (decoded). With the bait off, always absent.
    pub fn check_field(&self, value: Option<&[u8]>, now: SystemTime) -> FieldCheck {
        if !self.field_on {
            return FieldCheck::Absent;
        }
        self.field.check(&self.tokens, value, now)
    }

    /// The event fields for a request to a decoy path or tripwire.
    pub fn path_finding(&self, hit: &DecoyHit<'_>, credentials: Option<Captured>) -> Finding {
        Finding::new(
            Kind::Decoy,
            hit.lure.bait_kind(),
            hit.entry.to_owned(),
            Touch::Path(hit.lure),
            credentials,
        )
    }

    /// The event fields for a request to a decoy server (`name` says which, e.g. `:8080`).
    pub fn decoy_server_finding(&self, name: &str, credentials: Option<Captured>) -> Finding {
        Finding::new(
            Kind::Decoy,
            BaitKind::DecoyServer,
            name.to_owned(),
            Touch::DecoyServer,
            credentials,
        )
    }

    /// The event fields for an altered cookie; `None` when the check is no event.
    pub fn cookie_finding(&self, check: &CookieCheck) -> Option<Finding> {
        let CookieCheck::Altered(a) = check else {
            return None;
        };
        let mut f = Finding::new(
            Kind::Bait,
            BaitKind::Cookie,
            self.cookie.name().to_owned(),
            Touch::CookieAltered,
            None,
        );
        f.bait.token = Some(String::from_utf8_lossy(&a.value).into_owned());
        f.attribution = Some(attribution(a.issued.as_ref()));
        if a.visible_changed {
            f.tags.push("cookie:value-changed".to_owned());
        }
        if let Some(e) = a.token_error {
            f.tags.push(token_tag(e).to_owned());
        }
        Some(f)
    }

    /// The event fields for a tampered hidden field; `None` when the check is no event.
    pub fn field_finding(&self, check: &FieldCheck) -> Option<Finding> {
        let FieldCheck::Tampered {
            value,
            error,
            issued,
        } = check
        else {
            return None;
        };
        let mut f = Finding::new(
            Kind::Bait,
            BaitKind::FormField,
            self.field.name().to_owned(),
            Touch::FieldTampered,
            None,
        );
        f.bait.token = Some(String::from_utf8_lossy(value).into_owned());
        f.attribution = Some(attribution(issued.as_ref()));
        f.tags.push(
            match error {
                Some(e) => token_tag(*e),
                None => "token:moved",
            }
            .to_owned(),
        );
        if error.is_some() && issued.is_some() {
            // The genuine token with a payload around it.
            f.tags.push("token:embedded".to_owned());
        }
        Some(f)
    }
}

/// A genuine token attributes; anything else is recorded as a token that did not check out.
fn attribution(issued: Option<&Issued>) -> Attribution {
    match issued {
        Some(i) => i.attribution(),
        None => Attribution {
            served_to_ip: None,
            served_at: None,
            token_id: None,
            valid: false,
        },
    }
}

fn token_tag(e: TokenError) -> &'static str {
    match e {
        TokenError::Malformed => "token:malformed",
        TokenError::Forged => "token:forged",
        TokenError::Expired(_) => "token:expired",
        TokenError::NotYetValid(_) => "token:not-yet-valid",
    }
}

/// What an event about a touched bait says: fill an [`Event`] of [`Finding::kind`] with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub bait: Bait,
    pub attribution: Option<Attribution>,
    pub techniques: Vec<MitreRef>,
    pub tactics: Vec<MitreRef>,
    pub tags: Vec<String>,
    pub credentials: Option<Captured>,
}

impl Finding {
    fn new(
        kind: Kind,
        bait: BaitKind,
        name: String,
        touch: Touch,
        credentials: Option<Captured>,
    ) -> Finding {
        let (techniques, tactics) = mitre::threat(touch, credentials.is_some());
        let mut tags = vec![bait.as_str().to_owned()];
        if let Some(c) = &credentials {
            tags.extend(c.quirks.tags().into_iter().map(str::to_owned));
        }
        Finding {
            kind,
            bait: Bait {
                kind: bait.as_str().to_owned(),
                name,
                token: None,
            },
            attribution: None,
            techniques,
            tactics,
            tags,
            credentials,
        }
    }

    /// Writes the finding into `event` (made with `Event::new(finding.kind, ..)` and with
    /// its source already set). A token used from another address than it was served to is
    /// tagged `attribution:other-address`: the link between the two is the point.
    pub fn apply(self, event: &mut Event, limits: &Limits) {
        if let (Some(source), Some(served)) = (
            event.source,
            self.attribution.as_ref().and_then(|a| a.served_to_ip),
        ) {
            if source.ip().to_canonical() != served.to_canonical() {
                event.tags.push("attribution:other-address".to_owned());
            }
        }
        if let Some(c) = &self.credentials {
            event.set_credentials(c.username.as_deref(), c.password.as_deref(), limits);
        }
        event.bait = Some(self.bait);
        event.attribution = self.attribution;
        event.techniques.extend(self.techniques);
        event.tactics.extend(self.tactics);
        event.tags.extend(self.tags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Observer;
    use std::time::UNIX_EPOCH;

    fn baits(settings: &Settings) -> Baits {
        Baits::new(&Secret::from_material(&[77; 32]), settings).unwrap()
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }

    #[test]
    fn a_location_can_narrow_the_html_baits() {
        let b = baits(&Settings::default());
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let page = b"<html><head></head><body><form></form></body></html>";
        let only_comment = Selection {
            comment: true,
            ..Selection::NONE
        };
        let mut out = Vec::new();
        b.html_rewriter_for(only_comment, client, now())
            .unwrap()
            .feed_to_vec(page, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("<!--") && !text.contains(b.field_name()),
            "{text}"
        );
        let only_robots = Selection {
            robots: true,
            ..Selection::NONE
        };
        assert!(b.html_rewriter_for(only_robots, client, now()).is_none());
    }

    fn rewrite(b: &Baits, client: IpAddr, page: &[u8]) -> Vec<u8> {
        let mut r = b.html_rewriter(client, now()).unwrap();
        let mut out = Vec::new();
        for chunk in page.chunks(7) {
            r.feed_to_vec(chunk, &mut out);
        }
        out
    }

    /// The value of the hidden input in a rewritten page, as a browser would submit it.
    fn hidden_value(page: &str, name: &str) -> String {
        let at = page.find(&format!("name=\"{name}\" value=\"")).unwrap();
        let rest = &page[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    #[test]
    fn a_browser_round_trip_raises_nothing() {
        let b = baits(&Settings::default());
        let client: IpAddr = "203.0.113.50".parse().unwrap();
        let page = b"<html><head></head><body><form method=post action=/login>\
                     <input name=user></form></body></html>";
        let out = String::from_utf8(rewrite(&b, client, page)).unwrap();
        assert!(out.contains(std::str::from_utf8(b.comment()).unwrap()));
        let value = hidden_value(&out, b.field_name());
        // The browser posts the form back, field untouched, and returns the cookie.
        let body = format!("user=alice&{}={value}", b.field_name());
        let field = b.field_in_form(body.as_bytes());
        let check = b.check_field(field.as_deref(), now());
        assert!(matches!(check, FieldCheck::Untouched { .. }), "{check:?}");
        assert_eq!(b.field_finding(&check), None);

        let set = b.set_cookie(client, now()).unwrap();
        let pair = set.split(';').next().unwrap();
        let check = b.check_cookie([pair.as_bytes()], now());
        assert!(matches!(check, CookieCheck::Untouched(_)));
        assert_eq!(b.cookie_finding(&check), None);
        // And sends nothing of ours at all on an API call.
        assert_eq!(b.check_field(None, now()), FieldCheck::Absent);
        assert_eq!(b.check_cookie([], now()), CookieCheck::Absent);
        // Its ordinary pages are not decoys.
        for path in [
            "/",
            "/index.html",
            "/login",
            "/about/",
            "/robots.txt",
            "/favicon.ico",
        ] {
            assert_eq!(b.classify(path.as_bytes()), None, "{path}");
        }
    }

    #[test]
    fn a_tampered_field_becomes_an_attributed_bait_event() {
        let b = baits(&Settings::default());
        let victim: IpAddr = "203.0.113.50".parse().unwrap();
        let out = String::from_utf8(rewrite(&b, victim, b"<form>")).unwrap();
        let value = hidden_value(&out, b.field_name());
        // The attacker replays a genuine cookie token in the field from elsewhere.
        let cookie_token = b.tokens().issue(BaitKind::Cookie, victim, now());
        let check = b.check_field(Some(cookie_token.as_bytes()), now());
        let finding = b.field_finding(&check).unwrap();
        let mut event = Event::new(finding.kind, Arc::new(Observer::new("t")));
        event.source = Some("198.51.100.1:4444".parse().unwrap());
        finding.apply(&mut event, &Limits::default());
        let doc: serde_json::Value = serde_json::from_str(&event.to_record().json).unwrap();
        let h = &doc["honeytrap"];
        assert_eq!(h["kind"], "bait");
        assert_eq!(h["bait"]["type"], "form-field");
        assert_eq!(h["bait"]["name"], b.field_name());
        assert_eq!(h["attribution"]["served_to_ip"], "203.0.113.50");
        assert_eq!(h["attribution"]["valid"], true);
        assert_eq!(doc["threat"]["technique"]["id"][0], "T1190");
        let tags: Vec<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(tags.contains(&"attribution:other-address"), "{tags:?}");
        assert!(tags.contains(&"token:moved"), "{tags:?}");
        // A forged value says so, and attributes nobody.
        let mut forged = value.into_bytes();
        forged[3] = if forged[3] == b'a' { b'b' } else { b'a' };
        let finding = b
            .field_finding(&b.check_field(Some(&forged), now()))
            .unwrap();
        assert_eq!(finding.attribution.as_ref().map(|a| a.valid), Some(false));
        assert!(finding.tags.contains(&"token:forged".to_owned()));
    }

    #[test]
    fn an_escalated_cookie_and_decoy_logins_become_events() {
        let b = baits(&Settings::default());
        let victim: IpAddr = "203.0.113.50".parse().unwrap();
        let set = b.set_cookie(victim, now()).unwrap();
        let pair = set.split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        let token = value.rsplit_once('.').unwrap().1;
        let escalated = format!("{name}=admin.{token}");
        let finding = b
            .cookie_finding(&b.check_cookie([escalated.as_bytes()], now()))
            .unwrap();
        assert_eq!(finding.kind, Kind::Bait);
        assert_eq!(finding.bait.name, b.cookie_name());
        assert_eq!(
            finding.bait.token.as_deref(),
            Some(&escalated[name.len() + 1..])
        );
        assert_eq!(
            finding.attribution.as_ref().and_then(|a| a.served_to_ip),
            Some(victim)
        );
        assert!(finding.tags.contains(&"cookie:value-changed".to_owned()));

        // A scanner on a tripwire, then a login attempt on the comment's decoy.
        let hit = b.classify(b"/.git/config").unwrap();
        let f = b.path_finding(&hit, None);
        assert_eq!((f.kind, f.bait.kind.as_str()), (Kind::Decoy, "tripwire"));
        let ids: Vec<&str> = f.techniques.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["T1595", "T1595.003"]);

        let (comment_path, _) = b.paths().comment_path();
        let hit = b.classify(comment_path.as_bytes()).unwrap();
        let creds = credentials::from_basic_auth(b"Basic YWRtaW46aHVudGVyMg==");
        let f = b.path_finding(&hit, creds);
        assert_eq!(f.bait.kind, "comment");
        let mut event = Event::new(f.kind, Arc::new(Observer::new("t")));
        f.apply(&mut event, &Limits::default());
        let c = event.credentials.unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("admin"), Some("hunter2"))
        );
        assert!(event.techniques.iter().any(|t| t.id == "T1110"));
        assert!(event.techniques.iter().any(|t| t.id == "T1594"));
    }

    #[test]
    fn baits_turned_off_are_neither_served_nor_checked() {
        let off = Settings {
            robots: false,
            comment: false,
            field: false,
            cookie: false,
            ..Settings::default()
        };
        let b = baits(&off);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(b.html_rewriter(client, now()).is_none());
        assert!(b.robots_txt().is_none() && b.robots_scanner().is_none());
        assert!(b.set_cookie(client, now()).is_none());
        let cookie = format!("{}=admin", b.cookie_name());
        assert_eq!(
            b.check_cookie([cookie.as_bytes()], now()),
            CookieCheck::Absent
        );
        assert_eq!(b.check_field(Some(b"x"), now()), FieldCheck::Absent);

        let comment_only = Settings {
            field: false,
            ..Settings::default()
        };
        let b = baits(&comment_only);
        let out = rewrite(&b, client, b"</head><form>");
        assert_eq!(
            out,
            [b"</head>".as_slice(), b.comment(), b"<form>"].concat()
        );
    }

    #[test]
    fn robots_lists_the_decoys_but_not_the_comment_path() {
        let b = baits(&Settings {
            decoy_paths: vec!["/staff-only/".to_owned()],
            ..Settings::default()
        });
        let full = String::from_utf8(b.robots_txt().unwrap().to_vec()).unwrap();
        assert!(full.starts_with("User-agent: *\nDisallow: /staff-only/\n"));
        assert_eq!(full.lines().count(), 1 + 1 + 6);
        let (comment_path, _) = b.paths().comment_path();
        assert!(!full.contains(comment_path));
        for line in full.lines().skip(1) {
            let path = line.strip_prefix("Disallow: ").unwrap();
            assert!(b.classify(path.as_bytes()).is_some(), "{path}");
        }
        let mut scan = b.robots_scanner().unwrap();
        scan.feed(b"User-agent: *\nDisallow: /cart/\n");
        assert!(b
            .robots_suffix(&scan)
            .starts_with(b"Disallow: /staff-only/\n"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let secret = Secret::from_material(&[1; 32]);
        let bad_path = Settings {
            decoy_paths: vec!["no-slash".to_owned()],
            ..Settings::default()
        };
        assert!(matches!(
            Baits::new(&secret, &bad_path),
            Err(BaitsError::Path(_))
        ));
        let bad_name = Settings {
            cookie_name: Some("a b".to_owned()),
            ..Settings::default()
        };
        let err = Baits::new(&secret, &bad_name).unwrap_err();
        assert!(err.to_string().contains("a b"), "{err}");
    }
}
