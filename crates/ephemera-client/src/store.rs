//! [`TokenStore`]: where tokens are kept between runs, one set per issuer
//! and resource, so a token obtained for one resource from one
//! authorization server is never offered to another (RFC 8707 §1, MCP
//! 2025-11-25 "Token Audience Binding"); and [`MemoryTokenStore`], the
//! in-memory one. Implement the trait to persist them.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::TokenResponse;

/// Whose tokens: the issuer that issued them and the resource they are for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenKey {
    pub issuer: String,
    pub resource: String,
}

impl TokenKey {
    pub fn new(issuer: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            resource: resource.into(),
        }
    }
}

/// Tokens as kept: the answer of the token endpoint, the client they were
/// issued to, the scope they carry and when the access token ends.
/// `Debug` shows neither token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub client_id: String,
    pub tokens: TokenResponse,
    /// The granted scope: the answer's `scope`, else the one asked for
    /// (RFC 6749 §5.1: an answer without `scope` grants what was asked).
    pub scope: Option<String>,
    /// Seconds since the Unix epoch after which the access token is spent.
    pub expires_at: u64,
}

impl StoredTokens {
    /// Tokens received at `now` (seconds since the Unix epoch) for a
    /// request that asked for `requested_scope`.
    pub fn new(
        client_id: impl Into<String>,
        tokens: TokenResponse,
        requested_scope: Option<&str>,
        now: u64,
    ) -> Self {
        let scope = tokens
            .scope
            .clone()
            .or_else(|| requested_scope.map(str::to_owned));
        Self {
            client_id: client_id.into(),
            expires_at: now.saturating_add(tokens.expires_in),
            tokens,
            scope,
        }
    }

    /// Whether the access token has ended at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// Keeps tokens per [`TokenKey`]. The methods are synchronous and short:
/// a persistent store writes a small file or a keychain entry.
pub trait TokenStore: Send + Sync {
    fn load(&self, key: &TokenKey) -> Result<Option<StoredTokens>>;
    /// Replaces what is kept for `key` (refresh tokens rotate: keep the newest).
    fn save(&self, key: &TokenKey, tokens: StoredTokens) -> Result<()>;
    fn remove(&self, key: &TokenKey) -> Result<()>;
}

/// A [`TokenStore`] in memory, gone with the process.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<TokenKey, StoredTokens>>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, StoredTokens>> {
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self, key: &TokenKey) -> Result<Option<StoredTokens>> {
        Ok(self.lock().get(key).cloned())
    }

    fn save(&self, key: &TokenKey, tokens: StoredTokens) -> Result<()> {
        self.lock().insert(key.clone(), tokens);
        Ok(())
    }

    fn remove(&self, key: &TokenKey) -> Result<()> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn tokens(access_token: &str, scope: Option<&str>) -> TokenResponse {
        serde_json::from_value(serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 60,
            "scope": scope,
        }))
        .unwrap()
    }

    #[test]
    fn tokens_are_kept_apart_per_issuer_and_resource() {
        let store = MemoryTokenStore::new();
        let a = TokenKey::new("https://as.example", "https://mcp.example/a");
        let b = TokenKey::new("https://as.example", "https://mcp.example/b");
        let other_issuer = TokenKey::new("https://other.example", "https://mcp.example/a");

        store
            .save(
                &a,
                StoredTokens::new("c", tokens("at-a", None), Some("read"), 100),
            )
            .unwrap();
        store
            .save(
                &b,
                StoredTokens::new("c", tokens("at-b", Some("x")), None, 100),
            )
            .unwrap();

        let kept = store.load(&a).unwrap().unwrap();
        assert_eq!(kept.tokens.access_token, "at-a");
        assert_eq!(kept.scope.as_deref(), Some("read"));
        assert_eq!(store.load(&b).unwrap().unwrap().scope.as_deref(), Some("x"));
        assert_eq!(store.load(&other_issuer).unwrap(), None);
        store.remove(&a).unwrap();
        assert_eq!(store.load(&a).unwrap(), None);
    }

    #[test]
    fn expiry_counts_from_when_the_tokens_came() {
        let stored = StoredTokens::new("c", tokens("at", None), None, 1_000);
        assert_eq!(stored.expires_at, 1_060);
        assert!(!stored.is_expired(1_059));
        assert!(stored.is_expired(1_060));
        assert!(!format!("{stored:?}").contains("\"at\""));
    }
}
