//! `multipart/form-data`: parts become arguments or files; part headers are kept for
//! `MULTIPART_PART_HEADERS`; the anomalies ModSecurity flags (and CRS reads through
//! `MULTIPART_STRICT_ERROR` and friends) are recorded instead of rejected.

use super::Pair;

/// Strictness flags, named as the `MULTIPART_*` variables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    pub boundary_quoted: bool,
    pub boundary_whitespace: bool,
    pub data_before: bool,
    pub data_after: bool,
    pub header_folding: bool,
    pub lf_line: bool,
    pub crlf_line: bool,
    pub missing_semicolon: bool,
    pub invalid_quoting: bool,
    pub invalid_part: bool,
    pub invalid_header_folding: bool,
    pub file_limit_exceeded: bool,
    pub unmatched_boundary: bool,
}

impl Flags {
    /// `MULTIPART_STRICT_ERROR`: any anomaly at all.
    pub fn any(&self) -> bool {
        self.boundary_quoted
            || self.boundary_whitespace
            || self.data_before
            || self.data_after
            || self.header_folding
            || self.lf_line
            || self.missing_semicolon
            || self.invalid_quoting
            || self.invalid_part
            || self.invalid_header_folding
            || self.file_limit_exceeded
            || self.unmatched_boundary
    }
}

/// An uploaded file part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    pub field: Vec<u8>,
    pub filename: Vec<u8>,
    pub content: Vec<u8>,
}

/// The parsed body.
#[derive(Debug, Default)]
pub struct Multipart {
    pub args: Vec<Pair>,
    pub files: Vec<FilePart>,
    /// `(part name, "Header: value")` for every header line of every part.
    pub part_headers: Vec<Pair>,
    pub flags: Flags,
    /// Set when the body cannot be read as multipart (→ `REQBODY_ERROR`).
    pub error: Option<String>,
}

/// The boundary from a Content-Type, noting quoting and whitespace around `=`.
fn boundary(ct: &[u8], flags: &mut Flags) -> Result<Vec<u8>, String> {
    let lower = ct.to_ascii_lowercase();
    let at = memchr::memmem::find(&lower, b"boundary").ok_or("Multipart: boundary missing")?;
    let mut rest = &ct[at + 8..];
    if rest.first().is_some_and(|c| c.is_ascii_whitespace()) {
        flags.boundary_whitespace = true;
    }
    rest = rest.trim_ascii_start();
    rest = rest
        .strip_prefix(b"=")
        .ok_or("Multipart: boundary has no value")?;
    if rest.first().is_some_and(|c| c.is_ascii_whitespace()) {
        flags.boundary_whitespace = true;
    }
    rest = rest.trim_ascii_start();
    let b = if let Some(q) = rest.strip_prefix(b"\"") {
        flags.boundary_quoted = true;
        let end = memchr::memchr(b'"', q).ok_or("Multipart: unterminated quoted boundary")?;
        &q[..end]
    } else {
        let end = rest
            .iter()
            .position(|&c| c == b';' || c == b',')
            .unwrap_or(rest.len());
        rest[..end].trim_ascii_end()
    };
    if b.is_empty() || b.len() > 70 || b.iter().any(|&c| !(0x20..=0x7e).contains(&c)) {
        return Err("Multipart: invalid boundary".into());
    }
    Ok(b.to_vec())
}

#[derive(PartialEq)]
enum State {
    Preamble,
    Headers,
    Body,
    Done,
}

#[derive(Default)]
struct Part {
    headers: Vec<Vec<u8>>,
    body: Vec<u8>,
}

/// Parse a body given its Content-Type; `max_files` bounds the number of file parts.
pub fn parse(content_type: &[u8], body: &[u8], max_files: usize) -> Multipart {
    let mut m = Multipart::default();
    let b = match boundary(content_type, &mut m.flags) {
        Ok(b) => b,
        Err(e) => {
            m.error = Some(e);
            return m;
        }
    };
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(&b);
    let mut state = State::Preamble;
    let mut part = Part::default();
    let mut pos = 0;
    while pos < body.len() {
        let nl = memchr::memchr(b'\n', &body[pos..]).map(|p| pos + p);
        let (line_end, next) = match nl {
            Some(n) => (n, n + 1),
            None => (body.len(), body.len()),
        };
        let raw_line = &body[pos..next];
        let mut line = &body[pos..line_end];
        if nl.is_some() {
            if line.ends_with(b"\r") {
                line = &line[..line.len() - 1];
                m.flags.crlf_line = true;
            } else {
                m.flags.lf_line = true;
            }
        }
        pos = next;
        if let Some(after) = line.strip_prefix(delim.as_slice()) {
            let after_t = after.trim_ascii_end();
            let closing = after_t == b"--";
            if after_t.is_empty() || closing {
                if state == State::Done {
                    m.flags.data_after = true;
                    continue;
                }
                if state == State::Headers {
                    m.flags.invalid_part = true;
                }
                if state == State::Body || state == State::Headers {
                    finish(&mut m, std::mem::take(&mut part), max_files);
                }
                state = if closing { State::Done } else { State::Headers };
                continue;
            }
            if state != State::Done {
                m.flags.unmatched_boundary = true;
            }
        }
        match state {
            State::Preamble => {
                if !line.is_empty() {
                    m.flags.data_before = true;
                }
            }
            State::Done => {
                if !line.trim_ascii().is_empty() {
                    m.flags.data_after = true;
                }
            }
            State::Headers => {
                if line.is_empty() {
                    state = State::Body;
                } else if line[0] == b' ' || line[0] == b'\t' {
                    m.flags.header_folding = true;
                    match part.headers.last_mut() {
                        Some(h) => h.extend_from_slice(line),
                        None => m.flags.invalid_header_folding = true,
                    }
                } else {
                    part.headers.push(line.to_vec());
                }
            }
            State::Body => part.body.extend_from_slice(raw_line),
        }
    }
    if state != State::Done {
        m.error = Some(if state == State::Preamble {
            "Multipart: no boundary found in the body".into()
        } else {
            "Multipart: final boundary missing".into()
        });
    }
    m
}

