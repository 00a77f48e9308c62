//! Response-side baits: the decoy cookie, robots.txt lines, and the HTML comment and hidden
//! field, streamed. The body rewriting follows nginx's sub_filter: output buffers point into
//! the input buffers (no copy), the last one carries the input as its `shadow`, and an input
//! buffer is marked consumed only once everything pointing into it has been sent.

use core::ptr;

use honeytrap_core::bait::{HtmlRewriter, RobotsScanner, Span};
use ngx::core::Status;
use ngx::ffi::{
    ngx_alloc_chain_link, ngx_buf_t, ngx_chain_t, ngx_http_request_t, ngx_http_weak_etag,
    ngx_int_t, ngx_pcalloc, ngx_pnalloc, ngx_str_t, ngx_table_elt_t, off_t, NGX_HTTP_HEAD,
};
use ngx::http::HttpModule;

use crate::conf::LocConf;
use crate::request;
use crate::Honeytrap;
use crate::{bait_cache, baits};

/// What the body filter does to this response.
pub(crate) enum ResponseBait {
    Html(HtmlBody),
    /// The site's robots.txt, with our lines after its own.
    RobotsAppend {
        scanner: RobotsScanner,
        suffix: Vec<u8>,
    },
    /// The site has no robots.txt: ours replaces its 404.
    RobotsReplace,
}

pub(crate) struct HtmlBody {
    rewriter: HtmlRewriter,
    /// The output pieces of one input buffer, reused across buffers.
    pieces: Vec<(*mut u8, *mut u8)>,
    out: *mut ngx_chain_t,
    last_out: *mut *mut ngx_chain_t,
    free: *mut ngx_chain_t,
    busy: *mut ngx_chain_t,
}

/// Header filter part: decides what this response gets and adjusts its headers.
pub(crate) fn on_headers(r: &mut ngx_http_request_t, conf: &LocConf) {
    let selection = conf.baits();
    if !selection.any() || !ptr::eq(r, r.main) {
        return;
    }
    let Some(sensor) = baits::sensor(r) else {
        return;
    };
    let status = r.headers_out.status;
    if selection.robots && r.uri.as_bytes() == b"/robots.txt" {
        let Some(ctx) = request::ctx_or_create(r) else {
            return;
        };
        if status == 200 {
            if let Some(scanner) = sensor.baits.robots_scanner() {
                ctx.response = Some(ResponseBait::RobotsAppend {
                    scanner,
                    suffix: Vec::new(),
                });
                body_changes(r);
            }
        } else if status == 404 {
            if let Some(full) = sensor.baits.robots_txt() {
                ctx.response = Some(ResponseBait::RobotsReplace);
                replace_with_robots(r, full.len());
            }
        }
        return;
    }
    let html = is_html(r);
    if selection.html() && html && rewritable(r) {
        let client = baits::client_ip(r);
        let now = request::now();
        let rewriter = client.and_then(|ip| {
            sensor.baits.html_rewriter_with(selection, |field, tokens| {
                bait_cache::field_markup(ip, now, || field.markup(tokens, ip, now))
            })
        });
        if let (Some(rewriter), Some(ctx)) = (rewriter, request::ctx_or_create(r)) {
            ctx.response = Some(ResponseBait::Html(HtmlBody {
                rewriter,
                pieces: Vec::with_capacity(8),
                out: ptr::null_mut(),
                last_out: ptr::null_mut(),
                free: ptr::null_mut(),
                busy: ptr::null_mut(),
            }));
            body_changes(r);
        }
    }
    let cookie_absent = request::ctx(r).is_some_and(|ctx| ctx.cookie_absent);
    if selection.cookie && html && cookie_absent && status < 400 {
        let client = baits::client_ip(r);
        let now = request::now();
        let cookie = client
            .and_then(|ip| bait_cache::set_cookie(ip, now, || sensor.baits.set_cookie(ip, now)));
        if let Some(cookie) = cookie {
            // SAFETY: the request is live; the header is copied into its pool.
            let request = unsafe { ngx::http::Request::from_ngx_http_request(r) };
            let _ = request.add_header_out("Set-Cookie", &cookie);
        }
    }
}

