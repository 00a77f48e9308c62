//! `honeytrap_status;`: this worker's pipeline counters as JSON.

use ngx::ffi::{
    ngx_http_discard_request_body, ngx_http_request_t, ngx_int_t, NGX_HTTP_INTERNAL_SERVER_ERROR,
};

use crate::{guard, respond, runtime};

pub(crate) extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls content handlers with a live request.
    let request = unsafe { &mut *r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    guard::run(
        log,
        "status handler",
        || NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        || {
            // SAFETY: as above; the status page ignores any body.
            let rc = unsafe { ngx_http_discard_request_body(request) };
            if rc != 0 {
                return rc;
            }
            let body = match runtime::get() {
                Some(runtime) => format!(
                    "{{\"pid\":{},\"pipeline\":{}}}",
                    std::process::id(),
                    runtime.stats_json()
                ),
                None => {
                    "{\"error\":\"the event pipeline does not run in this process\"}".to_owned()
                }
            };
            respond::send(request, 200, "application/json", body.as_bytes())
        },
    )
}
