//! Per-worker memory of recent bait tokens, so a busy page does not pay an HMAC per response:
//! the hidden field's token and the decoy cookie set are reused for the same client within a
//! short window (they still name that client and a time within the window), and a cookie
//! header already verified untouched is not verified again within the window. HTML pages
//! served whole in one buffer keep their insertion points (see [`PlanCache`]). Worker main
//! thread only; bounded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use honeytrap_core::bait::PlanCache;

/// Seconds a token or a verification is reused.
const WINDOW: u64 = 30;
/// Entries kept; the map is cleared when full (an occasional extra HMAC, never a failure).
const CAPACITY: usize = 4096;

/// What each client was issued, and in which window.
struct PerClient<T> {
    issued: HashMap<IpAddr, (u64, T)>,
}

impl<T: Clone> PerClient<T> {
    fn new() -> Self {
        PerClient {
            issued: HashMap::new(),
        }
    }

    fn get(&self, client: IpAddr, now: SystemTime) -> Option<T> {
        let (issued_in, value) = self.issued.get(&client)?;
        (*issued_in == window(now)).then(|| value.clone())
    }

    fn insert(&mut self, client: IpAddr, now: SystemTime, value: T) {
        if self.issued.len() >= CAPACITY {
            self.issued.clear();
        }
        self.issued.insert(client, (window(now), value));
    }
}

thread_local! {
    static FIELDS: RefCell<PerClient<Arc<[u8]>>> = RefCell::new(PerClient::new());
    static SET_COOKIES: RefCell<PerClient<Arc<str>>> = RefCell::new(PerClient::new());
    static COOKIES: RefCell<HashMap<Vec<u8>, u64>> = RefCell::new(HashMap::new());
    static PLANS: RefCell<PlanCache> = RefCell::new(PlanCache::default());
}

/// Runs `f` with this worker's page plans.
pub(crate) fn with_page_plans<R>(f: impl FnOnce(&mut PlanCache) -> R) -> R {
    PLANS.with(|plans| f(&mut plans.borrow_mut()))
}

fn window(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / WINDOW)
}

/// The field markup for `client`, issued now or reused from earlier in this window.
pub(crate) fn field_markup(
    client: IpAddr,
    now: SystemTime,
    issue: impl FnOnce() -> Arc<[u8]>,
) -> Arc<[u8]> {
    FIELDS.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.get(client, now).unwrap_or_else(|| {
            let markup = issue();
            cache.insert(client, now, markup.clone());
            markup
        })
    })
}

/// The decoy cookie's `Set-Cookie` value for `client`, issued now or reused from earlier in
/// this window: a client that never sends it back gets it on every HTML response.
pub(crate) fn set_cookie(
    client: IpAddr,
    now: SystemTime,
    issue: impl FnOnce() -> Option<String>,
) -> Option<Arc<str>> {
    SET_COOKIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(value) = cache.get(client, now) {
            return Some(value);
        }
        let value: Arc<str> = issue()?.into();
        cache.insert(client, now, value.clone());
        Some(value)
    })
}

/// Whether these exact cookie headers were verified untouched in this window.
pub(crate) fn cookie_seen_untouched(headers: &[u8], now: SystemTime) -> bool {
    let w = window(now);
    COOKIES.with(|cache| cache.borrow().get(headers) == Some(&w))
}

pub(crate) fn remember_cookie_untouched(headers: Vec<u8>, now: SystemTime) {
    let w = window(now);
    COOKIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(headers, w);
    });
}
