//! Decoy paths and scanner tripwires, and the per-request matcher over both.
//!
//! Decoy paths are the places robots.txt and the HTML comment point to: plausible forgotten
//! admin panels, backups and old APIs. They are drawn from a vocabulary by the installation
//! secret, so each installation has its own (a fixed list would be fingerprinted, as the
//! OWASP Honeypot's `/db_backup.<epoch>/` was), and they stay the same across restarts.
//! Operators may add their own.
//!
//! Tripwires are the paths enumeration tools request first (dirb and gobuster wordlists,
//! `nmap --script http-enum`), so a scanner that never reads robots.txt trips one too. The
//! nginx layer treats a tripwire as a bait only when the site itself answers 404.

use rustc_hash::FxHashMap as HashMap;
use std::fmt;

use super::choice::Choices;
use super::kind::BaitKind;
use super::secret::Secret;

/// Paths that common wordlists and `http-enum` probe early, and that a site rarely serves.
/// An entry ending in `/` also matches the bare directory name and everything below it.
pub const DEFAULT_TRIPWIRES: &[&str] = &[
    // Secrets and version control left in the web root.
    "/.env",
    "/.env.bak",
    "/.env.local",
    "/.git/",
    "/.gitconfig",
    "/.svn/",
    "/.hg/",
    "/.bzr/",
    "/.DS_Store",
    "/.htpasswd",
    "/.aws/credentials",
    "/.ssh/id_rsa",
    "/.bash_history",
    "/.vscode/sftp.json",
    "/.idea/workspace.xml",
    "/.dockerenv",
    "/docker-compose.yml",
    // Backups and dumps.
    "/backup/",
    "/backups/",
    "/bak/",
    "/backup.zip",
    "/backup.tar.gz",
    "/backup.sql",
    "/dump.sql",
    "/database.sql",
    "/db.sql",
    "/site.tar.gz",
    "/www.zip",
    "/config.php.bak",
    "/config.php~",
    "/wp-config.php.bak",
    "/wp-config.php~",
    "/web.config.bak",
    // Admin panels and database front ends.
    "/admin/",
    "/administrator/",
    "/phpmyadmin/",
    "/pma/",
    "/myadmin/",
    "/mysql/",
    "/adminer.php",
    "/manager/html",
    "/jmx-console/",
    "/web-console/",
    "/solr/admin/",
    // WordPress, probed on every site whatever it runs.
    "/wp-login.php",
    "/wp-admin/",
    "/wp-config.php",
    "/xmlrpc.php",
    // Server and framework diagnostics.
    "/server-status",
    "/server-info",
    "/phpinfo.php",
    "/info.php",
    "/test.php",
    "/actuator/",
    "/debug/",
    "/console/",
    "/elmah.axd",
    "/trace.axd",
    "/cgi-bin/",
];

/// What kind of place a path is, so the nginx layer can answer in kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// A login page: answer with a login form.
    Login,
    /// A directory or panel: answer with a 401 Basic challenge.
    Directory,
    /// A file (backup, dump, config): answer with a 401 Basic challenge.
    File,
    /// An API endpoint: answer with a JSON 401.
    Api,
}

impl Flavor {
    /// Guesses the flavor from the shape of a path, for configured paths and tripwires.
    pub fn of(path: &str) -> Flavor {
        let lower = path.to_ascii_lowercase();
        let last = lower.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if ["login", "signin", "logon", "auth"]
            .iter()
            .any(|w| last.contains(w))
        {
            Flavor::Login
        } else if lower.starts_with("/api")
            || lower.contains("/api/")
            || lower.starts_with("/rest/")
        {
            Flavor::Api
        } else if lower.ends_with('/') || !last.contains('.') {
            Flavor::Directory
        } else {
            Flavor::File
        }
    }
}

