//! `@ipMatch`: the input is an IPv4/IPv6 address inside one of the listed addresses or CIDR
//! networks (comma or space separated).

use std::net::IpAddr;

use super::{BuildContext, Captures, Operator};

#[derive(Debug)]
pub struct IpMatch(Vec<(IpAddr, u8)>);

impl IpMatch {
    /// Parse a list of addresses/networks.
    pub fn parse<'a>(items: impl Iterator<Item = &'a str>) -> Result<IpMatch, String> {
        let mut nets = Vec::new();
        for item in items.map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (
                    a,
                    Some(
                        b.parse::<u8>()
                            .map_err(|_| format!("bad prefix in {item:?}"))?,
                    ),
                ),
                None => (item, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| format!("bad address {item:?}"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            if bits > max {
                return Err(format!("prefix too long in {item:?}"));
            }
            nets.push((ip, bits));
        }
        Ok(IpMatch(nets))
    }
}

fn to_u128(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

pub fn new(param: &str, _: &mut BuildContext<'_>) -> Result<Box<dyn Operator>, String> {
    let m = IpMatch::parse(param.split([',', ' '])).map_err(|e| format!("@ipMatch: {e}"))?;
    Ok(Box::new(m))
}

impl Operator for IpMatch {
    fn matches(&self, input: &[u8], _: &mut Captures) -> bool {
        let Some(ip) = std::str::from_utf8(input)
            .ok()
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
        else {
            return false;
        };
        let (v, width) = to_u128(ip);
        self.0.iter().any(|&(net, bits)| {
            let (n, w) = to_u128(net);
            if w != width {
                return false;
            }
            let shift = u32::from(width - bits);
            shift >= 128 || (v >> shift) == (n >> shift)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::operators::{build, test_match};

    #[test]
    fn matches_networks() {
        let op = build("ipMatch", "127.0.0.1,10.0.0.0/8, ::1,2001:db8::/32");
        assert!(test_match(&*op, b"127.0.0.1"));
        assert!(test_match(&*op, b"10.200.3.4"));
        assert!(!test_match(&*op, b"11.0.0.1"));
        assert!(test_match(&*op, b"2001:db8::5"));
        assert!(!test_match(&*op, b"2001:db9::5"));
        assert!(!test_match(&*op, b"not-an-ip"));
        assert!(!test_match(&*op, b""));
        let all = build("ipMatch", "0.0.0.0/0");
        assert!(test_match(&*all, b"8.8.8.8"));
    }
}
