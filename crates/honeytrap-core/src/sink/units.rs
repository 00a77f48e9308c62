//! Durations and sizes as the sinks' directive parameters write them (`500ms`, `5s`, `2m`,
//! `1h`; `512k`, `64m`, `1g`), one parser for every directive.

use std::time::Duration;

/// `500ms`, `5s`, `2m`, `1h`; a bare number is seconds, as in nginx.
pub fn parse_duration(key: &str, value: &str) -> Result<Duration, String> {
    let err = || {
        format!("invalid \"{key}\" value \"{value}\": expected a duration like 500ms, 5s, 2m or 1h")
    };
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    if digits == 0 {
        return Err(err());
    }
    let n: u64 = value[..digits].parse().map_err(|_| err())?;
    let ms = match &value[digits..] {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    ms.map(Duration::from_millis).ok_or_else(err)
}

/// Bytes with an optional `k`, `m` or `g` suffix (powers of 1024), as in nginx.
pub fn parse_size(key: &str, value: &str) -> Result<u64, String> {
    let err = || {
        format!(
            "invalid \"{key}\" value \"{value}\": expected a size like 1048576, 512k, 256m or 1g"
        )
    };
    let (digits, shift) = match value.as_bytes().last() {
        Some(b'k' | b'K') => (&value[..value.len() - 1], 10),
        Some(b'm' | b'M') => (&value[..value.len() - 1], 20),
        Some(b'g' | b'G') => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    n.checked_mul(1u64 << shift).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("d", "500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("d", "5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("d", "5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("d", "2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("d", "1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "-1s", "1.5s", "1 s", "1d", "99999999999999999999"] {
            assert!(parse_duration("d", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("s", "1024"), Ok(1024));
        assert_eq!(parse_size("s", "512k"), Ok(512 << 10));
        assert_eq!(parse_size("s", "256M"), Ok(256 << 20));
        assert_eq!(parse_size("s", "1g"), Ok(1 << 30));
        for bad in ["", "k", "1.5m", "-1", "1t"] {
            assert!(parse_size("s", bad).is_err(), "{bad}");
        }
    }
}