/// Why a path is a decoy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lure {
    /// Listed in robots.txt (generated).
    Robots,
    /// Named in the HTML developer comment.
    Comment,
    /// Configured explicitly by the operator (and listed in robots.txt).
    Configured,
    /// A scanner tripwire.
    Tripwire,
}

impl Lure {
    /// The bait an event about this path names.
    pub fn bait_kind(self) -> BaitKind {
        match self {
            Lure::Robots => BaitKind::Robots,
            Lure::Comment => BaitKind::Comment,
            Lure::Configured => BaitKind::DecoyPath,
            Lure::Tripwire => BaitKind::Tripwire,
        }
    }
}

/// A request path that matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoyHit<'a> {
    /// The entry that matched, as configured or generated (e.g. `/.git/` for `/.git/HEAD`).
    pub entry: &'a str,
    pub lure: Lure,
    pub flavor: Flavor,
}

impl DecoyHit<'_> {
    pub fn is_tripwire(&self) -> bool {
        self.lure == Lure::Tripwire
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid decoy path \"{}\": {}", self.path, self.reason)
    }
}

impl std::error::Error for PathError {}

/// Longer entries are not paths anyone would guess; the bound keeps matching on the stack.
pub const MAX_PATH_LEN: usize = 200;

#[derive(Debug)]
struct Entry {
    path: Box<str>,
    lure: Lure,
    flavor: Flavor,
}

/// All decoy paths and tripwires of one installation.
#[derive(Debug)]
pub struct DecoyPaths {
    /// Keyed by the ASCII-lowercased path: scanners' wordlists mix cases (`phpMyAdmin`).
    entries: HashMap<Box<[u8]>, Entry>,
    /// Robots.txt lines, in order: configured first, then generated.
    robots: Vec<Box<str>>,
    comment: Box<str>,
    comment_flavor: Flavor,
    /// The most `/` any directory entry has: deeper prefixes need no lookup.
    max_depth: usize,
}

impl DecoyPaths {
    /// `generated` decoys drawn from the secret for robots.txt (plus one for the comment),
    /// the operator's `configured` ones, and the `tripwires` (e.g. [`DEFAULT_TRIPWIRES`]).
    pub fn new<S: AsRef<str>, T: AsRef<str>>(
        secret: &Secret,
        generated: usize,
        configured: &[S],
        tripwires: &[T],
    ) -> Result<DecoyPaths, PathError> {
        let mut paths = DecoyPaths {
            entries: HashMap::default(),
            robots: Vec::new(),
            comment: "".into(),
            comment_flavor: Flavor::Login,
            max_depth: 0,
        };
        for t in tripwires {
            let t = validate(t.as_ref())?;
            paths.insert(t, Lure::Tripwire, Flavor::of(t));
        }
        for c in configured {
            let c = validate(c.as_ref())?;
            // A configured decoy overrides a tripwire of the same name: it is always a bait.
            paths.insert(c, Lure::Configured, Flavor::of(c));
            paths.robots.push(c.into());
        }

        let mut choices = Choices::new(secret, "decoy-paths/v1");
        // Round-robin over the families so even a short list mixes panels, backups and APIs.
        let first = choices.below(FAMILIES.len());
        let mut made = 0;
        while made < generated + 1 {
            // The comment's path (drawn first) is a login or a backup: what a developer
            // would leave a note about.
            let family = if made == 0 {
                *choices.pick(&[old_login as Family, old_login, backup_file])
            } else {
                FAMILIES[(first + made) % FAMILIES.len()]
            };
            let (path, flavor) = family(&mut choices);
            if paths
                .entries
                .contains_key(path.to_ascii_lowercase().as_bytes())
            {
                continue; // taken by a tripwire, a configured path or an earlier draw
            }
            if made == 0 {
                // The comment's path is its own, not in robots.txt: a hit on it says the
                // attacker read the page source, not robots.txt.
                paths.insert(&path, Lure::Comment, flavor);
                paths.comment = path.into();
                paths.comment_flavor = flavor;
            } else {
                paths.insert(&path, Lure::Robots, flavor);
                paths.robots.push(path.into());
            }
            made += 1;
        }
        Ok(paths)
    }

