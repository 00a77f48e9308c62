//! `$honeytrap_flagged`: "1" when the shared zone remembers this client touching a bait,
//! else "0", so configuration can route or deny them (`map`, `if`, `return`).
//! `$honeytrap_score`: the request's inbound anomaly score from the rules ("0" without rules).

use core::ptr;

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_int_t, ngx_variable_value_t,
    NGX_HTTP_VAR_NOCACHEABLE,
};
use ngx::http::HttpModuleMainConf;
use ngx::ngx_string;

use crate::{baits, guard, request, Honeytrap};

/// # Safety
/// `cf` must be the valid context of a preconfiguration callback.
pub(crate) unsafe fn register(cf: *mut ngx_conf_t) -> Result<(), ngx_int_t> {
    let mut name = ngx_string!("honeytrap_flagged");
    // SAFETY: valid `cf`; nginx copies the name.
    let var = unsafe { ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as usize) };
    // SAFETY: null or the variable nginx just added.
    let var = unsafe { var.as_mut() }.ok_or(Status::NGX_ERROR.0)?;
    var.get_handler = Some(flagged);
    var.data = 0;
    let mut name = ngx_string!("honeytrap_score");
    // SAFETY: as above.
    let var = unsafe { ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as usize) };
    // SAFETY: as above.
    let var = unsafe { var.as_mut() }.ok_or(Status::NGX_ERROR.0)?;
    var.get_handler = Some(score);
    var.data = 0;
    Ok(())
}

extern "C" fn score(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    // SAFETY: nginx calls variable handlers with a live request.
    let request = unsafe { &mut *r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    let value = guard::run(
        log,
        "$honeytrap_score",
        || 0,
        || {
            let Some(ctx) = request::ctx(request) else {
                return 0;
            };
            match &ctx.tx {
                Some(tx) => tx.anomaly_scores().inbound,
                None => ctx.score.unwrap_or(0),
            }
        },
    );
    let text = value.to_string();
    // SAFETY: the value lives in the request pool; `v` is ours to fill.
    unsafe {
        let data = ngx::ffi::ngx_pnalloc(request.pool, text.len()).cast::<u8>();
        if data.is_null() {
            return Status::NGX_ERROR.into();
        }
        ptr::copy_nonoverlapping(text.as_ptr(), data, text.len());
        let v = &mut *v;
        v.set_len(text.len() as u32);
        v.set_valid(1);
        v.set_no_cacheable(1);
        v.set_not_found(0);
        v.data = data;
    }
    Status::NGX_OK.into()
}

extern "C" fn flagged(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    // SAFETY: nginx calls variable handlers with a live request.
    let request = unsafe { &*r };
    // SAFETY: as above.
    let log = unsafe { (*request.connection).log };
    let is_flagged = guard::run(
        log,
        "$honeytrap_flagged",
        || false,
        || {
            let zone = Honeytrap::main_conf(request).and_then(|m| m.zone());
            let ip = baits::client_ip(request);
            matches!((zone, ip), (Some(zone), Some(ip)) if zone.lookup(ip).is_some())
        },
    );
    let value: &'static [u8] = if is_flagged { b"1" } else { b"0" };
    // SAFETY: `v` is the variable value nginx asks us to fill; the data is static.
    unsafe {
        let v = &mut *v;
        v.set_len(value.len() as u32);
        v.set_valid(1);
        v.set_no_cacheable(1);
        v.set_not_found(0);
        v.data = ptr::from_ref(value).cast::<u8>().cast_mut();
    }
    Status::NGX_OK.into()
}
