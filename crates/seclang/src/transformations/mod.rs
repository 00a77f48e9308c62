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

/// A transformation function: `out` receives the transformed `input`.
pub type TransformFn = fn(input: &[u8], out: &mut Vec<u8>);

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

/// A cheap test that is true only when transformation `id` would return `input` as it is:
/// most values in most requests have nothing to decode, and this spares the copy.
/// (False means "maybe changed"; the fuzz target checks that true is never wrong.)
pub fn unchanged(id: TransformId, input: &[u8]) -> bool {
    let none_of = |set: &[u8]| !input.iter().any(|c| set.contains(c));
    let first_last_not_space = |first: bool, last: bool| {
        (!first || !input.first().is_some_and(|&c| is_space(c)))
            && (!last || !input.last().is_some_and(|&c| is_space(c)))
    };
    match TABLE[id as usize].0 {
        "urlDecode" | "urlDecodeUni" => none_of(b"%+"),
        "htmlEntityDecode" => memchr::memchr(b'&', input).is_none(),
        "jsDecode" | "cssDecode" | "escapeSeqDecode" => memchr::memchr(b'\\', input).is_none(),
        "removeNulls" | "replaceNulls" => memchr::memchr(0, input).is_none(),
        "lowercase" => !input.iter().any(u8::is_ascii_uppercase),
        "uppercase" => !input.iter().any(u8::is_ascii_lowercase),
        // Only multi-byte UTF-8 sequences are rewritten.
        "utf8toUnicode" => input.is_ascii(),
        "removeWhitespace" => !input.iter().any(|&c| is_space(c)),
        "compressWhitespace" => {
            let mut prev_space = false;
            input.iter().all(|&c| {
                let sp = is_space(c);
                let ok = !sp || (c == b' ' && !prev_space);
                prev_space = sp;
                ok
            })
        }
        "cmdLine" => input.iter().enumerate().all(|(i, &c)| match c {
            b'"' | b'\'' | b'\\' | b'^' | b',' | b';' | b'\t' | b'\r' | b'\n' => false,
            b'A'..=b'Z' => false,
            // A space survives unless another space, `/` or `(` follows it.
            b' ' => !matches!(input.get(i + 1), Some(b' ' | b'/' | b'(')),
            _ => true,
        }),
        "replaceComments" => memchr::memmem::find(input, b"/*").is_none(),
        "removeComments" => {
            memchr::memchr(b'#', input).is_none()
                && memchr::memmem::find(input, b"/*").is_none()
                && memchr::memmem::find(input, b"--").is_none()
                && memchr::memmem::find(input, b"<!").is_none()
        }
        // No empty, `.` or `..` segment (they start the value or follow a slash).
        "normalisePath" | "normalizePath" => {
            !input.starts_with(b".")
                && memchr::memmem::find(input, b"//").is_none()
                && memchr::memmem::find(input, b"/.").is_none()
        }
        "normalisePathWin" | "normalizePathWin" => {
            memchr::memchr(b'\\', input).is_none()
                && !input.starts_with(b".")
                && memchr::memmem::find(input, b"//").is_none()
                && memchr::memmem::find(input, b"/.").is_none()
        }
        "trim" => first_last_not_space(true, true),
        "trimLeft" => first_last_not_space(true, false),
        "trimRight" => first_last_not_space(false, true),
        _ => false,
    }
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
pub(crate) fn is_space(c: u8) -> bool {
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
        ];
        for (id, (name, _)) in TABLE.iter().enumerate() {
            for s in samples {
                if unchanged(id as TransformId, s) {
                    let mut out = Vec::new();
                    apply(id as TransformId, s, &mut out);
                    assert_eq!(out, *s, "{name} on {:?}", String::from_utf8_lossy(s));
                }
            }
        }
        assert!(unchanged(lookup("urlDecode").unwrap(), b"books"));
        assert!(unchanged(
            lookup("normalisePath").unwrap(),
            b"/products/list.php"
        ));
    }

    #[test]
    fn lookup_is_case_insensitive_and_complete() {
        assert_eq!(lookup("URLDECODEUNI"), lookup("urlDecodeUni"));
        assert!(lookup("base64decode").is_some());
        assert!(lookup("nonsense").is_none());
        for (name, _) in TABLE {
            assert!(lookup(name).is_some(), "{name}");
        }
    }
}
