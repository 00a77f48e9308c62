//! Splits SecLang text into directives the way Apache's config reader (and so ModSecurity v2)
//! reads it: backslash-newline continues a line, `#` starts a comment line, arguments are
//! whitespace-separated words, optionally in double or single quotes, where `\\` and a
//! backslash before the quote character are the only escapes.

use crate::error::LoadError;

/// One directive with its raw (unquoted) arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub line: usize,
}

/// Parse `text` into directives; `origin` names it in errors.
pub fn parse_directives(text: &str, origin: &str) -> Result<Vec<Directive>, LoadError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if logical.is_empty() {
            start_line = line_no;
        }
        // Apache joins continued lines before looking at comments.
        if let Some(head) = raw.strip_suffix('\\') {
            logical.push_str(head);
            continue;
        }
        logical.push_str(raw);
        let trimmed = logical.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            out.push(split_directive(trimmed, origin, start_line)?);
        }
        logical.clear();
    }
    if !logical.trim().is_empty() {
        return Err(LoadError::new(
            origin,
            start_line,
            "line continuation at end of file",
        ));
    }
    Ok(out)
}

fn split_directive(line: &str, origin: &str, line_no: usize) -> Result<Directive, LoadError> {
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (word, tail) =
            next_word(rest).map_err(|reason| LoadError::new(origin, line_no, reason))?;
        words.push(word);
        rest = tail;
    }
    let name = words.remove(0);
    Ok(Directive {
        name,
        args: words,
        line: line_no,
    })
}

/// One argument word and the text after it.
fn next_word(s: &str) -> Result<(String, &str), String> {
    let bytes = s.as_bytes();
    let quote = match bytes[0] {
        q @ (b'"' | b'\'') => Some(q),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len());
    let mut i = usize::from(quote.is_some());
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => {
                let word = String::from_utf8(out).map_err(|e| e.to_string())?;
                return Ok((word, &s[i + 1..]));
            }
            None if c == b' ' || c == b'\t' => break,
            _ => {}
        }
        if c == b'\\'
            && i + 1 < bytes.len()
            && (bytes[i + 1] == b'\\' || Some(bytes[i + 1]) == quote)
        {
            out.push(bytes[i + 1]);
            i += 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    if quote.is_some() {
        return Err("unterminated quoted argument".into());
    }
    let word = String::from_utf8(out).map_err(|e| e.to_string())?;
    Ok((word, &s[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_quotes_and_comments() {
        let text = "# comment \\\nSecRule ARGS \"@rx a\\\"b\" \\\n   \"id:1,\\\n  pass\"\n\n  SecMarker END\n";
        let d = parse_directives(text, "t.conf").unwrap();
        // The comment line continues onto the SecRule line, as Apache reads it.
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "SecMarker");
        let text =
            "SecRule ARGS \"@rx a\\\"b\\\\c\\d\" \\\n   \"id:1,\\\n  pass\"\nSecMarker 'END X'";
        let d = parse_directives(text, "t.conf").unwrap();
        assert_eq!(d[0].args, vec!["ARGS", "@rx a\"b\\c\\d", "id:1,  pass"]);
        assert_eq!(d[0].line, 1);
        assert_eq!(d[1].args, vec!["END X"]);
        assert_eq!(d[1].line, 4);
    }

    #[test]
    fn unterminated_quote_names_line() {
        let err = parse_directives("\nSecRule ARGS \"@rx a", "x.conf").unwrap_err();
        assert_eq!((err.origin.as_str(), err.line), ("x.conf", 2));
        assert!(err.reason.contains("unterminated"));
    }
}
