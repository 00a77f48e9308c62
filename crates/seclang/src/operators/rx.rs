//! `@rx`: a regular expression, matched against raw bytes as PCRE does without UTF mode
//! (`.` is any byte, `\xNN` is a byte, classes are ASCII, dot matches newline).
//!
//! Patterns compile with the `regex` crate (linear time). PCRE-only syntax it rejects
//! (lookaround, backreferences, possessive quantifiers, ...) falls back to PCRE2 with JIT,
//! whose built-in match limit bounds the work; each fallback is reported once as a notice.

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
enum Engine {
    Rust(regex::bytes::Regex),
    Pcre(pcre2::bytes::Regex),
}

/// A compiled `@rx` pattern.
#[derive(Debug)]
pub struct Rx {
    engine: Engine,
    pattern: String,
}

pub fn new(param: &str, ctx: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Rx::compile(param, ctx.notices)?))
}

impl Rx {
    /// Compile `pattern`, falling back to PCRE2 (with a notice) when the regex crate cannot.
    pub fn compile(pattern: &str, notices: &mut Vec<String>) -> Result<Rx, String> {
        let built = regex::bytes::RegexBuilder::new(pattern)
            .unicode(false)
            .dot_matches_new_line(true)
            .size_limit(1 << 27)
            .dfa_size_limit(1 << 27)
            .build();
        let engine = match built {
            Ok(re) => Engine::Rust(re),
            Err(rust_err) => {
                let re = pcre2::bytes::RegexBuilder::new()
                    .dotall(true)
                    .jit_if_available(true)
                    .build(pattern)
                    .map_err(|e| format!("invalid regex ({e}; regex crate: {rust_err})"))?;
                let shown: String = pattern.chars().take(60).collect();
                notices.push(format!("@rx compiled with the PCRE2 fallback: {shown}"));
                Engine::Pcre(re)
            }
        };
        Ok(Rx {
            engine,
            pattern: pattern.to_string(),
        })
    }

    /// The source pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern needed the PCRE2 fallback.
    pub fn is_fallback(&self) -> bool {
        matches!(self.engine, Engine::Pcre(_))
    }
}

impl Operator for Rx {
    fn matches(&self, input: &[u8], caps: &mut Captures) -> bool {
        match &self.engine {
            // Captures allocate; most values do not match, so ask the cheap question first.
            Engine::Rust(re) if caps.wanted && !re.is_match(input) => false,
            Engine::Rust(re) if caps.wanted => match re.captures(input) {
                Some(c) => {
                    caps.groups.clear();
                    caps.groups.extend(
                        (0..c.len().min(10))
                            .map(|i| c.get(i).map_or(Vec::new(), |m| m.as_bytes().to_vec())),
                    );
                    true
                }
                None => false,
            },
            Engine::Rust(re) => re.is_match(input),
            // A PCRE2 error (match limit hit) counts as no match, as in ModSecurity.
            Engine::Pcre(re) if caps.wanted && !re.is_match(input).unwrap_or(false) => false,
            Engine::Pcre(re) if caps.wanted => match re.captures(input) {
                Ok(Some(c)) => {
                    caps.groups.clear();
                    caps.groups.extend(
                        (0..c.len().min(10))
                            .map(|i| c.get(i).map_or(Vec::new(), |m| m.as_bytes().to_vec())),
                    );
                    true
                }
                _ => false,
            },
            Engine::Pcre(re) => re.is_match(input).unwrap_or(false),
        }
    }

    fn as_rx(&self) -> Option<&Rx> {
        Some(self)
    }

    fn literals(&self) -> Option<Vec<Vec<u8>>> {
        // PCRE-only syntax is not understood by the analysis.
        if self.is_fallback() {
            return None;
        }
        crate::prefilter::required_literals(&self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::Captures;

    #[test]
    fn bytes_semantics() {
        let mut n = Vec::new();
        let re = Rx::compile(r"^a.b\xff$", &mut n).unwrap();
        assert!(re.matches(b"a\nb\xff", &mut Captures::default()));
        assert!(!re.matches(b"a\nb\xc3\xbf", &mut Captures::default()));
        assert!(!re.is_fallback());
        assert!(n.is_empty());
    }

    #[test]
    fn captures_groups() {
        let mut n = Vec::new();
        let re = Rx::compile(r"(\d+)-(\w+)?", &mut n).unwrap();
        let mut caps = Captures {
            wanted: true,
            groups: Vec::new(),
        };
        assert!(re.matches(b"x 12- y", &mut caps));
        assert_eq!(
            caps.groups,
            vec![b"12-".to_vec(), b"12".to_vec(), Vec::new()]
        );
    }

    #[test]
    fn pcre_fallback_for_lookbehind_and_backrefs() {
        let mut n = Vec::new();
        let re = Rx::compile(r"(?<!a)b(['\x22])x\1", &mut n).unwrap();
        assert!(re.is_fallback());
        assert_eq!(n.len(), 1);
        assert!(re.matches(b"cb'x'", &mut Captures::default()));
        assert!(!re.matches(b"ab'x'", &mut Captures::default()));
        assert!(!re.matches(b"cb'x\"", &mut Captures::default()));
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        assert!(Rx::compile("(unclosed", &mut Vec::new()).is_err());
    }
}
