//! `@pmFromFile`: `@pm` with phrases read from files (one per line, `#` comments), resolved
//! relative to the rule file.

use super::pm::Pm;
use super::{BuildContext, Operator};

pub fn new(param: &str, ctx: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    let mut phrases = Vec::new();
    for file in param.split_ascii_whitespace() {
        let path = ctx.resolve(file);
        let data =
            std::fs::read(&path).map_err(|e| format!("@pmFromFile {}: {e}", path.display()))?;
        phrases.extend(read_phrases(&data));
    }
    Ok(Box::new(
        Pm::from_phrases(phrases).map_err(|e| format!("@pmFromFile {param}: {e}"))?,
    ))
}

/// Non-empty, non-comment lines, trimmed.
pub(crate) fn read_phrases(data: &[u8]) -> Vec<Vec<u8>> {
    data.split(|c| *c == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_phrases() {
        assert_eq!(
            read_phrases(b"# c\n a \r\n\nb c\n"),
            vec![b"a".to_vec(), b"b c".to_vec()]
        );
    }

    #[test]
    fn missing_file_is_error() {
        let mut n = Vec::new();
        let mut ctx = BuildContext {
            base_dir: std::path::Path::new("/nonexistent"),
            notices: &mut n,
            negated: false,
        };
        assert!(new("x.data", &mut ctx).unwrap_err().contains("x.data"));
    }
}
