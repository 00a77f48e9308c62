//! Transformations (`t:name`): one file each, registered in [`TABLE`].
//!
//! Each writes the transformed form of `input` into `out` (cleared by the caller). They follow
//! ModSecurity v2's definitions, which the Core Rule Set is written against.

mod base64_decode;
mod base64_decode_ext;
mod base64_encode;
mod cmd_line;
mod compress_whitespace;
mod css_decode;
mod escape_seq_decode;
mod hex_decode;
mod hex_encode;
mod html_entity_decode;
mod js_decode;
mod length;
mod lowercase;
mod md5;
mod normalise_path;
mod normalise_path_win;
mod remove_comments;
mod remove_comments_char;
mod remove_nulls;
mod remove_whitespace;
mod replace_comments;
mod replace_nulls;
mod sha1;
mod sql_hex_decode;
mod trim;
mod trim_left;
mod trim_right;
mod uppercase;
mod url_decode;
mod url_decode_uni;
mod url_encode;
mod utf8_to_unicode;

pub(crate) use base64_decode::decoded_bytes as base64_decoded_bytes;

/// A transformation function: `out` receives the transformed `input`.
pub type TransformFn = fn(input: &[u8], out: &mut Vec<u8>);

/// A cheap test that is true only when a transformation would return `input` as it is:
/// most values in most requests have nothing to decode, and this spares the copy.
/// (False means "maybe changed"; the fuzz target checks that true is never wrong.)
pub type UnchangedFn = fn(input: &[u8]) -> bool;

/// Index of a transformation in [`TABLE`].
pub type TransformId = u8;

/// All transformations by SecLang name (lookup is case-insensitive, as ModSecurity's).
pub const TABLE: &[(&str, TransformFn)] = &[
    ("base64Decode", base64_decode::apply),
    ("base64DecodeExt", base64_decode_ext::apply),
    ("base64Encode", base64_encode::apply),
    ("cmdLine", cmd_line::apply),
    ("compressWhitespace", compress_whitespace::apply),
    ("cssDecode", css_decode::apply),
    ("escapeSeqDecode", escape_seq_decode::apply),
    ("hexDecode", hex_decode::apply),
    ("hexEncode", hex_encode::apply),
    ("htmlEntityDecode", html_entity_decode::apply),
    ("jsDecode", js_decode::apply),
    ("length", length::apply),
    ("lowercase", lowercase::apply),
    ("md5", md5::apply),
    ("normalisePath", normalise_path::apply),
    ("normalizePath", normalise_path::apply),
    ("normalisePathWin", normalise_path_win::apply),
    ("normalizePathWin", normalise_path_win::apply),
    ("removeComments", remove_comments::apply),
    ("removeCommentsChar", remove_comments_char::apply),
    ("removeNulls", remove_nulls::apply),
    ("removeWhitespace", remove_whitespace::apply),
    ("replaceComments", replace_comments::apply),
    ("replaceNulls", replace_nulls::apply),
    ("sha1", sha1::apply),
    ("sqlHexDecode", sql_hex_decode::apply),
    ("trim", trim::apply),
    ("trimLeft", trim_left::apply),
    ("trimRight", trim_right::apply),
    ("uppercase", uppercase::apply),
    ("urlDecode", url_decode::apply),
    ("urlDecodeUni", url_decode_uni::apply),
    ("urlEncode", url_encode::apply),
    ("utf8toUnicode", utf8_to_unicode::apply),
];

