//! Request-side baits: decoy paths and tripwires, the decoy cookie sent back altered, the
//! hidden form field submitted tampered. Each touch becomes an event, and flags the client
//! in the shared zone.

use std::net::IpAddr;
use std::time::SystemTime;

use honeytrap_core::bait::{credentials, Baits, CookieCheck, Finding};
use honeytrap_core::event::{Event, Kind, MitreRef};
use ngx::core::Status;
use ngx::ffi::{
    ngx_http_core_run_phases, ngx_http_finalize_request, ngx_http_read_client_request_body,
    ngx_http_request_t, ngx_int_t, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_POST,
    NGX_HTTP_SPECIAL_RESPONSE,
};
use ngx::http::HttpModuleMainConf;

use crate::conf::{LocConf, MainConf};
use crate::request::{self, RequestCtx};
use crate::runtime::Runtime;
use crate::{bait_cache, decoy, guard, rules, runtime, Honeytrap};

/// Everything the sensor needs to handle one request, found once per hook call.
pub(crate) struct Sensor {
    pub runtime: &'static Runtime,
    pub main: &'static MainConf,
    pub baits: &'static Baits,
}

pub(crate) fn sensor(r: &ngx_http_request_t) -> Option<Sensor> {
    let runtime = runtime::get()?;
    let main = Honeytrap::main_conf(r)?;
    let baits = main.baits.as_deref()?;
    Some(Sensor {
        runtime,
        main,
        baits,
    })
}

/// The client's address (the connection's; `realip` rewrites it when configured).
pub(crate) fn client_ip(r: &ngx_http_request_t) -> Option<IpAddr> {
    request::peer(r).map(|a| a.ip())
}

impl Sensor {
    /// A new event about a bait touch or a decoy hit: marked when its client was flagged
    /// before, and the client flagged now.
    pub fn event(&self, r: &mut ngx_http_request_t, kind: Kind, finding: Option<Finding>) -> Event {
        let mut event = request::new_event(r, kind, self.runtime);
        if let Some(finding) = finding {
            finding.apply(&mut event, &self.runtime.limits);
        }
        if let (Some(zone), Some(ip)) = (self.main.zone(), client_ip(r)) {
            event.flagged = zone.flag(ip).is_some();
        }
        event
    }

    /// A new event that does not flag its client (rule matches: rules have false positives,
    /// baits do not), but says whether a bait flagged it before.
    pub fn observation(&self, r: &mut ngx_http_request_t, kind: Kind) -> Event {
        let mut event = request::new_event(r, kind, self.runtime);
        if let (Some(zone), Some(ip)) = (self.main.zone(), client_ip(r)) {
            event.flagged = zone.lookup(ip).is_some();
        }
        event
    }
}

/// The REWRITE-phase checks of an enabled location, once per request. Returns what the phase
/// handler should return: DECLINED to go on, DONE when we answer or read the body first.
pub(crate) fn check_request(
    r: &mut ngx_http_request_t,
    conf: &LocConf,
    ctx: &mut RequestCtx,
) -> ngx_int_t {
    let Some(sensor) = sensor(r) else {
        return Status::NGX_DECLINED.into();
    };
    // On a decoy server every request is already the event.
    let hit = if conf.is_decoy() {
        None
    } else {
        sensor.baits.classify(r.uri.as_bytes())
    };
    if let Some(hit) = hit {
        if !hit.is_tripwire() {
            return decoy::start(r, decoy::Answer::LoginChallenge, false);
        }
        // Only a bait when the site itself has nothing there: decided at the LOG phase.
        ctx.tripwire = Some(hit.entry.to_owned());
    }
    let selection = conf.baits();
    let now = SystemTime::now();
    if selection.cookie {
        let cookies = request::header_values(r, b"cookie");
        let key = cookies.join(&b"\n"[..]);
        if cookies.is_empty() {
            ctx.cookie_absent = true;
        } else if !bait_cache::cookie_seen_untouched(&key, now) {
            let check = sensor
                .baits
                .check_cookie(cookies.iter().map(Vec::as_slice), now);
            match &check {
                CookieCheck::Absent => ctx.cookie_absent = true,
                CookieCheck::Untouched(_) => bait_cache::remember_cookie_untouched(key, now),
                CookieCheck::Altered(_) => {}
            }
            if let Some(finding) = sensor.baits.cookie_finding(&check) {
                let event = sensor.event(r, Kind::Bait, Some(finding));
                ctx.events.push(event);
            }
        }
    }
    if let Some(rule_set) = &conf.rules {
        let (tx, intervention) = rules::begin(r, rule_set);
        ctx.tx = Some(tx);
        if let Some(iv) = intervention {
            let rc = rules::answer(r, &iv);
            ctx.denied = Some(iv);
            return rc;
        }
    }
    ctx.check_field = selection.field && wants_field_check(r);
    if ctx.check_field || (ctx.tx.is_some() && has_body(r)) {
        return read_body_then_continue(r);
    }
    if let Some(tx) = ctx.tx.as_mut() {
        if let Some(iv) = rules::request_body(r, tx) {
            let rc = rules::answer(r, &iv);
            ctx.denied = Some(iv);
            return rc;
        }
    }
    Status::NGX_DECLINED.into()
}

