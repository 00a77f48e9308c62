//! What the module keeps per request, and the translation of an nginx request into an event.

use core::ptr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use honeytrap_core::event::{Event, Kind};
use ngx::ffi::{
    ngx_buf_t, ngx_connection_local_sockaddr, ngx_http_request_t, ngx_read_file, off_t, sockaddr,
    socklen_t,
};
use ngx::http::HttpModule;

use crate::runtime::Runtime;
use crate::{pool, Honeytrap};

/// Per-request state, owned by the request pool.
#[derive(Default)]
pub(crate) struct RequestCtx {
    /// Events this request produced, completed (status) and queued in the LOG phase.
    pub events: Vec<Event>,
    /// The REWRITE-phase checks ran (the phase handler runs again after a body read).
    pub checked: bool,
    /// The path is a scanner tripwire: an event if the site answers 404.
    pub tripwire: Option<String>,
    /// The client did not send the decoy cookie: the response sets it.
    pub cookie_absent: bool,
    /// What the body filter does to this response.
    pub response: Option<crate::response::ResponseBait>,
    /// The SecLang transaction of a location with rules.
    pub tx: Option<honeytrap_seclang::PooledTransaction>,
    /// The rules' decision, when they blocked the request.
    pub denied: Option<honeytrap_seclang::Intervention>,
    /// The body read must also check the hidden form field.
    pub check_field: bool,
    /// The inbound anomaly score once the transaction is finished (the access log runs after).
    pub score: Option<i64>,
    /// Response headers and body held back until phase 4 has decided (blocking rules only).
    pub held: Option<Vec<u8>>,
    /// Phase 4 ran (on a held body, or streamed): never again for this response.
    pub phase4_done: bool,
    /// A held body released after phase 4, sent from here.
    pub held_body: Vec<u8>,
    /// Most bytes held before phase 4 decides on what it has (the rules' response body limit).
    pub held_limit: usize,
}

/// This request's context, found again after an internal redirect wiped `r->ctx`.
pub(crate) fn ctx(r: &mut ngx_http_request_t) -> Option<&'static mut RequestCtx> {
    // SAFETY: `ctx` is an array of one pointer per HTTP module; ours is at our ctx_index.
    let slot = unsafe { &mut *r.ctx.add(Honeytrap::module().ctx_index) };
    if slot.is_null() {
        *slot = pool::find::<RequestCtx>(r.pool).cast();
    }
    // SAFETY: null, or the RequestCtx that `create_ctx` put into this request's pool.
    unsafe { slot.cast::<RequestCtx>().as_mut() }
}

pub(crate) fn ctx_or_create(r: &mut ngx_http_request_t) -> Option<&'static mut RequestCtx> {
    match ctx(r) {
        Some(ctx) => Some(ctx),
        None => create_ctx(r),
    }
}

fn create_ctx(r: &mut ngx_http_request_t) -> Option<&'static mut RequestCtx> {
    let ctx = pool::allocate(r.pool, RequestCtx::default());
    // SAFETY: as in `ctx`.
    unsafe { *r.ctx.add(Honeytrap::module().ctx_index) = ctx.cast() };
    // SAFETY: a fresh allocation owned by the request pool, or null.
    unsafe { ctx.as_mut() }
}

/// An event about `r`, with everything the request line and headers say.
pub(crate) fn new_event(r: &mut ngx_http_request_t, kind: Kind, runtime: &Runtime) -> Event {
    let limits = &runtime.limits;
    let mut event = Event::with_id(kind, runtime.observer.clone(), runtime.ids.next_id());
    event.source = peer(r);
    event.destination = local_addr(r);
    event.set_method(r.method_name.as_bytes());
    event.set_url(r.unparsed_uri.as_bytes());
    let protocol = r.http_protocol.as_bytes();
    if let Some(version) = protocol.strip_prefix(b"HTTP/") {
        event.http_version = Some(String::from_utf8_lossy(version).into_owned());
    }
    if !r.headers_in.server.data.is_null() {
        event.set_host(r.headers_in.server.as_bytes(), limits);
    }
    // SAFETY: header pointers of headers_in are null or point into its header list.
    if let Some(ua) = unsafe { r.headers_in.user_agent.as_ref() } {
        event.set_user_agent(ua.value.as_bytes(), limits);
    }
    // SAFETY: the headers list of a request whose headers were read is initialised.
    for (name, value) in unsafe { ngx::http::list_iterator(&r.headers_in.headers) } {
        event.add_header(name.as_bytes(), value.as_bytes(), limits);
    }
    event
}

