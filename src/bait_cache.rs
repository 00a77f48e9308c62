//! Per-worker memory of recent bait tokens, so a busy page does not pay an HMAC per response:
//! the hidden field's token is reused for the same client within a short window (it still
//! names that client and a time within the window), and a cookie header already verified
//! untouched is not verified again within the window. Worker main thread only; bounded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds a token or a verification is reused.
const WINDOW: u64 = 30;
/// Entries kept; the map is cleared when full (an occasional extra HMAC, never a failure).
const CAPACITY: usize = 4096;

/// A client's field markup and the window it was issued in.
type FieldCache = HashMap<IpAddr, (u64, Arc<[u8]>)>;

thread_local! {
    static FIELDS: RefCell<FieldCache> = RefCell::new(HashMap::new());
    static COOKIES: RefCell<HashMap<Vec<u8>, u64>> = RefCell::new(HashMap::new());
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
    let w = window(now);
    FIELDS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((issued_in, markup)) = cache.get(&client) {
            if *issued_in == w {
                return markup.clone();
            }
        }
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        let markup = issue();
        cache.insert(client, (w, markup.clone()));
        markup
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
