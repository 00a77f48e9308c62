//! Sending a whole response from a handler.

use core::ptr;

use ngx::core::Status;
use ngx::ffi::{
    ngx_alloc_chain_link, ngx_buf_t, ngx_chain_t, ngx_create_temp_buf, ngx_http_output_filter,
    ngx_http_request_t, ngx_http_send_header, ngx_int_t, ngx_pcalloc, ngx_str_t, off_t,
};

/// Sends `status` with `body` (copied into the request pool) and returns what the last
/// filter said, for the caller to finalize with.
pub(crate) fn send(
    r: &mut ngx_http_request_t,
    status: usize,
    content_type: &'static str,
    body: &[u8],
) -> ngx_int_t {
    r.headers_out.status = status;
    r.headers_out.content_length_n = body.len() as off_t;
    r.headers_out.content_type = ngx_str_t {
        len: content_type.len(),
        data: content_type.as_ptr().cast_mut(),
    };
    r.headers_out.content_type_len = content_type.len();
    r.headers_out.content_type_lowcase = ptr::null_mut();

    // SAFETY: a live request whose headers are not sent yet.
    let rc = unsafe { ngx_http_send_header(r) };
    if rc == Status::NGX_ERROR.0 || rc > Status::NGX_OK.0 || r.header_only() != 0 {
        return rc;
    }
    // SAFETY: request pool allocations; the buffer is filled before the chain is passed on.
    unsafe {
        let buf = if body.is_empty() {
            ngx_pcalloc(r.pool, size_of::<ngx_buf_t>()).cast::<ngx_buf_t>()
        } else {
            ngx_create_temp_buf(r.pool, body.len())
        };
        let link: *mut ngx_chain_t = ngx_alloc_chain_link(r.pool);
        if buf.is_null() || link.is_null() {
            return Status::NGX_ERROR.into();
        }
        if !body.is_empty() {
            ptr::copy_nonoverlapping(body.as_ptr(), (*buf).pos, body.len());
            (*buf).last = (*buf).pos.add(body.len());
        }
        let is_main = ptr::eq(r, r.main);
        (*buf).set_last_buf(if is_main { 1 } else { 0 });
        (*buf).set_last_in_chain(1);
        (*link).buf = buf;
        (*link).next = ptr::null_mut();
        ngx_http_output_filter(r, link)
    }
}