fn finish(m: &mut Multipart, mut part: Part, max_files: usize) {
    // The line break before a boundary belongs to the delimiter.
    if part.body.ends_with(b"\r\n") {
        part.body.truncate(part.body.len() - 2);
    } else if part.body.ends_with(b"\n") {
        part.body.truncate(part.body.len() - 1);
    }
    let mut name: Option<Vec<u8>> = None;
    let mut filename: Option<Vec<u8>> = None;
    for h in &part.headers {
        let Some(colon) = memchr::memchr(b':', h) else {
            m.flags.invalid_part = true;
            continue;
        };
        let (hn, hv) = (h[..colon].trim_ascii(), h[colon + 1..].trim_ascii());
        if hn.eq_ignore_ascii_case(b"content-disposition") {
            disposition(hv, &mut name, &mut filename, &mut m.flags, &mut m.error);
        }
    }
    let Some(name) = name else {
        m.flags.invalid_part = true;
        if m.error.is_none() {
            m.error = Some("Multipart: part without a name".into());
        }
        return;
    };
    for h in part.headers {
        m.part_headers.push((name.clone(), h));
    }
    match filename {
        Some(filename) => {
            if m.files.len() >= max_files {
                m.flags.file_limit_exceeded = true;
                return;
            }
            m.files.push(FilePart {
                field: name,
                filename,
                content: part.body,
            });
        }
        None => m.args.push((name, part.body)),
    }
}

/// Parse `form-data; name="x"; filename="y"`.
fn disposition(
    v: &[u8],
    name: &mut Option<Vec<u8>>,
    filename: &mut Option<Vec<u8>>,
    flags: &mut Flags,
    error: &mut Option<String>,
) {
    let Some(mut rest) = v
        .strip_prefix(b"form-data")
        .or_else(|| (v.len() >= 9 && v[..9].eq_ignore_ascii_case(b"form-data")).then(|| &v[9..]))
    else {
        flags.invalid_part = true;
        *error = Some("Multipart: Content-Disposition is not form-data".into());
        return;
    };
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            return;
        }
        match rest.strip_prefix(b";") {
            Some(r) => rest = r.trim_ascii_start(),
            None => flags.missing_semicolon = true,
        }
        if rest.is_empty() {
            return;
        }
        let Some(eq) = memchr::memchr(b'=', rest) else {
            flags.invalid_part = true;
            return;
        };
        let key = rest[..eq].trim_ascii().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_ascii_start();
        let value;
        if let Some(q) = rest.strip_prefix(b"\"") {
            let mut out = Vec::new();
            let mut i = 0;
            let mut closed = false;
            while i < q.len() {
                if q[i] == b'\\' && i + 1 < q.len() && (q[i + 1] == b'"' || q[i + 1] == b'\\') {
                    out.push(q[i + 1]);
                    i += 2;
                } else if q[i] == b'"' {
                    closed = true;
                    break;
                } else {
                    out.push(q[i]);
                    i += 1;
                }
            }
            if !closed {
                flags.invalid_quoting = true;
            }
            value = out;
            rest = &q[(i + 1).min(q.len())..];
        } else {
            if rest.first() == Some(&b'\'') {
                flags.invalid_quoting = true;
            }
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            value = rest[..end].trim_ascii_end().to_vec();
            rest = &rest[end..];
        }
        match key.as_slice() {
            b"name" => *name = Some(value),
            b"filename" | b"filename*" => *filename = Some(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &[u8] = b"multipart/form-data; boundary=XyZ";

    #[test]
    fn parses_fields_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XyZ--\r\n";
        let m = parse(CT, body, 10);
        assert_eq!(m.error, None);
        assert_eq!(m.args, vec![(b"a".to_vec(), b"hello".to_vec())]);
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.files[0].filename, b"x.php");
        assert_eq!(m.files[0].content, b"<?php");
        assert_eq!(m.part_headers.len(), 3);
        assert!(!m.flags.any());
    }

    #[test]
    fn flags_anomalies() {
        let body = b"junk\n--XyZ\nContent-Disposition: form-data name=a\n\nv\n--XyZ--\nafter";
        let m = parse(b"multipart/form-data; boundary=\"XyZ\"", body, 10);
        assert!(
            m.flags.data_before
                && m.flags.lf_line
                && m.flags.missing_semicolon
                && m.flags.data_after
        );
        assert!(m.flags.boundary_quoted);
        assert_eq!(m.args, vec![(b"a".to_vec(), b"v".to_vec())]);
    }

    #[test]
    fn errors_without_crashing() {
        assert!(parse(b"multipart/form-data", b"x", 1).error.is_some());
        assert!(parse(
            CT,
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv",
            1
        )
        .error
        .is_some());
        assert!(parse(CT, b"", 1).error.is_some());
        let m = parse(CT, b"--XyZ\r\nContent-Disposition: form-data; name=a; filename=b\r\n\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=c; filename=d\r\n\r\n\r\n--XyZ--", 1);
        assert!(m.flags.file_limit_exceeded);
    }
}
