//! Token exchange (RFC 8693): [`TokenExchangeRequest`], the token type
//! identifiers ([`TokenType`], §3) and [`TokenExchangeResponse`] (§2.2.1),
//! which [`AuthorizationServer::token_exchange`](crate::AuthorizationServer::token_exchange)
//! sends and reads.
//!
//! The request is general: a user's access token exchanged by a service
//! for one to a downstream resource (delegation with an `actor_token`, or
//! impersonation without), or an ID token exchanged at an enterprise
//! identity provider for an Identity Assertion JWT Authorization Grant
//! (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant; MCP's
//! Enterprise-Managed Authorization, SEP-990), which
//! [`TokenExchangeRequest::id_jag`] spells out.

use std::borrow::Cow;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::identity::Form;

/// The `grant_type` of token exchange (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A token type identifier (RFC 8693 §3): the URI that says what kind of
/// token a `subject_token`, `actor_token`, `requested_token_type` or
/// `issued_token_type` is. The registered ones are constants; others come
/// from [`parse`](Self::parse).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct TokenType(Cow<'static, str>);

impl TokenType {
    /// An OAuth 2.0 access token (RFC 8693 §3).
    pub const ACCESS_TOKEN: Self =
        Self::registered("urn:ietf:params:oauth:token-type:access_token");
    /// An OAuth 2.0 refresh token (RFC 8693 §3).
    pub const REFRESH_TOKEN: Self =
        Self::registered("urn:ietf:params:oauth:token-type:refresh_token");
    /// An OpenID Connect ID Token (RFC 8693 §3).
    pub const ID_TOKEN: Self = Self::registered("urn:ietf:params:oauth:token-type:id_token");
    /// A base64url-encoded SAML 1.1 assertion (RFC 8693 §3).
    pub const SAML1: Self = Self::registered("urn:ietf:params:oauth:token-type:saml1");
    /// A base64url-encoded SAML 2.0 assertion (RFC 8693 §3).
    pub const SAML2: Self = Self::registered("urn:ietf:params:oauth:token-type:saml2");
    /// A JWT (RFC 8693 §3, RFC 7519).
    pub const JWT: Self = Self::registered("urn:ietf:params:oauth:token-type:jwt");
    /// An Identity Assertion JWT Authorization Grant
    /// (draft-ietf-oauth-identity-assertion-authz-grant §7): a JWT the
    /// identity provider issues for one authorization server, presented
    /// there as a JWT bearer grant (RFC 7523 §2.1). Note the hyphen, where
    /// `id_token` has an underscore.
    pub const ID_JAG: Self = Self::registered("urn:ietf:params:oauth:token-type:id-jag");

    const fn registered(uri: &'static str) -> Self {
        Self(Cow::Borrowed(uri))
    }

