//! `@detectSQLi`: libinjection's SQL injection tokenizer and fingerprint list (through the
//! pure-Rust `libinjectionrs` port); the fingerprint is captured as TX:0.

use libinjectionrs::{SqliFlags, SqliState};

use super::{sqli_fingerprint, BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct DetectSqli;

pub fn new(_: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    // Built where the rules load (nginx's master): workers inherit the table and never read
    // the library's 0.3 MB keyword list it is made from.
    sqli_fingerprint::load_keywords();
    Ok(Box::new(DetectSqli))
}

/// Whether libinjectionrs 0.1.1 provably answers "not SQLi" for `input`: the empty input, a
/// word (a letter or `_`, then letters, digits and `_`), or a run of digits.
///
/// Why, from the library's `SqliState::detect`, tokenizer and fold:
/// - Without `'` and `"` the quote passes do not run; without a `--`, `#` or `/*` comment
///   (no `-`, `#`, `/` here) neither does the MySQL re-parse: one pass, quote-less ANSI.
/// - A letter or `_` starts `parse_word` (the `b e n q u x` string prefixes fall back to it
///   unless a quote or `&` follows), which stops only at bytes outside this alphabet and
///   splits only at `.` or a backtick: one token, whatever type the keyword table gives it.
///   A digit starts `parse_number`, which takes every digit (`0x`/`0b` need a letter).
/// - Folding a single token keeps it, or drops it (a type, a unary operator): the
///   fingerprint is one type character or empty. The empty one is never listed; the only
///   one-character fingerprint listed is `X` (evil), which only a comment or the `{` fold
///   produces. A digit-led word is not screened: `1union` is two tokens.
///
/// `screen_differential` checks this against the library on millions of inputs.
pub(super) fn provably_not_sqli(input: &[u8]) -> bool {
    let is_word_byte = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match input.first() {
        None => true,
        Some(b) if b.is_ascii_digit() => input.iter().all(u8::is_ascii_digit),
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => input.iter().all(is_word_byte),
        Some(_) => false,
    }
}

impl Operator for DetectSqli {
    fn matches(&self, input: &[u8], caps: &mut Captures) -> bool {
        if provably_not_sqli(input) || sqli_fingerprint::clears(input) {
            return false;
        }
        // What `libinjectionrs::detect_sqli` does, except that it tokenizes the input a
        // second time for the fingerprint, whatever the outcome: here only for a capture.
        let mut state = SqliState::new(input, SqliFlags::FLAG_NONE);
        if !state.detect() {
            return false;
        }
        if caps.wanted {
            // The fingerprint of the pass that matched, as C libinjection hands it out;
            // `get_fingerprint` would tokenize the input once more to compute it again.
            let fp = &state.fingerprint;
            let len = fp.iter().position(|&b| b == 0).unwrap_or(fp.len());
            caps.set([&fp[..len]]);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn detects_classic_injection() {
        let op = build("detectSQLi", "");
        assert!(test_match(&*op, b"1' OR '1'='1"));
        assert!(test_match(&*op, b"1 UNION SELECT password FROM users--"));
        assert!(!test_match(&*op, b"hello world"));
        assert!(!test_match(&*op, b""));
    }

    /// Same outcome and captured fingerprint as the library's own entry point.
    #[test]
    fn agrees_with_libinjectionrs_detect_sqli() {
        use crate::operators::Captures;
        let op = build("detectSQLi", "");
        let inputs: &[&[u8]] = &[
            b"1' OR '1'='1",
            b"1 UNION SELECT password FROM users--",
            b"1' UNION SELECT password FROM users--",
            b"admin'--",
            b"1;DROP TABLE users",
            b"\"' or 1=1 #",
            b"1 AND SLEEP(5)",
            b"-1' and 1=(select 1)--",
            b"books",
            b"rust programming",
            b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            b"it's a test",
            b"select",
            b"1e3",
            b"",
            b"\0'\xff\xfe",
        ];
        let mut positives = 0;
        for input in inputs {
            let want = libinjectionrs::detect_sqli(input);
            let mut caps = Captures::new(true);
            let got = op.matches(input, &mut caps);
            let shown = String::from_utf8_lossy(input);
            assert_eq!(got, want.is_injection(), "{shown}");
            if got {
                positives += 1;
                let fp = want.fingerprint.map(|f| f.to_string()).unwrap_or_default();
                assert_eq!(caps.groups(), vec![fp.into_bytes()], "{shown}");
            } else {
                assert!(caps.groups().is_empty(), "{shown}");
            }
        }
        assert!(positives >= 5, "the corpus exercises the capture");
    }
}
