//! Turning a caught panic into a line fit for nginx's error log.

use std::any::Any;
use std::borrow::Cow;

/// The message a panic carried, as `panic!` formats it.
///
/// `panic!("literal")` carries a `&'static str`, `panic!("{x}")` a `String`;
/// `std::panic::panic_any` may carry anything else, which we cannot print.
pub fn panic_message(payload: &(dyn Any + Send)) -> Cow<'_, str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Cow::Borrowed(s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Cow::Borrowed(s.as_str())
    } else {
        Cow::Borrowed("panic with a non-string payload")
    }
}

/// One log line, without newlines, so a multi-line panic message cannot forge log entries.
pub fn log_line(entry_point: &str, payload: &(dyn Any + Send)) -> String {
    let message = panic_message(payload);
    let mut line = String::with_capacity(entry_point.len() + message.len() + 32);
    line.push_str("honeytrap: panic in ");
    line.push_str(entry_point);
    line.push_str(": ");
    for c in message.chars() {
        line.push(if c.is_control() { ' ' } else { c });
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::catch_unwind;

    fn payload_of(f: impl FnOnce() + std::panic::UnwindSafe) -> Box<dyn Any + Send> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let payload = catch_unwind(f).expect_err("closure must panic");
        std::panic::set_hook(hook);
        payload
    }

    #[test]
    fn literal_and_formatted_messages_are_kept() {
        assert_eq!(panic_message(&*payload_of(|| panic!("plain"))), "plain");
        let n = 7;
        assert_eq!(panic_message(&*payload_of(move || panic!("n={n}"))), "n=7");
    }

    #[test]
    fn foreign_payload_is_named_not_printed() {
        let payload = payload_of(|| std::panic::panic_any(42_u32));
        assert_eq!(panic_message(&*payload), "panic with a non-string payload");
    }

    #[test]
    fn log_line_has_no_control_characters() {
        let payload = payload_of(|| panic!("first\nsecond\r\tthird"));
        let line = log_line("header filter", &*payload);
        assert_eq!(
            line,
            "honeytrap: panic in header filter: first second  third"
        );
    }
}
