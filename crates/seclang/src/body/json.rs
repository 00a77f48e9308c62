//! `application/json`: every scalar becomes an argument named by its path
//! (`json.a.b`, array elements by index: `json.list.0`); depth is limited.

use serde_json::Value;

use super::Pairs;

const MAX_DEPTH: usize = 64;

/// Parse `data` into arguments, or say why it is not acceptable JSON.
pub fn parse(data: &[u8], out: &mut Pairs) -> Result<(), String> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("JSON parsing error: {e}"))?;
    walk(&v, b"json".to_vec(), 0, out)
}

fn walk(v: &Value, name: Vec<u8>, depth: usize, out: &mut Pairs) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("JSON nesting too deep".into());
    }
    let child = |k: &[u8]| {
        let mut n = name.clone();
        n.push(b'.');
        n.extend_from_slice(k);
        n
    };
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                walk(v, child(k.as_bytes()), depth + 1, out)?;
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk(v, child(i.to_string().as_bytes()), depth + 1, out)?;
            }
        }
        Value::String(s) => out.push((name, s.as_bytes().to_vec())),
        Value::Number(n) => out.push((name, n.to_string().into_bytes())),
        Value::Bool(b) => out.push((name, b.to_string().into_bytes())),
        Value::Null => out.push((name, Vec::new())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens() {
        let mut v = Pairs::default();
        parse(
            br#"{"a":{"b":"x"},"l":[1,true,null],"s":"<script>"}"#,
            &mut v,
        )
        .unwrap();
        let names: Vec<_> = v
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert_eq!(
            names,
            ["json.a.b", "json.l.0", "json.l.1", "json.l.2", "json.s"]
        );
        assert_eq!(v[4].1, b"<script>");
    }

    #[test]
    fn rejects_broken_and_deep() {
        assert!(parse(b"{\"a\":", &mut Pairs::default()).is_err());
        assert!(parse(b"", &mut Pairs::default()).is_err());
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(deep.as_bytes(), &mut Pairs::default()).is_err());
    }
}