    fn insert(&mut self, path: &str, lure: Lure, flavor: Flavor) {
        if path.ends_with('/') {
            self.max_depth = self.max_depth.max(path.matches('/').count());
        }
        let key = path.to_ascii_lowercase().into_bytes().into_boxed_slice();
        self.entries.insert(
            key,
            Entry {
                path: path.into(),
                lure,
                flavor,
            },
        );
    }

    /// The decoys to list as `Disallow:` in robots.txt.
    pub fn robots(&self) -> impl Iterator<Item = &str> {
        self.robots.iter().map(|p| &**p)
    }

    /// The decoy the HTML comment names, and what it pretends to be.
    pub fn comment_path(&self) -> (&str, Flavor) {
        (&self.comment, self.comment_flavor)
    }

    pub fn tripwires(&self) -> impl Iterator<Item = &str> {
        self.entries
            .values()
            .filter(|e| e.lure == Lure::Tripwire)
            .map(|e| &*e.path)
    }

    /// Whether a request path is a decoy or a tripwire, and which.
    ///
    /// `path` is the normalized request path without the query (nginx's `r->uri`). Case is
    /// ignored. A directory entry matches itself with or without the final `/` and anything
    /// below it; when several entries match, a decoy beats a tripwire and then the longest
    /// wins. No allocation: the lowercased path lives on the stack.
    pub fn classify(&self, path: &[u8]) -> Option<DecoyHit<'_>> {
        let mut buf = [0u8; MAX_PATH_LEN + 1];
        let n = path.len().min(MAX_PATH_LEN);
        for (d, s) in buf.iter_mut().zip(&path[..n]) {
            *d = s.to_ascii_lowercase();
        }
        let mut best: Option<&Entry> = None;
        let mut consider = |key: &[u8]| {
            if let Some(e) = self.entries.get(key) {
                let better = match best {
                    None => true,
                    Some(b) => {
                        (b.lure == Lure::Tripwire && e.lure != Lure::Tripwire)
                            || ((b.lure == Lure::Tripwire) == (e.lure == Lure::Tripwire)
                                && e.path.len() > b.path.len())
                    }
                };
                if better {
                    best = Some(e);
                }
            }
        };

        if path.len() <= MAX_PATH_LEN {
            consider(&buf[..n]);
            if n > 0 && buf[n - 1] != b'/' {
                // `/phpmyadmin` is the directory `/phpmyadmin/`.
                buf[n] = b'/';
                consider(&buf[..=n]);
            }
        }
        let mut depth = 0;
        for i in 0..n {
            if buf[i] == b'/' {
                depth += 1;
                if depth > self.max_depth {
                    break;
                }
                consider(&buf[..=i]);
            }
        }
        best.map(|e| DecoyHit {
            entry: &e.path,
            lure: e.lure,
            flavor: e.flavor,
        })
    }
}

/// Checks a configured path: it will be written into robots.txt and an HTML comment.
fn validate(path: &str) -> Result<&str, PathError> {
    let err = |reason| {
        Err(PathError {
            path: path.to_owned(),
            reason,
        })
    };
    if !path.starts_with('/') {
        return err("must start with /");
    }
    if path.len() < 2 || path.len() > MAX_PATH_LEN {
        return err("must be 2 to 200 bytes long");
    }
    // `*` and `$` are wildcards in robots.txt; `?` and `#` never reach the path; the rest
    // would break out of a robots.txt line or an HTML comment.
    if let Some(c) = path
        .bytes()
        .find(|&b| !b.is_ascii_graphic() || b"*$?#\"'<>\\`".contains(&b))
    {
        return if c.is_ascii_graphic() {
            err("must not contain * $ ? # quotes < > \\ or `")
        } else {
            err("must be printable ASCII without spaces")
        };
    }
    if path.contains("--") {
        return err("must not contain -- (it would end an HTML comment)");
    }
    Ok(path)
}

