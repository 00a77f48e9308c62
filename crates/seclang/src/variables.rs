//! Variables (rule targets): names, selectors (`:key`, `:/regex/`), counts (`&`) and
//! exclusions (`!`), parsed once at load time.

use regex::bytes::Regex;

macro_rules! vars {
    ($($v:ident = $name:literal, $coll:literal;)*) => {
        /// A SecLang variable or collection.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Var { $($v,)* }

        /// Name, variant, and whether it is a collection (takes `:selector`).
        pub const VARS: &[(&str, Var, bool)] = &[$(($name, Var::$v, $coll),)*];
    };
}

vars! {
    Args = "ARGS", true;
    ArgsGet = "ARGS_GET", true;
    ArgsPost = "ARGS_POST", true;
    ArgsNames = "ARGS_NAMES", true;
    ArgsGetNames = "ARGS_GET_NAMES", true;
    ArgsPostNames = "ARGS_POST_NAMES", true;
    ArgsCombinedSize = "ARGS_COMBINED_SIZE", false;
    RequestHeaders = "REQUEST_HEADERS", true;
    RequestHeadersNames = "REQUEST_HEADERS_NAMES", true;
    RequestCookies = "REQUEST_COOKIES", true;
    RequestCookiesNames = "REQUEST_COOKIES_NAMES", true;
    RequestUri = "REQUEST_URI", false;
    RequestUriRaw = "REQUEST_URI_RAW", false;
    RequestFilename = "REQUEST_FILENAME", false;
    RequestBasename = "REQUEST_BASENAME", false;
    RequestLine = "REQUEST_LINE", false;
    RequestMethod = "REQUEST_METHOD", false;
    RequestProtocol = "REQUEST_PROTOCOL", false;
    QueryString = "QUERY_STRING", false;
    RequestBody = "REQUEST_BODY", false;
    RequestBodyLength = "REQUEST_BODY_LENGTH", false;
    FullRequest = "FULL_REQUEST", false;
    FullRequestLength = "FULL_REQUEST_LENGTH", false;
    Files = "FILES", true;
    FilesNames = "FILES_NAMES", true;
    FilesSizes = "FILES_SIZES", true;
    FilesCombinedSize = "FILES_COMBINED_SIZE", false;
    FilesTmpNames = "FILES_TMPNAMES", true;
    FilesTmpContent = "FILES_TMP_CONTENT", true;
    MultipartFilename = "MULTIPART_FILENAME", false;
    MultipartName = "MULTIPART_NAME", false;
    MultipartPartHeaders = "MULTIPART_PART_HEADERS", true;
    MultipartStrictError = "MULTIPART_STRICT_ERROR", false;
    MultipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY", false;
    MultipartBoundaryQuoted = "MULTIPART_BOUNDARY_QUOTED", false;
    MultipartBoundaryWhitespace = "MULTIPART_BOUNDARY_WHITESPACE", false;
    MultipartDataBefore = "MULTIPART_DATA_BEFORE", false;
    MultipartDataAfter = "MULTIPART_DATA_AFTER", false;
    MultipartHeaderFolding = "MULTIPART_HEADER_FOLDING", false;
    MultipartLfLine = "MULTIPART_LF_LINE", false;
    MultipartMissingSemicolon = "MULTIPART_MISSING_SEMICOLON", false;
    MultipartInvalidQuoting = "MULTIPART_INVALID_QUOTING", false;
    MultipartInvalidPart = "MULTIPART_INVALID_PART", false;
    MultipartInvalidHeaderFolding = "MULTIPART_INVALID_HEADER_FOLDING", false;
    MultipartFileLimitExceeded = "MULTIPART_FILE_LIMIT_EXCEEDED", false;
    MultipartCrlfLfLines = "MULTIPART_CRLF_LF_LINES", false;
    ReqbodyError = "REQBODY_ERROR", false;
    ReqbodyErrorMsg = "REQBODY_ERROR_MSG", false;
    ReqbodyProcessor = "REQBODY_PROCESSOR", false;
    ReqbodyProcessorError = "REQBODY_PROCESSOR_ERROR", false;
    InboundDataError = "INBOUND_DATA_ERROR", false;
    OutboundDataError = "OUTBOUND_DATA_ERROR", false;
    UrlencodedError = "URLENCODED_ERROR", false;
    Xml = "XML", true;
    ResponseHeaders = "RESPONSE_HEADERS", true;
    ResponseHeadersNames = "RESPONSE_HEADERS_NAMES", true;
    ResponseBody = "RESPONSE_BODY", false;
    ResponseStatus = "RESPONSE_STATUS", false;
    ResponseProtocol = "RESPONSE_PROTOCOL", false;
    ResponseContentType = "RESPONSE_CONTENT_TYPE", false;
    ResponseContentLength = "RESPONSE_CONTENT_LENGTH", false;
    StatusLine = "STATUS_LINE", false;
    Tx = "TX", true;
    Ip = "IP", true;
    Global = "GLOBAL", true;
    Session = "SESSION", true;
    User = "USER", true;
    Resource = "RESOURCE", true;
    Env = "ENV", true;
    Geo = "GEO", true;
    RemoteAddr = "REMOTE_ADDR", false;
    RemotePort = "REMOTE_PORT", false;
    RemoteHost = "REMOTE_HOST", false;
    RemoteUser = "REMOTE_USER", false;
    ServerAddr = "SERVER_ADDR", false;
    ServerName = "SERVER_NAME", false;
    ServerPort = "SERVER_PORT", false;
    AuthType = "AUTH_TYPE", false;
    UniqueId = "UNIQUE_ID", false;
    MatchedVar = "MATCHED_VAR", false;
    MatchedVarName = "MATCHED_VAR_NAME", false;
    MatchedVars = "MATCHED_VARS", true;
    MatchedVarsNames = "MATCHED_VARS_NAMES", true;
    HighestSeverity = "HIGHEST_SEVERITY", false;
    Duration = "DURATION", false;
    Time = "TIME", false;
    TimeDay = "TIME_DAY", false;
    TimeEpoch = "TIME_EPOCH", false;
    TimeHour = "TIME_HOUR", false;
    TimeMin = "TIME_MIN", false;
    TimeMon = "TIME_MON", false;
    TimeSec = "TIME_SEC", false;
    TimeWday = "TIME_WDAY", false;
    TimeYear = "TIME_YEAR", false;
    WebserverErrorLog = "WEBSERVER_ERROR_LOG", false;
    Rule = "RULE", true;
}

