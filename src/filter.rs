//! Response header and body filters.
//!
//! A panic of ours fails the response cleanly: a 500 while headers are unsent (the header
//! filter's work runs inside the guard, the call to the next filter outside), an aborted
//! response after.

use core::ptr;

use ngx::core::Status;
use ngx::ffi::{
    ngx_chain_t, ngx_http_filter_finalize_request, ngx_http_output_body_filter_pt,
    ngx_http_output_header_filter_pt, ngx_http_request_t, ngx_http_top_body_filter,
    ngx_http_top_header_filter, ngx_int_t, NGX_HTTP_INTERNAL_SERVER_ERROR,
};

use crate::{guard, phase, response, rules, Honeytrap};
use ngx::http::HttpModule;

// Written once per configuration cycle in postconfiguration (single-threaded, before any
// request), read afterwards; the layout nginx's own filters use.
static mut NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;
static mut NEXT_BODY_FILTER: ngx_http_output_body_filter_pt = None;

/// Puts our filters at the top of the chains as they stand when our module initialises.
///
/// # Safety
/// Only from postconfiguration.
pub(crate) unsafe fn register() {
    // SAFETY: single-threaded configuration time, as the caller guarantees.
    unsafe {
        NEXT_HEADER_FILTER = ngx_http_top_header_filter;
        ngx_http_top_header_filter = Some(header_filter);
        NEXT_BODY_FILTER = ngx_http_top_body_filter;
        ngx_http_top_body_filter = Some(body_filter);
    }
}

/// The configuration of a response we work on: `honeytrap on`, and not the error page that
/// replaces a response after a filter failed (our own failure included, which would loop).
fn ours(request: &ngx_http_request_t) -> Option<&'static crate::conf::LocConf> {
    if request.filter_finalize() != 0 {
        return None;
    }
    phase::enabled(request)
}

extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls filters with a live request whose connection is set.
    let request = unsafe { &mut *r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    let outcome = guard::run(
        log,
        "header filter",
        || Err(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t),
        || {
            if let Some(conf) = ours(request) {
                #[cfg(feature = "test-hooks")]
                crate::test_hooks::at_header_filter(request, conf);
                if let Some(status) = rules::at_response_headers(request) {
                    return Err(status);
                }
                response::on_headers(request, conf);
                if rules::hold_for_phase_4(request) {
                    // Sent by the body filter once phase 4 has decided.
                    return Ok(true);
                }
            }
            Ok(false)
        },
    );
    match outcome {
        Ok(true) => Status::NGX_OK.into(),
        // SAFETY: `NEXT_HEADER_FILTER` was set in postconfiguration, before any request; nginx's
        // chain always ends in ngx_http_header_filter, so it is not None.
        Ok(false) => match unsafe { NEXT_HEADER_FILTER } {
            // SAFETY: passing on the same live request, as every nginx filter does.
            Some(next) => unsafe { next(r) },
            None => Status::NGX_ERROR.into(),
        },
        // SAFETY: headers are not sent yet; nginx replaces this response with the error page
        // of `status` (500 after a panic of ours, the rules' status when they block).
        Err(status) => unsafe {
            ngx_http_filter_finalize_request(
                r,
                ptr::from_ref(Honeytrap::module()).cast_mut(),
                status,
            )
        },
    }
}

/// Our body work may call the next filter several times (robots.txt) or with a chain of its
/// own (HTML), so it all runs inside the guard: headers are out, and after a panic the only
/// honest failure left is to abort the response.
extern "C" fn body_filter(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: nginx calls filters with a live request whose connection is set.
    let request = unsafe { &mut *r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    // SAFETY: set in postconfiguration; the chain ends in ngx_http_write_filter.
    let Some(next) = (unsafe { NEXT_BODY_FILTER }) else {
        return Status::NGX_ERROR.into();
    };
    guard::run(
        log,
        "body filter",
        || Status::NGX_ERROR.into(),
        || {
            let Some(_conf) = ours(request) else {
                // SAFETY: passing on the same live request and chain.
                return unsafe { next(r, chain) };
            };
            #[cfg(feature = "test-hooks")]
            // SAFETY: `chain` is the chain nginx passed to this filter, null or valid.
            crate::test_hooks::at_body_filter(request, _conf, unsafe { chain.as_ref() });
            let chain = match rules::collect_held(request, chain) {
                rules::Held::No => chain,
                rules::Held::Collecting => return Status::NGX_OK.into(),
                // SAFETY: the headers were held back, so the response can still be replaced.
                rules::Held::Blocked(status) => unsafe {
                    return ngx_http_filter_finalize_request(
                        r,
                        ptr::from_ref(Honeytrap::module()).cast_mut(),
                        status,
                    );
                },
                rules::Held::Release { body, last } => {
                    // SAFETY: set in postconfiguration, as for the header filter.
                    let Some(next_header) = (unsafe { NEXT_HEADER_FILTER }) else {
                        return Status::NGX_ERROR.into();
                    };
                    // SAFETY: the same live request; its headers were held until now.
                    let rc = unsafe { next_header(r) };
                    if rc == Status::NGX_ERROR.0
                        || rc > Status::NGX_OK.0
                        || request.header_only() != 0
                    {
                        return rc;
                    }
                    match response::memory_chain(request, body, last) {
                        Some(chain) => chain,
                        None => return Status::NGX_ERROR.into(),
                    }
                }
            };
            rules::at_response_body(request, chain);
            if let Some(rc) = response::on_body(request, chain, next) {
                return rc;
            }
            // SAFETY: the request's chain, or the released held body.
            unsafe { next(r, chain) }
        },
    )
}
