//! [`TokenContext`]: what a handler learns about the token that let the
//! request through, and its axum extractor.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The checked token behind a request, put in the request extensions by
/// [`IntrospectionLayer`](crate::IntrospectionLayer). Handlers take it as
/// an argument: `async fn handler(ctx: TokenContext)`.
#[derive(Debug, Clone, PartialEq)]
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
}

impl TokenContext {
    /// Whether the token carries this scope-token.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
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