fn socket_addr(sa: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    // SAFETY: `sa` is null or a socket address of `len` bytes from the kernel.
    let family = unsafe { sa.as_ref()? }.sa_family as i32;
    match family {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: family and length checked.
            let sin = unsafe { &*sa.cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: family and length checked.
            let sin6 = unsafe { &*sa.cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let addr = match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(IpAddr::V4(v4), u16::from_be(sin6.sin6_port)),
                None => SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(sin6.sin6_port), 0, 0)),
            };
            Some(addr)
        }
        _ => None,
    }
}

/// The client's address and port.
pub(crate) fn peer(r: &ngx_http_request_t) -> Option<SocketAddr> {
    // SAFETY: a request being processed has a live connection.
    let c = unsafe { &*r.connection };
    socket_addr(c.sockaddr, c.socklen)
}

/// nginx's time, cached once per event loop turn: no clock read per request.
pub(crate) fn now() -> SystemTime {
    // SAFETY: nginx points `ngx_cached_time` at a valid slot before any request runs and
    // only this (the worker's main) thread updates it.
    let t = unsafe { &*std::ptr::addr_of!(ngx::ffi::ngx_cached_time).read() };
    UNIX_EPOCH
        + Duration::new(
            u64::try_from(t.sec).unwrap_or(0),
            (t.msec * 1_000_000) as u32,
        )
}

/// The values of the request headers called `name` (any case), in order, borrowed.
pub(crate) fn header_slices<'r>(
    r: &'r ngx_http_request_t,
    name: &'r [u8],
) -> impl Iterator<Item = &'r [u8]> + 'r {
    // SAFETY: the headers list of a request whose headers were read is initialised.
    unsafe { ngx::http::list_iterator(&r.headers_in.headers) }
        .filter(move |(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_bytes())
}

/// The request body, up to `cap` bytes, and its size.
pub(crate) struct BodyPart {
    pub bytes: Vec<u8>,
    pub total: u64,
}

/// The request body nginx read, up to `cap` bytes, parts spooled to the client body temporary
/// file included: nginx wrote that file moments ago, so reading it back comes from the page
/// cache, and `cap` bounds it (the rules' `SecRequestBodyLimit`, the baits' own caps).
pub(crate) fn body(r: &ngx_http_request_t, cap: usize) -> BodyPart {
    let mut part = BodyPart {
        bytes: Vec::new(),
        total: 0,
    };
    // SAFETY: null or the body nginx read for this request.
    let Some(body) = (unsafe { r.request_body.as_ref() }) else {
        return part;
    };
    let mut link = body.bufs;
    // SAFETY: the body chain and its buffers belong to the request.
    while let Some(cl) = unsafe { link.as_ref() } {
        // SAFETY: as above.
        if let Some(buf) = unsafe { cl.buf.as_ref() } {
            if buf.in_file() != 0 && buf.memory() == 0 && buf.temporary() == 0 {
                let len = usize::try_from(buf.file_last - buf.file_pos).unwrap_or(0);
                part.total += len as u64;
                let want = len.min(cap.saturating_sub(part.bytes.len()));
                if want > 0 && !read_spooled(buf, want, &mut part.bytes) {
                    break;
                }
            } else if !buf.pos.is_null() {
                // SAFETY: pos..last is the buffer's filled range.
                let data = unsafe {
                    core::slice::from_raw_parts(buf.pos, buf.last.offset_from(buf.pos) as usize)
                };
                part.total += data.len() as u64;
                let room = cap.saturating_sub(part.bytes.len());
                part.bytes.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        link = cl.next;
    }
    part
}

/// Appends `want` bytes of a file buffer's range; false if the file could not be read (nginx
/// logged why).
fn read_spooled(buf: &ngx_buf_t, want: usize, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    out.resize(start + want, 0);
    let mut done = 0;
    while done < want {
        // SAFETY: a file buffer of the request body points at nginx's open temporary file;
        // the destination is the zeroed tail of `out`, `want - done` bytes long.
        let n = unsafe {
            ngx_read_file(
                buf.file,
                out.as_mut_ptr().add(start + done),
                want - done,
                buf.file_pos + done as off_t,
            )
        };
        if n <= 0 {
            out.truncate(start + done);
            return false;
        }
        done += n as usize;
    }
    true
}

/// The address and port the request came in on.
pub(crate) fn local_addr(r: &mut ngx_http_request_t) -> Option<SocketAddr> {
    // SAFETY: a request being processed has a live connection.
    let c = unsafe { &mut *r.connection };
    // SAFETY: fills `c->local_sockaddr` (getsockname for wildcard listens); null buffer allowed.
    if unsafe { ngx_connection_local_sockaddr(c, ptr::null_mut(), 0) } != 0 {
        return None;
    }
    socket_addr(c.local_sockaddr, c.local_socklen)
}
