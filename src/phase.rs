//! The request hooks.
//!
//! The main hook runs in the two REWRITE phases, not ACCESS: `return` (the rewrite module)
//! finalizes a request in SERVER_REWRITE or REWRITE, and decoys are written exactly that way.
//! nginx runs a phase's handlers in reverse order of registration and our postconfiguration
//! runs after the rewrite module's, so our handler sees the request before `return` answers it.
//! A CONTENT phase handler answers for decoys nothing else answers for, and the LOG phase,
//! which every finished request passes, completes and queues the request's event.

use honeytrap_core::event::Kind;
use ngx::core::Status;
use ngx::ffi::{
    ngx_array_push, ngx_conf_t, ngx_http_handler_pt,
    ngx_http_phases_NGX_HTTP_CONTENT_PHASE as NGX_HTTP_CONTENT_PHASE,
    ngx_http_phases_NGX_HTTP_LOG_PHASE as NGX_HTTP_LOG_PHASE,
    ngx_http_phases_NGX_HTTP_REWRITE_PHASE as NGX_HTTP_REWRITE_PHASE,
    ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE as NGX_HTTP_SERVER_REWRITE_PHASE,
    ngx_http_request_t, ngx_int_t, NGX_HTTP_INTERNAL_SERVER_ERROR,
};
use ngx::http::{HttpModuleConfExt, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};

use crate::conf::LocConf;
use crate::{baits, decoy, guard, request, rules, runtime, Honeytrap};

/// Where in the request the hook was called; server rewrite sees the server block's settings,
/// rewrite the matched location's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    ServerRewrite,
    Rewrite,
}

/// Adds our handlers to their phases.
///
/// # Safety
/// `cf` must be the valid configuration context of a postconfiguration callback.
pub(crate) unsafe fn register(cf: *mut ngx_conf_t) -> Result<(), ngx_int_t> {
    // SAFETY: guaranteed by the caller.
    let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(unsafe { &*cf }) else {
        return Err(Status::NGX_ERROR.into());
    };
    let hooks: [(u32, ngx_http_handler_pt); 4] = [
        (NGX_HTTP_SERVER_REWRITE_PHASE, Some(server_rewrite_handler)),
        (NGX_HTTP_REWRITE_PHASE, Some(rewrite_handler)),
        (NGX_HTTP_CONTENT_PHASE, Some(content_handler)),
        (NGX_HTTP_LOG_PHASE, Some(log_handler)),
    ];
    for (phase, handler) in hooks {
        // SAFETY: the phase handler arrays are initialised by the core module before any
        // postconfiguration runs, and hold `ngx_http_handler_pt` elements.
        let slot = unsafe { ngx_array_push(&mut cmcf.phases[phase as usize].handlers) }
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

/// Runs a phase handler body for a live request, panics turned into a 500.
fn with_request(
    r: *mut ngx_http_request_t,
    entry_point: &str,
    body: impl FnOnce(&mut ngx_http_request_t) -> ngx_int_t,
) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request whose connection is set.
    let request = unsafe { &mut *r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    let on_panic = || NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    guard::run(log, entry_point, on_panic, || body(request))
}

fn handle(r: *mut ngx_http_request_t, phase: Phase) -> ngx_int_t {
    with_request(r, "request handler", |request| {
        let Some(conf) = enabled(request) else {
            return Status::NGX_DECLINED.into();
        };
        #[cfg(feature = "test-hooks")]
        crate::test_hooks::at_request(request, conf, phase);
        if !is_main(request) {
            return Status::NGX_DECLINED.into();
        }
        if conf.is_decoy() {
            open_decoy_event(request);
        }
        if phase != Phase::Rewrite {
            return Status::NGX_DECLINED.into();
        }
        // The location is known from here on; the checks run once, also when the handler is
        // called again after a body read or an internal redirect.
        let Some(ctx) = request::ctx_or_create(request) else {
            return Status::NGX_DECLINED.into();
        };
        if ctx.checked {
            return Status::NGX_DECLINED.into();
        }
        ctx.checked = true;
        baits::check_request(request, conf, ctx)
    })
}

fn is_main(r: &ngx_http_request_t) -> bool {
    core::ptr::eq(r, r.main)
}

/// A decoy server's event is made at the first hook that sees the request (once per request,
/// also across internal redirects) and completed in the LOG phase, when the status is known.
fn open_decoy_event(request: &mut ngx_http_request_t) {
    let Some(sensor) = baits::sensor(request) else {
        return;
    };
    if request::ctx(request).is_some_and(|ctx| ctx.events.iter().any(|e| e.kind == Kind::Decoy)) {
        return;
    }
    let name = match request::local_addr(request) {
        Some(addr) => format!("decoy server {addr}"),
        None => "decoy server".to_owned(),
    };
    let finding = sensor.baits.decoy_server_finding(&name, None);
    let event = sensor.event(request, Kind::Decoy, Some(finding));
    if let Some(ctx) = request::ctx_or_create(request) {
        ctx.events.insert(0, event);
    }
}

extern "C" fn content_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    with_request(
        r,
        "content handler",
        |request| match Honeytrap::location_conf(request) {
            Some(conf) if conf.is_decoy() => {
                decoy::start(request, decoy::Answer::DefaultPage, true)
            }
            _ => Status::NGX_DECLINED.into(),
        },
    )
}

extern "C" fn log_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    with_request(r, "log handler", |request| {
        let Some(runtime) = runtime::get() else {
            return Status::NGX_OK.into();
        };
        let Some(ctx) = request::ctx(request) else {
            return Status::NGX_OK.into();
        };
        let status = request.headers_out.status;
        if ctx.tripwire.take().is_some() && status == 404 {
            if let Some(sensor) = baits::sensor(request) {
                if let Some(hit) = sensor.baits.classify(request.uri.as_bytes()) {
                    let finding = sensor.baits.path_finding(&hit, None);
                    let event = sensor.event(request, Kind::Bait, Some(finding));
                    ctx.events.push(event);
                }
            }
        }
        if let (Some(mut tx), Some(sensor)) = (ctx.tx.take(), baits::sensor(request)) {
            let denied = ctx.denied.take();
            ctx.score = Some(tx.anomaly_scores().inbound);
            let event = rules::finish(
                &mut tx,
                |kind| sensor.observation(request, kind),
                denied.as_ref(),
            );
            ctx.events.extend(event);
        }
        for mut event in ctx.events.drain(..) {
            event.status_code = u16::try_from(status).ok().filter(|s| *s != 0);
            runtime.push(event);
        }
        crate::memory::release_after_engine_builds();
        Status::NGX_OK.into()
    })
}

/// The request's current configuration, if the sensor watches it.
pub(crate) fn enabled(request: &impl HttpModuleConfExt) -> Option<&'static LocConf> {
    Honeytrap::location_conf(request).filter(|conf| conf.is_enabled())
}
