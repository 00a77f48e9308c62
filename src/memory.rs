//! Giving freed heap pages back to the kernel at the moments the module frees a lot:
//! after configuration (building the CRS peaks megabytes above what the built rule set
//! keeps), after a request whose rules built operator engines on their first search
//! (building a regex's engines uses and frees several times what they keep), and on the
//! shipper thread once it is idle after a burst of events (the events were built in the main
//! heap and serialized in the thread's own arena). glibc keeps freed pages resident, and every
//! worker would count them in its RSS.

use std::sync::atomic::{AtomicU64, Ordering};

use honeytrap_seclang::operators::first_search_builds;

/// The engine builds already followed by a release, in this process.
static RELEASED_AFTER: AtomicU64 = AtomicU64::new(0);

/// Returns the free pages of every malloc arena to the kernel.
pub(crate) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free heap pages back to the kernel (it takes the
    // arenas' own locks); nothing of ours points into free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// After a request: releases what building engines freed, if any were built since the last
/// release. Most requests build none (a worker builds each engine once), and pay one
/// atomic load.
pub(crate) fn release_after_engine_builds() {
    let builds = first_search_builds();
    if RELEASED_AFTER.swap(builds, Ordering::Relaxed) != builds {
        release_freed();
    }
}