fn is_html(r: &ngx_http_request_t) -> bool {
    let ct = r.headers_out.content_type.as_bytes();
    ct.len() >= 9 && ct[..9].eq_ignore_ascii_case(b"text/html")
}

/// Responses the HTML baits must leave alone: not a full 2xx body, compressed by upstream,
/// HEAD, or an answer to a range request.
fn rewritable(r: &ngx_http_request_t) -> bool {
    let status = r.headers_out.status;
    // SAFETY: null or the response's Content-Encoding header.
    let encoded = unsafe { r.headers_out.content_encoding.as_ref() }
        .is_some_and(|h| h.hash != 0 && !h.value.as_bytes().eq_ignore_ascii_case(b"identity"));
    (200..300).contains(&status)
        && status != 204
        && status != 206
        && r.header_only() == 0
        && r.method != NGX_HTTP_HEAD as usize
        && !encoded
        && r.headers_in.range.is_null()
}

/// The body will differ from what upstream said: no length, a weak ETag, no ranges, and the
/// content in memory so we can read it.
fn body_changes(r: &mut ngx_http_request_t) {
    clear_content_length(r);
    clear_header(&mut r.headers_out.accept_ranges);
    r.set_allow_ranges(0);
    // SAFETY: a live request whose headers are not sent yet.
    unsafe { ngx_http_weak_etag(r) };
    r.set_filter_need_in_memory(1);
}

fn clear_content_length(r: &mut ngx_http_request_t) {
    r.headers_out.content_length_n = -1;
    clear_header(&mut r.headers_out.content_length);
}

/// Drops a header nginx keeps a pointer to, as its `ngx_http_clear_*` macros do.
fn clear_header(header: &mut *mut ngx_table_elt_t) {
    // SAFETY: null or an element of the response's header list.
    if let Some(h) = unsafe { header.as_mut() } {
        h.hash = 0;
    }
    *header = ptr::null_mut();
}

fn replace_with_robots(r: &mut ngx_http_request_t, len: usize) {
    const TEXT: &str = "text/plain";
    r.headers_out.status = 200;
    r.headers_out.status_line = ngx_str_t {
        len: 0,
        data: ptr::null_mut(),
    };
    r.headers_out.content_type = ngx_str_t {
        len: TEXT.len(),
        data: TEXT.as_ptr().cast_mut(),
    };
    r.headers_out.content_type_len = TEXT.len();
    r.headers_out.content_type_lowcase = ptr::null_mut();
    clear_content_length(r);
    r.headers_out.content_length_n = len as off_t;
    clear_header(&mut r.headers_out.etag);
    clear_header(&mut r.headers_out.last_modified);
    r.headers_out.last_modified_time = -1;
    r.set_filter_need_in_memory(1);
}

/// Body filter part; `None` when this response is not ours to change.
pub(crate) fn on_body(
    r: &mut ngx_http_request_t,
    input: *mut ngx_chain_t,
    next: unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_chain_t) -> ngx_int_t,
) -> Option<ngx_int_t> {
    let ctx = request::ctx(r)?;
    let response = ctx.response.as_mut()?;
    Some(match response {
        ResponseBait::Html(body) => rewrite_html(r, body, input, next),
        ResponseBait::RobotsAppend { scanner, suffix } => {
            append_robots(r, scanner, suffix, input, next)
        }
        ResponseBait::RobotsReplace => replace_robots(r, input, next),
    })
}

/// Iterates the links of a chain.
fn links(chain: *mut ngx_chain_t) -> impl Iterator<Item = &'static mut ngx_chain_t> {
    let mut link = chain;
    core::iter::from_fn(move || {
        // SAFETY: a chain passed to a body filter is a null-terminated list of live links.
        let cl = unsafe { link.as_mut()? };
        link = cl.next;
        Some(cl)
    })
}

