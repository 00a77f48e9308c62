//! `application/x-www-form-urlencoded` bodies and query strings, as attackers send them.
//!
//! Nothing is assumed about the bytes: invalid percent escapes stay as they are (as PHP and
//! most frameworks keep them), and nothing has to be UTF-8.

use std::borrow::Cow;

/// The raw `name=value` pairs, split on `&` (and `;`, which old CGI code also accepted).
pub fn pairs(body: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    body.split(|&b| b == b'&' || b == b';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        })
}

/// Percent-decodes and turns `+` into a space; borrows when there is nothing to decode.
pub fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() && hex(raw[i + 1]).is_some() && hex(raw[i + 2]).is_some() => {
                out.push(hex(raw[i + 1]).unwrap() << 4 | hex(raw[i + 2]).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The decoded value of the first field whose decoded name is `name`.
pub fn find<'a>(body: &'a [u8], name: &str) -> Option<Cow<'a, [u8]>> {
    pairs(body)
        .find(|(n, _)| decode(n) == name.as_bytes())
        .map(|(_, v)| decode(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_form_parser() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"plain", b"plain"),
            (b"a+b", b"a b"),
            (b"%41%62c", b"Abc"),
            (b"100%", b"100%"),
            (b"%4", b"%4"),
            (b"%zz%4g", b"%zz%4g"),
            (b"%ff%00", b"\xff\x00"),
            (b"%2B+%2b", b"+ +"),
            (b"", b""),
        ];
        for (raw, want) in cases {
            assert_eq!(&*decode(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn finds_fields_by_decoded_name() {
        let body = b"user=admin&pass=p%40ss+word&&flag&x%5Fy=1;z=2&user=second";
        assert_eq!(find(body, "user").as_deref(), Some(&b"admin"[..]));
        assert_eq!(find(body, "pass").as_deref(), Some(&b"p@ss word"[..]));
        assert_eq!(find(body, "flag").as_deref(), Some(&b""[..]));
        assert_eq!(find(body, "x_y").as_deref(), Some(&b"1"[..]));
        assert_eq!(find(body, "z").as_deref(), Some(&b"2"[..]));
        assert_eq!(find(body, "missing"), None);
        assert_eq!(
            pairs(body).count(),
            6,
            "the empty pair between && is skipped"
        );
    }
}