/// Each transformation's unchanged-value test, in [`TABLE`] order, with the [`features`]
/// without which a value is left as it is, whether a value with some of them is worth
/// the test (for the others it fails whenever they are there), and the features with
/// which it fails for certain (the test is not worth running on a value with one).
const UNCHANGED: &[(&str, UnchangedFn, u32, bool, u32)] = &[
    ("base64Decode", never, ALWAYS, false, 0),
    ("base64DecodeExt", never, ALWAYS, false, 0),
    ("base64Encode", never, ALWAYS, false, 0),
    (
        "cmdLine",
        cmd_line::unchanged,
        CMD_LINE | BACKSLASH | UPPER | SPACE,
        true,
        UPPER | BACKSLASH | CMD_LINE,
    ),
    ("compressWhitespace", compressed, SPACE, true, 0),
    ("cssDecode", no_backslash, BACKSLASH, false, 0),
    ("escapeSeqDecode", no_backslash, BACKSLASH, false, 0),
    ("hexDecode", never, ALWAYS, false, 0),
    ("hexEncode", never, ALWAYS, false, 0),
    ("htmlEntityDecode", no_ampersand, AMPERSAND, false, 0),
    ("jsDecode", no_backslash, BACKSLASH, false, 0),
    ("length", never, ALWAYS, false, 0),
    ("lowercase", no_upper, UPPER, false, 0),
    ("md5", never, ALWAYS, false, 0),
    ("normalisePath", normal_path, DOT | SLASH, true, 0),
    ("normalizePath", normal_path, DOT | SLASH, true, 0),
    (
        "normalisePathWin",
        normal_path_win,
        DOT | SLASH | BACKSLASH,
        true,
        BACKSLASH,
    ),
    (
        "normalizePathWin",
        normal_path_win,
        DOT | SLASH | BACKSLASH,
        true,
        BACKSLASH,
    ),
    (
        "removeComments",
        no_comment_marks,
        HASH | SLASH | DASH | LESS,
        true,
        HASH,
    ),
    (
        "removeCommentsChar",
        no_comment_chars,
        HASH | STAR | DASH,
        true,
        HASH,
    ),
    ("removeNulls", no_nul, NUL, false, 0),
    ("removeWhitespace", no_space, SPACE, false, 0),
    ("replaceComments", no_comment_start, STAR, true, 0),
    ("replaceNulls", no_nul, NUL, false, 0),
    ("sha1", never, ALWAYS, false, 0),
    ("sqlHexDecode", never, ALWAYS, false, 0),
    ("trim", trimmed, SPACE, true, 0),
    ("trimLeft", trimmed_left, SPACE, true, 0),
    ("trimRight", trimmed_right, SPACE, true, 0),
    ("uppercase", no_lower, LOWER, false, 0),
    ("urlDecode", no_percent_or_plus, PERCENT_OR_PLUS, false, 0),
    (
        "urlDecodeUni",
        no_percent_or_plus,
        PERCENT_OR_PLUS,
        false,
        0,
    ),
    ("urlEncode", never, ALWAYS, false, 0),
    ("utf8toUnicode", ascii, NON_ASCII, false, 0),
];

/// How long each transformation's output can be, in [`TABLE`] order: at most
/// `n * num / den + add` bytes for an input of `n` bytes (`output_length_is_bounded` and
/// the `transformations` fuzz target check it). The prefilter skips values too short to
/// hold any of a rule's literals once transformed: `base64Decode` leaves three quarters.
const MAX_LEN: &[(&str, usize, usize, usize)] = &[
    ("base64Decode", 3, 4, 0),
    ("base64DecodeExt", 3, 4, 0),
    ("base64Encode", 4, 3, 4),
    ("cmdLine", 1, 1, 0),
    ("compressWhitespace", 1, 1, 0),
    ("cssDecode", 1, 1, 0),
    ("escapeSeqDecode", 1, 1, 0),
    ("hexDecode", 1, 1, 0),
    ("hexEncode", 2, 1, 0),
    ("htmlEntityDecode", 1, 1, 0),
    ("jsDecode", 1, 1, 0),
    // The decimal length of a `usize`.
    ("length", 0, 1, 20),
    ("lowercase", 1, 1, 0),
    ("md5", 0, 1, 40),
    // `..` becomes `../`.
    ("normalisePath", 1, 1, 1),
    ("normalizePath", 1, 1, 1),
    ("normalisePathWin", 1, 1, 1),
    ("normalizePathWin", 1, 1, 1),
    ("removeComments", 1, 1, 0),
    ("removeCommentsChar", 1, 1, 0),
    ("removeNulls", 1, 1, 0),
    ("removeWhitespace", 1, 1, 0),
    ("replaceComments", 1, 1, 0),
    ("replaceNulls", 1, 1, 0),
    ("sha1", 0, 1, 40),
    ("sqlHexDecode", 1, 1, 0),
    ("trim", 1, 1, 0),
    ("trimLeft", 1, 1, 0),
    ("trimRight", 1, 1, 0),
    ("uppercase", 1, 1, 0),
    ("urlDecode", 1, 1, 0),
    ("urlDecodeUni", 1, 1, 0),
    ("urlEncode", 3, 1, 0),
    // A two-byte sequence becomes `%uHHHH`.
    ("utf8toUnicode", 3, 1, 0),
];

