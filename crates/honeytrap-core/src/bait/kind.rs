//! Which bait an event or a token is about.

/// The baits the module lays, as named in events (`honeytrap.bait.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BaitKind {
    /// A `Disallow:` line in robots.txt.
    Robots,
    /// A developer comment in an HTML page.
    Comment,
    /// The hidden input added to every form.
    FormField,
    /// The decoy cookie.
    Cookie,
    /// A decoy path requested (learnt from robots.txt, a comment, or configured).
    DecoyPath,
    /// A path that enumeration tools probe first.
    Tripwire,
    /// A request to a decoy server on a fake port.
    DecoyServer,
}

impl BaitKind {
    pub const ALL: [BaitKind; 7] = [
        BaitKind::Robots,
        BaitKind::Comment,
        BaitKind::FormField,
        BaitKind::Cookie,
        BaitKind::DecoyPath,
        BaitKind::Tripwire,
        BaitKind::DecoyServer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BaitKind::Robots => "robots",
            BaitKind::Comment => "comment",
            BaitKind::FormField => "form-field",
            BaitKind::Cookie => "cookie",
            BaitKind::DecoyPath => "decoy-path",
            BaitKind::Tripwire => "tripwire",
            BaitKind::DecoyServer => "decoy-server",
        }
    }

    /// The 4-bit code a token carries. Codes are part of the token format: never renumber.
    pub(crate) fn code(self) -> u8 {
        match self {
            BaitKind::Robots => 1,
            BaitKind::Comment => 2,
            BaitKind::FormField => 3,
            BaitKind::Cookie => 4,
            BaitKind::DecoyPath => 5,
            BaitKind::Tripwire => 6,
            BaitKind::DecoyServer => 7,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<BaitKind> {
        BaitKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_fit_four_bits_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for kind in BaitKind::ALL {
            assert!(kind.code() > 0 && kind.code() < 16);
            assert!(seen.insert(kind.code()));
            assert_eq!(BaitKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(BaitKind::from_code(0), None);
        assert_eq!(BaitKind::from_code(15), None);
    }
}
