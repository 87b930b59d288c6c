//! JWT access tokens (RFC 9068) validated here, without introspection: the
//! checks of [`ephemera_proto::access_token::verify`] (`typ`, ES256 only,
//! the signature with the authorization server's keys, `iss`, `aud`,
//! `exp`, `nbf`), then the claims as a [`TokenContext`] with the binding
//! its `cnf` demands, which the layer checks as for an introspected token.

use std::time::{SystemTime, UNIX_EPOCH};

use ephemera_proto::access_token::{self, AccessTokenClaims, AccessTokenError, Expected};

use crate::config::JwtValidation;
use crate::context::TokenContext;
use crate::jwks::{self, Jwks};
use crate::rejection::Rejection;
use crate::verdict::binding;

pub struct JwtValidator {
    jwks: Jwks,
    leeway: i64,
}

impl JwtValidator {
    pub fn new(http: reqwest::Client, issuer: &str, settings: &JwtValidation) -> Self {
        Self {
            jwks: Jwks::new(http, issuer, settings.clone()),
            leeway: jwks::seconds(settings.leeway),
        }
    }

    /// The token's context, when it is a JWT access token of `issuer` for
    /// `audience`, valid now.
    pub async fn validate(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<TokenContext, Rejection> {
        let kid = access_token::kid(token);
        let keys = self.jwks.keys(kid.as_deref()).await.map_err(|error| {
            tracing::warn!(%error, "the authorization server's keys could not be fetched");
            Rejection::Unavailable
        })?;
        let expected = Expected {
            issuer,
            audience,
            now: unix_now(),
            leeway: self.leeway,
        };
        let claims = access_token::verify(token, &keys, &expected).map_err(refused)?;
        context(claims)
    }
}

/// The claims as the handler sees them, with the binding to check.
fn context(claims: AccessTokenClaims) -> Result<TokenContext, Rejection> {
    let (dpop_jkt, certificate_thumbprint) = binding(claims.cnf.as_ref())?;
    Ok(TokenContext {
        scopes: claims.scopes(),
        subject: Some(claims.sub),
        client_id: Some(claims.client_id),
        grant_id: claims.grant_id,
        client_kind: None,
        client_metadata: None,
        audiences: claims.aud.to_vec(),
        expires_at: u64::try_from(claims.exp).ok(),
        token_type: Some(if dpop_jkt.is_some() { "DPoP" } else { "Bearer" }.to_owned()),
        dpop_jkt,
        certificate_thumbprint,
        act: claims.act,
    })
}

/// Every refusal is `invalid_token` (RFC 6750 §3.1, RFC 9068 §4), saying
/// which check failed.
fn refused(e: AccessTokenError) -> Rejection {
    Rejection::InvalidToken(match e {
        AccessTokenError::Malformed => "the token is not a well-formed JWT access token",
        AccessTokenError::Type => "the JWT is not an access token (typ must be at+jwt)",
        AccessTokenError::Algorithm => "the token's signing algorithm is not allowed",
        AccessTokenError::NoKey => {
            "the token was signed with a key the authorization server does not publish"
        }
        AccessTokenError::Signature => "the token's signature does not verify",
        AccessTokenError::Issuer => "the token was not issued by the expected issuer",
        AccessTokenError::Audience => "the token is not meant for this resource",
        AccessTokenError::Expired => "the token has expired",
        AccessTokenError::NotYetValid => "the token is not valid yet",
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
