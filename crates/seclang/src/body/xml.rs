//! `text/xml`: a small well-formedness check that collects what CRS reads through
//! `XML:/*` (all text content) and `XML://@*` (all attribute values).

/// What CRS needs from an XML document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct XmlDoc {
    /// Text nodes (CDATA included), entity-decoded.
    pub texts: Vec<Vec<u8>>,
    /// Attribute values, entity-decoded.
    pub attrs: Vec<Vec<u8>>,
}

fn decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::transformations::apply(
        crate::transformations::lookup("htmlEntityDecode").unwrap_or(0),
        s,
        &mut out,
    );
    out
}

/// Parse, or say why the document is malformed.
pub fn parse(data: &[u8]) -> Result<XmlDoc, String> {
    let mut doc = XmlDoc::default();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut seen_root = false;
    let mut i = 0;
    while i < data.len() {
        if data[i] != b'<' {
            let end = memchr::memchr(b'<', &data[i..]).map_or(data.len(), |p| i + p);
            let text = &data[i..end];
            if stack.is_empty() {
                if !text.trim_ascii().is_empty() {
                    return Err("XML: text outside the root element".into());
                }
            } else {
                doc.texts.push(decode(text));
            }
            i = end;
            continue;
        }
        let rest = &data[i..];
        let find = |pat: &[u8]| memchr::memmem::find(rest, pat);
        if rest.starts_with(b"<!--") {
            i += find(b"-->").ok_or("XML: unterminated comment")? + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            let end = find(b"]]>").ok_or("XML: unterminated CDATA")?;
            doc.texts.push(rest[9..end].to_vec());
            i += end + 3;
        } else if rest.starts_with(b"<?") {
            i += find(b"?>").ok_or("XML: unterminated processing instruction")? + 2;
        } else if rest.starts_with(b"<!") {
            i += find(b">").ok_or("XML: unterminated declaration")? + 1;
        } else {
            let end = tag_end(rest).ok_or("XML: unterminated tag")?;
            let tag = &rest[1..end];
            if let Some(name) = tag.strip_prefix(b"/") {
                let open = stack.pop().ok_or("XML: closing tag without opening tag")?;
                if open != name.trim_ascii() {
                    return Err("XML: mismatched closing tag".into());
                }
            } else {
                let self_closing = tag.ends_with(b"/");
                let tag = if self_closing {
                    &tag[..tag.len() - 1]
                } else {
                    tag
                };
                let name_end = tag
                    .iter()
                    .position(|c| c.is_ascii_whitespace())
                    .unwrap_or(tag.len());
                if name_end == 0 {
                    return Err("XML: empty tag name".into());
                }
                if stack.is_empty() && seen_root {
                    return Err("XML: more than one root element".into());
                }
                seen_root = true;
                attributes(&tag[name_end..], &mut doc.attrs)?;
                if !self_closing {
                    stack.push(tag[..name_end].to_vec());
                }
            }
            i += end + 1;
        }
    }
    if !stack.is_empty() || !seen_root {
        return Err("XML: document is incomplete".into());
    }
    Ok(doc)
}

/// Index of the `>` closing a tag, skipping quoted attribute values.
fn tag_end(s: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &c) in s.iter().enumerate().skip(1) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return Some(i),
            None => {}
        }
    }
    None
}

fn attributes(mut s: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), String> {
    loop {
        s = s.trim_ascii_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = memchr::memchr(b'=', s).ok_or("XML: attribute without value")?;
        let v = s[eq + 1..].trim_ascii_start();
        let q = *v.first().ok_or("XML: attribute without value")?;
        if q != b'"' && q != b'\'' {
            return Err("XML: unquoted attribute value".into());
        }
        let close = memchr::memchr(q, &v[1..]).ok_or("XML: unterminated attribute value")?;
        out.push(decode(&v[1..1 + close]));
        s = &v[close + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_text_and_attributes() {
        let d = parse(b"<?xml version=\"1.0\"?><a x='1 &lt;'><b>hi</b><!-- c --><c y=\"2\"/><![CDATA[<s>]]></a>").unwrap();
        assert_eq!(d.texts, vec![b"hi".to_vec(), b"<s>".to_vec()]);
        assert_eq!(d.attrs, vec![b"1 <".to_vec(), b"2".to_vec()]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"text",
            b"<a x=1></a>",
            b"<a></a><b></b>",
            b"</a>",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