fn has_body(r: &ngx_http_request_t) -> bool {
    r.headers_in.content_length_n > 0 || r.headers_in.chunked() != 0
}

/// A form post that may carry the hidden field.
fn wants_field_check(r: &ngx_http_request_t) -> bool {
    if r.method != NGX_HTTP_POST as usize {
        return false;
    }
    let has_body = has_body(r);
    // SAFETY: null or the request's Content-Type header.
    let form = unsafe { r.headers_in.content_type.as_ref() }.is_some_and(|ct| {
        ct.value.as_bytes().len() >= 33
            && ct.value.as_bytes()[..33].eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    });
    has_body && form
}

/// Reads the body before the rest of the request runs (as the mirror module does), keeps it
/// for whoever reads it next, checks the field and runs phase 2, then resumes the phases.
fn read_body_then_continue(r: &mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: a live request in a phase handler; the callback is ours.
    let rc = unsafe { ngx_http_read_client_request_body(r, Some(body_read)) };
    if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
        return rc;
    }
    // SAFETY: balances the count that reading the body took; the request lives on.
    unsafe { ngx_http_finalize_request(r, Status::NGX_DONE.into()) };
    Status::NGX_DONE.into()
}

extern "C" fn body_read(r: *mut ngx_http_request_t) {
    // SAFETY: nginx calls this with the live request once the body is read.
    let request = unsafe { &mut *r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    let on_panic = || Some(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
    let answer = guard::run(log, "request body checks", on_panic, || {
        let ctx = request::ctx(request)?;
        if ctx.check_field {
            check_field(request);
        }
        let iv = rules::request_body(request, ctx.tx.as_mut()?)?;
        let rc = rules::answer(request, &iv);
        ctx.denied = Some(iv);
        Some(rc)
    });
    if let Some(rc) = answer {
        // SAFETY: ends the request we hold with the rules' (or the guard's) answer.
        unsafe { ngx_http_finalize_request(r, rc) };
        return;
    }
    request.set_preserve_body(1);
    request.write_event_handler = Some(ngx_http_core_run_phases);
    // SAFETY: resumes at the phase handler that started the read; it now declines.
    unsafe { ngx_http_core_run_phases(r) };
}

fn check_field(r: &mut ngx_http_request_t) {
    let Some(sensor) = sensor(r) else { return };
    let body = request::body(r, 64 * 1024);
    let value = sensor
        .baits
        .field_in_form(&body.bytes)
        .map(|v| v.into_owned());
    let check = sensor
        .baits
        .check_field(value.as_deref(), SystemTime::now());
    if let Some(finding) = sensor.baits.field_finding(&check) {
        let mut event = sensor.event(r, Kind::Bait, Some(finding));
        event.set_body(&body.bytes, &sensor.runtime.limits);
        event.body_bytes = Some(body.total);
        if let Some(ctx) = request::ctx_or_create(r) {
            ctx.events.push(event);
        }
    }
}

/// Credentials a client sent: Basic authorization first, else a login form.
pub(crate) fn credentials_of(r: &ngx_http_request_t, body: &[u8]) -> Option<credentials::Captured> {
    // SAFETY: null or the request's Authorization header.
    let basic = unsafe { r.headers_in.authorization.as_ref() }
        .and_then(|h| credentials::from_basic_auth(h.value.as_bytes()));
    basic.or_else(|| credentials::from_form(body))
}

/// Adds what sending credentials means to an event that did not know yet.
pub(crate) fn mark_credentials(
    event: &mut Event,
    captured: &credentials::Captured,
    runtime: &Runtime,
) {
    event.set_credentials(
        captured.username.as_deref(),
        captured.password.as_deref(),
        &runtime.limits,
    );
    if !event.techniques.iter().any(|t| t.id == "T1110") {
        event.techniques.push(MitreRef::new("T1110", "Brute Force"));
        event
            .tactics
            .push(MitreRef::new("TA0006", "Credential Access"));
    }
    event
        .tags
        .extend(captured.quirks.tags().into_iter().map(str::to_owned));
}
