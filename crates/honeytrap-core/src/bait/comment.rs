//! The developer comment left in every HTML page, pointing to the comment's decoy path.
//!
//! It must read like a note someone forgot to strip, and differ between installations (a
//! fixed text would be a signature), so the wording, the ticket number and the initials are
//! drawn from the secret. It names a path no robots.txt lists: a request for it shows the
//! attacker read the page source.

use super::choice::Choices;
use super::paths::Flavor;
use super::secret::Secret;

const LOGIN_NOTES: &[&str] = &[
    "TODO remove before release: old login at {path} ({who})",
    "FIXME legacy admin login still reachable at {path}, remove after migration ({ticket})",
    "old admin panel moved to {path} (temporary, {who})",
    "dev: staging login {path} - do not link ({ticket})",
    "TODO disable {path} once SSO is live ({ticket})",
    "NOTE {who}: test accounts still work on {path}",
];

const FILE_NOTES: &[&str] = &[
    "backup before migration: {path} - delete after deploy ({who})",
    "TODO remove db dump {path} ({ticket})",
    "nightly export at {path}, do not link ({who})",
    "FIXME {path} is still public, move it off the web root ({ticket})",
];

/// `"\n<!-- ... -->"`: the newline puts it on a line of its own after `</head>`.
pub fn developer_comment(secret: &Secret, path: &str, flavor: Flavor) -> String {
    let mut c = Choices::new(secret, "comment/v1");
    let notes = match flavor {
        Flavor::Login => LOGIN_NOTES,
        Flavor::Directory | Flavor::File | Flavor::Api => FILE_NOTES,
    };
    let note = c.pick(notes);
    let project = c.pick(&["WEB", "OPS", "DEV", "SITE", "INFRA", "CMS"]);
    let ticket = format!("{project}-{}", 100 + c.below(2900));
    let letters = b"abcdefghijklmnoprstvw";
    let who: String = (0..2).map(|_| char::from(*c.pick(letters))).collect();
    let text = note
        .replace("{path}", path)
        .replace("{ticket}", &ticket)
        .replace("{who}", &who);
    // Decoy paths are validated, but the comment must stay one comment whatever they hold.
    debug_assert!(!text.contains("--") && !text.contains('>'));
    format!("\n<!-- {text} -->")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_names_the_path_is_one_valid_comment_and_varies() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..60u8 {
            let secret = Secret::from_material(&[seed; 32]);
            for (path, flavor) in [
                ("/old-admin/login.php", Flavor::Login),
                ("/db_dump_3.sql.gz", Flavor::File),
            ] {
                let c = developer_comment(&secret, path, flavor);
                assert!(c.starts_with("\n<!-- ") && c.ends_with(" -->"), "{c}");
                let inner = &c["\n<!-- ".len()..c.len() - " -->".len()];
                assert!(inner.contains(path), "{c}");
                assert!(!inner.contains("--") && !inner.contains('>') && !inner.contains('{'));
                assert_eq!(c, developer_comment(&secret, path, flavor));
                seen.insert(c);
            }
        }
        // With the path fixed, templates, tickets and initials still tell installations apart.
        assert!(seen.len() > 110, "only {} distinct comments", seen.len());
        for template in LOGIN_NOTES.iter().chain(FILE_NOTES) {
            let fixed = template.split('{').next().unwrap();
            assert!(
                seen.iter().any(|c| c.contains(fixed)),
                "{template} never drawn"
            );
        }
    }
}
