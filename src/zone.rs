//! `honeytrap_zone name:size [ttl=]`: the flagged-clients table in nginx shared memory, so
//! every worker knows who touched a bait. The table logic lives in the core
//! (`honeytrap_core::flagged`); this file only finds the memory and holds the zone's lock
//! around each short lookup or update.

use core::ffi::c_void;
use core::ptr;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use honeytrap_core::flagged::{Flagged, FlaggedTable, Slot};
use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_int_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_shmtx_lock, ngx_shmtx_unlock,
    ngx_slab_calloc, ngx_slab_pool_t, ngx_str_t,
};
use ngx::http::HttpModule;

use crate::Honeytrap;

/// What a zone's init callback found; lives in the configuration pool.
pub(crate) struct Zone {
    pub ttl: u64,
    shpool: *mut ngx_slab_pool_t,
    slots: *mut Slot,
    capacity: usize,
}

/// nginx refuses smaller zones ("zone is too small") below 8 pages; ask for a bit more.
pub(crate) const MIN_SIZE: usize = 64 * 1024;

/// Registers the zone; nginx maps it in the master and calls `init` before the workers fork.
///
/// # Safety
/// `cf` must be a valid configuration context.
pub(crate) unsafe fn add(
    cf: *mut ngx_conf_t,
    name: &mut ngx_str_t,
    size: usize,
    zone: *mut Zone,
) -> Result<*mut ngx_shm_zone_t, String> {
    let tag = ptr::from_ref(Honeytrap::module())
        .cast_mut()
        .cast::<c_void>();
    // SAFETY: valid `cf`; `name` lives in the configuration pool.
    let shm_zone = unsafe { ngx_shared_memory_add(cf, name, size, tag) };
    // SAFETY: null or the cycle's zone entry.
    let entry = unsafe { shm_zone.as_mut() }.ok_or("cannot add the shared memory zone")?;
    if !entry.data.is_null() {
        return Err(format!(
            "zone \"{}\" is already defined",
            String::from_utf8_lossy(name.as_bytes())
        ));
    }
    entry.init = Some(init);
    entry.data = zone.cast();
    Ok(shm_zone)
}

extern "C" fn init(shm_zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx calls init with its live zone, whose `data` is our Zone, and `old` the
    // previous cycle's Zone for the same name and size (a reload keeps the table).
    unsafe {
        let zone = &mut *(*shm_zone).data.cast::<Zone>();
        if let Some(old) = old.cast::<Zone>().as_ref() {
            zone.shpool = old.shpool;
            zone.slots = old.slots;
            zone.capacity = old.capacity;
            return Status::NGX_OK.into();
        }
        let shpool = (*shm_zone).shm.addr.cast::<ngx_slab_pool_t>();
        // The slab allocator keeps its own bookkeeping in the zone: try for most of it.
        let mut capacity = FlaggedTable::capacity_for((*shm_zone).shm.size / 4 * 3);
        while capacity > 0 {
            let slots = ngx_slab_calloc(shpool, capacity * size_of::<Slot>()).cast::<Slot>();
            if !slots.is_null() {
                zone.shpool = shpool;
                zone.slots = slots;
                zone.capacity = capacity;
                return Status::NGX_OK.into();
            }
            capacity /= 2;
        }
        Status::NGX_ERROR.into()
    }
}

impl Zone {
    pub fn new(ttl: u64) -> Zone {
        Zone {
            ttl,
            shpool: ptr::null_mut(),
            slots: ptr::null_mut(),
            capacity: 0,
        }
    }

    fn with_table<T>(&self, f: impl FnOnce(&mut FlaggedTable<'_>) -> T) -> Option<T> {
        if self.slots.is_null() {
            return None;
        }
        // SAFETY: the slots were allocated in the zone for `capacity` entries; every process
        // touches them only under the zone's mutex, held for this short call only.
        unsafe {
            ngx_shmtx_lock(&mut (*self.shpool).mutex);
            let slots = core::slice::from_raw_parts_mut(self.slots, self.capacity);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                f(&mut FlaggedTable::new(slots, self.ttl))
            }));
            ngx_shmtx_unlock(&mut (*self.shpool).mutex);
            result.ok()
        }
    }

    /// What the zone knows about `ip` now.
    pub fn lookup(&self, ip: IpAddr) -> Option<Flagged> {
        self.with_table(|t| t.lookup(ip, now())).flatten()
    }

    /// Records a bait touch; returns what was known before.
    pub fn flag(&self, ip: IpAddr) -> Option<Flagged> {
        self.with_table(|t| t.flag(ip, now())).flatten()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
