//! Decoy servers (`honeytrap_decoy on`): every request is an event; the answer is what an
//! unconfigured nginx would say, so that nothing looks out of place.

use ngx::core::Status;
use ngx::ffi::{
    ngx_http_finalize_request, ngx_http_read_client_request_body, ngx_http_request_t, ngx_int_t,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_SPECIAL_RESPONSE,
};

use crate::{guard, request, respond, runtime};

const WELCOME_PAGE: &[u8] = b"<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
";

const NOT_FOUND_PAGE: &[u8] = b"<html>
<head><title>404 Not Found</title></head>
<body>
<center><h1>404 Not Found</h1></center>
<hr><center>nginx</center>
</body>
</html>
";

/// Content phase: reads the body (so the event can carry what was posted), then answers.
pub(crate) fn content(r: &mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: a live request in the content phase; the callback is ours.
    let rc = unsafe { ngx_http_read_client_request_body(r, Some(body_read)) };
    if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
        return rc;
    }
    Status::NGX_DONE.into()
}

extern "C" fn body_read(r: *mut ngx_http_request_t) {
    // SAFETY: nginx calls this with the live request once the body is read.
    let request = unsafe { &mut *r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    let on_panic = || NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    let rc = guard::run(log, "decoy body handler", on_panic, || {
        record_body(request);
        answer(request)
    });
    // SAFETY: finalizes the request this handler took over with NGX_DONE.
    unsafe { ngx_http_finalize_request(r, rc) };
}

fn answer(r: &mut ngx_http_request_t) -> ngx_int_t {
    let path = r.uri.as_bytes();
    if path == b"/" || path == b"/index.html" {
        respond::send(r, 200, "text/html", WELCOME_PAGE)
    } else {
        respond::send(r, 404, "text/html", NOT_FOUND_PAGE)
    }
}

/// Puts the in-memory part of the request body into the event (capped there); a part that
/// nginx spooled to a temporary file is only counted: reading it here would block.
fn record_body(r: &mut ngx_http_request_t) {
    let Some(runtime) = runtime::get() else {
        return;
    };
    // SAFETY: null or the body nginx just read.
    let Some(body) = (unsafe { r.request_body.as_ref() }) else {
        return;
    };
    let cap = runtime.limits.body + 1;
    let mut bytes = Vec::new();
    let mut total: u64 = 0;
    let mut link = body.bufs;
    // SAFETY: the body chain and its buffers belong to the request.
    while let Some(cl) = unsafe { link.as_ref() } {
        if let Some(buf) = unsafe { cl.buf.as_ref() } {
            if buf.in_file() != 0 && buf.memory() == 0 && buf.temporary() == 0 {
                total += (buf.file_last - buf.file_pos) as u64;
            } else if !buf.pos.is_null() {
                // SAFETY: pos..last is the buffer's filled range.
                let data = unsafe {
                    core::slice::from_raw_parts(buf.pos, buf.last.offset_from(buf.pos) as usize)
                };
                total += data.len() as u64;
                let room = cap.saturating_sub(bytes.len());
                bytes.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        link = cl.next;
    }
    if total == 0 {
        return;
    }
    if let Some(event) = request::ctx(r).and_then(|ctx| ctx.event.as_mut()) {
        event.set_body(&bytes, &runtime.limits);
        event.body_bytes = Some(total);
        if (bytes.len() as u64) < total
            && !event
                .truncated
                .iter()
                .any(|f| f == "http.request.body.content")
        {
            event.truncated.push("http.request.body.content".to_owned());
        }
    }
}
