//! `application/x-www-form-urlencoded` (and query strings): `&`-separated `name=value`,
//! both `+`/`%`-decoded; a parameter without `=` has an empty value.

use super::Pairs;
use crate::transformations::hex_pair;

/// Decode `%HH` and `+`; returns whether an invalid `%` sequence was seen.
pub fn decode(s: &[u8], out: &mut Vec<u8>) -> bool {
    let mut invalid = false;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => match hex_pair(&s[i + 1..]) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => {
                    invalid = true;
                    out.push(b'%');
                }
            },
            c => out.push(c),
        }
        i += 1;
    }
    invalid
}

/// Parse into `out`; returns whether any invalid encoding was seen.
pub fn parse(data: &[u8], out: &mut Pairs) -> bool {
    let mut invalid = false;
    for part in data.split(|c| *c == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match memchr::memchr(b'=', part) {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (part, &b""[..]),
        };
        let (n, v) = out.push_empty();
        invalid |= decode(name, n);
        invalid |= decode(value, v);
    }
    invalid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Pair;

    #[test]
    fn parses_pairs() {
        let mut v = Pairs::default();
        assert!(!parse(b"a=1&b=x+y%21&&c&d=&a=2", &mut v));
        let want: Vec<Pair> = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"x y!".to_vec()),
            (b"c".to_vec(), b"".to_vec()),
            (b"d".to_vec(), b"".to_vec()),
            (b"a".to_vec(), b"2".to_vec()),
        ];
        assert_eq!(&v[..], &want[..]);
        let mut v = Pairs::default();
        assert!(parse(b"x=%zz&%=1", &mut v));
        assert_eq!(v[0].1, b"%zz");
        let mut v = Pairs::default();
        parse(b"", &mut v);
        assert!(v.is_empty());
    }
}
