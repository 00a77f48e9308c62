//! Compiled operator state shared by every operator built from the same parameter while
//! one of them lives, across rules and rule sets: CRS compiles the same patterns and phrase
//! files several times (for several paranoia levels, phases or targets), and nginx keeps
//! the old rule set alive while a reload builds the new one.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use rustc_hash::{FxHashMap, FxHasher};

/// Live values by the hash of what they were built from.
pub(crate) struct Interned<V> {
    live: Mutex<Option<FxHashMap<u64, Vec<Weak<V>>>>>,
}

impl<V> Interned<V> {
    pub(crate) const fn new() -> Self {
        Interned {
            live: Mutex::new(None),
        }
    }

    /// The live value built from `key` (`built_from` tells whether a value was), or the
    /// one `build` makes, kept for the next asker.
    pub(crate) fn get_or_build<K: Hash + ?Sized>(
        &self,
        key: &K,
        built_from: impl Fn(&V) -> bool,
        build: impl FnOnce() -> Result<V, String>,
    ) -> Result<Arc<V>, String> {
        let mut hasher = FxHasher::default();
        key.hash(&mut hasher);
        let hash = hasher.finish();
        // A panic elsewhere while the lock was held leaves the map usable: it only caches.
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let map = live.get_or_insert_with(FxHashMap::default);
        let found = map.get(&hash).and_then(|same_hash| {
            same_hash
                .iter()
                .filter_map(Weak::upgrade)
                .find(|v| built_from(v))
        });
        if let Some(v) = found {
            return Ok(v);
        }
        let v = Arc::new(build()?);
        // Forget what no operator holds any more.
        map.retain(|_, same_hash| {
            same_hash.retain(|w| w.strong_count() > 0);
            !same_hash.is_empty()
        });
        map.entry(hash).or_default().push(Arc::downgrade(&v));
        Ok(v)
    }
}

/// Engines built on their first search so far, in every thread (`@rx` engines, `@pm`
/// automata): a caller that owns the process's allocator can give back, after a request
/// that built some, the memory building them used and freed.
static FIRST_SEARCH_BUILDS: AtomicU64 = AtomicU64::new(0);

pub fn first_search_builds() -> u64 {
    FIRST_SEARCH_BUILDS.load(Ordering::Relaxed)
}

/// What `cell` holds, built by `build` (and counted) if this is the first search; `None` if
/// that build failed.
pub(crate) fn built_on_first_search<T>(
    cell: &OnceLock<Option<T>>,
    build: impl FnOnce() -> Result<T, String>,
) -> Option<&T> {
    cell.get_or_init(|| {
        FIRST_SEARCH_BUILDS.fetch_add(1, Ordering::Relaxed);
        build().ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_while_alive_then_rebuilds() {
        static STRINGS: Interned<String> = Interned::new();
        let build = |s: &str| STRINGS.get_or_build(s, |v| v == s, || Ok(s.to_string()));
        let a = build("interned-a").unwrap();
        let again = build("interned-a").unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let b = build("interned-b").unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        let weak = Arc::downgrade(&a);
        drop((a, again));
        assert!(weak.upgrade().is_none());
        assert_eq!(*build("interned-a").unwrap(), "interned-a");
        assert!(STRINGS
            .get_or_build("interned-c", |_| true, || Err("no".into()))
            .is_err());
    }
}
