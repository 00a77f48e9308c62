//! `@detectSQLi` answers "not SQLi" without libinjection on plain values, from the
//! library's first pass computed by the engine: wherever the engine computes that
//! fingerprint it must be the library's, and wherever it clears a value the library must
//! find no injection.
#![no_main]

use honeytrap_seclang::operators::{sqli_cleared, sqli_first_pass};
use libfuzzer_sys::fuzz_target;
use libinjectionrs::{SqliFlags, SqliState};

fuzz_target!(|data: &[u8]| {
    if let Some(fp) = sqli_first_pass(data) {
        let mut state = SqliState::new(data, SqliFlags::FLAG_NONE);
        assert_eq!(
            fp,
            state.get_fingerprint().as_str().as_bytes(),
            "{:?}",
            String::from_utf8_lossy(data)
        );
    }
    if sqli_cleared(data) {
        assert!(
            !libinjectionrs::detect_sqli(data).is_injection(),
            "cleared an injection: {:?}",
            String::from_utf8_lossy(data)
        );
    }
});
