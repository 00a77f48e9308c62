//! SecLang rules in nginx's phases: `honeytrap_rules_file` / `honeytrap_rules` compile once at
//! configuration time (locations naming the same sources share one rule set), and each
//! request of an enabled location runs a transaction: phase 1 once the location is known,
//! phase 2 after the body, phase 3 at the response headers, phase 4 over the response body
//! (detection only, headers are out by then), phase 5 in the LOG phase, which also turns the
//! matches into one audit event.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use honeytrap_core::event::{ip_string, AnomalyScore, Event, EventId, Kind, RuleMatch, RuleRef};
use honeytrap_seclang::{
    lossy_string, EngineMode, Intervention, PooledTransaction, RuleSet, Transaction, TxInput,
};
use ngx::ffi::{
    ngx_chain_t, ngx_http_request_t, ngx_int_t, NGX_HTTP_CLOSE, NGX_HTTP_HEAD,
    NGX_HTTP_MOVED_TEMPORARILY,
};

use crate::{request, runtime, Honeytrap};
use ngx::http::HttpModuleLocationConf;

/// One `honeytrap_rules_file` or `honeytrap_rules`, in configuration order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// A file path, or a glob, as `Include` reads it.
    File(String),
    /// Inline SecLang, with where it stands in nginx.conf.
    Text { text: String, origin: String },
}

/// Compiled rule sets by their source lists: a list compiles once however many locations use it.
#[derive(Default)]
pub(crate) struct RuleSets {
    compiled: HashMap<Vec<Source>, Arc<RuleSet>>,
}

impl RuleSets {
    /// The rule set for `sources`, compiled on first use; the error names file:line and why.
    pub fn get(
        &mut self,
        sources: &[Source],
        conf_dir: &Path,
    ) -> Result<(Arc<RuleSet>, bool), String> {
        if let Some(rs) = self.compiled.get(sources) {
            return Ok((rs.clone(), false));
        }
        let mut builder = RuleSet::builder();
        for source in sources {
            let result = match source {
                // `Include` accepts globs and resolves relative to the including place.
                Source::File(path) => builder.add_text(
                    &format!("Include \"{path}\""),
                    "honeytrap_rules_file",
                    conf_dir,
                ),
                Source::Text { text, origin } => builder.add_text(text, origin, conf_dir),
            };
            result.map_err(|e| format!("{}:{}: {}", e.origin, e.line, e.reason))?;
        }
        let rs = Arc::new(
            builder
                .build()
                .map_err(|e| format!("{}:{}: {}", e.origin, e.line, e.reason))?,
        );
        self.compiled.insert(sources.to_vec(), rs.clone());
        Ok((rs, true))
    }
}

/// What a location evaluates.
pub(crate) fn is_blocking(tx: &Transaction) -> bool {
    tx.engine_mode() == EngineMode::On
}

/// What the baits know of a request, for rules as `TX:` variables (`rules/honeytrap-baits.conf`).
#[derive(Default)]
pub(crate) struct BaitVars<'a> {
    /// A bait flagged this client before this request.
    pub flagged: bool,
    /// The decoy cookie came back altered.
    pub cookie_altered: bool,
    /// The path is a scanner tripwire (an event of its own only if the site answers 404).
    pub tripwire: Option<&'a str>,
}

/// `TX:honeytrap_field_tampered`, set before phase 2 when the hidden form field came back altered.
pub(crate) const FIELD_TAMPERED: &str = "honeytrap_field_tampered";

/// Starts the transaction of a request and runs phase 1.
pub(crate) fn begin(
    r: &mut ngx_http_request_t,
    rules: &Arc<RuleSet>,
    baits: &BaitVars<'_>,
) -> (PooledTransaction, Option<Intervention>) {
    let peer = request::peer(r);
    let local = request::local_addr(r);
    let input = TxInput {
        remote_addr: peer.map(|a| ip_string(a.ip())).unwrap_or_default(),
        remote_port: peer.map(|a| a.port()).unwrap_or(0),
        server_addr: local.map(|a| ip_string(a.ip())).unwrap_or_default(),
        server_port: local.map(|a| a.port()).unwrap_or(0),
        server_name: String::from_utf8_lossy(r.headers_in.server.as_bytes()).into_owned(),
        // The same generator as event ids: random, and distinct across forked workers.
        // Without a system call per request where the worker runs (EventId::random asks for
        // the pid to notice a fork).
        unique_id: runtime::get()
            .map_or_else(EventId::random, |rt| rt.ids.next_id())
            .hex_string(),
    };
    let mut tx = rules.pooled_transaction(input);
    if baits.flagged {
        tx.set_tx_var("honeytrap_flagged", b"1");
    }
    if baits.cookie_altered {
        tx.set_tx_var("honeytrap_cookie_altered", b"1");
    }
    if let Some(path) = baits.tripwire {
        tx.set_tx_var("honeytrap_tripwire", path.as_bytes());
    }
    tx.set_request_line(
        r.method_name.as_bytes(),
        r.unparsed_uri.as_bytes(),
        r.http_protocol.as_bytes(),
    );
    // SAFETY: the headers list of a request whose headers were read is initialised.
    for (name, value) in unsafe { ngx::http::list_iterator(&r.headers_in.headers) } {
        tx.add_request_header(name.as_bytes(), value.as_bytes());
    }
    let iv = tx.process_request_headers().filter(|_| is_blocking(&tx));
    (tx, iv)
}

