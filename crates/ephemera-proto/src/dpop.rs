//! DPoP proofs (RFC 9449 §4.3): everything that can be checked without
//! state. The caller checks `jti` replay and the server nonce.

use serde_json::Value;
use url::Url;

use crate::jose::{self, JoseError, PublicJwk};

/// Why a proof was refused; each message is the `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("the DPoP proof is not a valid JWT")]
    Malformed,
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Type,
    #[error("the DPoP proof's header: {0}")]
    Jose(JoseError),
    #[error("the DPoP proof's header must carry the public key as `jwk`")]
    MissingKey,
    #[error("the DPoP proof lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the DPoP proof's htm does not match the request method")]
    Method,
    #[error("the DPoP proof's htu does not match the request URL")]
    Url,
    #[error("the DPoP proof's iat is too old or in the future")]
    Time,
    #[error("the DPoP proof's ath does not match the access token")]
    AccessTokenHash,
    #[error("more than one DPoP header was sent")]
    Repeated,
}

/// What a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// The HTTP method of the request (`htm`).
    pub method: &'a str,
    /// The URL of the request (`htu`), without query and fragment.
    pub url: &'a str,
    pub now: i64,
    /// How old `iat` may be, in seconds.
    pub max_age: i64,
    /// Clock skew allowed, in seconds: `iat` may lie up to
    /// [`crate::future_skew`] of it in the future.
    pub leeway: i64,
    /// The access token the proof goes with, when one is presented (`ath`).
    pub access_token: Option<&'a str>,
}

/// A verified proof.
#[derive(Debug, Clone)]
pub struct DpopProof {
    /// The RFC 7638 thumbprint of the proof's key (`jkt`).
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub nonce: Option<String>,
    pub jwk: Value,
}

/// The longest `jti` accepted.
pub const MAX_JTI_LEN: usize = 256;

/// Verifies a proof's syntax, signature and claims.
pub fn verify(proof: &str, expect: &Expectations<'_>) -> Result<DpopProof, DpopError> {
    let header = jose::header(proof).map_err(|_| DpopError::Malformed)?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(DpopError::Type);
    }
    let alg = jose::allowed_alg(&header).map_err(DpopError::Jose)?;
    let jwk_value = header.get("jwk").ok_or(DpopError::MissingKey)?;
    let jwk = PublicJwk::parse(jwk_value).map_err(DpopError::Jose)?;
    let claims = jose::verify(proof, alg, &jwk).map_err(DpopError::Jose)?;
    let string = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or(DpopError::MissingClaim(name))
    };
    let jti = string("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(DpopError::MissingClaim("jti"));
    }
    if string("htm")? != expect.method {
        return Err(DpopError::Method);
    }
    if !htu_matches(string("htu")?, expect.url) {
        return Err(DpopError::Url);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(DpopError::MissingClaim("iat"))?;
    if iat < expect.now - expect.max_age || iat > expect.now + crate::future_skew(expect.leeway) {
        return Err(DpopError::Time);
    }
    if let Some(token) = expect.access_token {
        if string("ath")? != jose::sha256_b64(token.as_bytes()) {
            return Err(DpopError::AccessTokenHash);
        }
    }
    Ok(DpopProof {
        jkt: jwk.thumbprint.clone(),
        jti: jti.to_owned(),
        iat,
        nonce: claims
            .get("nonce")
            .and_then(Value::as_str)
            .map(str::to_owned),
        jwk: jwk.value,
    })
}

/// RFC 9449 §4.3: `htu` matches the request URL without query and fragment,
/// after normalization (RFC 3986 §6.2.2, §6.2.3: case of scheme and host,
/// default ports).
pub fn htu_matches(claimed: &str, expected: &str) -> bool {
    fn base(s: &str) -> Option<Url> {
        let mut u = Url::parse(s).ok()?;
        u.set_query(None);
        u.set_fragment(None);
        Some(u)
    }
    matches!((base(claimed), base(expected)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_ignores_query_fragment_and_default_ports() {
        assert!(htu_matches(
            "https://AS.example:443/token?x=1#f",
            "https://as.example/token"
        ));
        assert!(!htu_matches(
            "https://as.example/token2",
            "https://as.example/token"
        ));
        assert!(!htu_matches(
            "http://as.example/token",
            "https://as.example/token"
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        let e = Expectations {
            method: "POST",
            url: "https://as.example/token",
            now: 0,
            max_age: 60,
            leeway: 5,
            access_token: None,
        };
        assert_eq!(verify("a.b", &e).err(), Some(DpopError::Malformed));
        assert_eq!(verify("e30.e30.sig", &e).err(), Some(DpopError::Type));
    }
}