// The vocabulary. Each family draws one plausible path.

type Family = fn(&mut Choices) -> (String, Flavor);

const FAMILIES: &[Family] = &[old_login, backup_file, old_api, panel_dir, backup_dir];

const PANELS: &[&str] = &[
    "admin",
    "administrator",
    "manage",
    "manager",
    "cms",
    "panel",
    "backend",
    "backoffice",
    "console",
    "control",
    "staff",
    "intranet",
    "portal",
    "dashboard",
    "sysadmin",
    "webadmin",
    "siteadmin",
    "moderator",
];

fn aged(c: &mut Choices, word: &str) -> String {
    match c.below(8) {
        0 => format!("old-{word}"),
        1 => format!("{word}-old"),
        2 => format!("{word}_old"),
        3 => format!("legacy-{word}"),
        4 => format!("{word}-legacy"),
        5 => format!("{word}-{}", year(c)),
        6 => format!("{word}{}", 1 + c.below(3)),
        _ => format!("{word}-bak"),
    }
}

fn year(c: &mut Choices) -> usize {
    2014 + c.below(10)
}

fn date(c: &mut Choices) -> String {
    format!("{}{:02}{:02}", year(c), 1 + c.below(12), 1 + c.below(28))
}

fn old_login(c: &mut Choices) -> (String, Flavor) {
    const PAGES: &[&str] = &[
        "login.php",
        "login.aspx",
        "login.jsp",
        "login.html",
        "signin.php",
        "auth/login",
        "index.php",
        "login",
        "user/login",
    ];
    let word = c.pick(PANELS);
    let dir = aged(c, word);
    let page = c.pick(PAGES);
    (format!("/{dir}/{page}"), Flavor::Login)
}

fn panel_dir(c: &mut Choices) -> (String, Flavor) {
    let word = c.pick(PANELS);
    let dir = aged(c, word);
    (format!("/{dir}/"), Flavor::Directory)
}

fn backup_file(c: &mut Choices) -> (String, Flavor) {
    const NAMES: &[&str] = &[
        "db_dump",
        "dump",
        "backup",
        "db_backup",
        "database",
        "site-backup",
        "www",
        "export",
        "mysql",
        "full_backup",
    ];
    const EXTS: &[&str] = &[
        ".sql.gz", ".sql", ".tar.gz", ".zip", ".tgz", ".sql.bz2", ".7z",
    ];
    let name = c.pick(NAMES);
    let stamp = match c.below(3) {
        0 => date(c),
        1 => year(c).to_string(),
        _ => (1 + c.below(40)).to_string(),
    };
    let sep = c.pick(&["_", "-"]);
    let ext = c.pick(EXTS);
    (format!("/{name}{sep}{stamp}{ext}"), Flavor::File)
}

fn backup_dir(c: &mut Choices) -> (String, Flavor) {
    const NAMES: &[&str] = &[
        "backup",
        "backups",
        "bak",
        "archive",
        "old",
        "dumps",
        "snapshots",
    ];
    let name = c.pick(NAMES);
    let path = match c.below(3) {
        0 => format!("/{name}-{}/", year(c)),
        1 => format!("/{name}_{}/", date(c)),
        _ => format!("/{name}/{}-{:02}/", year(c), 1 + c.below(12)),
    };
    (path, Flavor::Directory)
}