    /// A token type identifier that is not one of the constants. RFC 8693
    /// §3 makes them URIs: anything that does not parse as an absolute URI
    /// is refused.
    pub fn parse(uri: impl Into<String>) -> Result<Self> {
        let uri = uri.into();
        url::Url::parse(&uri)
            .map_err(|e| Error::protocol(format!("token type {uri:?} is not a URI: {e}")))?;
        Ok(Self(Cow::Owned(uri)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TokenType {
    type Error = Error;

    fn try_from(uri: String) -> Result<Self> {
        Self::parse(uri)
    }
}

impl std::fmt::Display for TokenType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token exchange request (RFC 8693 §2.1), without the client's
/// authentication, which [`AuthorizationServer::token_exchange`](crate::AuthorizationServer::token_exchange)
/// adds.
///
/// `Debug` never shows the tokens. Not `Clone`: it holds them.
pub struct TokenExchangeRequest {
    subject_token: String,
    subject_token_type: TokenType,
    actor: Option<(String, TokenType)>,
    requested_token_type: Option<TokenType>,
    audiences: Vec<String>,
    resources: Vec<String>,
    scope: Option<String>,
}

impl TokenExchangeRequest {
    /// A request to exchange `subject_token`, the token that represents
    /// the party on whose behalf the new token is asked for, of type
    /// `subject_token_type` (both required, §2.1).
    pub fn new(subject_token: impl Into<String>, subject_token_type: TokenType) -> Self {
        Self {
            subject_token: subject_token.into(),
            subject_token_type,
            actor: None,
            requested_token_type: None,
            audiences: Vec::new(),
            resources: Vec::new(),
            scope: None,
        }
    }

    /// The exchange of MCP's Enterprise-Managed Authorization (SEP-990,
    /// draft-ietf-oauth-identity-assertion-authz-grant §4.3), sent to the
    /// enterprise identity provider: the user's `id_token` (subject type
    /// [`TokenType::ID_TOKEN`]) for an ID-JAG ([`TokenType::ID_JAG`]) whose
    /// `audience` is the issuer of the authorization server it will be
    /// presented at, for the `resource` (RFC 8707) behind that server. The
    /// answer's token goes to [`AuthorizationServer::jwt_bearer`](crate::AuthorizationServer::jwt_bearer)
    /// at that server; its `token_type` is `N_A` (not an access token).
    pub fn id_jag(
        id_token: impl Into<String>,
        authorization_server_issuer: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self::new(id_token, TokenType::ID_TOKEN)
            .requested_token_type(TokenType::ID_JAG)
            .audience(authorization_server_issuer)
            .resource(resource)
    }

    /// Adds `actor_token` and `actor_token_type` (§2.1): the token of the
    /// party acting for the subject, for delegation (§1.1).
    pub fn actor(mut self, actor_token: impl Into<String>, actor_token_type: TokenType) -> Self {
        self.actor = Some((actor_token.into(), actor_token_type));
        self
    }

    /// Sets `requested_token_type` (§2.1); without it the server picks
    /// (usually an access token).
    pub fn requested_token_type(mut self, token_type: TokenType) -> Self {
        self.requested_token_type = Some(token_type);
        self
    }

    /// Adds an `audience` (§2.1): the logical name of a service the token
    /// is for, such as an authorization server's issuer.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Adds a `resource` (§2.1, RFC 8707 §2): the URI of a service the
    /// token is for.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Sets `scope` (§2.1, RFC 6749 §3.3).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets `scope`, or leaves it out for `None`.
    pub fn maybe_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope;
        self
    }

    pub fn subject_token_type(&self) -> &TokenType {
        &self.subject_token_type
    }

    /// The form body of §2.1, its parameters in that section's order.
    pub(crate) fn form(&self) -> Form {
        let mut form = vec![("grant_type".to_owned(), TOKEN_EXCHANGE_GRANT.to_owned())];
        for resource in &self.resources {
            form.push(("resource".to_owned(), resource.clone()));
        }
        for audience in &self.audiences {
            form.push(("audience".to_owned(), audience.clone()));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope".to_owned(), scope.clone()));
        }
        if let Some(token_type) = &self.requested_token_type {
            form.push(("requested_token_type".to_owned(), token_type.to_string()));
        }
        form.push(("subject_token".to_owned(), self.subject_token.clone()));
        form.push((
            "subject_token_type".to_owned(),
            self.subject_token_type.to_string(),
        ));
        if let Some((token, token_type)) = &self.actor {
            form.push(("actor_token".to_owned(), token.clone()));
            form.push(("actor_token_type".to_owned(), token_type.to_string()));
        }
        form
    }
}

impl std::fmt::Debug for TokenExchangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenExchangeRequest")
            .field("subject_token", &"[redacted]")
            .field("subject_token_type", &self.subject_token_type)
            .field(
                "actor_token_type",
                &self.actor.as_ref().map(|(_, token_type)| token_type),
            )
            .field("requested_token_type", &self.requested_token_type)
            .field("audiences", &self.audiences)
            .field("resources", &self.resources)
            .field("scope", &self.scope)
            .finish()
    }
}

/// The answer to a token exchange (RFC 8693 §2.2.1).
///
/// Unlike a [`TokenResponse`](crate::TokenResponse) it says what it issued
/// (`issued_token_type`), its `token_type` may be `N_A` (the token is not
/// an access token: an ID-JAG, an ID token), and `expires_in` is optional.
/// `Debug` never shows the tokens.
#[derive(Clone, Deserialize)]
pub struct TokenExchangeResponse {
    /// The issued token, whatever its type (the name is the historical one,
    /// §2.2.1).
    pub access_token: String,
    /// What [`access_token`](Self::access_token) is.
    pub issued_token_type: TokenType,
    /// How to present the token (`Bearer`, `DPoP`), or `N_A` when it is not
    /// an access token.
    pub token_type: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl TokenExchangeResponse {
    /// Whether the issued token is an access token to present at a
    /// resource: `token_type` is not `N_A` (§2.2.1, compared
    /// case-insensitively as token types are, RFC 6749 §5.1).
    pub fn is_access_token(&self) -> bool {
        !self.token_type.eq_ignore_ascii_case("N_A")
    }

    /// The issued token if it is of type `expected` (an ID-JAG, say),
    /// else a protocol error naming what came instead.
    pub fn token_of_type(&self, expected: &TokenType) -> Result<&str> {
        if &self.issued_token_type == expected {
            Ok(&self.access_token)
        } else {
            Err(Error::protocol(format!(
                "the token exchange issued a {}, not the {expected} asked for (RFC 8693 §2.2.1)",
                self.issued_token_type
            )))
        }
    }
}

impl std::fmt::Debug for TokenExchangeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenExchangeResponse")
            .field("access_token", &"[redacted]")
            .field("issued_token_type", &self.issued_token_type)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(form: &Form) -> Vec<(&str, &str)> {
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn a_request_carries_every_parameter_it_was_given_in_rfc_8693_order() {
        let request = TokenExchangeRequest::new("user-at", TokenType::ACCESS_TOKEN)
            .actor("svc-jwt", TokenType::JWT)
            .requested_token_type(TokenType::ACCESS_TOKEN)
            .resource("https://api.example/a")
            .resource("https://api.example/b")
            .audience("backend")
            .scope("read write");

        assert_eq!(
            pairs(&request.form()),
            [
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("resource", "https://api.example/a"),
                ("resource", "https://api.example/b"),
                ("audience", "backend"),
                ("scope", "read write"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:access_token"
                ),
                ("subject_token", "user-at"),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token"
                ),
                ("actor_token", "svc-jwt"),
                ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ]
        );
    }

