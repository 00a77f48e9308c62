//! Raw HTTP/1.x messages from files: the start line, headers and body, with the body decoded
//! from `Transfer-Encoding: chunked` as nginx hands it to the rules. Lenient on purpose: a
//! rule author's file may end lines in LF only or carry a trailing newline; what was
//! guessed is reported as a warning rather than refused.

/// A parsed message: start line split in three, headers in order, decoded body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Message {
    /// Method, or the protocol of a response.
    pub first: Vec<u8>,
    /// Target, or the status code of a response.
    pub second: Vec<u8>,
    /// Protocol, or the reason phrase of a response.
    pub third: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub warnings: Vec<String>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    fn is_chunked(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case(b"transfer-encoding")
                && String::from_utf8_lossy(v)
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        })
    }
}

/// Where the head ends (after the blank line), whichever line ending the file uses.
fn head_end(raw: &[u8]) -> Option<usize> {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &b[start..end.max(start)]
}

/// Parses a request (`GET /x HTTP/1.1`) or a response (`HTTP/1.1 200 OK`).
pub fn parse(raw: &[u8]) -> Result<Message, String> {
    // Leading blank lines are tolerated before the start line (RFC 9112 §2.2).
    let raw = &raw[raw
        .iter()
        .position(|c| !matches!(c, b'\r' | b'\n'))
        .unwrap_or(raw.len())..];
    if raw.is_empty() {
        return Err("the message is empty".into());
    }
    let mut msg = Message::default();
    let (head, rest) = match head_end(raw) {
        Some(end) => (&raw[..end], &raw[end..]),
        None => {
            msg.warnings
                .push("no blank line after the headers: read it all as the head".into());
            (raw, &raw[raw.len()..])
        }
    };
    let mut lines = head
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.next().unwrap_or_default();
    let mut parts = start.splitn(3, |&c| c == b' ');
    msg.first = parts.next().unwrap_or_default().to_vec();
    msg.second = parts.next().unwrap_or_default().to_vec();
    msg.third = trim(parts.next().unwrap_or_default()).to_vec();
    let looks_http = msg.first.starts_with(b"HTTP/")
        || msg.third.starts_with(b"HTTP/")
        || (msg.third.is_empty() && (msg.second.starts_with(b"/") || msg.second == b"*"));
    if msg.first.is_empty() || msg.second.is_empty() || !looks_http {
        return Err(format!(
            "the first line {:?} is not a request line (METHOD TARGET HTTP/1.1) or a status line (HTTP/1.1 200 OK)",
            String::from_utf8_lossy(start)
        ));
    }
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Obsolete line folding: the value goes on.
            match msg.headers.last_mut() {
                Some((_, v)) => {
                    v.push(b' ');
                    v.extend_from_slice(trim(line));
                }
                None => msg
                    .warnings
                    .push(format!("header line {} continues nothing: ignored", n + 2)),
            }
            continue;
        }
        match line.iter().position(|&c| c == b':') {
            Some(colon) => msg.headers.push((
                trim(&line[..colon]).to_vec(),
                trim(&line[colon + 1..]).to_vec(),
            )),
            None => msg.warnings.push(format!(
                "header line {} has no colon: ignored ({:?})",
                n + 2,
                String::from_utf8_lossy(line)
            )),
        }
    }
    msg.body = if msg.is_chunked() {
        dechunk(rest, &mut msg.warnings)
    } else if let Some(len) = msg.header("content-length") {
        let len: usize = String::from_utf8_lossy(len)
            .trim()
            .parse()
            .map_err(|_| "Content-Length is not a number".to_string())?;
        if rest.len() < len {
            msg.warnings.push(format!(
                "Content-Length is {len} but the body has {} bytes: using those",
                rest.len()
            ));
            rest.to_vec()
        } else {
            if rest.len() > len && !trim(&rest[len..]).is_empty() {
                msg.warnings.push(format!(
                    "{} bytes after the Content-Length body ignored",
                    rest.len() - len
                ));
            }
            rest[..len].to_vec()
        }
    } else {
        rest.to_vec()
    };
    Ok(msg)
}

/// Decodes a chunked body; trailers are dropped, as nginx does.
pub fn dechunk(mut rest: &[u8], warnings: &mut Vec<String>) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
            warnings.push("chunked body ends without the last (0) chunk".into());
            return out;
        };
        let line = String::from_utf8_lossy(&rest[..nl]);
        let size_text = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            warnings.push(format!("bad chunk size {size_text:?}: body cut there"));
            return out;
        };
        rest = &rest[nl + 1..];
        if size == 0 {
            return out;
        }
        if size > rest.len() {
            warnings.push(format!(
                "chunk of {size} bytes but only {} left: body cut there",
                rest.len()
            ));
            out.extend_from_slice(rest);
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        // The chunk's own line break.
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .unwrap_or(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_with_crlf_and_body() {
        let m =
            parse(b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\n").unwrap();
        assert_eq!(m.first, b"POST");
        assert_eq!(m.second, b"/a?b=1");
        assert_eq!(m.third, b"HTTP/1.1");
        assert_eq!(m.header("host"), Some(&b"x"[..]));
        assert_eq!(m.body, b"abc");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn lf_only_and_folded_header() {
        let m = parse(b"GET / HTTP/1.0\nX-A: one\n  two\n\n").unwrap();
        assert_eq!(m.headers, vec![(b"X-A".to_vec(), b"one two".to_vec())]);
        assert!(m.body.is_empty());
    }

    #[test]
    fn chunked_body_is_decoded() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: y\r\n\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.body, b"Wikipedia");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn truncated_chunk_warns() {
        let m = parse(b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\nff\nabc").unwrap();
        assert_eq!(m.body, b"abc");
        assert_eq!(m.warnings.len(), 1);
    }

    #[test]
    fn response_status_line() {
        let m =
            parse(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\n<h1>x</h1>").unwrap();
        assert_eq!(
            (m.first.as_slice(), m.second.as_slice()),
            (&b"HTTP/1.1"[..], &b"404"[..])
        );
        assert_eq!(m.third, b"Not Found");
        assert_eq!(m.body, b"<h1>x</h1>");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(b"").is_err());
        assert!(parse(b"hello\r\n\r\n").is_err());
    }
}