const _: () = assert!(MAX_LEN.len() == TABLE.len());

/// The most bytes transformation `id` can make of an input of `n` bytes.
pub fn max_len(id: TransformId, n: usize) -> usize {
    let (_, num, den, add) = MAX_LEN[id as usize];
    (n.saturating_mul(num) / den).saturating_add(add)
}

// Value features: kinds of bytes the unchanged-value tests look for.
/// Set in every value's features: transformations that change any value require it.
const ALWAYS: u32 = 1;
const PERCENT_OR_PLUS: u32 = 1 << 1;
const AMPERSAND: u32 = 1 << 2;
const BACKSLASH: u32 = 1 << 3;
const NUL: u32 = 1 << 4;
const UPPER: u32 = 1 << 5;
const LOWER: u32 = 1 << 6;
/// [`is_space`] bytes.
const SPACE: u32 = 1 << 7;
const NON_ASCII: u32 = 1 << 8;
/// The other bytes `cmdLine` drops or replaces: `" ' ^ , ;`.
const CMD_LINE: u32 = 1 << 9;
const HASH: u32 = 1 << 10;
const STAR: u32 = 1 << 11;
const DASH: u32 = 1 << 12;
const SLASH: u32 = 1 << 13;
const DOT: u32 = 1 << 14;
const LESS: u32 = 1 << 15;

/// Byte → its features.
static BYTE_FEATURES: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b'%' | b'+' => PERCENT_OR_PLUS,
            b'&' => AMPERSAND,
            b'\\' => BACKSLASH,
            0 => NUL,
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'"' | b'\'' | b'^' | b',' | b';' => CMD_LINE,
            b'#' => HASH,
            b'*' => STAR,
            b'-' => DASH,
            b'/' => SLASH,
            b'.' => DOT,
            b'<' => LESS,
            _ => 0,
        };
        if is_space(c) {
            t[i] |= SPACE;
        }
        if c >= 0x80 {
            t[i] |= NON_ASCII;
        }
        i += 1;
    }
    t
};

/// The kinds of bytes `input` holds, for [`unchanged_given`]: one pass over a value serves
/// the unchanged-value tests of every transformation.
pub fn features(input: &[u8]) -> u32 {
    // Eight bytes per loop turn: the per-byte loop's counter and branch cost as much as
    // the lookup itself, and every value a rule reads passes through here once.
    let mut chunks = input.chunks_exact(8);
    let mut f = ALWAYS;
    for chunk in &mut chunks {
        f |= chunk
            .iter()
            .fold(0, |f, &c| f | BYTE_FEATURES[usize::from(c)]);
    }
    chunks
        .remainder()
        .iter()
        .fold(f, |f, &c| f | BYTE_FEATURES[usize::from(c)])
}

/// [`unchanged`] for a value whose [`features`] are `features`: true only when
/// transformation `id` returns `input` as it is (false more often than `unchanged`).
pub fn unchanged_given(id: TransformId, features: u32, input: &[u8]) -> bool {
    let (may, refined) = may_change(features);
    let bit = 1u64 << id;
    may & bit == 0 || (refined & bit != 0 && unchanged(id, input))
}

/// The transformations that may change a value whose [`features`] are `features` (as a
/// set of [`TransformId`] bits), and among them those worth their [`unchanged`] test; the
/// others change it (they lack such a test, or the value has a feature they always
/// change). Two table lookups answer for every transformation at once, where a cache would
/// otherwise ask [`unchanged_given`] once per transformation and value.
#[inline]
pub fn may_change(features: u32) -> (u64, u64) {
    let (low, high) = ((features & 0xff) as usize, (features >> 8 & 0xff) as usize);
    let may = MAY_CHANGE[0][low] | MAY_CHANGE[1][high];
    let certain = CERTAIN[0][low] | CERTAIN[1][high];
    (may, may & REFINED & !certain)
}

// The features fit the two bytes that index [`MAY_CHANGE`].
const _: () = assert!(LESS < 1 << 16);

/// Transformations whose unchanged-value test is worth running (see [`UNCHANGED`]).
const REFINED: u64 = {
    let mut m = 0;
    let mut t = 0;
    while t < UNCHANGED.len() {
        if UNCHANGED[t].3 {
            m |= 1 << t;
        }
        t += 1;
    }
    m
};

