//! ngx_http_honeytrap_module: the thin FFI layer between nginx and `honeytrap-core`.
//!
//! This crate only translates nginx structures into core calls: directives and their merge
//! (`conf`), the request hooks (`phase`), the response filters (`filter`). Every `extern "C"`
//! entry point runs its body inside [`guard`] so that no panic crosses into nginx.

mod bait_cache;
mod baits;
mod conf;
mod decoy;
mod filter;
mod guard;
mod memory;
mod phase;
mod pool;
mod request;
mod respond;
mod response;
mod rules;
mod runtime;
mod status;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod variables;
mod zone;

use core::ffi::c_char;
use core::ptr;

use ngx::ffi::{
    ngx_conf_t, ngx_http_module_t, ngx_int_t, ngx_module_t, ngx_uint_t, NGX_HTTP_MODULE,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf};

/// Marker type through which the `ngx` crate finds our module and configurations.
pub(crate) struct Honeytrap;

impl HttpModule for Honeytrap {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the module static lives for the whole life of the loaded library; nginx writes
        // its indices only while loading the configuration, before any request is served.
        unsafe { &*ptr::addr_of!(ngx_http_honeytrap_module) }
    }
}

// SAFETY: `create_loc_conf` below allocates exactly a `conf::LocConf` for this module.
unsafe impl HttpModuleLocationConf for Honeytrap {
    type LocationConf = conf::LocConf;
}

// SAFETY: `create_main_conf` below allocates exactly a `conf::MainConf` for this module.
unsafe impl HttpModuleMainConf for Honeytrap {
    type MainConf = conf::MainConf;
}

static MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(preconfiguration),
    postconfiguration: Some(postconfiguration),
    create_main_conf: Some(conf::create_main_conf),
    init_main_conf: Some(conf::init_main_conf),
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(conf::create_loc_conf),
    merge_loc_conf: Some(conf::merge_loc_conf),
};

#[used]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_honeytrap_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(MODULE_CTX).cast_mut().cast(),
    // SAFETY: taking the address of the static command table does not read or write it.
    commands: unsafe { ptr::addr_of_mut!(conf::COMMANDS[0]) },
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_process: Some(runtime::init_process),
    exit_process: Some(runtime::exit_process),
    ..ngx_module_t::default()
};

// The three symbols `load_module` looks up. `ngx_module_order` puts us where nginx's build
// system puts a C filter module: just before the copy filter in the module list, so our
// filters run below it in the chain and see file contents in memory, as sub_filter does.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_modules: [*const ngx_module_t; 2] =
    [ptr::addr_of!(ngx_http_honeytrap_module), ptr::null()];

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_module_names: [*const c_char; 2] =
    [c"ngx_http_honeytrap_module".as_ptr(), ptr::null()];

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_module_order: [*const c_char; 3] = [
    c"ngx_http_honeytrap_module".as_ptr(),
    c"ngx_http_copy_filter_module".as_ptr(),
    ptr::null(),
];

extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: nginx passes a valid configuration context to module callbacks.
    let log = unsafe { (*cf).log };
    guard::run(log, "preconfiguration", guard::status_error, || {
        guard::install_panic_hook();
        // SAFETY: called from preconfiguration with its valid `cf`.
        match unsafe { variables::register(cf) } {
            Ok(()) => ngx::core::Status::NGX_OK.into(),
            Err(status) => status,
        }
    })
}

extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: as above.
    let log = unsafe { (*cf).log };
    guard::run(log, "postconfiguration", guard::status_error, || {
        // SAFETY: called once per configuration cycle, single-threaded, with a valid `cf`.
        unsafe {
            if let Err(status) = phase::register(cf) {
                return status;
            }
            filter::register();
        }
        memory::release_freed();
        ngx::core::Status::NGX_OK.into()
    })
}
