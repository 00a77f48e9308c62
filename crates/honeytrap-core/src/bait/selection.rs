//! `honeytrap_baits robots comment field cookie | off`: which baits a location lays.

use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub robots: bool,
    pub comment: bool,
    pub field: bool,
    pub cookie: bool,
}

impl Selection {
    pub const ALL: Selection = Selection {
        robots: true,
        comment: true,
        field: true,
        cookie: true,
    };
    pub const NONE: Selection = Selection {
        robots: false,
        comment: false,
        field: false,
        cookie: false,
    };

    /// The directive's words: bait names in any order, or `off` alone.
    pub fn parse(words: &[&str]) -> Result<Selection, String> {
        if words == ["off"] {
            return Ok(Selection::NONE);
        }
        let mut selection = Selection::NONE;
        for word in words {
            let slot = match *word {
                "robots" => &mut selection.robots,
                "comment" => &mut selection.comment,
                "field" => &mut selection.field,
                "cookie" => &mut selection.cookie,
                "off" => return Err("\"off\" cannot be combined with bait names".into()),
                other => {
                    return Err(format!(
                        "unknown bait \"{other}\", expected robots, comment, field, cookie or off"
                    ))
                }
            };
            if *slot {
                return Err(format!("bait \"{word}\" is listed twice"));
            }
            *slot = true;
        }
        Ok(selection)
    }

    pub fn any(self) -> bool {
        self != Selection::NONE
    }

    /// Baits that rewrite HTML pages.
    pub fn html(self) -> bool {
        self.comment || self.field
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.robots, "robots"),
            (self.comment, "comment"),
            (self.field, "field"),
            (self.cookie, "cookie"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
        if names.is_empty() {
            f.write_str("off")
        } else {
            f.write_str(&names.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_order_and_off() {
        let s = Selection::parse(&["cookie", "robots"]).unwrap();
        assert!(s.robots && s.cookie && !s.comment && !s.field);
        assert_eq!(s.to_string(), "robots cookie");
        assert_eq!(Selection::parse(&["off"]).unwrap(), Selection::NONE);
        assert_eq!(
            Selection::parse(&["field", "comment", "cookie", "robots"]).unwrap(),
            Selection::ALL
        );
        assert!(Selection::parse(&["comment"]).unwrap().html());
        assert!(!Selection::parse(&["robots"]).unwrap().html());
    }

    #[test]
    fn mistakes_are_named() {
        let err = Selection::parse(&["robots", "honey"]).unwrap_err();
        assert!(err.contains("unknown bait \"honey\""), "{err}");
        assert!(Selection::parse(&["robots", "off"])
            .unwrap_err()
            .contains("cannot be combined"));
        assert!(Selection::parse(&["field", "field"])
            .unwrap_err()
            .contains("twice"));
    }
}