/// Per byte of the features (low, high) and its value: the transformations that need one
/// of the features it holds.
static MAY_CHANGE: [[u64; 256]; 2] = by_feature_bytes(false);

/// The same for the transformations that change every value with one of the features.
static CERTAIN: [[u64; 256]; 2] = by_feature_bytes(true);

/// Per byte of the features and its value: the transformations whose needed (or, with
/// `certain`, certainly changing) features it holds some of.
const fn by_feature_bytes(certain: bool) -> [[u64; 256]; 2] {
    let mut table = [[0u64; 256]; 2];
    let mut half = 0;
    while half < 2 {
        let mut v = 0;
        while v < 256 {
            let features = (v as u32) << (8 * half);
            let mut t = 0;
            while t < UNCHANGED.len() {
                let of = if certain {
                    UNCHANGED[t].4
                } else {
                    UNCHANGED[t].2
                };
                if of & features != 0 {
                    table[half][v] |= 1 << t;
                }
                t += 1;
            }
            v += 1;
        }
        half += 1;
    }
    table
}

// Chains keep their set of transformations in a `u64`.
const _: () = assert!(TABLE.len() <= 64 && UNCHANGED.len() == TABLE.len());

/// Transformations whose output, ASCII lower-cased, depends only on their input ASCII
/// lower-cased: they treat a letter and its other case alike except for passing it on
/// (`lowercase` and `cmdLine` lower-case it; the decoders read hex digits, `%u`, `&#x` and
/// entity names in either case; the others never look at letters). A `lowercase` followed only by these changes
/// nothing that an ASCII-case-insensitive search of the result can see.
const CASE_BLIND: &[&str] = &[
    "cmdLine",
    "compressWhitespace",
    "htmlEntityDecode",
    "lowercase",
    "normalisePath",
    "normalizePath",
    "normalisePathWin",
    "normalizePathWin",
    "removeNulls",
    "removeWhitespace",
    "replaceNulls",
    "trim",
    "trimLeft",
    "trimRight",
    "urlDecode",
    "urlDecodeUni",
];

/// Whether transformation `id` is one of [`CASE_BLIND`].
pub fn case_blind(id: TransformId) -> bool {
    CASE_BLIND.contains(&TABLE[id as usize].0)
}

/// Find a transformation by name.
pub fn lookup(name: &str) -> Option<TransformId> {
    TABLE
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|i| i as TransformId)
}

/// Apply one transformation by id.
pub fn apply(id: TransformId, input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    (TABLE[id as usize].1)(input, out)
}

/// Whether transformation `id` certainly returns `input` as it is (see [`UnchangedFn`]).
pub fn unchanged(id: TransformId, input: &[u8]) -> bool {
    (UNCHANGED[id as usize].1)(input)
}

fn never(_: &[u8]) -> bool {
    false
}

fn no_percent_or_plus(input: &[u8]) -> bool {
    memchr::memchr2(b'%', b'+', input).is_none()
}

fn no_ampersand(input: &[u8]) -> bool {
    memchr::memchr(b'&', input).is_none()
}

fn no_backslash(input: &[u8]) -> bool {
    memchr::memchr(b'\\', input).is_none()
}

fn no_nul(input: &[u8]) -> bool {
    memchr::memchr(0, input).is_none()
}

fn no_upper(input: &[u8]) -> bool {
    !input.iter().any(u8::is_ascii_uppercase)
}

fn no_lower(input: &[u8]) -> bool {
    !input.iter().any(u8::is_ascii_lowercase)
}

/// Only multi-byte UTF-8 sequences are rewritten.
fn ascii(input: &[u8]) -> bool {
    input.is_ascii()
}

fn no_space(input: &[u8]) -> bool {
    !input.iter().any(|&c| is_space(c))
}

fn compressed(input: &[u8]) -> bool {
    let mut prev_space = false;
    input.iter().all(|&c| {
        let sp = is_space(c);
        let ok = !sp || (c == b' ' && !prev_space);
        prev_space = sp;
        ok
    })
}

fn no_comment_start(input: &[u8]) -> bool {
    memchr::memmem::find(input, b"/*").is_none()
}