fn in_memory(b: &ngx_buf_t) -> bool {
    b.temporary() != 0 || b.memory() != 0 || b.mmap() != 0
}

fn data(b: &ngx_buf_t) -> &[u8] {
    if !in_memory(b) || b.pos.is_null() {
        return &[];
    }
    // SAFETY: pos..last is the filled range of an in-memory buffer.
    unsafe { core::slice::from_raw_parts(b.pos, b.last.offset_from(b.pos) as usize) }
}

fn size(b: &ngx_buf_t) -> off_t {
    if in_memory(b) {
        // SAFETY: pos and last point into the same buffer.
        unsafe { b.last.offset_from(b.pos) as off_t }
    } else {
        b.file_last - b.file_pos
    }
}

fn rewrite_html(
    r: &mut ngx_http_request_t,
    body: &mut HtmlBody,
    input: *mut ngx_chain_t,
    next: unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_chain_t) -> ngx_int_t,
) -> ngx_int_t {
    if body.last_out.is_null() {
        body.last_out = &mut body.out;
    }
    for cl in links(input) {
        // SAFETY: every link of a body filter chain holds a live buffer.
        let b = unsafe { &mut *cl.buf };
        if !in_memory(b) && size(b) > 0 {
            // nginx was asked for memory; a file buffer anyway is passed on untouched.
            if !append_link(r, body, b) {
                return Status::NGX_ERROR.into();
            }
            continue;
        }
        let chunk = data(b);
        let base = b.pos;
        let mut last: *mut ngx_buf_t = ptr::null_mut();
        let mut failed = false;
        let mut pieces = std::mem::take(&mut body.pieces);
        pieces.clear();
        let emit = |span: Span<'_>| {
            let (start, end) = match span {
                // SAFETY: the range lies within the input buffer's filled part.
                Span::Original(range) => unsafe { (base.add(range.start), base.add(range.end)) },
                // Inserted bytes belong to the rewriter, alive as long as this request.
                Span::Inserted(bytes) => {
                    let p = bytes.as_ptr().cast_mut();
                    // SAFETY: one past the end of the same slice.
                    (p, unsafe { p.add(bytes.len()) })
                }
            };
            pieces.push((start, end));
        };
        if b.last_buf() != 0 {
            let (rewriter, uri) = (&mut body.rewriter, r.uri.as_bytes());
            bait_cache::with_page_plans(|plans| rewriter.feed_whole_spans(chunk, plans, uri, emit));
        } else {
            body.rewriter.feed_spans(chunk, emit);
        }
        let coalesced = if b.last_buf() != 0 && pieces.len() > 1 {
            coalesce(r, body, &pieces)
        } else {
            None
        };
        let copied = coalesced.is_some();
        if let Some(nb) = coalesced {
            // Copied: the input buffer is free again now.
            b.pos = b.last;
            last = nb;
        } else {
            for &(start, end) in &pieces {
                let Some(nb) = new_buf(r, body) else {
                    failed = true;
                    break;
                };
                nb.set_memory(1);
                nb.pos = start;
                nb.last = end;
                last = nb;
            }
        }
        body.pieces = pieces;
        if failed {
            return Status::NGX_ERROR.into();
        }
        // SAFETY: null or the buffer just appended.
        let last = match unsafe { last.as_mut() } {
            Some(last) => last,
            None => match new_buf(r, body) {
                Some(nb) => {
                    nb.set_sync(1);
                    nb
                }
                None => return Status::NGX_ERROR.into(),
            },
        };
        last.set_last_buf(b.last_buf());
        last.set_last_in_chain(b.last_in_chain());
        last.set_flush(b.flush());
        last.set_recycled(b.recycled());
        if !copied {
            last.shadow = b;
        }
    }
    output(r, body, next)
}

/// Most bytes of a last buffer copied into one piece of output rather than sent as pieces.
const COALESCE_MAX: usize = 64 * 1024;

