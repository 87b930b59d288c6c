//! JWT client assertions (RFC 7523 §3, `private_key_jwt`): everything that
//! can be checked without state. The caller checks `jti` replay.

use serde_json::Value;

use crate::jose::{self, JoseError, PublicJwk};

/// `client_assertion_type` for JWT assertions (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why an assertion was refused; each message is the `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("client_assertion is not a valid JWT")]
    Malformed,
    #[error("client_assertion: {0}")]
    Jose(JoseError),
    #[error("client_assertion is not signed by a key registered for this client")]
    UnknownKey,
    #[error("client_assertion's iss and sub must both be the client_id")]
    Subject,
    #[error("client_assertion's aud must be the issuer identifier `{0}` as its only value (draft-ietf-oauth-rfc7523bis: no endpoint URL, no other audience beside it)")]
    Audience(String),
    #[error("client_assertion needs an exp no more than {0} seconds ahead")]
    Expiry(i64),
    #[error("client_assertion has expired")]
    Expired,
    #[error("client_assertion's iat or nbf is in the future")]
    NotYetValid,
    #[error("client_assertion's iat is too old")]
    Stale,
    #[error("client_assertion needs a jti")]
    MissingJti,
}

/// What an assertion must match.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub client_id: &'a str,
    /// The authorization server's issuer identifier (RFC 8414): the only
    /// audience a client assertion may name (draft-ietf-oauth-rfc7523bis §4).
    pub issuer: &'a str,
    pub now: i64,
    /// The furthest `exp` may lie ahead.
    pub max_lifetime: i64,
    /// Clock skew allowed, seconds; `iat` and `nbf` may lie up to
    /// [`crate::future_skew`] of it ahead.
    pub leeway: i64,
}

/// A verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAssertion {
    pub jti: String,
    pub exp: i64,
    /// Thumbprint of the key that signed it.
    pub jkt: String,
}

/// The public keys of a JWK Set (`{"keys": [...]}`); every key must be public.
pub fn parse_jwks(jwks: &Value) -> Result<Vec<PublicJwk>, JoseError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JoseError::Key("a JWK Set needs a `keys` array"))?;
    if keys.is_empty() || keys.len() > 10 {
        return Err(JoseError::Key("a JWK Set needs 1 to 10 keys"));
    }
    keys.iter().map(PublicJwk::parse).collect()
}

/// Verifies `assertion` with one of `keys` (the one its `kid` names, or any).
pub fn verify(
    assertion: &str,
    keys: &[PublicJwk],
    expect: &Expectations<'_>,
) -> Result<ClientAssertion, AssertionError> {
    let header = jose::header(assertion).map_err(|_| AssertionError::Malformed)?;
    let alg = jose::allowed_alg(&header).map_err(AssertionError::Jose)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid().is_none() || k.kid() == kid);
    let mut found = None;
    for key in candidates {
        if let Ok(claims) = jose::verify(assertion, alg, key) {
            found = Some((claims, key));
            break;
        }
    }
    let (claims, key) = found.ok_or(AssertionError::UnknownKey)?;
    let s = |name: &str| claims.get(name).and_then(Value::as_str);
    if s("iss") != Some(expect.client_id) || s("sub") != Some(expect.client_id) {
        return Err(AssertionError::Subject);
    }
    // RFC 7523bis: the issuer identifier as the sole value. A string, or a
    // list of exactly that one value; anything naming another party (an
    // endpoint URL included) could have been made for someone else.
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expect.issuer,
        Some(Value::Array(list)) => {
            matches!(list.as_slice(), [Value::String(a)] if a == expect.issuer)
        }
        _ => false,
    };
    if !aud_ok {
        return Err(AssertionError::Audience(expect.issuer.to_owned()));
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(AssertionError::Expiry(expect.max_lifetime))?;
    if exp <= expect.now - expect.leeway {
        return Err(AssertionError::Expired);
    }
    if exp > expect.now + expect.max_lifetime {
        return Err(AssertionError::Expiry(expect.max_lifetime));
    }
    for name in ["iat", "nbf"] {
        if let Some(t) = claims.get(name) {
            match t.as_i64() {
                Some(t) if t <= expect.now + crate::future_skew(expect.leeway) => {}
                _ => return Err(AssertionError::NotYetValid),
            }
        }
    }
    // An assertion issued long ago is stale even if its exp is still ahead.
    if claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat < expect.now - expect.max_lifetime - expect.leeway)
    {
        return Err(AssertionError::Stale);
    }
    let jti = s("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(AssertionError::MissingJti)?;
    Ok(ClientAssertion {
        jti: jti.to_owned(),
        exp,
        jkt: key.thumbprint.clone(),
    })
}