fn no_comment_marks(input: &[u8]) -> bool {
    memchr::memchr(b'#', input).is_none()
        && memchr::memmem::find(input, b"/*").is_none()
        && memchr::memmem::find(input, b"--").is_none()
        && memchr::memmem::find(input, b"<!").is_none()
}

/// None of the marks `removeCommentsChar` deletes: `#`, `--`, `/*`, `*/` (`<!--` and `-->`
/// hold `--`).
fn no_comment_chars(input: &[u8]) -> bool {
    memchr::memchr3_iter(b'#', b'*', b'-', input).all(|i| match input[i] {
        b'#' => false,
        b'*' => !(i > 0 && input[i - 1] == b'/') && input.get(i + 1) != Some(&b'/'),
        _ => input.get(i + 1) != Some(&b'-'),
    })
}

/// No empty, `.` or `..` segment (they start the value or follow a slash). One pass over
/// the slashes: two substring searches cost more in set-up than in search on short values.
fn normal_path(input: &[u8]) -> bool {
    !input.starts_with(b".")
        && memchr::memchr_iter(b'/', input).all(|i| !matches!(input.get(i + 1), Some(b'/' | b'.')))
}

fn normal_path_win(input: &[u8]) -> bool {
    memchr::memchr(b'\\', input).is_none() && normal_path(input)
}

fn trimmed_left(input: &[u8]) -> bool {
    !input.first().is_some_and(|&c| is_space(c))
}

fn trimmed_right(input: &[u8]) -> bool {
    !input.last().is_some_and(|&c| is_space(c))
}

fn trimmed(input: &[u8]) -> bool {
    trimmed_left(input) && trimmed_right(input)
}

/// Value of an ASCII hex digit.
pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Two hex digits at `s[0..2]` as a byte.
pub(crate) fn hex_pair(s: &[u8]) -> Option<u8> {
    match s {
        [a, b, ..] => Some(hex_val(*a)? << 4 | hex_val(*b)?),
        _ => None,
    }
}

/// Whitespace as ModSecurity's transformations see it (C `isspace` plus NBSP).
pub(crate) const fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

/// `%uHHHH`-style code unit to a byte: full-width ASCII folds to ASCII, anything else keeps
/// its low byte (ModSecurity's behaviour without a unicode map).
pub(crate) fn unicode_to_byte(code: u32) -> u8 {
    if (0xff01..=0xff5e).contains(&code) {
        (code - 0xfee0) as u8
    } else {
        (code & 0xff) as u8
    }
}

/// Holds transformation `f` to `reference` on 20,000 values of fewer than `max_len` bytes
/// drawn from `alphabet` (seeded: a failure repeats).
#[cfg(test)]
pub(crate) fn assert_agrees(
    f: TransformFn,
    reference: fn(&[u8]) -> Vec<u8>,
    alphabet: &[u8],
    max_len: usize,
    seed: u64,
) {
    let mut below = crate::test_rng::below(seed);
    for _ in 0..20_000 {
        let len = below(max_len);
        let value: Vec<u8> = (0..len).map(|_| alphabet[below(alphabet.len())]).collect();
        assert_eq!(run(f, &value), reference(&value), "{value:?}");
    }
}

