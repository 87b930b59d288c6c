//! The resolver that keeps the fetcher from addresses it must never connect
//! to (`ephemera_proto::client_document::is_forbidden`), on every name it
//! resolves, and the operator's allow-list that exempts hosts.

use std::net::{IpAddr, SocketAddr};

use ephemera_proto::client_document::is_forbidden;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

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
