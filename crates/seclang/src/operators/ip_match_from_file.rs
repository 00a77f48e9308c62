//! `@ipMatchFromFile`: `@ipMatch` with the networks read from a file, one per line.

use super::ip_match::IpMatch;
use super::pm_from_file::read_phrases;
use super::{BuildContext, Operator};

pub fn new(param: &str, ctx: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    let path = ctx.resolve(param.trim());
    let data =
        std::fs::read(&path).map_err(|e| format!("@ipMatchFromFile {}: {e}", path.display()))?;
    let lines: Vec<String> = read_phrases(&data)
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect();
    let m = IpMatch::parse(lines.iter().map(String::as_str))
        .map_err(|e| format!("@ipMatchFromFile: {e}"))?;
    Ok(Box::new(m))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_file() {
        let dir = std::env::temp_dir().join(format!("seclang-ipm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ips.txt"), "# c\n192.168.0.0/16\n").unwrap();
        let mut n = Vec::new();
        let mut ctx = super::BuildContext {
            base_dir: &dir,
            notices: &mut n,
            negated: false,
        };
        let op = super::new("ips.txt", &mut ctx).unwrap();
        assert!(crate::operators::test_match(&*op, b"192.168.1.1"));
        assert!(!crate::operators::test_match(&*op, b"192.169.1.1"));
    }
}
