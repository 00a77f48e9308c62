//! Decoy `Disallow:` lines for robots.txt.
//!
//! The site's own robots.txt streams through untouched ([`RobotsScanner::feed`] only looks);
//! after its last byte the nginx layer sends [`RobotsBait::suffix`]. Where the site has none,
//! [`RobotsBait::full`] is a whole plausible file.
//!
//! The decoys must apply to `User-agent: *` and must not change what any crawler with a group
//! of its own is told. Appending lines extends whatever group the file ends in, so the suffix
//! opens its own `User-agent: *` group unless the file visibly ends inside one meant for `*`
//! alone, with no blank line after its last line. RFC 9309 parsers merge groups of the same
//! agent; the blank line before a new group keeps parsers of the original 1994 format
//! (records separated by blank lines) right too. One case cannot be helped: a file that ends
//! with a `User-agent:` line and no rules, whose agent our group then joins (RFC 9309).
//! When unsure (a line too long to read, a `Sitemap:` last, garbage), a new group is opened:
//! that is always correct, just less pretty.

/// A line longer than this is read only this far: enough for any field name and a `*`.
const LINE_PEEK: usize = 32;

/// The decoy part of robots.txt, built once from the decoy paths.
#[derive(Clone, Debug)]
pub struct RobotsBait {
    paths: Vec<Box<str>>,
    full: Vec<u8>,
}

impl RobotsBait {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> RobotsBait {
        let paths: Vec<Box<str>> = paths.into_iter().map(Into::into).collect();
        let mut full = b"User-agent: *\n".to_vec();
        push_disallows(&mut full, &paths, b"\n");
        RobotsBait { paths, full }
    }

    /// A robots.txt for a site that has none.
    pub fn full(&self) -> &[u8] {
        &self.full
    }

    /// What to send after the site's robots.txt, once `scan` has seen all of it.
    pub fn suffix(&self, scan: &RobotsScanner) -> Vec<u8> {
        if self.paths.is_empty() {
            return Vec::new();
        }
        let eol: &[u8] = if scan.crlf { b"\r\n" } else { b"\n" };
        let mut out = Vec::with_capacity(32 + self.paths.len() * 32);
        if scan.seen == 0 {
            out.extend_from_slice(b"User-agent: *");
            out.extend_from_slice(eol);
        } else {
            let mut scan = scan.clone();
            if !scan.ends_with_eol {
                scan.end_line();
                out.extend_from_slice(eol);
            }
            if !scan.in_star_group() {
                out.extend_from_slice(eol);
                out.extend_from_slice(b"User-agent: *");
                out.extend_from_slice(eol);
            }
        }
        push_disallows(&mut out, &self.paths, eol);
        out
    }

    /// The suffix for a body held in memory.
    pub fn suffix_for(&self, body: &[u8]) -> Vec<u8> {
        let mut scan = RobotsScanner::default();
        scan.feed(body);
        self.suffix(&scan)
    }
}

