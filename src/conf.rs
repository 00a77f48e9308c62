//! Directives and the per-location configuration they build.

use core::ffi::{c_char, c_void};
use core::mem::offset_of;
use core::ptr;

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_command_t, ngx_conf_set_flag_slot, ngx_conf_t, ngx_flag_t, ngx_pool_cleanup_add,
    ngx_pool_t, ngx_uint_t, NGX_CONF_FLAG, NGX_CONF_UNSET, NGX_HTTP_LOC_CONF,
    NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_SRV_CONF,
};
use ngx::ngx_string;

use crate::guard;

/// Configuration of one `http`, `server` or `location` block.
pub(crate) struct LocConf {
    /// `honeytrap on|off`; `NGX_CONF_UNSET` until set here or inherited by the merge.
    pub enabled: ngx_flag_t,
    #[cfg(feature = "test-hooks")]
    pub test_panic: crate::test_hooks::PanicPoint,
}

impl Default for LocConf {
    fn default() -> Self {
        Self {
            enabled: NGX_CONF_UNSET as ngx_flag_t,
            #[cfg(feature = "test-hooks")]
            test_panic: Default::default(),
        }
    }
}

impl LocConf {
    pub fn is_enabled(&self) -> bool {
        self.enabled == 1
    }

    /// Inherit what this block did not set from the enclosing one.
    fn merge(&mut self, parent: &LocConf) {
        if self.enabled == NGX_CONF_UNSET as ngx_flag_t {
            self.enabled = if parent.enabled == NGX_CONF_UNSET as ngx_flag_t {
                0
            } else {
                parent.enabled
            };
        }
        #[cfg(feature = "test-hooks")]
        self.test_panic.merge(&parent.test_panic);
    }
}

pub(crate) extern "C" fn create_loc_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: nginx passes a valid configuration context to module callbacks.
    let (log, pool) = unsafe { ((*cf).log, (*cf).pool) };
    guard::run(log, "create_loc_conf", ptr::null_mut, || {
        allocate(pool, LocConf::default()).cast()
    })
}

pub(crate) extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    parent: *mut c_void,
    child: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx passes a valid configuration context to module callbacks.
    let log = unsafe { (*cf).log };
    guard::run(
        log,
        "merge_loc_conf",
        || NGX_CONF_ERROR,
        || {
            // SAFETY: both pointers come from `create_loc_conf` of this module and are distinct.
            let (parent, child) =
                unsafe { (&*parent.cast::<LocConf>(), &mut *child.cast::<LocConf>()) };
            child.merge(parent);
            NGX_CONF_OK
        },
    )
}

/// Moves `value` into `pool`, dropped when the pool is destroyed; null when out of memory.
fn allocate<T>(pool: *mut ngx_pool_t, value: T) -> *mut T {
    // SAFETY: `pool` is a live pool; the cleanup's data is a fresh, aligned allocation of
    // `size_of::<T>()` bytes that we initialise before anything can read it.
    unsafe {
        let cleanup = ngx_pool_cleanup_add(pool, core::mem::size_of::<T>());
        if cleanup.is_null() {
            return ptr::null_mut();
        }
        let p = (*cleanup).data.cast::<T>();
        ptr::write(p, value);
        (*cleanup).handler = Some(drop_value::<T>);
        p
    }
}

unsafe extern "C" fn drop_value<T>(data: *mut c_void) {
    // SAFETY: registered by `allocate` for exactly one initialised `T`, run once by the pool.
    unsafe { ptr::drop_in_place(data.cast::<T>()) }
}

const ANY_HTTP_BLOCK: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

#[cfg(not(feature = "test-hooks"))]
const COMMAND_COUNT: usize = 2;
#[cfg(feature = "test-hooks")]
const COMMAND_COUNT: usize = 3;

// nginx keeps pointers into this table and writes nothing to it; `static mut` only because the
// C type wants `*mut` members.
pub(crate) static mut COMMANDS: [ngx_command_t; COMMAND_COUNT] = [
    ngx_command_t {
        name: ngx_string!("honeytrap"),
        type_: (ANY_HTTP_BLOCK | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ngx_conf_set_flag_slot),
        conf: NGX_HTTP_LOC_CONF_OFFSET as ngx_uint_t,
        offset: offset_of!(LocConf, enabled),
        post: ptr::null_mut(),
    },
    #[cfg(feature = "test-hooks")]
    crate::test_hooks::PANIC_COMMAND,
    ngx_command_t::empty(),
];
