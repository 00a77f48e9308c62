//! JSON request bodies into ARGS_POST.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = honeytrap_seclang::body::Pairs::default();
    let _ = honeytrap_seclang::body::json::parse(data, &mut out);
});