impl Var {
    /// Look up by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<(Var, bool)> {
        VARS.iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v, c)| (*v, *c))
    }

    /// The canonical upper-case name.
    pub fn name(self) -> &'static str {
        // `VARS` lists the variants in declaration order.
        VARS[self as usize].0
    }
}

/// Which members of a collection a target takes.
#[derive(Debug, Clone)]
pub enum Selector {
    All,
    /// A key, lower-cased (collection keys compare case-insensitively).
    Key(Vec<u8>),
    Regex(KeyRegex),
    /// An XPath expression for `XML:`; only `/*` and `//*` (all text) are understood.
    XPath(String),
}

impl Selector {
    /// Whether `key` is selected.
    pub fn selects(&self, key: &[u8]) -> bool {
        match self {
            Selector::All | Selector::XPath(_) => true,
            Selector::Key(k) => k.eq_ignore_ascii_case(key),
            Selector::Regex(re) => re.is_match(key),
        }
    }
}

/// A `/regex/` selector (case-insensitive, as ModSecurity compiles them). The commonest
/// ones only ask for a key that starts with a word (`TX:/^header_name_920450_/`, which
/// CRS 920450 reads once per request header) or holds one (`TX:/paramcounter_.*/`,
/// `TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/`, which CRS 922110 asks of every run-time TX
/// key): those compare the word instead of running the regex.
#[derive(Debug, Clone)]
pub struct KeyRegex {
    re: Regex,
    /// Boxed: a target's selector shares a cache line with what is read per value.
    word: Option<Box<Word>>,
}