fn old_api(c: &mut Choices) -> (String, Flavor) {
    const ROOTS: &[&str] = &["api", "api", "rest", "service", "ws"];
    const VERSIONS: &[&str] = &["v0", "v1", "v1.0", "v1.1", "v2", "1"];
    const SUFFIXES: &[&str] = &[
        "-legacy",
        "-old",
        "-internal",
        "-beta",
        "-dev",
        "/internal",
        "/admin",
        "/debug",
        "/private",
    ];
    let root = c.pick(ROOTS);
    let version = c.pick(VERSIONS);
    let suffix = c.pick(SUFFIXES);
    (format!("/{root}/{version}{suffix}/"), Flavor::Api)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: &[&str] = &[];

    fn paths(seed: u8, n: usize) -> DecoyPaths {
        DecoyPaths::new(
            &Secret::from_material(&[seed; 32]),
            n,
            NONE,
            DEFAULT_TRIPWIRES,
        )
        .unwrap()
    }

    #[test]
    fn generated_decoys_are_stable_per_secret_and_differ_between_installations() {
        let a: Vec<String> = paths(1, 8).robots().map(str::to_owned).collect();
        let again: Vec<String> = paths(1, 8).robots().map(str::to_owned).collect();
        let b: Vec<String> = paths(2, 8).robots().map(str::to_owned).collect();
        assert_eq!(a.len(), 8);
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_eq!(paths(1, 8).comment_path(), paths(1, 8).comment_path());
        // Across many installations the vocabulary really varies.
        let distinct: std::collections::HashSet<String> = (0..40u8)
            .flat_map(|s| paths(s, 4).robots().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert!(distinct.len() > 140, "only {} distinct", distinct.len());
    }

    #[test]
    fn generated_decoys_are_valid_distinct_and_classified_as_themselves() {
        for seed in 0..50u8 {
            let p = paths(seed, 10);
            let (comment, _) = p.comment_path();
            let mut all: Vec<&str> = p.robots().collect();
            all.push(comment);
            let unique: std::collections::HashSet<_> = all.iter().collect();
            assert_eq!(unique.len(), all.len(), "{all:?}");
            for path in all {
                assert_eq!(validate(path), Ok(path));
                let hit = p.classify(path.as_bytes()).unwrap();
                assert_eq!(hit.entry, path);
                let expected = if path == comment {
                    Lure::Comment
                } else {
                    Lure::Robots
                };
                assert_eq!(hit.lure, expected, "{path}");
                assert!(!DEFAULT_TRIPWIRES.contains(&path));
            }
        }
    }

    #[test]
    fn directory_entries_match_with_and_without_slash_and_below() {
        let p = paths(1, 0);
        for (path, entry) in [
            ("/.git/config", "/.git/"),
            ("/.git/HEAD", "/.git/"),
            ("/.git", "/.git/"),
            ("/.git/", "/.git/"),
            ("/phpMyAdmin/index.php", "/phpmyadmin/"),
            ("/PHPMYADMIN", "/phpmyadmin/"),
            ("/wp-admin/setup-config.php", "/wp-admin/"),
            ("/.env", "/.env"),
            ("/.aws/credentials", "/.aws/credentials"),
            ("/server-status", "/server-status"),
            ("/.DS_Store", "/.DS_Store"),
        ] {
            let hit = p
                .classify(path.as_bytes())
                .unwrap_or_else(|| panic!("{path}"));
            assert_eq!(hit.entry, entry, "{path}");
            assert!(hit.is_tripwire());
        }
        for path in [
            "/",
            "",
            "/index.html",
            "/.envx",
            "/.env/",
            "/wp-login.php.html",
            "/about/admin/",
            "/.gitignore",
            "/backupfoo",
            "/server-status/x",
        ] {
            assert_eq!(p.classify(path.as_bytes()), None, "{path}");
        }
    }

    #[test]
    fn configured_decoys_override_tripwires_and_are_listed_first() {
        let p = DecoyPaths::new(
            &Secret::from_material(&[1; 32]),
            2,
            &["/admin/", "/secret-area/login.php"],
            DEFAULT_TRIPWIRES,
        )
        .unwrap();
        let robots: Vec<&str> = p.robots().collect();
        assert_eq!(robots[..2], ["/admin/", "/secret-area/login.php"]);
        assert_eq!(robots.len(), 4);
        let hit = p.classify(b"/admin/users").unwrap();
        assert_eq!((hit.entry, hit.lure), ("/admin/", Lure::Configured));
        let hit = p.classify(b"/secret-area/login.php").unwrap();
        assert_eq!(hit.flavor, Flavor::Login);
        assert_eq!(hit.lure.bait_kind(), BaitKind::DecoyPath);
    }

    #[test]
    fn a_decoy_below_a_tripwire_wins_and_the_longest_entry_wins() {
        let p = DecoyPaths::new(
            &Secret::from_material(&[1; 32]),
            0,
            &["/backup/2019/"],
            &["/backup/", "/backup/2019/db/"],
        )
        .unwrap();
        assert_eq!(
            p.classify(b"/backup/2019/db/x.sql").unwrap().entry,
            "/backup/2019/"
        );
        assert_eq!(p.classify(b"/backup/x").unwrap().entry, "/backup/");
        let q =
            DecoyPaths::new(&Secret::from_material(&[1; 32]), 0, NONE, &["/a/", "/a/b/"]).unwrap();
        assert_eq!(q.classify(b"/a/b/c").unwrap().entry, "/a/b/");
        assert_eq!(q.classify(b"/a/c").unwrap().entry, "/a/");
    }

    #[test]
    fn hostile_request_paths_do_not_break_matching() {
        let p = paths(3, 4);
        let long = format!("/.git/{}", "a".repeat(10_000));
        assert_eq!(p.classify(long.as_bytes()).unwrap().entry, "/.git/");
        let long_miss = format!("/x{}", "/a".repeat(10_000));
        assert_eq!(p.classify(long_miss.as_bytes()), None);
        assert_eq!(p.classify(b"/\xff\xfe/.env"), None);
        assert_eq!(p.classify(b"/.git/\xff"), p.classify(b"/.git/x"));
        // Exactly at the bound, and one past it.
        let at_bound = format!("/{}", "b".repeat(MAX_PATH_LEN - 1));
        let with_it =
            DecoyPaths::new(&Secret::from_material(&[1; 32]), 0, &[&at_bound], NONE).unwrap();
        assert!(with_it.classify(at_bound.as_bytes()).is_some());
        assert!(with_it
            .classify(format!("{at_bound}b").as_bytes())
            .is_none());
    }

    #[test]
    fn bad_configured_paths_are_refused_with_the_reason() {
        let secret = Secret::from_material(&[1; 32]);
        for bad in [
            "admin/",
            "/",
            "/a b",
            "/a*",
            "/a$",
            "/x?y=1",
            "/a\"b",
            "/<script>",
            "/a--b",
            "/é",
            "/tab\there",
        ] {
            let err = DecoyPaths::new(&secret, 0, &[bad], NONE).unwrap_err();
            assert_eq!(err.path, bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(DecoyPaths::new(&secret, 0, NONE, &["no-slash"]).is_err());
    }

    #[test]
    fn flavors_follow_the_shape_of_the_path() {
        for (path, flavor) in [
            ("/old-admin/login.php", Flavor::Login),
            ("/wp-login.php", Flavor::Login),
            ("/cms2/auth/login", Flavor::Login),
            ("/api/v1-legacy/", Flavor::Api),
            ("/rest/v0/internal/", Flavor::Api),
            ("/backup-2019/", Flavor::Directory),
            ("/server-status", Flavor::Directory),
            ("/db_dump_12.sql.gz", Flavor::File),
            ("/.env", Flavor::File),
        ] {
            assert_eq!(Flavor::of(path), flavor, "{path}");
        }
    }

    #[test]
    fn default_tripwires_are_valid_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in DEFAULT_TRIPWIRES {
            assert_eq!(validate(t), Ok(*t));
            assert!(seen.insert(t.to_ascii_lowercase()), "{t} twice");
        }
        assert_eq!(paths(1, 0).tripwires().count(), DEFAULT_TRIPWIRES.len());
    }
}
