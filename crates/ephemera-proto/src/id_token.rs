//! The checks a relying party makes on an ID Token (OpenID Connect Core 1.0
//! §3.1.3.7) from an upstream provider: the signing key chosen from the
//! provider's JWKS, the signature, then `iss`, `aud`, `azp`, `exp`, `iat`
//! and `nonce`. Time is an input; nothing here fetches keys.

use serde_json::{Map, Value};

use crate::jose::{self, JoseError, PublicJwk};

/// Why an ID Token was refused; each message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID Token is not a signed JWT")]
    Malformed,
    #[error("the ID Token's signing algorithm is not allowed ({0})")]
    Algorithm(String),
    #[error("no key of the provider's JWKS fits the ID Token's header")]
    NoKey,
    #[error("the ID Token's signature does not verify with the provider's keys")]
    Signature,
    #[error("the ID Token was issued by `{0}`, not by the provider signed in through")]
    Issuer(String),
    #[error("the ID Token was not issued to this server (`aud` does not name its client_id)")]
    Audience,
    #[error("the ID Token names another authorized party (`azp`)")]
    AuthorizedParty,
    #[error("the ID Token has expired")]
    Expired,
    #[error("the ID Token has no valid `exp` or `iat`")]
    Times,
    #[error("the ID Token was issued in the future (`iat`)")]
    IssuedInFuture,
    #[error("the ID Token's `nonce` is not the one sent with this sign-in")]
    Nonce,
    #[error("the ID Token has no `sub`")]
    Subject,
}

/// What the ID Token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The provider's issuer identifier, exactly (Core §3.1.3.7 step 2).
    pub issuer: &'a str,
    /// This server's client_id at the provider.
    pub client_id: &'a str,
    /// The nonce sent in the authorization request.
    pub nonce: &'a str,
    pub now: i64,
    /// Seconds of clock skew allowed either way.
    pub leeway: i64,
}

/// The keys of a provider's JWKS document that parse as public signing
/// keys (a `use` other than `sig` is skipped; so are keys that do not parse).
pub fn signing_keys(jwks: &Value) -> Vec<PublicJwk> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter(|k| {
                    k.get("use")
                        .and_then(Value::as_str)
                        .is_none_or(|u| u == "sig")
                })
                .filter_map(|k| PublicJwk::parse(k).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Verifies `token` with one of `keys` (by `kid` when the header has one)
/// and checks its claims; returns them.
pub fn verify(
    token: &str,
    keys: &[PublicJwk],
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, IdTokenError> {
    let header = jose::header(token).map_err(|_| IdTokenError::Malformed)?;
    let alg = jose::allowed_alg(&header).map_err(|e| match e {
        JoseError::Algorithm(a) => IdTokenError::Algorithm(a),
        _ => IdTokenError::Malformed,
    })?;
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&PublicJwk> = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid() == kid)
        .collect();
    if candidates.is_empty() {
        return Err(IdTokenError::NoKey);
    }
    let mut claims = None;
    for key in candidates {
        match jose::verify(token, alg, key) {
            Ok(c) => {
                claims = Some(c);
                break;
            }
            Err(JoseError::Malformed) => return Err(IdTokenError::Malformed),
            Err(_) => continue,
        }
    }
    let claims = claims.ok_or(IdTokenError::Signature)?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// The claim checks of Core §3.1.3.7 after the signature.
pub fn check_claims(claims: &Map<String, Value>, e: &Expected<'_>) -> Result<(), IdTokenError> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if iss != e.issuer {
        return Err(IdTokenError::Issuer(iss.chars().take(200).collect()));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == e.client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(e.client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(IdTokenError::Audience);
    }
    // Core §3.1.3.7 steps 4 and 5: with `azp`, it must be this client.
    if let Some(azp) = claims.get("azp") {
        if azp.as_str() != Some(e.client_id) {
            return Err(IdTokenError::AuthorizedParty);
        }
    }
    let (Some(exp), Some(iat)) = (
        claims.get("exp").and_then(Value::as_i64),
        claims.get("iat").and_then(Value::as_i64),
    ) else {
        return Err(IdTokenError::Times);
    };
    if exp.saturating_add(e.leeway) <= e.now {
        return Err(IdTokenError::Expired);
    }
    if iat.saturating_sub(e.leeway) > e.now {
        return Err(IdTokenError::IssuedInFuture);
    }
    let nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Compared in constant time: the nonce is this sign-in's secret.
    let same: bool = subtle::ConstantTimeEq::ct_eq(nonce.as_bytes(), e.nonce.as_bytes()).into();
    if !same || e.nonce.is_empty() {
        return Err(IdTokenError::Nonce);
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(()),
        _ => Err(IdTokenError::Subject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expected(now: i64) -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            client_id: "ephemera",
            nonce: "n-0S6_WzA2Mj",
            now,
            leeway: 60,
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "https://idp.example", "aud": "ephemera", "sub": "248289761001",
            "exp": 2000, "iat": 1000, "nonce": "n-0S6_WzA2Mj",
        });
        if let (Value::Object(b), Value::Object(x)) = (&mut base, extra) {
            b.extend(x);
        }
        match base {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_token_for_this_client_within_its_lifetime_with_the_nonce_passes() {
        assert_eq!(check_claims(&claims(json!({})), &expected(1500)), Ok(()));
        let listed = claims(json!({"aud": ["other", "ephemera"], "azp": "ephemera"}));
        assert_eq!(check_claims(&listed, &expected(1500)), Ok(()));
    }

    #[test]
    fn each_wrong_claim_has_its_own_error() {
        let e = expected(1500);
        let cases = [
            (
                json!({"iss": "https://evil.example"}),
                IdTokenError::Issuer("https://evil.example".into()),
            ),
            (json!({"aud": "other"}), IdTokenError::Audience),
            (
                json!({"aud": ["ephemera", "other"], "azp": "other"}),
                IdTokenError::AuthorizedParty,
            ),
            (json!({"nonce": "other"}), IdTokenError::Nonce),
            (json!({"exp": "soon"}), IdTokenError::Times),
            (json!({"sub": ""}), IdTokenError::Subject),
        ];
        for (extra, error) in cases {
            assert_eq!(check_claims(&claims(extra), &e), Err(error));
        }
        assert_eq!(
            check_claims(&claims(json!({})), &expected(2061)),
            Err(IdTokenError::Expired)
        );
        assert_eq!(
            check_claims(&claims(json!({})), &expected(900)),
            Err(IdTokenError::IssuedInFuture)
        );
    }

    #[test]
    fn a_token_without_a_nonce_never_matches() {
        let mut c = claims(json!({}));
        c.remove("nonce");
        assert_eq!(check_claims(&c, &expected(1500)), Err(IdTokenError::Nonce));
        let empty = Expected {
            nonce: "",
            ..expected(1500)
        };
        assert_eq!(check_claims(&c, &empty), Err(IdTokenError::Nonce));
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused_before_any_key_is_tried() {
        // {"alg":"none"} and {"alg":"HS256"}
        for header in ["eyJhbGciOiJub25lIn0", "eyJhbGciOiJIUzI1NiJ9"] {
            let token = format!("{header}.e30.c2ln");
            assert!(matches!(
                verify(&token, &[], &expected(1500)),
                Err(IdTokenError::Algorithm(_))
            ));
        }
        assert_eq!(
            verify("not a jwt", &[], &expected(1500)),
            Err(IdTokenError::Malformed)
        );
    }
}