#[cfg(test)]
pub(crate) fn run(f: TransformFn, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    f(input, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_length_is_bounded() {
        for (i, (name, _)) in TABLE.iter().enumerate() {
            assert_eq!(MAX_LEN[i].0, *name, "MAX_LEN is in TABLE order");
        }
        let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1du64);
        // The bytes the decoders and path rules react to, base64 and hex digits, and the
        // lead bytes of multi-byte UTF-8 sequences.
        let alphabet = b"aAfFgGxXuUzZ09+/=%%&&#;\\..//*-<!\"' \t\n\x00\xc3\xa9\xe2\x82\xac\xf0\x9f";
        let base64 = b"QUJDREVGazAz+/=";
        let mut out = Vec::new();
        for (id, (name, _)) in TABLE.iter().enumerate() {
            let id = id as TransformId;
            for round in 0..4000 {
                let bytes: &[u8] = if round % 2 == 0 { alphabet } else { base64 };
                let len = next(40);
                let input: Vec<u8> = (0..len).map(|_| bytes[next(bytes.len())]).collect();
                apply(id, &input, &mut out);
                assert!(
                    out.len() <= max_len(id, input.len()),
                    "{name} made {} bytes of {:?}",
                    out.len(),
                    String::from_utf8_lossy(&input)
                );
            }
        }
        for s in [&b".."[..], b"a/..", b"\xc3\xa9", b"QUJD", b"QUJDRA==", b""] {
            for id in 0..TABLE.len() as TransformId {
                apply(id, s, &mut out);
                assert!(
                    out.len() <= max_len(id, s.len()),
                    "{} on {s:?}",
                    TABLE[id as usize].0
                );
            }
        }
        // The bounds are tight where the prefilter relies on them.
        assert_eq!(max_len(lookup("base64Decode").unwrap(), 8), 6);
        apply(lookup("base64Decode").unwrap(), b"QUJDREVG", &mut out);
        assert_eq!(out, b"ABCDEF");
    }

    #[test]
    fn unchanged_is_never_wrong() {
        let samples: &[&[u8]] = &[
            b"",
            b"plain text",
            b"two  spaces",
            b" lead",
            b"trail ",
            b"a\tb",
            b"MiXeD",
            b"50%25+off",
            b"%zz",
            b"&amp;&#x41;&lt",
            b"\\x41\\u0041\\101\\",
            b"caf\xc3\xa9 \xff\xfe",
            b"nul\x00here",
            b"/a/./b/../c//d/",
            b"./rel/path",
            b"C:\\win\\..\\x",
            b"/products/list.php",
            b"products/",
            b"/",
            b".",
            b"..",
            b"a /b (c",
            b"sel/*x*/ect -- #c <!-- x -->",
            b"cmd \"a\" 'b' ^c , d ; e",
            b"a-b*c/d -*- x/ *y",
            b"*/",
            b"x/*",
            b"<!-",
            b"a--",
            b"-->",
            b"#",
            b"-",
            b"*",
        ];
        let mut given = 0;
        for (id, (name, _)) in TABLE.iter().enumerate() {
            let id = id as TransformId;
            for s in samples {
                let by_features = unchanged_given(id, features(s), s);
                if unchanged(id, s) || by_features {
                    let mut out = Vec::new();
                    apply(id, s, &mut out);
                    assert_eq!(out, *s, "{name} on {:?}", String::from_utf8_lossy(s));
                }
                given += usize::from(by_features);
            }
        }
        // The features do answer for many (transformation, value) pairs.
        assert!(given > 300, "{given}");
        assert!(unchanged(lookup("urlDecode").unwrap(), b"books"));
        assert!(unchanged(
            lookup("normalisePath").unwrap(),
            b"/products/list.php"
        ));
        let comments_char = lookup("removeCommentsChar").unwrap();
        assert!(unchanged(comments_char, b"en-US,en;q=0.5"));
        assert!(unchanged(comments_char, b"a-b*c/d -*- x/ *y"));
        for marked in [&b"a#"[..], b"a--b", b"x*/", b"/*x", b"<!-- -->"] {
            assert!(!unchanged(comments_char, marked));
        }
    }

    /// Random case flips of inputs built from the bytes the transformations react to:
    /// every [`CASE_BLIND`] one gives the same output up to ASCII case; the others that
    /// read letters (`\x` escapes, base64, digests) are caught by the same check.
    #[test]
    fn case_blind_transformations_ignore_input_case() {
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15u64);
        let alphabet = b"aAfFgGxXuUlLtTqQ09%%+&&#;\\/.. \t\x00\xa0\"'^,()*-<!";
        let mut not_blind = Vec::new();
        for (id, (name, _)) in TABLE.iter().enumerate() {
            let id = id as TransformId;
            let mut agrees = true;
            for _ in 0..3000 {
                let len = next(12);
                let input: Vec<u8> = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
                let flipped: Vec<u8> = input
                    .iter()
                    .map(|&c| {
                        if next(2) == 0 {
                            c ^ (0x20 * u8::from(c.is_ascii_alphabetic()))
                        } else {
                            c
                        }
                    })
                    .collect();
                let (mut a, mut b) = (Vec::new(), Vec::new());
                apply(id, &input, &mut a);
                apply(id, &flipped, &mut b);
                if !a.eq_ignore_ascii_case(&b) {
                    assert!(!case_blind(id), "{name}: {input:?} vs {flipped:?}");
                    agrees = false;
                    break;
                }
            }
            if !agrees {
                not_blind.push(*name);
            }
        }
        for name in CASE_BLIND {
            assert!(lookup(name).is_some(), "{name}");
        }
        for name in ["jsDecode", "escapeSeqDecode", "base64Decode", "md5"] {
            assert!(not_blind.contains(&name), "{name} {not_blind:?}");
        }
    }

    /// The table behind [`may_change`] against the definition it precomputes, for every
    /// single feature and random sets of them.
    #[test]
    fn may_change_agrees_with_the_needed_features() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let singles = (0..16).map(|b| ALWAYS | 1 << b);
        let random = (0..2000).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ALWAYS | (seed as u32 & 0xffff)
        });
        for features in singles.chain(random) {
            let (may, refined) = may_change(features);
            for (t, (name, _, needs, refine, certain)) in UNCHANGED.iter().enumerate() {
                let bit = 1u64 << t;
                let needed = features & needs != 0;
                assert_eq!(may & bit != 0, needed, "{name} {features:#x}");
                assert_eq!(
                    refined & bit != 0,
                    needed && *refine && features & certain == 0,
                    "{name} {features:#x}"
                );
            }
        }
    }

    /// A value with one of a transformation's certainly-changing features is changed by it,
    /// on random values over the bytes the tests look for (each feature is met often).
    #[test]
    fn certain_features_always_change_the_value() {
        let mut next = crate::test_rng::below(0xce27_a1d5_0b5e);
        let alphabet = b"aAzZ09 \t\n\x0b\xa0\"'^,;\\#*-/.<!%+&\x00\xc3()";
        let mut checked = 0;
        for (t, (name, _, needs, _, certain)) in UNCHANGED.iter().enumerate() {
            assert_eq!(certain & needs, *certain, "{name}");
            if *certain == 0 {
                continue;
            }
            for _ in 0..5000 {
                let len = next(10);
                let value: Vec<u8> = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
                if features(&value) & certain == 0 {
                    continue;
                }
                let mut out = Vec::new();
                apply(t as TransformId, &value, &mut out);
                assert_ne!(out, value, "{name} on {value:?}");
                checked += 1;
            }
        }
        assert!(checked > 4000, "{checked}");
    }

    /// The slash-walking test against the substring searches it replaced, on random
    /// path-like values; where it says unchanged, `normalisePath` agrees.
    #[test]
    fn normal_path_agrees_with_substring_searches() {
        let mut next = crate::test_rng::below(0x9a7b_5ea5_c4e5);
        let alphabet = b"//..a\\";
        let contains = |v: &[u8], s: &[u8]| v.windows(2).any(|w| w == s);
        let mut normal = 0;
        for _ in 0..20_000 {
            let len = next(9);
            let value: Vec<u8> = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let expected =
                !value.starts_with(b".") && !contains(&value, b"//") && !contains(&value, b"/.");
            assert_eq!(normal_path(&value), expected, "{value:?}");
            if expected {
                let mut out = Vec::new();
                apply(lookup("normalisePath").unwrap(), &value, &mut out);
                assert_eq!(out, value);
                normal += 1;
            }
        }
        assert!(normal > 1000, "{normal}");
    }

    /// Values of every length around the eight-byte steps, with a rare byte anywhere:
    /// the same features as one byte at a time.
    #[test]
    fn features_agree_with_a_bytewise_fold() {
        let mut next = crate::test_rng::below(0x51de_c0de_f00d);
        for _ in 0..20_000 {
            let len = next(40);
            let mut value: Vec<u8> = (0..len).map(|_| b'a' + next(3) as u8).collect();
            if len > 0 {
                value[next(len)] = next(256) as u8;
            }
            let expected = value
                .iter()
                .fold(ALWAYS, |f, &c| f | BYTE_FEATURES[usize::from(c)]);
            assert_eq!(features(&value), expected, "{value:?}");
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_complete() {
        assert_eq!(lookup("URLDECODEUNI"), lookup("urlDecodeUni"));
        assert!(lookup("base64decode").is_some());
        assert!(lookup("nonsense").is_none());
        for (name, _) in TABLE {
            assert!(lookup(name).is_some(), "{name}");
        }
        let table: Vec<&str> = TABLE.iter().map(|(n, _)| *n).collect();
        let unchanged: Vec<&str> = UNCHANGED.iter().map(|(n, ..)| *n).collect();
        assert_eq!(table, unchanged);
    }
}
