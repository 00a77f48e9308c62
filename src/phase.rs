//! The request hook.
//!
//! It runs in the two REWRITE phases, not ACCESS: `return` (the rewrite module) finalizes a
//! request in SERVER_REWRITE or REWRITE, and decoys are written exactly that way. nginx runs a
//! phase's handlers in reverse order of registration and our postconfiguration runs after the
//! rewrite module's, so our handler sees the request before `return` answers it.

use ngx::core::Status;
use ngx::ffi::{
    ngx_array_push, ngx_conf_t, ngx_http_handler_pt,
    ngx_http_phases_NGX_HTTP_REWRITE_PHASE as NGX_HTTP_REWRITE_PHASE,
    ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE as NGX_HTTP_SERVER_REWRITE_PHASE,
    ngx_http_request_t, ngx_int_t, NGX_HTTP_INTERNAL_SERVER_ERROR,
};
use ngx::http::{HttpModuleConfExt, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};

use crate::{guard, Honeytrap};

/// Where in the request the hook was called; server rewrite sees the server block's settings,
/// rewrite the matched location's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    ServerRewrite,
    Rewrite,
}

/// Adds our handler to both rewrite phases.
///
/// # Safety
/// `cf` must be the valid configuration context of a postconfiguration callback.
pub(crate) unsafe fn register(cf: *mut ngx_conf_t) -> Result<(), ngx_int_t> {
    // SAFETY: guaranteed by the caller.
    let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(unsafe { &*cf }) else {
        return Err(Status::NGX_ERROR.into());
    };
    let hooks: [(usize, ngx_http_handler_pt); 2] = [
        (
            NGX_HTTP_SERVER_REWRITE_PHASE as usize,
            Some(server_rewrite_handler),
        ),
        (NGX_HTTP_REWRITE_PHASE as usize, Some(rewrite_handler)),
    ];
    for (phase, handler) in hooks {
        // SAFETY: the phase handler arrays are initialised by the core module before any
        // postconfiguration runs, and hold `ngx_http_handler_pt` elements.
        let slot = unsafe { ngx_array_push(&mut cmcf.phases[phase].handlers) }
            .cast::<ngx_http_handler_pt>();
        if slot.is_null() {
            return Err(Status::NGX_ERROR.into());
        }
        // SAFETY: `slot` is a freshly pushed element of the right type.
        unsafe { *slot = handler };
    }
    Ok(())
}

extern "C" fn server_rewrite_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    handle(r, Phase::ServerRewrite)
}

extern "C" fn rewrite_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    handle(r, Phase::Rewrite)
}

fn handle(r: *mut ngx_http_request_t, phase: Phase) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request whose connection is set.
    let request = unsafe { &*r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    let on_panic = || NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    guard::run(log, "request handler", on_panic, || {
        let Some(conf) = Honeytrap::location_conf(request) else {
            return Status::NGX_DECLINED.into();
        };
        if !conf.is_enabled() {
            return Status::NGX_DECLINED.into();
        }
        #[cfg(feature = "test-hooks")]
        crate::test_hooks::at_request(request, conf, phase);
        let _ = phase;
        Status::NGX_DECLINED.into()
    })
}

/// Whether the request's current configuration has `honeytrap on`.
pub(crate) fn enabled(request: &impl HttpModuleConfExt) -> Option<&'static crate::conf::LocConf> {
    Honeytrap::location_conf(request).filter(|conf| conf.is_enabled())
}
