//! SecLang text: the directive splitter always, and the full compile (targets, operators,
//! actions, macros) when the text cannot reach the file system.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = honeytrap_seclang::parser::parse_directives(text, "fuzz");
    // Include globs and *FromFile operators would read arbitrary files.
    let lower = text.to_ascii_lowercase();
    if ["include", "file", "pmf", "ipmatchf"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return;
    }
    let _ = honeytrap_seclang::RuleSet::from_text(text, "fuzz");
});