/// Phase 2 over the body nginx read, spooled parts included, up to one byte past
/// `SecRequestBodyLimit` (so the engine sees that the limit was passed).
pub(crate) fn request_body(r: &ngx_http_request_t, tx: &mut Transaction) -> Option<Intervention> {
    let body = request::body(r, tx.request_body_limit().saturating_add(1));
    if !body.bytes.is_empty() {
        tx.append_request_body(&body.bytes);
    }
    tx.process_request_body().filter(|_| is_blocking(tx))
}

/// Phase 3, at the response headers.
pub(crate) fn response_headers(
    r: &ngx_http_request_t,
    tx: &mut Transaction,
) -> Option<Intervention> {
    let status = u16::try_from(r.headers_out.status).unwrap_or(0);
    tx.set_response_status(status, b"HTTP/1.1");
    // SAFETY: the response headers list is initialised before the header filters run.
    for (name, value) in unsafe { ngx::http::list_iterator(&r.headers_out.headers) } {
        tx.add_response_header(name.as_bytes(), value.as_bytes());
    }
    let ct = r.headers_out.content_type.as_bytes();
    if !ct.is_empty() {
        tx.add_response_header(b"Content-Type", ct);
    }
    tx.process_response_headers().filter(|_| is_blocking(tx))
}

/// Header filter: phase 3; the status to answer instead when the rules block.
pub(crate) fn at_response_headers(r: &mut ngx_http_request_t) -> Option<ngx_int_t> {
    let ctx = request::ctx(r)?;
    if ctx.denied.is_some() {
        return None;
    }
    let iv = response_headers(r, ctx.tx.as_mut()?)?;
    let rc = answer(r, &iv);
    ctx.denied = Some(iv);
    Some(rc)
}

/// Header filter, after phase 3: whether to hold the response back until phase 4 has seen
/// its body. Only blocking rule sets that inspect this response's body need it; then a
/// phase-4 `deny` still gets its status (ModSecurity in nginx can only log it).
pub(crate) fn hold_for_phase_4(r: &mut ngx_http_request_t) -> bool {
    let Some(ctx) = request::ctx(r) else {
        return false;
    };
    let Some(tx) = ctx.tx.as_ref() else {
        return false;
    };
    let status = r.headers_out.status;
    let hold = is_blocking(tx)
        && tx.wants_response_body()
        && r.header_only() == 0
        && r.method != NGX_HTTP_HEAD as usize
        && status != 204
        && status != 304;
    if hold {
        let limit = Honeytrap::location_conf(r)
            .and_then(|conf| conf.rules.as_ref())
            .map_or(0, |rules| rules.config().response_body_limit);
        ctx.held = Some(Vec::new());
        ctx.held_limit = limit;
        r.set_filter_need_in_memory(1);
    }
    hold
}

