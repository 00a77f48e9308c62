//! Keeps Rust panics from crossing into nginx.
//!
//! Unwinding through a C frame aborts the process, which would take down a worker and every
//! connection it holds. Each entry point therefore runs its body in [`run`]: a panic is caught,
//! logged at `alert` with where it happened, and turned into the failure value the caller picks
//! (a 500 for the request, an error for configuration), and the worker carries on.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use ngx::ffi::{ngx_int_t, ngx_log_t, NGX_LOG_ALERT};

thread_local! {
    /// Where the last panic on this thread happened, recorded by our hook for the alert line.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the default hook (which prints unformatted text to stderr, i.e. into the error
/// log) by one that only records the location; [`run`] logs it in nginx's format.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
        }));
    });
}

/// Runs `body`; on panic logs at `alert` and returns `on_panic()` instead.
pub(crate) fn run<R>(
    log: *mut ngx_log_t,
    entry_point: &str,
    on_panic: impl FnOnce() -> R,
    body: impl FnOnce() -> R,
) -> R {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let mut line = honeytrap_core::panic::log_line(entry_point, &*payload);
            if let Some(location) = PANIC_LOCATION.with(|slot| slot.borrow_mut().take()) {
                line.push_str(" (at ");
                line.push_str(&location);
                line.push(')');
            }
            if !log.is_null() {
                ngx::ngx_log_error!(NGX_LOG_ALERT, log, "{line}");
            }
            on_panic()
        }
    }
}

/// Failure value for callbacks that return an nginx status.
pub(crate) fn status_error() -> ngx_int_t {
    ngx::core::Status::NGX_ERROR.into()
}
