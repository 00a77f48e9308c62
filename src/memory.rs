//! Giving freed heap pages back to the kernel at the moments the module frees a lot:
//! after configuration (building the CRS peaks megabytes above what the built rule set
//! keeps), after a request whose rules built operator engines on their first search
//! (building a regex's engines uses and frees several times what they keep), and on the
//! shipper thread once it is idle after a burst of events (the events were built and
//! serialized in the main heap, the one arena of a worker). glibc keeps freed pages resident,
//! and every worker would count them in its RSS.

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

/// Makes every thread of this worker allocate from the main heap, the shipper included,
/// instead of glibc giving the shipper an arena of its own. `malloc_trim` returns the free
/// top of the main heap but never a thread arena's: after a burst of events the shipper's
/// arena kept up to glibc's trim threshold of free pages (0.1–0.8 MB measured), a threshold
/// glibc raises as large blocks are freed. The two threads then share one arena lock; under
/// an attack flood the worker's CPU per request did not change measurably. Call it before
/// the shipper thread starts.
pub(crate) fn use_one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator parameter, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
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