/// A selector's word, compared ASCII case-insensitively eight bytes at a time: a key byte
/// matches a letter once its case bit (0x20) is set, any other byte only as itself (what
/// `eq_ignore_ascii_case` answers, in two thirds of its instructions on CRS's 19-byte
/// `header_name_920450_`).
#[derive(Debug, Clone)]
struct Word {
    at: WordAt,
    /// The word lower-cased.
    lower: Vec<u8>,
    /// Per byte of the word: 0x20 for a letter, else 0.
    case: Vec<u8>,
}

impl Word {
    fn new(at: WordAt, word: &str) -> Word {
        let bytes = word.as_bytes();
        Word {
            at,
            lower: bytes.to_ascii_lowercase(),
            case: bytes
                .iter()
                .map(|b| if b.is_ascii_alphabetic() { 0x20 } else { 0 })
                .collect(),
        }
    }

    /// Whether `k`, as long as the word, is the word (ASCII case aside).
    fn is(&self, k: &[u8]) -> bool {
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let (keys, words, cases) = (
            k.chunks_exact(8),
            self.lower.chunks_exact(8),
            self.case.chunks_exact(8),
        );
        let tail = keys
            .remainder()
            .iter()
            .zip(words.remainder())
            .zip(cases.remainder())
            .all(|((k, w), c)| k | c == *w);
        tail && keys
            .zip(words)
            .zip(cases)
            .all(|((k, w), c)| word(k) | word(c) == word(w))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordAt {
    Start,
    Anywhere,
}

impl KeyRegex {
    fn new(pattern: &str) -> Result<KeyRegex, regex::Error> {
        let re = regex::bytes::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .unicode(false)
            .build()?;
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        // A last `.*` or `x*` (zero or more) adds nothing to whether a key matches.
        let rest = match pattern.strip_suffix('*').and_then(|r| {
            let x = r.chars().next_back()?;
            Some((&r[..r.len() - x.len_utf8()], x))
        }) {
            Some((rest, x)) if x == '.' || plain(x) => rest,
            _ => pattern,
        };
        let (at, word) = match rest.strip_prefix('^') {
            Some(w) => (WordAt::Start, w),
            None => (WordAt::Anywhere, rest),
        };
        let word =
            (!word.is_empty() && word.chars().all(plain)).then(|| Box::new(Word::new(at, word)));
        Ok(KeyRegex { re, word })
    }

    pub fn is_match(&self, key: &[u8]) -> bool {
        match self.word.as_deref() {
            Some(w) if w.at == WordAt::Start => key.get(..w.lower.len()).is_some_and(|k| w.is(k)),
            Some(w) => key.windows(w.lower.len()).any(|k| w.is(k)),
            None => self.re.is_match(key),
        }
    }

    pub fn as_str(&self) -> &str {
        self.re.as_str()
    }
}

/// One rule target, e.g. `&ARGS`, `REQUEST_HEADERS:User-Agent`, `TX:/^foo/`.
///
/// `repr(C)`: what visiting reads first, together at the start.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Target {
    pub var: Var,
    pub count: bool,
    /// For `TX:key`: the key's slot, numbered when the rule set is built.
    pub slot: Option<u32>,
    pub selector: Selector,
    /// `!VAR:selector` entries that name this target's variable.
    pub exclusions: Vec<Selector>,
    /// For `TX:/regex/`: the numbered keys the regex selects, in key order (set when the
    /// rule set is built), so that a transaction tests the regex only on keys made at run
    /// time.
    pub selected_slots: Option<Vec<u32>>,
}

/// A `VAR[:selector]` reference without `&`/`!` (as in `ctl:ruleRemoveTargetById`).
#[derive(Debug, Clone)]
pub struct VarRef {
    pub var: Var,
    pub selector: Selector,
}

impl VarRef {
    /// Whether this reference covers member `key` of `var`.
    pub fn covers(&self, var: Var, key: &[u8]) -> bool {
        self.var == var && self.selector.selects(key)
    }
}

/// Parse one `VAR[:selector]` reference.
pub fn parse_var_ref(s: &str) -> Result<VarRef, String> {
    let (name, sel) = match s.split_once(':') {
        Some((n, sel)) => (n, Some(sel)),
        None => (s, None),
    };
    let (var, is_coll) =
        Var::from_name(name.trim()).ok_or_else(|| format!("unknown variable {name:?}"))?;
    let selector = match sel {
        None => Selector::All,
        Some(_) if !is_coll => return Err(format!("variable {name} takes no selector")),
        Some(sel) => parse_selector(var, sel)?,
    };
    Ok(VarRef { var, selector })
}

fn parse_selector(var: Var, sel: &str) -> Result<Selector, String> {
    let sel = sel.trim();
    let sel = sel
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(sel);
    if var == Var::Xml {
        return Ok(Selector::XPath(sel.to_string()));
    }
    if sel.len() >= 2 && sel.starts_with('/') && sel.ends_with('/') {
        let re = KeyRegex::new(&sel[1..sel.len() - 1])
            .map_err(|e| format!("bad selector regex {sel}: {e}"))?;
        return Ok(Selector::Regex(re));
    }
    Ok(Selector::Key(sel.to_ascii_lowercase().into_bytes()))
}

/// Split a target list on `|`, keeping `|` inside `/regex/` or `'quoted'` selectors.
fn split_targets(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut in_sel: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match in_sel {
            Some(close) => {
                if c == b'\\' {
                    i += 1;
                } else if c == close && (i + 1 == b.len() || b[i + 1] == b'|') {
                    in_sel = None;
                }
            }
            None => {
                if c == b'|' {
                    parts.push(&s[start..i]);
                    start = i + 1;
                } else if c == b':' && i + 1 < b.len() && (b[i + 1] == b'/' || b[i + 1] == b'\'') {
                    let name = &s[start..i];
                    // XML:/xpath is not a regex.
                    if !name
                        .trim_start_matches(['!', '&'])
                        .eq_ignore_ascii_case("XML")
                    {
                        in_sel = Some(b[i + 1]);
                        i += 1;
                    }
                }
            }
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// Parse a rule's target list.
pub fn parse_targets(s: &str) -> Result<Vec<Target>, String> {
    let mut targets: Vec<Target> = Vec::new();
    let mut exclusions: Vec<VarRef> = Vec::new();
    for part in split_targets(s.trim()) {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("empty target in {s:?}"));
        }
        if let Some(ex) = part.strip_prefix('!') {
            exclusions.push(parse_var_ref(ex)?);
        } else if let Some(c) = part.strip_prefix('&') {
            let r = parse_var_ref(c)?;
            targets.push(Target {
                var: r.var,
                selector: r.selector,
                count: true,
                exclusions: Vec::new(),
                slot: None,
                selected_slots: None,
            });
        } else {
            let r = parse_var_ref(part)?;
            targets.push(Target {
                var: r.var,
                selector: r.selector,
                count: false,
                exclusions: Vec::new(),
                slot: None,
                selected_slots: None,
            });
        }
    }
    for ex in exclusions {
        add_exclusion(&mut targets, ex);
    }
    // Kept for the rule set's life in every worker: no spare capacity.
    targets.shrink_to_fit();
    Ok(targets)
}

/// Attach an exclusion to every target of the same variable.
/// (ModSecurity accepts exclusions of absent variables; they have no effect.)
pub fn add_exclusion(targets: &mut [Target], ex: VarRef) {
    for t in targets.iter_mut().filter(|t| t.var == ex.var) {
        t.exclusions.push(ex.selector.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selectors_counts_and_exclusions() {
        let t =
            parse_targets("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm|x/|ARGS_NAMES|&TX:foo|XML:/*")
                .unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].var, Var::RequestCookies);
        assert_eq!(t[0].exclusions.len(), 1);
        assert!(t[0].exclusions[0].selects(b"__UTMZ"));
        assert!(t[2].count);
        assert!(matches!(&t[2].selector, Selector::Key(k) if k == b"foo"));
        assert!(matches!(&t[3].selector, Selector::XPath(p) if p == "/*"));
    }

    #[test]
    fn fields_read_per_value_come_first() {
        use std::mem::{offset_of, size_of};
        let hot_end = offset_of!(Target, selector) + size_of::<Selector>();
        assert!(hot_end <= 64, "{hot_end}");
        assert!([
            offset_of!(Target, var),
            offset_of!(Target, count),
            offset_of!(Target, slot)
        ]
        .iter()
        .all(|&at| at < offset_of!(Target, selector)));
        assert!(offset_of!(Target, exclusions) >= hot_end);
    }

    #[test]
    fn names_round_trip() {
        for (name, var, _) in VARS {
            assert_eq!(var.name(), *name);
            assert_eq!(Var::from_name(name).map(|(v, _)| v), Some(*var));
        }
    }

    /// A selector that compares a word answers as its regex does, case and all.
    #[test]
    fn word_selectors_agree_with_their_regex() {
        let patterns = [
            "^header_name_920450_",
            "paramcounter_.*",
            "^_pk_ref",
            "^a-b.*",
            "x",
            "MULTIPART_HEADERS_CONTENT_TYPES_*",
            "^ab*",
            // Whole eight-byte steps, no byte after them.
            "^abcd_f-h",
            "ABcd_f-h12345678",
            // Not words: the regex answers.
            "^pbjs-\\w+$",
            "a\\w*",
            "a.+",
            "^",
            ".*",
        ];
        let parts: [&[u8]; 11] = [
            b"abcd_f-h",
            b"abcd_f-h12345678",
            b"header_name_920450_",
            b"HEADER_NAME_920450_",
            b"paramcounter_",
            b"_pk_ref",
            b"A-B",
            b"x",
            b"multipart_headers_content_types_",
            b"\xc3\x9f",
            b"\n",
        ];
        let mut below = crate::test_rng::below(0x5eed_0f4e);
        for p in patterns {
            let fast = KeyRegex::new(p).unwrap();
            let slow = regex::bytes::RegexBuilder::new(p)
                .case_insensitive(true)
                .unicode(false)
                .build()
                .unwrap();
            let word =
                !p.contains('$') && !p.contains('\\') && !["^", ".*", "a.+", "é*"].contains(&p);
            assert_eq!(fast.word.is_some(), word, "{p}");
            for _ in 0..2000 {
                let mut key = Vec::new();
                for _ in 0..below(4) {
                    let part = parts[below(parts.len())];
                    // Parts whole, cut short, or with a letter changed.
                    match below(3) {
                        0 => key.extend_from_slice(part),
                        1 => key.extend_from_slice(&part[..below(part.len() + 1)]),
                        _ => {
                            let at = key.len() + below(part.len());
                            key.extend_from_slice(part);
                            key[at] ^= 0x20;
                        }
                    }
                }
                assert_eq!(fast.is_match(&key), slow.is_match(&key), "{p} on {key:?}");
            }
        }
    }

    #[test]
    fn rejects_unknown_and_bad_selectors() {
        assert!(parse_targets("NOPE").unwrap_err().contains("NOPE"));
        assert!(parse_targets("REQUEST_URI:x").is_err());
        assert!(parse_targets("ARGS:/(/").is_err());
        assert!(parse_targets("ARGS|").is_err());
    }
}
