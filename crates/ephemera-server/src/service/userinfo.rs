//! The UserInfo endpoint (OpenID Connect Core §5.3): the claims about the
//! user of an access token with `openid`, by its scope (§5.4). The token is
//! presented as RFC 6750 §2.1 asks, or with DPoP (RFC 9449 §7) when it is
//! DPoP-bound; a certificate-bound token needs its certificate (RFC 8705 §3).

use ephemera_proto::error::ErrorCode;
use ephemera_proto::oidc::OPENID;
use serde_json::{Map, Value};

use super::{id_token, proof, Context, OAuthError};
use crate::model::{Timestamp, TokenKind};
use crate::secret::SecretHash;

/// The endpoint's path: the `htu` of its DPoP proofs.
pub const PATH: &str = "/userinfo";

/// The authentication scheme a challenge names (RFC 6750 §3, RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    DPoP,
}

/// What a request to the UserInfo endpoint presented.
#[derive(Debug, Default)]
pub struct Presentation<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// Every `DPoP` header sent (one is allowed).
    pub dpop: &'a [String],
    /// `GET` or `POST`, the `htm` of a DPoP proof.
    pub method: &'a str,
    /// The DER of the mutual-TLS client certificate.
    pub certificate: Option<&'a [u8]>,
}

/// A refusal, answered with `WWW-Authenticate` (`http/error.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The scheme the challenge names: the one the token needs.
    pub scheme: Scheme,
    /// `None`: no credentials were sent, so the challenge carries no error
    /// (RFC 6750 §3.1).
    pub error: Option<OAuthError>,
}

impl Refusal {
    fn new(scheme: Scheme, code: ErrorCode, description: &'static str) -> Self {
        Self {
            scheme,
            error: Some(OAuthError::new(code, description)),
        }
    }
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Self {
            scheme: Scheme::Bearer,
            error: Some(e),
        }
    }
}

/// The claims about the token's user: `sub` always, the rest by scope.
pub async fn userinfo(
    ctx: &Context,
    presented: Presentation<'_>,
    now: Timestamp,
) -> Result<Map<String, Value>, Refusal> {
    let Some((scheme, token_value)) = presented.authorization.and_then(parse_authorization) else {
        return Err(Refusal {
            scheme: Scheme::Bearer,
            error: presented.authorization.map(|_| {
                OAuthError::invalid_request(
                    "the Authorization header must be `Bearer <token>` or `DPoP <token>`",
                )
            }),
        });
    };
    let invalid = |s: Scheme| {
        Refusal::new(
            s,
            ErrorCode::InvalidToken,
            "the access token is unknown, expired or revoked",
        )
    };
    let Some(stored) = ctx
        .store
        .find_token(&SecretHash::of(token_value))
        .await
        .map_err(OAuthError::from)?
    else {
        return Err(invalid(scheme));
    };
    let (token, grant) = (stored.token, stored.grant);
    if token.kind != TokenKind::Access || token.expires_at <= now || token.used_at.is_some() {
        return Err(invalid(scheme));
    }
    match (&token.jkt, scheme) {
        (Some(jkt), Scheme::DPoP) => {
            let proof = match presented.dpop {
                [one] => Some(one.as_str()),
                [] => None,
                _ => {
                    return Err(Refusal::new(
                        Scheme::DPoP,
                        ErrorCode::InvalidDpopProof,
                        "more than one DPoP header was sent",
                    ))
                }
            };
            let Some(proof) = proof else {
                return Err(Refusal::new(
                    Scheme::DPoP,
                    ErrorCode::InvalidDpopProof,
                    "a DPoP proof is required with a DPoP-bound access token",
                ));
            };
            // RFC 9449 §7.1: `htm`, `htu`, `ath`, and the bound key.
            let verified = proof::dpop_for(
                ctx,
                Some(proof),
                presented.method,
                PATH,
                Some(token_value),
                now,
            )
            .await
            .map_err(|error| Refusal {
                scheme: Scheme::DPoP,
                error: Some(error),
            })?;
            if verified.is_none_or(|p| &p.jkt != jkt) {
                return Err(Refusal::new(
                    Scheme::DPoP,
                    ErrorCode::InvalidDpopProof,
                    "the DPoP proof is not signed by the key the access token is bound to",
                ));
            }
        }
        // RFC 9449 §7.2: a bound token presented as a bearer token is refused.
        (Some(_), Scheme::Bearer) => {
            return Err(Refusal::new(
                Scheme::DPoP,
                ErrorCode::InvalidToken,
                "this access token is DPoP-bound: send it with the DPoP scheme and a proof",
            ))
        }
        (None, Scheme::DPoP) => {
            return Err(Refusal::new(
                Scheme::Bearer,
                ErrorCode::InvalidToken,
                "this access token is not DPoP-bound: send it with the Bearer scheme",
            ))
        }
        (None, Scheme::Bearer) => {}
    }
    if let Some(x5t) = &token.x5t {
        let presented_x5t = presented.certificate.map(ephemera_proto::jose::sha256_b64);
        if presented_x5t.as_deref() != Some(x5t.as_str()) {
            return Err(Refusal::new(
                scheme,
                ErrorCode::InvalidToken,
                "this access token is bound to a client certificate: connect with it (RFC 8705 §3)",
            ));
        }
    }
    if !token.scope.contains(OPENID) {
        return Err(Refusal::new(
            scheme,
            ErrorCode::InsufficientScope,
            "the access token was not granted the openid scope",
        ));
    }
    let Some(subject) = &grant.subject else {
        return Err(Refusal::new(
            scheme,
            ErrorCode::InsufficientScope,
            "the access token was issued to a client for itself, not for a user",
        ));
    };
    let Some(user) = ctx
        .store
        .find_user(subject)
        .await
        .map_err(OAuthError::from)?
    else {
        return Err(invalid(scheme));
    };
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::from(user.id.as_str()));
    claims.extend(id_token::user_claims(&user, &token.scope));
    Ok(claims)
}

/// `Bearer <token>` (RFC 6750 §2.1) or `DPoP <token>` (RFC 9449 §7.1); the
/// scheme is case-insensitive.
fn parse_authorization(header: &str) -> Option<(Scheme, &str)> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((Scheme::Bearer, token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some((Scheme::DPoP, token))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorization_header_names_its_scheme() {
        assert_eq!(
            parse_authorization("Bearer abc"),
            Some((Scheme::Bearer, "abc"))
        );
        assert_eq!(parse_authorization("dpop abc"), Some((Scheme::DPoP, "abc")));
        assert_eq!(parse_authorization("Basic abc"), None);
        assert_eq!(parse_authorization("Bearer"), None);
        assert_eq!(parse_authorization("Bearer a b"), None);
    }
}