fn push_disallows(out: &mut Vec<u8>, paths: &[Box<str>], eol: &[u8]) {
    for p in paths {
        out.extend_from_slice(b"Disallow: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(eol);
    }
}

/// Reads a robots.txt chunk by chunk, in constant memory, keeping only what decides the suffix.
#[derive(Clone, Debug, Default)]
pub struct RobotsScanner {
    seen: u64,
    /// The current line's first bytes.
    line: [u8; LINE_PEEK],
    line_len: usize,
    line_cut: bool,
    prev_cr: bool,
    ends_with_eol: bool,
    /// The last line ending seen was CRLF: our lines use it too.
    crlf: bool,
    /// The group being read names `*` and no other agent.
    group_only_star: bool,
    /// The last record line was a `User-agent:` (the next one joins its group).
    after_agent: bool,
    /// The last record line belongs to a group (an agent line or one of its rules).
    in_group: bool,
    /// A blank line came after the last record line.
    blank_since: bool,
}

impl RobotsScanner {
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            match b {
                b'\n' => {
                    if self.prev_cr {
                        // The LF of a CRLF: the line already ended at the CR.
                        self.crlf = true;
                    } else {
                        self.crlf = false;
                        self.end_line();
                    }
                    self.prev_cr = false;
                }
                b'\r' => {
                    self.end_line();
                    self.prev_cr = true;
                }
                _ => {
                    self.prev_cr = false;
                    if self.line_len < LINE_PEEK {
                        self.line[self.line_len] = b;
                        self.line_len += 1;
                    } else {
                        self.line_cut = true;
                    }
                }
            }
            self.seen += 1;
        }
        if let Some(&last) = chunk.last() {
            self.ends_with_eol = last == b'\n' || last == b'\r';
        }
    }

    /// Appending `Disallow:` lines now would extend a group meant for `*` alone.
    fn in_star_group(&self) -> bool {
        self.in_group && self.group_only_star && !self.blank_since
    }

    /// Classifies the line just ended, or the unterminated last one.
    fn end_line(&mut self) {
        let first_line = self.seen == self.line_len as u64 + u64::from(self.line_cut);
        let mut line = &self.line[..self.line_len];
        if first_line {
            line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        }
        let cut = self.line_cut;
        self.line_len = 0;
        self.line_cut = false;
        let line = line.trim_ascii_start();
        if line.is_empty() && !cut {
            // RFC 9309 ignores blank lines; the 1994 format ends a record at one.
            self.blank_since = true;
            return;
        }
        if line.first() == Some(&b'#') {
            return; // comments are transparent to both
        }
        self.blank_since = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            self.after_agent = false;
            self.in_group = false;
            return;
        };
        let field = line[..colon].trim_ascii_end().to_ascii_lowercase();
        let mut value = &line[colon + 1..];
        if let Some(hash) = value.iter().position(|&b| b == b'#') {
            value = &value[..hash];
        }
        let value = value.trim_ascii();
        match &field[..] {
            b"user-agent" => {
                // A cut line's value is more than a `*` (or unreadably padded): not `*`.
                let star = !cut && value == b"*";
                self.group_only_star = star && (self.group_only_star || !self.after_agent);
                self.after_agent = true;
                self.in_group = true;
            }
            b"allow" | b"disallow" | b"crawl-delay" => {
                // Rules before any agent line belong to no group.
                self.after_agent = false;
            }
            _ => {
                self.after_agent = false;
                self.in_group = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bait() -> RobotsBait {
        RobotsBait::new(["/old-admin/", "/db_dump_7.sql.gz"])
    }

    const DECOYS: &str = "Disallow: /old-admin/\nDisallow: /db_dump_7.sql.gz\n";

    fn appended(body: &str) -> String {
        let b = bait();
        format!(
            "{body}{}",
            String::from_utf8(b.suffix_for(body.as_bytes())).unwrap()
        )
    }

    #[test]
    fn lines_join_a_final_star_group_and_otherwise_open_one() {
        let cases = [
            // Ends inside the `*` group: extend it.
            (
                "User-agent: *\nDisallow: /private/\n",
                format!("User-agent: *\nDisallow: /private/\n{DECOYS}"),
            ),
            // No final newline.
            (
                "User-agent: *\nDisallow: /private/",
                format!("User-agent: *\nDisallow: /private/\n{DECOYS}"),
            ),
            // A comment after the rules changes nothing; repeated `*` lines are one group.
            (
                "User-agent: *\nuser-agent:*\nDisallow: /x\n# end\n",
                format!("User-agent: *\nuser-agent:*\nDisallow: /x\n# end\n{DECOYS}"),
            ),
            // A group for Googlebot and `*` together: Googlebot must not get our lines.
            (
                "User-agent: Googlebot\nUser-agent: *\nDisallow: /x\n",
                format!(
                    "User-agent: Googlebot\nUser-agent: *\nDisallow: /x\n\n\
                     User-agent: *\n{DECOYS}"
                ),
            ),
            // RFC 9309 joins agent lines across a blank line: that group is not `*` alone.
            (
                "User-agent: Googlebot\n\nUser-agent: *\nDisallow: /x\n",
                format!(
                    "User-agent: Googlebot\n\nUser-agent: *\nDisallow: /x\n\n\
                     User-agent: *\n{DECOYS}"
                ),
            ),
            // The last group is someone else's.
            (
                "User-agent: *\nDisallow: /a\n\nUser-agent: Bingbot\nDisallow: /b\n",
                format!(
                    "User-agent: *\nDisallow: /a\n\nUser-agent: Bingbot\nDisallow: /b\n\n\
                     User-agent: *\n{DECOYS}"
                ),
            ),
            // A blank line or a sitemap after the `*` rules.
            (
                "User-agent: *\nDisallow: /a\n\n",
                format!("User-agent: *\nDisallow: /a\n\n\nUser-agent: *\n{DECOYS}"),
            ),
            (
                "User-agent: *\nDisallow: /a\nSitemap: https://x.example/s.xml",
                format!(
                    "User-agent: *\nDisallow: /a\nSitemap: https://x.example/s.xml\n\n\
                     User-agent: *\n{DECOYS}"
                ),
            ),
            // Only a comment, or rules without any agent line.
            (
                "# nothing\n",
                format!("# nothing\n\nUser-agent: *\n{DECOYS}"),
            ),
            (
                "Disallow: /x\n",
                format!("Disallow: /x\n\nUser-agent: *\n{DECOYS}"),
            ),
            // Empty body.
            ("", format!("User-agent: *\n{DECOYS}")),
            // An agent line with a trailing comment.
            (
                "User-agent: * # everyone\nAllow: /\n",
                format!("User-agent: * # everyone\nAllow: /\n{DECOYS}"),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(appended(body), expected, "for {body:?}");
        }
    }

    #[test]
    fn crlf_files_get_crlf_lines_and_a_bom_is_not_part_of_the_field() {
        let body = "\u{feff}User-agent: *\r\nDisallow: /a\r\n";
        assert_eq!(
            appended(body),
            format!("{body}Disallow: /old-admin/\r\nDisallow: /db_dump_7.sql.gz\r\n")
        );
        let body = "User-agent: bot\r\nDisallow: /a";
        assert_eq!(
            appended(body),
            format!(
                "{body}\r\n\r\nUser-agent: *\r\nDisallow: /old-admin/\r\n\
                 Disallow: /db_dump_7.sql.gz\r\n"
            )
        );
        // Old Mac line ends: CR alone.
        let body = "User-agent: *\rDisallow: /a\r";
        assert_eq!(appended(body), format!("{body}{DECOYS}"));
    }

    #[test]
    fn unreadable_lines_fall_back_to_a_new_group() {
        let long_agent = format!("User-agent: {}*\nDisallow: /a\n", " ".repeat(100));
        assert!(appended(&long_agent).ends_with(&format!("\nUser-agent: *\n{DECOYS}")));
        let long_rule = format!("User-agent: *\nDisallow: /{}\n", "a".repeat(1000));
        assert_eq!(appended(&long_rule), format!("{long_rule}{DECOYS}"));
        let bytes = b"User-agent: *\nDisallow: /\xff\xfe\n".to_vec();
        let suffix = bait().suffix_for(&bytes);
        assert_eq!(suffix, DECOYS.as_bytes());
        let garbage = b"\x00\x01binary\xff".to_vec();
        assert!(bait()
            .suffix_for(&garbage)
            .starts_with(b"\n\nUser-agent: *\n"));
    }

    #[test]
    fn no_decoys_means_nothing_appended_and_full_file_has_them_all() {
        let none = RobotsBait::new([]);
        assert!(none.suffix_for(b"User-agent: *\n").is_empty());
        assert_eq!(bait().full(), format!("User-agent: *\n{DECOYS}").as_bytes());
    }

    /// Rules per agent as an RFC 9309 parser reads them: consecutive agent lines open a
    /// group (blank lines and comments are ignored), rules join the open group, groups of the
    /// same agent merge, an agent without a group of its own follows `*`.
    fn rules_for(robots: &str, agent: &str) -> Vec<String> {
        let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        let mut last_was_agent = false;
        for line in robots.split(['\n', '\r']) {
            let line = line.split('#').next().unwrap().trim();
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let (field, value) = (field.trim().to_ascii_lowercase(), value.trim().to_owned());
            if field == "user-agent" {
                if !last_was_agent {
                    groups.push((Vec::new(), Vec::new()));
                }
                groups
                    .last_mut()
                    .unwrap()
                    .0
                    .push(value.to_ascii_lowercase());
                last_was_agent = true;
            } else if field == "allow" || field == "disallow" {
                if let Some(g) = groups.last_mut() {
                    g.1.push(format!("{field}:{value}"));
                }
                last_was_agent = false;
            }
        }
        let pick = |name: &str| -> Option<Vec<String>> {
            let mine: Vec<_> = groups
                .iter()
                .filter(|(agents, _)| agents.iter().any(|a| a == name))
                .collect();
            (!mine.is_empty()).then(|| mine.iter().flat_map(|(_, r)| r.clone()).collect())
        };
        pick(&agent.to_ascii_lowercase())
            .or_else(|| pick("*"))
            .unwrap_or_default()
    }

    #[test]
    fn decoys_reach_star_and_no_agent_with_its_own_group_is_told_anything_new() {
        let mut rng = fastrand::Rng::with_seed(11);
        let agents = ["*", "Googlebot", "Bingbot"];
        let decoy_rules = ["disallow:/old-admin/", "disallow:/db_dump_7.sql.gz"];
        for _ in 0..2000 {
            let mut body = String::new();
            let mut last_record = "";
            for _ in 0..rng.usize(0..8) {
                match rng.u8(0..7) {
                    0 | 1 => {
                        body.push_str(&format!("User-agent: {}", agents[rng.usize(..3)]));
                        last_record = "agent";
                    }
                    2 | 3 => {
                        body.push_str(&format!("Disallow: /p{}", rng.u8(..)));
                        last_record = "rule";
                    }
                    4 => {
                        body.push_str("Allow: /");
                        last_record = "rule";
                    }
                    5 => body.push_str("# note"),
                    _ => {}
                }
                body.push_str(["\n", "\r\n", "\n\n"][rng.usize(..3)]);
            }
            if rng.bool() {
                body.pop();
            }
            let after = appended(&body);
            let mut expected = rules_for(&body, "*");
            expected.extend(decoy_rules.map(str::to_owned));
            assert_eq!(rules_for(&after, "*"), expected, "{body:?} -> {after:?}");
            for agent in ["Googlebot", "Bingbot"] {
                let own_group = body.contains(&format!("User-agent: {agent}"));
                // The one case the module doc admits: a final agent line with no rules.
                if own_group && last_record != "agent" {
                    assert_eq!(
                        rules_for(&after, agent),
                        rules_for(&body, agent),
                        "{agent}: {body:?} -> {after:?}"
                    );
                }
            }
            // A crawler without a group follows `*`, decoys included.
            assert_eq!(rules_for(&after, "OtherBot"), expected);
        }
    }

    #[test]
    fn the_suffix_does_not_depend_on_how_the_body_is_chunked() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut body = Vec::new();
        for i in 0..20_000 {
            body.extend_from_slice(match i % 5 {
                0 => b"User-agent: *\r\n".as_slice(),
                1 => b"Disallow: /\xc3\x28x\n",
                2 => b"user-agent: Googlebot\n",
                3 => b"\n",
                _ => b"Allow: /y\r",
            });
        }
        body.extend_from_slice(b"User-agent: *\nDisallow: /z");
        let whole = bait().suffix_for(&body);
        assert_eq!(whole, format!("\n{DECOYS}").as_bytes());
        for _ in 0..20 {
            let mut scan = RobotsScanner::default();
            let mut rest = &body[..];
            while !rest.is_empty() {
                let n = rng.usize(1..=rest.len().min(4096));
                scan.feed(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(bait().suffix(&scan), whole);
        }
    }
}
