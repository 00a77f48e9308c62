//! Macro expansion (`%{tx.score}`, `%{MATCHED_VAR}`, `%{REQUEST_HEADERS.host}`), parsed at
//! load time into literal and variable parts.

use crate::store::SlotTable;
use crate::variables::Var;

/// One part of a macro string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(Vec<u8>),
    /// A variable, with its (lower-cased) key for collections.
    Var(Var, Option<Vec<u8>>),
    /// A TX key the rule set numbered ([`Macro::number_tx_keys`]): the key, and its slot.
    TxSlot(Vec<u8>, u32),
}

impl Part {
    /// The capture group `TX:0`..`TX:9` this part reads (numbered first, they are slots
    /// 0..9), if it is one.
    pub fn capture_group(&self) -> Option<usize> {
        match self {
            Part::TxSlot(key, slot) if *slot < 10 && key[..] == [b'0' + *slot as u8] => {
                Some(*slot as usize)
            }
            _ => None,
        }
    }
}

/// A variable reference, as a resolver is asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref<'k> {
    Var(Var, Option<&'k [u8]>),
    /// The value of TX's slot (its key numbered when the rule set was built).
    TxSlot(u32),
}

/// Resolves one variable reference, appending its value.
pub type Resolver<'a> = dyn FnMut(Ref<'_>, &mut Vec<u8>) + 'a;

/// A string that may hold `%{...}` references.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Macro {
    pub parts: Vec<Part>,
}

impl Macro {
    /// Parse; an unknown variable inside `%{}` is kept literally (as ModSecurity does).
    pub fn parse(s: &str) -> Macro {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("%{") {
            let Some(len) = rest[start + 2..].find('}') else {
                break;
            };
            let inner = &rest[start + 2..start + 2 + len];
            lit.extend_from_slice(&rest.as_bytes()[..start]);
            let (name, key) = match inner.split_once(['.', ':']) {
                Some((n, k)) => (n, Some(k.to_ascii_lowercase().into_bytes())),
                None => (inner, None),
            };
            match Var::from_name(name) {
                Some((var, _)) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(var, key));
                }
                None => lit.extend_from_slice(&rest.as_bytes()[start..start + 3 + len]),
            }
            rest = &rest[start + 3 + len..];
        }
        lit.extend_from_slice(rest.as_bytes());
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        // Kept for the rule set's life in every worker: no spare capacity.
        for p in &mut parts {
            if let Part::Lit(l) = p {
                l.shrink_to_fit();
            }
        }
        parts.shrink_to_fit();
        Macro { parts }
    }

    /// The text when it holds no variable references.
    pub fn as_literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(b""),
            [Part::Lit(l)] => Some(l),
            _ => None,
        }
    }

    /// The literal text every expansion starts with, and the one it ends with (empty
    /// where a variable begins or ends it).
    pub fn literal_ends(&self) -> (&[u8], &[u8]) {
        fn lit(p: Option<&Part>) -> &[u8] {
            match p {
                Some(Part::Lit(l)) => l,
                _ => b"",
            }
        }
        match self.parts.as_slice() {
            [Part::Lit(l)] => (l, l),
            parts => (lit(parts.first()), lit(parts.last())),
        }
    }

    /// Refer to the TX keys that `slots` numbers by their slots, so that expanding reads
    /// them without looking their keys up. Numbering again (another table) starts from
    /// the keys.
    pub fn number_tx_keys(&mut self, slots: &SlotTable) {
        for p in &mut self.parts {
            let key = match p {
                Part::Var(Var::Tx, Some(key)) | Part::TxSlot(key, _) => std::mem::take(key),
                _ => continue,
            };
            *p = match slots.get(&key) {
                Some(slot) => Part::TxSlot(key, slot),
                None => Part::Var(Var::Tx, Some(key)),
            };
        }
    }

    /// Append the expansion to `out`, `lookup` resolving each variable reference (first
    /// value): callers pass a buffer they reuse.
    pub fn expand(&self, lookup: &mut Resolver<'_>, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l),
                Part::Var(v, k) => lookup(Ref::Var(*v, k.as_deref()), out),
                Part::TxSlot(_, slot) => lookup(Ref::TxSlot(*slot), out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(r: Ref<'_>) -> String {
        match r {
            Ref::Var(v, k) => format!(
                "<{}:{}>",
                v.name(),
                String::from_utf8_lossy(k.unwrap_or(b""))
            ),
            Ref::TxSlot(s) => format!("<slot {s}>"),
        }
    }

    #[test]
    fn numbered_tx_keys_expand_from_their_slots() {
        let mut m = Macro::parse("%{tx.a} %{TX.b} %{tx.unknown} %{ip.a} %{MATCHED_VAR}");
        let expanded = |m: &Macro| {
            let mut out = Vec::new();
            m.expand(
                &mut |r, out| out.extend_from_slice(shown(r).as_bytes()),
                &mut out,
            );
            String::from_utf8(out).unwrap()
        };
        let mut t = SlotTable::default();
        t.intern(b"x");
        let (a, b) = (t.intern(b"a"), t.intern(b"b"));
        m.number_tx_keys(&t);
        assert_eq!(
            expanded(&m),
            format!("<slot {a}> <slot {b}> <TX:unknown> <IP:a> <MATCHED_VAR:>")
        );
        // Another table numbers the keys afresh.
        let mut other = SlotTable::default();
        let b2 = other.intern(b"b");
        m.number_tx_keys(&other);
        assert_eq!(
            expanded(&m),
            format!("<TX:a> <slot {b2}> <TX:unknown> <IP:a> <MATCHED_VAR:>")
        );
    }

    #[test]
    fn parses_parts() {
        let m = Macro::parse("score %{tx.Critical_Score}+%{MATCHED_VAR} %{bogus} %{");
        assert_eq!(
            m.parts,
            vec![
                Part::Lit(b"score ".to_vec()),
                Part::Var(Var::Tx, Some(b"critical_score".to_vec())),
                Part::Lit(b"+".to_vec()),
                Part::Var(Var::MatchedVar, None),
                Part::Lit(b" %{bogus} %{".to_vec()),
            ]
        );
        assert_eq!(Macro::parse("plain").as_literal(), Some(&b"plain"[..]));
        let mut out = b"kept ".to_vec();
        m.expand(
            &mut |r, out| out.extend_from_slice(shown(r).as_bytes()),
            &mut out,
        );
        assert_eq!(
            out, b"kept score <TX:critical_score>+<MATCHED_VAR:> %{bogus} %{",
            "appended to what the buffer held"
        );
    }
}