    #[test]
    fn a_minimal_request_has_only_the_subject() {
        let request = TokenExchangeRequest::new("t", TokenType::JWT).maybe_scope(None);

        assert_eq!(
            pairs(&request.form()),
            [
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", "t"),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ]
        );
    }

    #[test]
    fn an_id_jag_request_asks_for_an_id_jag_for_an_issuer_and_a_resource() {
        let request = TokenExchangeRequest::id_jag(
            "id-token",
            "https://as.example",
            "https://mcp.example/mcp",
        );

        assert_eq!(
            pairs(&request.form()),
            [
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("resource", "https://mcp.example/mcp"),
                ("audience", "https://as.example"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:id-jag"
                ),
                ("subject_token", "id-token"),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token"
                ),
            ]
        );
        assert_eq!(request.subject_token_type(), &TokenType::ID_TOKEN);
    }

    #[test]
    fn an_n_a_response_without_expires_in_is_read_and_is_not_an_access_token() {
        let response: TokenExchangeResponse = serde_json::from_value(json!({
            "access_token": "jag",
            "issued_token_type": "urn:ietf:params:oauth:token-type:id-jag",
            "token_type": "N_A",
        }))
        .unwrap();

        assert!(!response.is_access_token());
        assert_eq!(response.expires_in, None);
        assert_eq!(response.token_of_type(&TokenType::ID_JAG).unwrap(), "jag");
        assert!(matches!(
            response.token_of_type(&TokenType::ACCESS_TOKEN),
            Err(Error::Protocol(m)) if m.contains("id-jag")
        ));
    }

    #[test]
    fn an_access_token_response_is_read_with_all_its_members() {
        let response: TokenExchangeResponse = serde_json::from_value(json!({
            "access_token": "at",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "DPoP",
            "expires_in": 60,
            "scope": "read",
            "refresh_token": "rt",
        }))
        .unwrap();

        assert!(response.is_access_token());
        assert_eq!(response.issued_token_type, TokenType::ACCESS_TOKEN);
        assert_eq!(response.expires_in, Some(60));
        assert_eq!(response.refresh_token.as_deref(), Some("rt"));
    }

    #[test]
    fn a_response_without_issued_token_type_or_with_a_non_uri_one_is_refused() {
        let without = serde_json::from_value::<TokenExchangeResponse>(json!({
            "access_token": "at", "token_type": "Bearer",
        }));
        let not_a_uri = serde_json::from_value::<TokenExchangeResponse>(json!({
            "access_token": "at", "token_type": "Bearer", "issued_token_type": "access token",
        }));

        assert!(without.is_err());
        assert!(not_a_uri.is_err());
    }

    #[test]
    fn other_token_types_parse_when_they_are_uris() {
        let custom = TokenType::parse("https://tokens.example/kind").unwrap();

        assert_eq!(custom.as_str(), "https://tokens.example/kind");
        assert_eq!(
            TokenType::parse("urn:ietf:params:oauth:token-type:id-jag").unwrap(),
            TokenType::ID_JAG
        );
        assert!(TokenType::parse("id-jag").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_tokens() {
        let request = TokenExchangeRequest::new("subject-secret", TokenType::ACCESS_TOKEN)
            .actor("actor-secret", TokenType::JWT);
        let response: TokenExchangeResponse = serde_json::from_value(json!({
            "access_token": "issued-secret", "token_type": "Bearer", "refresh_token": "rt-secret",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }))
        .unwrap();

        let printed = format!("{request:?} {response:?}");

        for secret in [
            "subject-secret",
            "actor-secret",
            "issued-secret",
            "rt-secret",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