/// What the body filter does with a held response.
pub(crate) enum Held {
    /// Not holding: the body goes on as usual.
    No,
    /// Still collecting; nothing to pass on yet.
    Collecting,
    /// Phase 4 blocked: answer with this status instead (headers were never sent).
    Blocked(ngx_int_t),
    /// Phase 4 passed: send the held headers, then this body (last when the response ended).
    Release { body: &'static [u8], last: bool },
}

/// Collects a held response body (up to the rule set's response body limit) and runs phase 4
/// once it is complete or the limit is reached.
pub(crate) fn collect_held(r: &mut ngx_http_request_t, chain: *mut ngx_chain_t) -> Held {
    let Some(ctx) = request::ctx(r) else {
        return Held::No;
    };
    let (Some(held), Some(tx)) = (ctx.held.as_mut(), ctx.tx.as_mut()) else {
        return Held::No;
    };
    let limit = ctx.held_limit;
    let mut last = false;
    let mut link = chain;
    // SAFETY: a chain passed to a body filter is a null-terminated list of live links.
    while let Some(cl) = unsafe { link.as_mut() } {
        // SAFETY: as above.
        if let Some(b) = unsafe { cl.buf.as_mut() } {
            if let Some(data) = memory(b) {
                held.extend_from_slice(data);
                // Copied: the buffer is free for its owner again.
                b.pos = b.last;
            }
            last |= b.last_buf() != 0 || b.last_in_chain() != 0 && !core::ptr::eq(r, r.main);
        }
        link = cl.next;
    }
    if !last && held.len() < limit {
        return Held::Collecting;
    }
    tx.append_response_body(held);
    let iv = tx.process_response_body().filter(|_| is_blocking(tx));
    ctx.phase4_done = true;
    let body = ctx.held.take().unwrap_or_default();
    if let Some(iv) = iv {
        let rc = answer(r, &iv);
        ctx.denied = Some(iv);
        return Held::Blocked(rc);
    }
    // The body lives in the request's context until the request ends.
    ctx.held_body = body;
    // SAFETY: `held_body` is not touched again for this request.
    let body: &'static [u8] =
        unsafe { core::slice::from_raw_parts(ctx.held_body.as_ptr(), ctx.held_body.len()) };
    Held::Release { body, last }
}

fn memory(b: &ngx::ffi::ngx_buf_t) -> Option<&[u8]> {
    let in_memory = b.temporary() != 0 || b.memory() != 0 || b.mmap() != 0;
    if !in_memory || b.pos.is_null() {
        return None;
    }
    // SAFETY: pos..last is the filled range of an in-memory buffer.
    Some(unsafe { core::slice::from_raw_parts(b.pos, b.last.offset_from(b.pos) as usize) })
}

/// Body filter, not holding: phase 4 over the response body as it streams by, reported only
/// (the headers are out: DetectionOnly, or a response too large to hold).
pub(crate) fn at_response_body(r: &mut ngx_http_request_t, chain: *mut ngx_chain_t) {
    let Some(ctx) = request::ctx(r) else { return };
    if ctx.phase4_done {
        return;
    }
    let Some(tx) = ctx.tx.as_mut() else { return };
    if !tx.wants_response_body() {
        return;
    }
    let mut last = false;
    let mut link = chain;
    // SAFETY: a chain passed to a body filter is a null-terminated list of live links.
    while let Some(cl) = unsafe { link.as_ref() } {
        // SAFETY: as above.
        if let Some(b) = unsafe { cl.buf.as_ref() } {
            if let Some(data) = memory(b) {
                tx.append_response_body(data);
            }
            last |= b.last_buf() != 0;
        }
        link = cl.next;
    }
    if last {
        let _ = tx.process_response_body();
        ctx.phase4_done = true;
    }
}

/// What nginx should answer for an intervention, as a phase handler's return value.
pub(crate) fn answer(r: &mut ngx_http_request_t, iv: &Intervention) -> ngx_int_t {
    if iv.drop {
        return NGX_HTTP_CLOSE as ngx_int_t;
    }
    if let Some(location) = &iv.redirect {
        // SAFETY: the request is live; the header is copied into its pool.
        let request = unsafe { ngx::http::Request::from_ngx_http_request(r) };
        let _ = request.add_header_out("Location", location);
        let status = if (300..400).contains(&iv.status) {
            iv.status
        } else {
            302
        };
        return if status == 302 {
            NGX_HTTP_MOVED_TEMPORARILY as ngx_int_t
        } else {
            status as ngx_int_t
        };
    }
    (if iv.status >= 400 { iv.status } else { 403 }) as ngx_int_t
}

/// Phase 5, and the audit event when a logging rule matched.
pub(crate) fn finish(
    tx: &mut Transaction,
    mut event: impl FnMut(Kind) -> Event,
    denied: Option<&Intervention>,
) -> Option<Event> {
    tx.process_logging();
    // Most transactions match only `nolog` bookkeeping rules: no event, nothing built.
    let count = tx.logged().count();
    if count == 0 {
        return None;
    }
    let mut e = event(Kind::Rules);
    let first = e.rules.len();
    e.rules.reserve_exact(count);
    // Each text is copied once, from the transaction into the event.
    for m in tx.logged() {
        e.add_rule(RuleMatch {
            id: m.id,
            msg: (!m.msg.is_empty()).then(|| lossy_string(m.msg)),
            tags: Arc::clone(m.tags),
            severity: m.severity,
            matched_var: (!m.matched_var_name.is_empty()).then(|| lossy_string(m.matched_var_name)),
            // The rule's expanded `logdata` (what ModSecurity logs as `data`), else the value.
            matched_data: if m.logdata.is_empty() {
                (!m.matched_var.is_empty()).then(|| lossy_string(m.matched_var))
            } else {
                Some(lossy_string(m.logdata))
            },
        });
    }
    // The most severe match names the event (the first of equals); the name is taken from
    // the event's own copy.
    let worst = e.rules[first..]
        .iter()
        .enumerate()
        .min_by_key(|(at, m)| (m.severity.unwrap_or(u8::MAX), *at))
        .map(|(at, _)| at);
    e.rule = worst.map(|at| {
        let m = &e.rules[first + at];
        RuleRef {
            id: Some(m.id.to_string()),
            name: m.msg.clone(),
            category: m.tags.iter().find(|t| t.starts_with("attack-")).cloned(),
        }
    });
    let scores = tx.anomaly_scores();
    e.anomaly_score = Some(AnomalyScore {
        inbound: u32::try_from(scores.inbound.max(0)).unwrap_or(u32::MAX),
        outbound: u32::try_from(scores.outbound.max(0)).unwrap_or(u32::MAX),
    });
    if denied.is_some() {
        e.denied = true;
    }
    Some(e)
}
