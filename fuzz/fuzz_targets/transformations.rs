//! Every transformation: the first byte picks one from the table, the rest is the input.
//! Also checks the engine's shortcut: when `unchanged` (or `unchanged_given`, from the
//! value's features) says a value passes through as it is, the transformation must indeed
//! return it unchanged; and the phase prefilter's: a case-blind transformation gives the
//! same output, up to ASCII case, for the input lower-cased, and no output is longer than
//! `max_len` says (values too short for a literal are not scanned).
#![no_main]

use honeytrap_seclang::transformations::{
    apply, case_blind, features, max_len, unchanged, unchanged_given, TABLE,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let id = pick % TABLE.len() as u8;
    let mut out = Vec::new();
    apply(id, input, &mut out);
    assert!(
        out.len() <= max_len(id, input.len()),
        "{} made {} bytes of {}",
        TABLE[id as usize].0,
        out.len(),
        input.len()
    );
    if unchanged(id, input) || unchanged_given(id, features(input), input) {
        assert_eq!(
            out, input,
            "{} changed a value said unchanged",
            TABLE[id as usize].0
        );
    }
    if case_blind(id) {
        let mut from_lower = Vec::new();
        apply(id, &input.to_ascii_lowercase(), &mut from_lower);
        assert!(
            out.eq_ignore_ascii_case(&from_lower),
            "{} is not case-blind",
            TABLE[id as usize].0
        );
    }
});
