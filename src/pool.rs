//! Rust values owned by nginx pools: allocated with a cleanup that drops them with the pool,
//! and found again through that cleanup (module contexts are wiped by internal redirects,
//! pool cleanups are not).

use core::ffi::c_void;
use core::ptr;

use ngx::ffi::{ngx_pool_cleanup_add, ngx_pool_t};

/// Moves `value` into `pool`, dropped when the pool is destroyed; null when out of memory.
pub(crate) fn allocate<T>(pool: *mut ngx_pool_t, value: T) -> *mut T {
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

/// The `T` that [`allocate`] put into `pool`, if any (the most recent one).
pub(crate) fn find<T>(pool: *mut ngx_pool_t) -> *mut T {
    let wanted = drop_value::<T> as unsafe extern "C" fn(*mut c_void);
    // SAFETY: `pool` is live; its cleanup list is a null-terminated singly linked list.
    unsafe {
        let mut cleanup = (*pool).cleanup;
        while let Some(c) = cleanup.as_ref() {
            if c.handler.is_some_and(|h| ptr::fn_addr_eq(h, wanted)) {
                return c.data.cast();
            }
            cleanup = c.next;
        }
    }
    ptr::null_mut()
}

unsafe extern "C" fn drop_value<T>(data: *mut c_void) {
    // SAFETY: registered by `allocate` for exactly one initialised `T`, run once by the pool.
    unsafe { ptr::drop_in_place(data.cast::<T>()) }
}
