//! The address guard: which addresses the server never connects to, and the
//! resolver that enforces it on every name it resolves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Lower-cases a host and strips IPv6 brackets; IP addresses are written the
/// way [`IpAddr`]'s `Display` writes them, so spellings compare equal.
pub(super) fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

pub(super) fn is_allowed(allow_hosts: &[String], host: &str) -> bool {
    allow_hosts.contains(&normalize_host(host))
}

/// The resolver's error when every address of a name is forbidden.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to forbidden addresses")]
pub(super) struct ForbiddenAddresses;

/// Resolves with the system resolver and drops forbidden addresses from the
/// answer, so the connection can only go to an allowed one.
pub struct GuardedResolver {
    pub(super) allow_hosts: Arc<[String]>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = is_allowed(&self.allow_hosts, name.as_str());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if found.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the host has no address",
                )
                .into());
            }
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allowed || !is_forbidden(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(ForbiddenAddresses.into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// IPv4 ranges that are not globally reachable unicast (IANA special-purpose
/// registry, RFC 6890 and successors).
const FORBIDDEN_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", unspecified
    ([10, 0, 0, 0], 8),      // private (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared address space, CGNAT (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata services
    ([172, 16, 0, 0], 12),   // private (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and the limited broadcast address
];

/// IPv6 ranges inside global unicast 2000::/3 that are not globally
/// reachable; everything outside 2000::/3 is refused anyway (loopback,
/// unspecified, ULA fc00::/7, link-local fe80::/10, multicast ff00::/8, …).
const FORBIDDEN_V6: &[(u128, u32)] = &[
    (0x2001_0000_u128 << 96, 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID
    (0x2001_0db8_u128 << 96, 32), // documentation
    (0x3fff_u128 << 112, 20),     // documentation (RFC 9637)
];

/// Whether the server must never connect to `ip`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    FORBIDDEN_V4.iter().any(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        bits & mask == u32::from_be_bytes(*net) & mask
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4); // ::ffff:0:0/96
    }
    let bits = u128::from(ip);
    if bits >> 32 == 0x0064_ff9b_u128 << 64 {
        return forbidden_v4(Ipv4Addr::from(bits as u32)); // NAT64 64:ff9b::/96 (RFC 6052)
    }
    if bits >> 112 == 0x2002 {
        return forbidden_v4(Ipv4Addr::from((bits >> 80) as u32)); // 6to4 2002::/16 (RFC 3056)
    }
    if bits >> 125 != 0b001 {
        return true;
    }
    FORBIDDEN_V6.iter().any(|(net, len)| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        bits & mask == net & mask
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses_cover_internal_ranges_and_nothing_public() {
        let forbidden = [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.1.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "239.1.1.1",
            "198.18.0.1",
            "203.0.113.9",
            "::",
            "::1",
            "fc00::1",
            "fdff::1",
            "fe80::1",
            "fec0::1",
            "ff0e::1",
            "::ffff:127.0.0.1",
            "::ffff:192.168.1.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
        ];
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for ip in forbidden {
            assert!(
                is_forbidden(ip.parse().unwrap()),
                "{ip} should be forbidden"
            );
        }
        for ip in public {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn allow_list_entries_match_any_spelling_of_the_host() {
        let allow: Vec<String> = ["LocalHost", "[::1]"]
            .iter()
            .map(|h| normalize_host(h))
            .collect();
        assert!(is_allowed(&allow, "localhost"));
        assert!(is_allowed(&allow, "::1"));
        assert!(is_allowed(&allow, "[0:0::1]"));
        assert!(!is_allowed(&allow, "127.0.0.1"));
        assert!(!is_allowed(&allow, "example.com"));
    }
}
