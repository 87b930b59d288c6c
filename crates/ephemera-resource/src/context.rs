//! [`TokenContext`]: what a handler learns about the token that let the
//! request through, and its axum extractor.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// The checked token behind a request, put in the request extensions by
/// [`IntrospectionLayer`](crate::IntrospectionLayer). Handlers take it as
/// an argument: `async fn handler(ctx: TokenContext)`. It serializes to
/// JSON with these field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenContext {
    /// `sub`: the resource owner (absent for some `client_credentials` tokens).
    pub subject: Option<String>,
    /// The token's scope-tokens (RFC 6749 §3.3).
    pub scopes: Vec<String>,
    /// The client the token was issued to (the dynamic URN for pushed clients).
    pub client_id: Option<String>,
    /// Ephemera's stable per-grant identifier.
    pub grant_id: Option<String>,
    /// `registered` or `pushed`.
    pub client_kind: Option<String>,
    /// A pushed client's RFC 7591 metadata.
    pub client_metadata: Option<Value>,
    /// `aud`, as a list.
    pub audiences: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// `token_type` as introspection gave it: `Bearer`, `DPoP`, or none.
    pub token_type: Option<String>,
    /// `cnf.jkt`: the RFC 7638 thumbprint of the key the token is bound to
    /// (RFC 9449 §6.2). When set, this request carried a valid DPoP proof
    /// signed with that key.
    pub dpop_jkt: Option<String>,
    /// `cnf["x5t#S256"]`: the SHA-256 thumbprint of the client certificate
    /// the token is bound to (RFC 8705 §3.1). When set, this request came
    /// with that certificate.
    pub certificate_thumbprint: Option<String>,
    /// `act` (RFC 8693 §4.1): who acts for the subject, for a token the
    /// authorization server issued by token exchange: the current actor's
    /// `sub` (and `client_id`), prior actors nested in its own `act`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}

impl TokenContext {
    /// Whether the token carries this scope-token.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the token is sender-constrained (DPoP or certificate).
    pub fn is_bound(&self) -> bool {
        self.dpop_jkt.is_some() || self.certificate_thumbprint.is_some()
    }

    /// The current actor's `sub`: the party calling on the subject's
    /// behalf, when the token was obtained by delegation (RFC 8693 §4.1).
    pub fn actor(&self) -> Option<&str> {
        self.act.as_ref()?.get("sub")?.as_str()
    }
}

/// The extractor's rejection when no [`TokenContext`] is present, which
/// means the route is not behind the layer: 401 with a bare `Bearer`
/// challenge, so a forgotten layer fails closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingTokenContext;

impl IntoResponse for MissingTokenContext {
    fn into_response(self) -> Response {
        tracing::error!("TokenContext requested on a route without IntrospectionLayer");
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TokenContext {
    type Rejection = MissingTokenContext;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TokenContext>()
            .cloned()
            .ok_or(MissingTokenContext)
    }
}
