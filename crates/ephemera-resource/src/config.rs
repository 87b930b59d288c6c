//! [`IntrospectionConfig`]: which authorization server vouches for tokens,
//! and what this resource server demands of them.

use std::time::Duration;

/// How the layer checks tokens. Build it with [`IntrospectionConfig::new`]
/// and the setters, or fill the public fields directly.
#[derive(Clone)]
pub struct IntrospectionConfig {
    /// The authorization server's `introspection_endpoint` (RFC 7662 §2).
    pub introspection_endpoint: String,
    /// This resource server's client_id at the authorization server.
    pub client_id: String,
    /// Its secret, sent with HTTP Basic (RFC 6749 §2.3.1).
    pub client_secret: String,
    /// The issuer a token's introspection `iss` must equal. Introspection
    /// answers without `iss` are refused.
    pub issuer: String,
    /// When set, a token's `aud` (string or array) must contain it
    /// (RFC 8707 §2 resource indicators end up there).
    pub audience: Option<String>,
    /// Scopes every request must carry (RFC 6750 §3.1 `insufficient_scope`).
    pub required_scopes: Vec<String>,
    /// How long an introspection answer is reused; never past the token's
    /// `exp`. Short, so a revocation is noticed soon. Zero disables the cache.
    pub cache_ttl: Duration,
    /// The `realm` of the `WWW-Authenticate` challenge (RFC 6750 §3).
    pub realm: String,
}

impl IntrospectionConfig {
    /// The cache lifetime [`IntrospectionConfig::new`] sets.
    pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);

    /// A configuration with no audience, no required scopes, a 30 s cache
    /// and the realm `ephemera`.
    pub fn new(
        introspection_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        issuer: impl Into<String>,
    ) -> Self {
        Self {
            introspection_endpoint: introspection_endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            issuer: issuer.into(),
            audience: None,
            required_scopes: Vec::new(),
            cache_ttl: Self::DEFAULT_CACHE_TTL,
            realm: "ephemera".into(),
        }
    }

    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.required_scopes.push(scope.into());
        self
    }

    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }
}

impl std::fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("introspection_endpoint", &self.introspection_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("required_scopes", &self.required_scopes)
            .field("cache_ttl", &self.cache_ttl)
            .field("realm", &self.realm)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let config = IntrospectionConfig::new("http://as/introspect", "rs", "s3cret", "http://as");
        let printed = format!("{config:?}");
        assert!(printed.contains("rs") && !printed.contains("s3cret"));
    }
}