/// The pieces of a response's last buffer (a whole small page, typically) copied into one
/// buffer from the request pool: one buffer to chunk and one iovec to write instead of one
/// per piece. Once per response, so the pool grows by one copy of at most `COALESCE_MAX`.
fn coalesce(
    r: &mut ngx_http_request_t,
    body: &mut HtmlBody,
    pieces: &[(*mut u8, *mut u8)],
) -> Option<&'static mut ngx_buf_t> {
    // SAFETY: every piece is a live range, start <= end, of the input buffer or the rewriter.
    let lens = pieces
        .iter()
        .map(|&(start, end)| unsafe { end.offset_from(start) } as usize);
    let total: usize = lens.clone().sum();
    if total > COALESCE_MAX {
        return None;
    }
    // SAFETY: the request pool outlives the response; ngx_pnalloc returns null on failure.
    let copy = unsafe { ngx_pnalloc(r.pool, total) }.cast::<u8>();
    if copy.is_null() {
        return None;
    }
    let mut at = copy;
    for (&(start, _), len) in pieces.iter().zip(lens) {
        // SAFETY: `len` bytes from a live piece into the fresh allocation, which has room
        // for all pieces; the two never overlap.
        unsafe {
            ptr::copy_nonoverlapping(start, at, len);
            at = at.add(len);
        }
    }
    let nb = new_buf(r, body)?;
    nb.set_temporary(1);
    nb.start = copy;
    nb.pos = copy;
    nb.last = at;
    nb.end = at;
    Some(nb)
}

/// A buffer (recycled from our free list when possible) appended to the output chain.
fn new_buf(r: &mut ngx_http_request_t, body: &mut HtmlBody) -> Option<&'static mut ngx_buf_t> {
    // SAFETY: free links hold our own buffers; fresh ones come from the request pool.
    unsafe {
        let cl = if let Some(free) = body.free.as_mut() {
            body.free = free.next;
            ptr::write_bytes(free.buf, 0, 1);
            free
        } else {
            let b = ngx_pcalloc(r.pool, size_of::<ngx_buf_t>()).cast::<ngx_buf_t>();
            let cl = ngx_alloc_chain_link(r.pool);
            if b.is_null() || cl.is_null() {
                return None;
            }
            (*cl).buf = b;
            &mut *cl
        };
        (*cl.buf).tag = ptr::from_ref(Honeytrap::module()).cast_mut().cast();
        cl.next = ptr::null_mut();
        *body.last_out = cl;
        body.last_out = &mut cl.next;
        Some(&mut *cl.buf)
    }
}

/// Appends a link to a buffer we do not own.
fn append_link(r: &mut ngx_http_request_t, body: &mut HtmlBody, b: *mut ngx_buf_t) -> bool {
    // SAFETY: a fresh link from the request pool.
    unsafe {
        let cl = ngx_alloc_chain_link(r.pool);
        if cl.is_null() {
            return false;
        }
        (*cl).buf = b;
        (*cl).next = ptr::null_mut();
        *body.last_out = cl;
        body.last_out = &mut (*cl).next;
    }
    true
}

/// Sends what is queued, then releases sent buffers: an input buffer counts as consumed only
/// once the last output buffer pointing into it (its shadow holder) is sent.
fn output(
    r: &mut ngx_http_request_t,
    body: &mut HtmlBody,
    next: unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_chain_t) -> ngx_int_t,
) -> ngx_int_t {
    if body.out.is_null() && body.busy.is_null() {
        // SAFETY: passing nothing on, as filters do to let buffered data move.
        return unsafe { next(r, ptr::null_mut()) };
    }
    // SAFETY: our output chain of live links, handed to the next filter.
    let rc = unsafe { next(r, body.out) };
    // SAFETY: busy and out are our chains of live links.
    unsafe {
        if body.busy.is_null() {
            body.busy = body.out;
        } else {
            let mut cl = body.busy;
            while !(*cl).next.is_null() {
                cl = (*cl).next;
            }
            (*cl).next = body.out;
        }
        body.out = ptr::null_mut();
        body.last_out = &mut body.out;
        let tag = ptr::from_ref(Honeytrap::module()).cast_mut().cast();
        while let Some(cl) = body.busy.as_mut() {
            let b = &mut *cl.buf;
            if size(b) != 0 {
                break;
            }
            if let Some(shadow) = b.shadow.as_mut() {
                shadow.pos = shadow.last;
            }
            body.busy = cl.next;
            if b.tag == tag && (in_memory(b) || b.in_file() != 0) {
                cl.next = body.free;
                body.free = cl;
            }
        }
    }
    rc
}

