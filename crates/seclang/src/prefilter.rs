//! Literal prefilter: for each `@rx` rule whose pattern requires one of a finite set of
//! literals, a value that contains none of them cannot match, so the regex is skipped.
//! (Filled in by `Prefilter::build`; rules without usable literals always run.)

use aho_corasick::AhoCorasick;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use crate::rule::{Rule, RuleOperator};

/// Per-rule required-literal sets.
#[derive(Debug, Default)]
pub struct Prefilter {
    /// Indexed like `RuleSet::rules`; `None` = always evaluate.
    by_rule: Vec<Option<AhoCorasick>>,
}

/// Literals one of which must occur in any match of `pattern`, if that set is small.
fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .build()
        .parse(pattern)
        .ok()?;
    let mut ex = Extractor::new();
    ex.kind(ExtractKind::Prefix)
        .limit_total(400)
        .limit_class(10)
        .limit_repeat(10)
        .limit_literal_len(100);
    let mut seq = ex.extract(&hir);
    seq.optimize_for_prefix_by_preference();
    let lits = seq.literals()?;
    if lits.is_empty() || lits.iter().any(|l| l.as_bytes().len() < 2) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

impl Prefilter {
    pub fn build(rules: &[Rule]) -> Prefilter {
        let by_rule = rules
            .iter()
            .map(|r| {
                // Only the chain starter's own operator, and only un-negated regexes.
                if r.negated {
                    return None;
                }
                let RuleOperator::Static(op) = &r.operator else {
                    return None;
                };
                let rx = op.as_rx()?;
                if rx.is_fallback() {
                    return None;
                }
                let lits = required_literals(rx.pattern())?;
                // Case-insensitive patterns produce case variants; fold them.
                aho_corasick::AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .build(&lits)
                    .ok()
            })
            .collect();
        Prefilter { by_rule }
    }

    /// Whether rule `idx` can match `value` at all.
    pub fn may_match(&self, idx: usize, value: &[u8]) -> bool {
        match self.by_rule.get(idx) {
            Some(Some(ac)) => ac.is_match(value),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_required_literals() {
        let l = required_literals("(?i)(?:union|select)\\s+").unwrap();
        assert!(
            l.iter().any(|x| x.len() >= 2
                && b"union"[..x.len().min(5)].eq_ignore_ascii_case(&x[..x.len().min(5)])),
            "{l:?}"
        );
        assert!(required_literals("\\d+").is_none());
        assert!(required_literals("a|b").is_none());
    }
}
