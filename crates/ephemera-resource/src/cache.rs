//! A small in-memory cache of accepted tokens, so a burst of requests with
//! one token costs one introspection.
//!
//! Keys are SHA-256 of the token: a memory dump of the resource server does
//! not hand out usable tokens. Only tokens the authorization server vouched
//! for get an entry, so a client sending random tokens cannot fill the
//! cache; the capacity bounds it all the same. The lock is held only for a
//! map lookup or insert, never across an await.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::context::TokenContext;

/// The cache key of a token.
pub type TokenKey = [u8; 32];

pub fn key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

struct Entry {
    context: TokenContext,
    expires_at: Instant,
}

pub struct Cache {
    entries: Mutex<HashMap<TokenKey, Entry>>,
    ttl: Duration,
    capacity: usize,
}

impl Cache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity,
        }
    }

    /// The cached context of a token, if it has not expired by `now`.
    pub fn get(&self, key: &TokenKey, now: Instant) -> Option<TokenContext> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match entries.get(key) {
            Some(entry) if entry.expires_at > now => Some(entry.context.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `context` until `min(now + ttl, exp)`; `now_unix` is the same
    /// instant as `now` in seconds since the epoch, to read `exp` against.
    /// A token that expires within the second is not kept.
    pub fn insert(&self, key: TokenKey, context: TokenContext, now: Instant, now_unix: u64) {
        let lifetime = match context.expires_at {
            Some(exp) => self
                .ttl
                .min(Duration::from_secs(exp.saturating_sub(now_unix))),
            None => self.ttl,
        };
        if lifetime.is_zero() {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= self.capacity {
                return;
            }
        }
        entries.insert(
            key,
            Entry {
                context,
                expires_at: now + lifetime,
            },
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn context(expires_at: Option<u64>) -> TokenContext {
        TokenContext {
            subject: Some("alice".into()),
            scopes: vec!["read".into()],
            client_id: None,
            grant_id: None,
            client_kind: None,
            client_metadata: None,
            audiences: Vec::new(),
            expires_at,
            token_type: None,
            dpop_jkt: None,
            certificate_thumbprint: None,
            act: None,
        }
    }

    #[test]
    fn keys_are_the_sha256_of_the_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1
        assert_eq!(key("abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
    }

    #[test]
    fn an_entry_lives_for_the_ttl() {
        let cache = Cache::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        cache.insert(key("t"), context(None), now, 1_000);
        assert!(cache
            .get(&key("t"), now + Duration::from_secs(29))
            .is_some());
        assert!(cache
            .get(&key("t"), now + Duration::from_secs(30))
            .is_none());
        assert!(cache.get(&key("other"), now).is_none());
    }

    #[test]
    fn an_entry_never_outlives_the_token() {
        let cache = Cache::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        cache.insert(key("t"), context(Some(1_010)), now, 1_000);
        assert!(cache.get(&key("t"), now + Duration::from_secs(9)).is_some());
        assert!(cache
            .get(&key("t"), now + Duration::from_secs(10))
            .is_none());
        cache.insert(key("expired"), context(Some(999)), now, 1_000);
        assert!(cache.get(&key("expired"), now).is_none());
    }

    #[test]
    fn a_zero_ttl_disables_the_cache() {
        let cache = Cache::new(Duration::ZERO, 10);
        let now = Instant::now();
        cache.insert(key("t"), context(None), now, 1_000);
        assert!(cache.get(&key("t"), now).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_stops_adding() {
        let cache = Cache::new(Duration::from_secs(30), 2);
        let now = Instant::now();
        cache.insert(key("a"), context(Some(1_001)), now, 1_000);
        cache.insert(key("b"), context(None), now, 1_000);
        let later = now + Duration::from_secs(5);
        cache.insert(key("c"), context(None), later, 1_005);
        assert!(cache.get(&key("c"), later).is_some());
        cache.insert(key("d"), context(None), later, 1_005);
        assert!(cache.get(&key("d"), later).is_none());
        assert!(cache.get(&key("b"), later).is_some());
    }
}