fn append_robots(
    r: &mut ngx_http_request_t,
    scanner: &mut RobotsScanner,
    suffix: &mut Vec<u8>,
    input: *mut ngx_chain_t,
    next: unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_chain_t) -> ngx_int_t,
) -> ngx_int_t {
    let mut ended = false;
    for cl in links(input) {
        // SAFETY: every link of a body filter chain holds a live buffer.
        let b = unsafe { &mut *cl.buf };
        scanner.feed(data(b));
        if b.last_buf() != 0 {
            // Our lines come after the site's last byte, as the addition filter does it.
            b.set_last_buf(0);
            b.set_last_in_chain(0);
            b.set_sync(1);
            ended = true;
        }
    }
    // SAFETY: the same chain, passed on.
    let rc = unsafe { next(r, input) };
    if !ended || rc == Status::NGX_ERROR.0 {
        return rc;
    }
    let Some(sensor) = baits::sensor(r) else {
        return Status::NGX_ERROR.into();
    };
    *suffix = sensor.baits.robots_suffix(scanner);
    send_last(r, suffix, next)
}

fn replace_robots(
    r: &mut ngx_http_request_t,
    input: *mut ngx_chain_t,
    next: unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_chain_t) -> ngx_int_t,
) -> ngx_int_t {
    let mut ended = false;
    for cl in links(input) {
        // SAFETY: every link of a body filter chain holds a live buffer.
        let b = unsafe { &mut *cl.buf };
        // The site's 404 page is dropped: mark it consumed.
        b.pos = b.last;
        b.file_pos = b.file_last;
        ended |= b.last_buf() != 0;
    }
    if !ended {
        return Status::NGX_OK.into();
    }
    let Some(full) = baits::sensor(r).and_then(|s| s.baits.robots_txt()) else {
        return Status::NGX_ERROR.into();
    };
    send_last(r, full, next)
}

/// A one-buffer chain over `data` (alive for the request), the response's end if `last`.
pub(crate) fn memory_chain(
    r: &mut ngx_http_request_t,
    data: &[u8],
    last: bool,
) -> Option<*mut ngx_chain_t> {
    // SAFETY: fresh pool allocations, filled before use.
    unsafe {
        let b = ngx_pcalloc(r.pool, size_of::<ngx_buf_t>()).cast::<ngx_buf_t>();
        let cl = ngx_alloc_chain_link(r.pool);
        if b.is_null() || cl.is_null() {
            return None;
        }
        if data.is_empty() {
            (*b).set_sync(1);
        } else {
            (*b).set_memory(1);
            (*b).pos = data.as_ptr().cast_mut();
            (*b).last = data.as_ptr().add(data.len()).cast_mut();
        }
        if last {
            (*b).set_last_buf(if ptr::eq(r, r.main) { 1 } else { 0 });
            (*b).set_last_in_chain(1);
        } else {
            (*b).set_flush(1);
        }
        (*cl).buf = b;
        (*cl).next = ptr::null_mut();
        Some(cl)
    }
}

/// Sends `data` (alive for the request) as the last buffer of the response.
fn send_last(
    r: &mut ngx_http_request_t,
    data: &[u8],
    next: unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_chain_t) -> ngx_int_t,
) -> ngx_int_t {
    match memory_chain(r, data, true) {
        // SAFETY: a chain of our own, passed to the next filter.
        Some(chain) => unsafe { next(r, chain) },
        None => Status::NGX_ERROR.into(),
    }
}
