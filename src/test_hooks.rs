//! Built only with the `test-hooks` feature: proof for the integration tests that our hooks
//! run (a `notice` trace line per call) and a directive that panics on purpose, to prove the
//! panic guard. Production builds contain none of this.

use core::ffi::{c_char, c_void};
use core::ptr;

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_chain_t, ngx_command_t, ngx_conf_t, ngx_http_request_t, ngx_str_t, ngx_uint_t,
    NGX_CONF_TAKE1, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
    NGX_LOG_NOTICE,
};
use ngx::{ngx_conf_log_error, ngx_log_error, ngx_string};

use crate::conf::LocConf;
use crate::guard;
use crate::phase::Phase;

/// `honeytrap_test_panic request|header|body|off;`: where to panic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum PanicPoint {
    #[default]
    Unset,
    Off,
    Request,
    Header,
    Body,
}

impl PanicPoint {
    pub fn merge(&mut self, parent: &PanicPoint) {
        if *self == PanicPoint::Unset {
            *self = if *parent == PanicPoint::Unset {
                PanicPoint::Off
            } else {
                *parent
            };
        }
    }

    fn panic_if(self, point: PanicPoint) {
        if self == point {
            panic!("test-hooks: forced panic at {point:?}");
        }
    }
}

pub(crate) const PANIC_COMMAND: ngx_command_t = ngx_command_t {
    name: ngx_string!("honeytrap_test_panic"),
    type_: (NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
    set: Some(set_panic_point),
    conf: NGX_HTTP_LOC_CONF_OFFSET as ngx_uint_t,
    offset: 0,
    post: ptr::null_mut(),
};

extern "C" fn set_panic_point(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx passes a valid configuration context to directive handlers.
    let log = unsafe { (*cf).log };
    guard::run(
        log,
        "honeytrap_test_panic",
        || NGX_CONF_ERROR,
        || {
            // SAFETY: `conf` is our LocConf (NGX_HTTP_LOC_CONF_OFFSET); args hold the directive
            // name and exactly one value (NGX_CONF_TAKE1).
            let (conf, value) = unsafe {
                let args = (*(*cf).args).elts.cast::<ngx_str_t>();
                (&mut *conf.cast::<LocConf>(), (*args.add(1)).as_bytes())
            };
            conf.test_panic = match value {
                b"request" => PanicPoint::Request,
                b"header" => PanicPoint::Header,
                b"body" => PanicPoint::Body,
                b"off" => PanicPoint::Off,
                _ => {
                    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "honeytrap_test_panic: unknown point");
                    return NGX_CONF_ERROR;
                }
            };
            NGX_CONF_OK
        },
    )
}

fn trace(request: &ngx_http_request_t, what: &str) {
    // SAFETY: the request's connection and its log are live while nginx calls us.
    let log = unsafe { (*request.connection).log };
    let uri = request.uri.as_bytes();
    ngx_log_error!(
        NGX_LOG_NOTICE,
        log,
        "honeytrap trace: {what} uri=\"{}\"",
        String::from_utf8_lossy(uri)
    );
}

pub(crate) fn at_request(request: &ngx_http_request_t, conf: &LocConf, phase: Phase) {
    trace(request, &format!("{phase:?}"));
    conf.test_panic.panic_if(PanicPoint::Request);
}

pub(crate) fn at_header_filter(request: &ngx_http_request_t, conf: &LocConf) {
    trace(request, "header_filter");
    conf.test_panic.panic_if(PanicPoint::Header);
}

pub(crate) fn at_body_filter(
    request: &ngx_http_request_t,
    conf: &LocConf,
    chain: Option<&ngx_chain_t>,
) {
    let (mut last, mut file_backed) = (false, false);
    let mut link = chain;
    while let Some(cl) = link {
        // SAFETY: links of a chain passed to a body filter point to live buffers or are null.
        unsafe {
            if let Some(buf) = cl.buf.as_ref() {
                last |= buf.last_buf() != 0;
                // Below the copy filter, file contents arrive read into memory.
                file_backed |= buf.in_file() != 0 && buf.memory() == 0 && buf.temporary() == 0;
            }
            link = cl.next.as_ref();
        }
    }
    let what = match (last, file_backed) {
        (true, true) => "body_filter last file-backed",
        (true, false) => "body_filter last",
        (false, true) => "body_filter file-backed",
        (false, false) => "body_filter",
    };
    trace(request, what);
    conf.test_panic.panic_if(PanicPoint::Body);
}
