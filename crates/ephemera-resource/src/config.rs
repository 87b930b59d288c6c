//! [`IntrospectionConfig`]: which authorization server vouches for tokens,
//! what this resource server demands of them, whether it validates JWT
//! access tokens itself ([`JwtValidation`]), and how it checks their
//! sender constraints (DPoP, client certificates).

use std::time::Duration;

use url::Url;

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
    /// The URL clients use to reach this resource server, as the world
    /// sees it (scheme, host, port, and the path prefix a proxy or
    /// `Router::nest` strips). A DPoP proof's `htu` must equal this URL
    /// joined with the request path the layer sees (RFC 9449 §4.3).
    /// DPoP is accepted only when it is set: without it the `DPoP` scheme
    /// counts as no credentials and DPoP-bound tokens are refused.
    pub public_base_url: Option<Url>,
    /// How old a DPoP proof's `iat` may be; also how long its `jti` is
    /// remembered against replay.
    pub dpop_max_age: Duration,
    /// How far in the future a DPoP proof's `iat` may be (clock skew).
    pub dpop_leeway: Duration,
    /// When set, every DPoP proof must carry a nonce from this server
    /// (RFC 9449 §9); nonces are random, rotate this often, and the one
    /// before the current is still accepted. `None`: no nonces.
    pub dpop_nonce_period: Option<Duration>,
    /// Whether to read the client certificate from the RFC 9440
    /// `Client-Cert` header when the request has no
    /// [`ClientCertificate`](crate::ClientCertificate) extension. Turn it on
    /// only behind a TLS-terminating proxy that sets the header and strips
    /// it from what clients send: otherwise anyone can claim any certificate.
    pub trust_client_cert_header: bool,
    /// The URL of this resource's RFC 9728 metadata, sent as
    /// `resource_metadata="…"` in every challenge (RFC 9728 §5.1); see
    /// [`ProtectedResourceMetadata::metadata_url`](crate::ProtectedResourceMetadata::metadata_url).
    pub resource_metadata: Option<String>,
    /// When set, JWT access tokens (RFC 9068) are validated here, with the
    /// authorization server's published keys, and never introspected;
    /// opaque tokens still are. Needs [`IntrospectionConfig::audience`]:
    /// without it every token is introspected.
    pub jwt_validation: Option<JwtValidation>,
}

/// How JWT access tokens (RFC 9068) are validated locally: the keys come
/// from the authorization server's `jwks_uri` (RFC 8414 §2, found in its
/// metadata at `<issuer>/.well-known/oauth-authorization-server`), and
/// only ES256 signatures are accepted.
///
/// A token validated here is not looked up at the authorization server, so
/// a revocation (of the token, its grant, or a pushed client) is not seen
/// until the token expires: choose it for resources that accept that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtValidation {
    /// The JWK Set's URL; `None`: the `jwks_uri` of the authorization
    /// server's metadata.
    pub jwks_uri: Option<String>,
    /// A token signed with a key not in the cached set makes the layer
    /// fetch the set again (a rotation), at most this often.
    pub min_refetch_interval: Duration,
    /// The cached set is fetched again when older than this, so a key the
    /// authorization server stops publishing stops being trusted.
    pub max_key_age: Duration,
    /// Clock skew allowed for `exp` and `nbf`.
    pub leeway: Duration,
}

impl Default for JwtValidation {
    fn default() -> Self {
        Self {
            jwks_uri: None,
            min_refetch_interval: Duration::from_secs(30),
            max_key_age: Duration::from_secs(600),
            leeway: Duration::from_secs(5),
        }
    }
}

impl IntrospectionConfig {
    /// The cache lifetime [`IntrospectionConfig::new`] sets.
    pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
    /// The DPoP proof age [`IntrospectionConfig::new`] sets.
    pub const DEFAULT_DPOP_MAX_AGE: Duration = Duration::from_secs(60);
    /// The DPoP clock leeway [`IntrospectionConfig::new`] sets.
    pub const DEFAULT_DPOP_LEEWAY: Duration = Duration::from_secs(5);

    /// A configuration with no audience, no required scopes, a 30 s cache,
    /// the realm `ephemera`, no DPoP (no public base URL), no trusted
    /// `Client-Cert` header and no `resource_metadata`.
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
            public_base_url: None,
            dpop_max_age: Self::DEFAULT_DPOP_MAX_AGE,
            dpop_leeway: Self::DEFAULT_DPOP_LEEWAY,
            dpop_nonce_period: None,
            trust_client_cert_header: false,
            resource_metadata: None,
            jwt_validation: None,
        }
    }

    /// Validates JWT access tokens locally with the defaults of
    /// [`JwtValidation`] (needs [`IntrospectionConfig::audience`]).
    pub fn validate_jwt_locally(self) -> Self {
        self.jwt_validation(JwtValidation::default())
    }

    /// Validates JWT access tokens locally as `validation` says.
    pub fn jwt_validation(mut self, validation: JwtValidation) -> Self {
        self.jwt_validation = Some(validation);
        self
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

    /// Accepts DPoP, with proofs' `htu` checked against `url` + the
    /// request path (see [`IntrospectionConfig::public_base_url`]).
    pub fn public_base_url(mut self, url: Url) -> Self {
        self.public_base_url = Some(url);
        self
    }

    /// Requires server nonces in DPoP proofs, rotated every `period`.
    pub fn require_dpop_nonce(mut self, period: Duration) -> Self {
        self.dpop_nonce_period = Some(period);
        self
    }

    /// Trusts (or not) the RFC 9440 `Client-Cert` header.
    pub fn trust_client_cert_header(mut self, trust: bool) -> Self {
        self.trust_client_cert_header = trust;
        self
    }

    /// Sends `resource_metadata="<url>"` in challenges (RFC 9728 §5.1).
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// Whether the `DPoP` scheme is accepted.
    pub fn dpop_enabled(&self) -> bool {
        self.public_base_url.is_some()
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
            .field(
                "public_base_url",
                &self.public_base_url.as_ref().map(Url::as_str),
            )
            .field("dpop_max_age", &self.dpop_max_age)
            .field("dpop_leeway", &self.dpop_leeway)
            .field("dpop_nonce_period", &self.dpop_nonce_period)
            .field("trust_client_cert_header", &self.trust_client_cert_header)
            .field("resource_metadata", &self.resource_metadata)
            .field("jwt_validation", &self.jwt_validation)
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
