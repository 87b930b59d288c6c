//! JOSE pieces every binding needs: public JWKs and their RFC 7638
//! thumbprints, the algorithm allow-list, and signature checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Why a JWS or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("the JWT is malformed")]
    Malformed,
    #[error("algorithm `{0}` is not allowed (asymmetric algorithms only; never `none` or HMAC)")]
    Algorithm(String),
    #[error("the key is not a usable public JWK: {0}")]
    Key(&'static str),
    #[error("the signature does not verify")]
    Signature,
}

/// The asymmetric algorithms Ephemera accepts for proofs and assertions.
pub const ALLOWED_ALGS: &[&str] = &[
    "ES256", "ES384", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
];

/// JWK members that only a private key has (RFC 7518 §6).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A public JWK, checked, with its thumbprint.
#[derive(Clone)]
pub struct PublicJwk {
    pub value: Value,
    /// RFC 7638 SHA-256 thumbprint, base64url.
    pub thumbprint: String,
    key: DecodingKey,
}

impl std::fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicJwk")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl PublicJwk {
    /// Accepts a JWK object that holds a public EC, RSA or OKP key and no
    /// private member.
    pub fn parse(value: &Value) -> Result<Self, JoseError> {
        let Value::Object(map) = value else {
            return Err(JoseError::Key("not a JSON object"));
        };
        if PRIVATE_MEMBERS.iter().any(|m| map.contains_key(*m)) {
            return Err(JoseError::Key("it contains private key material"));
        }
        let thumbprint =
            thumbprint(map).ok_or(JoseError::Key("missing or unsupported key type members"))?;
        let jwk: Jwk =
            serde_json::from_value(value.clone()).map_err(|_| JoseError::Key("unreadable JWK"))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| JoseError::Key("unusable JWK"))?;
        Ok(Self {
            value: value.clone(),
            thumbprint,
            key,
        })
    }

    /// The JWK's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.value.get("kid").and_then(Value::as_str)
    }
}

/// RFC 7638 §3: SHA-256 over the required members, in lexicographic order.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = match s("kty")? {
        "EC" => serde_json::json!({"crv": s("crv")?, "kty": "EC", "x": s("x")?, "y": s("y")?}),
        "RSA" => serde_json::json!({"e": s("e")?, "kty": "RSA", "n": s("n")?}),
        "OKP" => serde_json::json!({"crv": s("crv")?, "kty": "OKP", "x": s("x")?}),
        _ => return None,
    };
    // serde_json's map keeps keys sorted, which is the order RFC 7638 wants.
    let text = serde_json::to_string(&canonical).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())))
}

/// The decoded protected header of a compact JWS, as raw JSON.
pub fn header(token: &str) -> Result<Map<String, Value>, JoseError> {
    let first = token.split('.').next().ok_or(JoseError::Malformed)?;
    if token.split('.').count() != 3 {
        return Err(JoseError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(first)
        .map_err(|_| JoseError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JoseError::Malformed),
    }
}

/// The header's `alg`, if it is on the allow-list.
pub fn allowed_alg(header: &Map<String, Value>) -> Result<Algorithm, JoseError> {
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JoseError::Malformed)?;
    if !ALLOWED_ALGS.contains(&alg) {
        return Err(JoseError::Algorithm(alg.to_owned()));
    }
    alg.parse::<Algorithm>()
        .map_err(|_| JoseError::Algorithm(alg.to_owned()))
}

/// Verifies the signature of `token` with `key` and returns its claims.
/// Time and audience checks are the caller's, with its own `now`.
pub fn verify(
    token: &str,
    alg: Algorithm,
    key: &PublicJwk,
) -> Result<Map<String, Value>, JoseError> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
        Ok(data) => match data.claims {
            Value::Object(m) => Ok(m),
            _ => Err(JoseError::Malformed),
        },
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Err(JoseError::Signature),
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                Err(JoseError::Key("the key does not fit the algorithm"))
            }
            _ => Err(JoseError::Malformed),
        },
    }
}

/// `BASE64URL(SHA-256(value))`: the `ath` of an access token (RFC 9449 §4.2)
/// and the `x5t#S256` of a certificate's DER (RFC 8705 §3.1).
pub fn sha256_b64(value: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let Value::Object(m) = &jwk else {
            unreachable!()
        };
        assert_eq!(
            thumbprint(m).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert!(PublicJwk::parse(&jwk).is_ok());
    }

    #[test]
    fn private_keys_and_symmetric_keys_are_refused() {
        let private =
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"});
        assert!(matches!(PublicJwk::parse(&private), Err(JoseError::Key(_))));
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(matches!(PublicJwk::parse(&oct), Err(JoseError::Key(_))));
    }

    #[test]
    fn none_and_hmac_are_not_allowed() {
        for alg in ["none", "HS256", "XYZ"] {
            let mut h = Map::new();
            h.insert("alg".into(), Value::from(alg));
            assert_eq!(allowed_alg(&h), Err(JoseError::Algorithm(alg.into())));
        }
    }
}
